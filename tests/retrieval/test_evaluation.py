"""The evaluation contract (hashbench.retrieval.evaluation): groups, keys, ties, facts, encoding."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hashbench.retrieval import evaluation as ev
from hashbench.retrieval.metrics import evaluate


def test_metric_groups_add_ndcg_only_for_multi_label() -> None:
    assert ev.metric_groups(False) == ("mAP", "P@N", "hamming_radius", "pr_curve", "auc")
    assert ev.metric_groups(True) == ("mAP", "P@N", "hamming_radius", "pr_curve", "ndcg", "auc")
    assert set(ev.metric_groups(True)) == set(ev.TEST_METRICS)


def test_map_key_finds_the_protocol_map_in_a_real_result() -> None:
    rng = np.random.default_rng(0)
    q, db = rng.integers(0, 256, (5, 2), np.uint8), rng.integers(0, 256, (40, 2), np.uint8)
    ql, dl = (
        np.eye(3, dtype=np.uint8)[rng.integers(0, 3, 5)],
        np.eye(3, dtype=np.uint8)[rng.integers(0, 3, 40)],
    )
    for k, expected in ((None, "mAP@all"), (10, "mAP@10")):
        result = evaluate(q, db, ql, dl, k=k, metrics=ev.metric_groups(False))
        assert "mAP@H<=2" in result  # the Hamming-ball figure is there and is not the answer
        assert ev.map_key(result) == expected
    assert ev.map_key({"mAP@H<=2": 0.1, "P@500": 0.2}) is None


def test_ties_are_checked() -> None:
    assert ev.check_ties("expected") == "expected"
    with pytest.raises(ValueError, match="index, expected"):
        ev.check_ties("random")


def test_protocol_facts_take_the_tie_rule_they_are_given() -> None:
    dm = SimpleNamespace(
        split={"train": np.arange(4), "query": np.arange(2)},
        protocol=SimpleNamespace(name="tiny"),
        metric_k=None,
        seed=7,
        key="abc",
        multi_label=False,
    )
    facts = ev.protocol_facts(dm, "expected")
    assert facts == {
        "name": "tiny",
        "k": None,
        "split_seed": 7,
        "data_key": "abc",
        "ties": "expected",
        "multi_label": False,
        "n_train": 4,
        "n_query": 2,
    }


def test_split_metrics_separates_scalars_and_curves() -> None:
    scalars, curves = ev.split_metrics(
        {"mAP@all": np.float64(0.5), "pr": np.array([1.0, 0.5]), "t": torch.tensor(2.0), "s": "x"}
    )
    assert scalars == {"mAP@all": 0.5, "t": 2.0}
    assert curves == {"pr": [1.0, 0.5]}


class _SignModel(torch.nn.Module):
    bits = 8

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        bits = (images.flatten(1)[:, :8] >= 0).to(torch.uint8)
        weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)
        return (bits * weights).sum(1, dtype=torch.uint8)[:, None]


def test_encode_split_covers_every_item_in_loader_order() -> None:
    images = torch.randn(10, 1, 3, 3)
    batches = [
        {"image": images[i : i + 4], "index": torch.arange(i, min(i + 4, 10)) + 100}
        for i in range(0, 10, 4)
    ]
    dm = SimpleNamespace(dataloader=lambda split: batches)
    out = ev.encode_split(_SignModel(), dm, "query")
    np.testing.assert_array_equal(out.ids, np.arange(100, 110))
    expected = [
        int("".join("1" if v >= 0 else "0" for v in img.flatten()[:8].tolist()), 2)
        for img in images
    ]
    np.testing.assert_array_equal(out.codes[:, 0], expected)
    assert out.seconds >= 0
    empty = ev.encode_split(_SignModel(), SimpleNamespace(dataloader=lambda split: []), "query")
    assert empty.codes.shape == (0, 1) and empty.ids.shape == (0,)
