"""Tests of the torchmetrics wrapper HashRetrievalMetric."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashbench.retrieval.codes import pack_bits
from hashbench.retrieval.metric import HashRetrievalMetric
from hashbench.retrieval.metrics import evaluate

pytestmark = pytest.mark.usefixtures("metrics_backend")  # numba kernels and numpy engine


def make_case(seed, nq=13, nb=70, bits=16, n_classes=4):
    rng = np.random.default_rng(seed)
    pool = rng.random((5, bits)) < 0.5
    qb = pool[rng.integers(0, 5, nq)] ^ (rng.random((nq, bits)) < 0.05)
    db = pool[rng.integers(0, 5, nb)] ^ (rng.random((nb, bits)) < 0.05)
    ql = (rng.random((nq, n_classes)) < 0.4).astype(np.float32)
    dl = (rng.random((nb, n_classes)) < 0.4).astype(np.float32)
    return pack_bits(qb), pack_bits(db), ql, dl


def feed(metric, codes, labels, role, batch, indices=None):
    for s in range(0, len(codes), batch):
        idx = None if indices is None else torch.from_numpy(indices[s : s + batch])
        metric.update(
            torch.from_numpy(codes[s : s + batch]),
            torch.from_numpy(labels[s : s + batch]),
            role,
            idx,
        )


ALL = ("mAP", "P@N", "hamming_radius", "pr_curve", "ndcg", "auc")


@pytest.mark.parametrize("ties", ["index", "expected"])
def test_batched_updates_equal_evaluate(ties):
    qc, dc, ql, dl = make_case(0)
    metric = HashRetrievalMetric(k=20, metrics=ALL, ties=ties, normalize="relevant", seed=3)
    feed(metric, dc[:30], dl[:30], "database", 7)
    feed(metric, qc, ql, "query", 5)
    feed(metric, dc[30:], dl[30:], "database", 11)
    out = metric.compute()
    ref = evaluate(qc, dc, ql, dl, k=20, metrics=ALL, ties=ties, normalize="relevant", seed=3)
    scalars = {k: v for k, v in ref.items() if not isinstance(v, np.ndarray)}
    assert out.keys() == scalars.keys()
    for key, value in scalars.items():
        assert out[key].dtype == torch.float64 and out[key].ndim == 0
        assert out[key].item() == value
    full = metric.compute_full()
    assert full.keys() == ref.keys()
    for key in ref:
        np.testing.assert_array_equal(full[key], ref[key])


def test_default_groups_are_map_and_p_at_n():
    qc, dc, ql, dl = make_case(1)
    metric = HashRetrievalMetric()
    feed(metric, qc, ql, "query", 100)
    feed(metric, dc, dl, "database", 100)
    keys = set(metric.compute())
    assert "mAP@all" in keys and "P@10" in keys and "R@10" in keys
    assert not any(k.startswith(("NDCG", "AUC", "P@H")) for k in keys)


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_compute_without_queries_or_database_raises():
    qc, dc, ql, dl = make_case(2)
    metric = HashRetrievalMetric()
    with pytest.raises(RuntimeError, match="no query items"):
        metric.compute()
    feed(metric, qc, ql, "query", 4)
    with pytest.raises(RuntimeError, match="no database items"):
        metric.compute()


def test_reset_clears_state():
    qc, dc, ql, dl = make_case(3)
    metric = HashRetrievalMetric()
    feed(metric, qc, ql, "query", 4)
    feed(metric, dc, dl, "database", 9)
    first = metric.compute()["mAP@all"]
    metric.reset()
    qc2, dc2, ql2, dl2 = make_case(4)
    feed(metric, qc2, ql2, "query", 4)
    feed(metric, dc2, dl2, "database", 9)
    assert (
        metric.compute()["mAP@all"].item()
        == evaluate(qc2, dc2, ql2, dl2, metrics=("mAP",))["mAP@all"]
    )
    assert first.item() == evaluate(qc, dc, ql, dl, metrics=("mAP",))["mAP@all"]


def test_indices_make_order_and_padding_irrelevant():
    """Shuffled arrival order and repeated (DDP-padded) items give the dataset-order result."""
    qc, dc, ql, dl = make_case(5)
    ref = evaluate(qc, dc, ql, dl, metrics=("mAP", "P@N"))["mAP@all"]
    rng = np.random.default_rng(0)
    order = np.concatenate([rng.permutation(len(dc)), [3, 8]])  # two padded repeats
    metric = HashRetrievalMetric()
    feed(metric, qc, ql, "query", 6, indices=np.arange(len(qc)))
    feed(metric, dc[order], dl[order], "database", 8, indices=order)
    assert metric.compute()["mAP@all"].item() == ref


def test_mixed_indices_rejected():
    qc, dc, ql, dl = make_case(6)
    metric = HashRetrievalMetric()
    feed(metric, qc, ql, "query", 100)
    metric.update(torch.from_numpy(dc[:5]), torch.from_numpy(dl[:5]), "database", torch.arange(5))
    metric.update(torch.from_numpy(dc[5:]), torch.from_numpy(dl[5:]), "database")
    with pytest.raises(RuntimeError, match="indices"):
        metric.compute()


def test_merge_state_concatenates_like_ddp():
    """Two metrics merged (list states, "cat") equal one metric that saw everything."""
    qc, dc, ql, dl = make_case(7)
    for with_indices in (False, True):
        a, b = HashRetrievalMetric(k=10), HashRetrievalMetric(k=10)
        qi = np.arange(len(qc)) if with_indices else None
        di = np.arange(len(dc)) if with_indices else None
        feed(a, qc[:6], ql[:6], "query", 3, None if qi is None else qi[:6])
        feed(a, dc[:40], dl[:40], "database", 10, None if di is None else di[:40])
        feed(b, qc[6:], ql[6:], "query", 3, None if qi is None else qi[6:])
        feed(b, dc[40:], dl[40:], "database", 10, None if di is None else di[40:])
        a.merge_state(b)  # torchmetrics puts the incoming state first
        if with_indices:  # indices restore the dataset order
            ref = evaluate(qc, dc, ql, dl, k=10, metrics=("mAP", "P@N"))
        else:
            order_q = np.r_[6 : len(qc), 0:6]
            order_d = np.r_[40 : len(dc), 0:40]
            ref = evaluate(
                qc[order_q], dc[order_d], ql[order_q], dl[order_d], k=10, metrics=("mAP", "P@N")
            )
        out = a.compute()
        for key, value in out.items():
            assert value.item() == ref[key], (with_indices, key)
    for name, fx in a._reductions.items():
        assert fx.__name__ == "dim_zero_cat", name


def test_bad_arguments():
    qc, dc, ql, dl = make_case(8)
    metric = HashRetrievalMetric()
    with pytest.raises(ValueError, match="role"):
        metric.update(torch.from_numpy(qc), torch.from_numpy(ql), "db")
    with pytest.raises(ValueError, match="uint8"):
        metric.update(torch.from_numpy(qc).long(), torch.from_numpy(ql), "query")
    with pytest.raises(ValueError, match="labels"):
        metric.update(torch.from_numpy(qc), torch.from_numpy(ql[:3]), "query")
    with pytest.raises(ValueError, match="unknown metric"):
        HashRetrievalMetric(metrics=("mAP", "ndcg@10"))
    with pytest.raises(ValueError, match="ties"):
        HashRetrievalMetric(ties="random")
    with pytest.raises(ValueError, match="k="):
        HashRetrievalMetric(k=0)
