"""The metric engine's internals (hashbench.retrieval.metric_engine) against plain-Python loops,
plus the input rules of the public metrics that the engine change brought (P@N capping, unpacked
codes rejected, no torch at import)."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

from hashbench.retrieval import metric_engine as E
from hashbench.retrieval.codes import pack_bits
from hashbench.retrieval.metrics import evaluate, mean_average_precision, precision_recall_at_n

pytestmark = pytest.mark.usefixtures("metrics_backend")  # numba kernels and numpy engine


def _case(seed, nq, nb, bits, n_classes=5, multi=True):
    rng = np.random.default_rng(seed)
    pool = rng.random((4, bits)) < 0.5
    qb = pool[rng.integers(0, 4, nq)] ^ (rng.random((nq, bits)) < 0.2)
    db = pool[rng.integers(0, 4, nb)] ^ (rng.random((nb, bits)) < 0.2)
    if multi:
        ql = (rng.random((nq, n_classes)) < 0.3).astype(np.uint8)
        dl = (rng.random((nb, n_classes)) < 0.3).astype(np.uint8)
    else:
        ql = np.eye(n_classes, dtype=np.uint8)[rng.integers(0, n_classes, nq)]
        dl = np.eye(n_classes, dtype=np.uint8)[rng.integers(0, n_classes, nb)]
    return pack_bits(qb), pack_bits(db), ql, dl


def _loop_dist(qc, dc):
    qi = [int.from_bytes(bytes(r), "big") for r in qc]
    di = [int.from_bytes(bytes(r), "big") for r in dc]
    return [[bin(a ^ b).count("1") for b in di] for a in qi]


def _loop_rel(ql, dl):
    return [[any(a and b for a, b in zip(q, d, strict=True)) for d in dl] for q in ql]


def _position(nb, seed):
    perm = np.random.default_rng(seed).permutation(nb)
    pos = [0] * nb
    for p, item in enumerate(perm):
        pos[int(item)] = p
    return perm, pos


@pytest.mark.parametrize("multi", [True, False])
@pytest.mark.parametrize("bits", [8, 16, 24, 64])
def test_ranking_head_is_the_stable_order_of_distance_then_shuffle_position(multi, bits):
    seed, nq, nb = 3, 7, 83
    qc, dc, ql, dl = _case(bits, nq, nb, bits, multi=multi)
    dist, rel = _loop_dist(qc, dc), _loop_rel(ql, dl)
    perm, pos = _position(nb, seed)
    depths = np.array([1, 5, 17, 40, 82, 83, 1000])[:nq]
    for with_counts in (False, True):
        ch = E.ChunkSource(qc, dc, ql != 0, dl != 0, seed, None).chunk(slice(0, nq))
        ch.depth = np.minimum(depths, nb)
        ch.keep_order = True
        if with_counts:
            _ = ch.counts  # the cut is then read from the counts rather than searched for
        head = ch.head
        for i in range(nq):
            ranks, precs = head.row(i)
            k = min(int(depths[i]), nb)
            expect = sorted(range(nb), key=lambda j, i=i: (dist[i][j], pos[j]))[:k]
            assert [int(perm[c]) for c in head.orders[i]] == expect
            rel_ranked = [rel[i][j] for j in expect]
            assert ranks.tolist() == [r for r, v in enumerate(rel_ranked) if v]
            prec, hits = [], 0
            for r, v in enumerate(rel_ranked):
                if v:
                    hits += 1
                    prec.append(hits / (r + 1) + (prec[-1] if prec else 0.0))
            np.testing.assert_allclose(np.cumsum(precs), prec, rtol=0, atol=1e-12)


def test_counts_and_head_counts_match_loops():
    qc, dc, ql, dl = _case(5, 6, 90, 16)
    dist, rel = _loop_dist(qc, dc), _loop_rel(ql, dl)
    depths = np.array([1, 10, 33, 60, 89, 90])
    ch = E.ChunkSource(qc, dc, ql != 0, dl != 0, 0, None).chunk(slice(0, len(qc)))
    ch.depth = depths
    head_cnt, head_rcnt = ch.head_counts
    cnt, rcnt = ch.counts
    for i in range(6):
        full = [sum(1 for j in range(90) if dist[i][j] == t) for t in range(17)]
        full_r = [sum(1 for j in range(90) if dist[i][j] == t and rel[i][j]) for t in range(17)]
        assert cnt[i].tolist() == full and rcnt[i].tolist() == full_r
        cut = next(t for t in range(17) if sum(full[: t + 1]) >= depths[i])
        assert head_cnt[i].tolist() == [c if t <= cut else 0 for t, c in enumerate(full)]
        assert head_rcnt[i].tolist() == [c if t <= cut else 0 for t, c in enumerate(full_r)]
    assert ch.n_relevant.tolist() == [sum(r) for r in rel]


def test_cut_bucket_is_exact_whatever_the_sample_says():
    rng = np.random.default_rng(0)
    for n, n_buckets in [(1, 9), (50, 9), (5000, 65), (20000, 17)]:
        # a row whose strided sample misleads: the low distances sit off the sample's stride
        row = rng.integers(0, n_buckets, n).astype(np.uint8)
        row[1::7] = 0
        mask = np.empty(n, dtype=bool)
        for k in sorted({1, min(2, n), n // 3 + 1, n // 2 + 1, n}):
            t = E.cut_bucket(row, k, n_buckets, mask)
            expect = next(t for t in range(n_buckets) if sum(1 for d in row if d <= t) >= k)
            assert t == expect
            assert mask.tolist() == [bool(d <= t) for d in row]


def test_sparse_flatnonzero_matches_loop():
    rng = np.random.default_rng(1)
    for n in (0, 1, 7, 8, 9, 63, 64, 1001):
        for density in (0.0, 0.03, 0.5, 1.0):
            mask = rng.random(n) < density
            got = E.sparse_flatnonzero(mask)
            assert got.tolist() == [j for j in range(n) if mask[j]]


@pytest.mark.parametrize("n_classes", [3, 12, 21, 40, 70])
def test_relevance_at_columns_matches_loop(n_classes):
    _, _, ql, dl = _case(2, 4, 50, 8, n_classes=n_classes)
    labels = E.Labels(ql != 0, dl != 0)
    rel = _loop_rel(ql, dl)
    cols = np.array([0, 3, 3, 17, 49])
    for qi in range(4):
        assert labels.rel_at(qi, cols).tolist() == [rel[qi][c] for c in cols]
    np.testing.assert_array_equal(labels.rel(slice(0, 4)), np.array(rel))


def test_p_at_n_above_the_database_size_is_capped_not_dropped():
    """PROTOCOL.md: N in {1, ..., 5000} capped at the database size; the key keeps the asked N."""
    qc, dc, ql, dl = _case(7, 5, 40, 16)
    rel = _loop_rel(ql, dl)
    for ties in ("index", "expected"):
        out = precision_recall_at_n(qc, dc, ql, dl, p_at_n=(10, 40, 100, 5000), ties=ties)
        for n in (100, 5000):  # the whole database: every relevant item is retrieved
            assert out[f"P@{n}"] == pytest.approx(np.mean([sum(r) / 40 for r in rel]), abs=1e-12)
            assert out[f"R@{n}"] == pytest.approx(np.mean([1.0 if any(r) else 0.0 for r in rel]))
            assert out[f"P@{n}"] == out["P@40"] and out[f"R@{n}"] == out["R@40"]
        assert out["P@N_curve/N"].tolist() == [10, 40, 100, 5000]
        assert out["P@N_curve"].shape == (4,)
    assert "P@5000" in evaluate(qc, dc, ql, dl, metrics="P@N")


def test_unpacked_bits_are_rejected_with_the_fix():
    qc, dc, ql, dl = _case(8, 4, 30, 16)
    q_bits, d_bits = np.unpackbits(qc, axis=1), np.unpackbits(dc, axis=1)  # uint8 0/1
    with pytest.raises(ValueError, match="pack_bits"):
        mean_average_precision(q_bits, d_bits, ql, dl)
    with pytest.raises(ValueError, match="unpacked"):
        evaluate(q_bits, d_bits, ql, dl)
    # packed codes whose bytes happen to be small are not mistaken for bits
    zeros = np.zeros((4, 8), np.uint8)
    wide = np.packbits(np.random.default_rng(0).random((30, 64)) < 0.5, axis=1)
    assert 0.0 <= mean_average_precision(zeros, wide, ql, dl) <= 1.0
    assert 0.0 <= mean_average_precision(qc, dc, ql, dl) <= 1.0  # 2 bytes: never flagged


def test_metrics_import_does_not_import_torch_or_numba():
    code = (
        "import sys, hashbench.retrieval.metrics, hashbench.retrieval.evaluation; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'numba' not in sys.modules, 'numba imported before the first evaluation'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_chunk_property_caches_per_instance_without_a_shared_lock():
    """Two chunks compute the same property at once on two threads (functools.cached_property
    before Python 3.12 holds one lock per property for every instance: the barrier would break)."""
    barrier = threading.Barrier(2, timeout=5)
    calls = []

    class Thing:
        @E.chunk_property
        def value(self):
            calls.append(self)
            barrier.wait()  # both threads must be inside at the same time
            return len(calls)

    things = [Thing(), Thing()]
    errors = []

    def read(t):
        try:
            _ = t.value
        except threading.BrokenBarrierError as err:
            errors.append(err)

    threads = [threading.Thread(target=read, args=(t,)) for t in things]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(calls) == 2
    assert things[0].value == things[0].__dict__["value"] and len(calls) == 2  # cached: no 3rd call
