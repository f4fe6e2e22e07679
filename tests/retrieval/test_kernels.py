"""The compiled metric kernels (hashbench.retrieval.kernels) against plain-Python loops, the engine's
two backends against each other (identical floats), and the backend switch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from hashbench.retrieval import kernels as K  # noqa: E402
from hashbench.retrieval import metric_engine as E  # noqa: E402
from hashbench.retrieval.codes import hamming_words, pack_bits  # noqa: E402
from hashbench.retrieval.evaluation import metric_groups  # noqa: E402
from hashbench.retrieval.metrics import evaluate  # noqa: E402


def _loop_dist(qc, dc):
    qi = [int.from_bytes(bytes(r), "big") for r in qc]
    di = [int.from_bytes(bytes(r), "big") for r in dc]
    return [[bin(a ^ b).count("1") for b in di] for a in qi]


@pytest.mark.parametrize("bits", [8, 16, 24, 32, 40, 64, 72, 128, 264])
def test_hamming_distances_are_popcounts_of_xor(bits):
    rng = np.random.default_rng(bits)
    qc = pack_bits(rng.random((5, bits)) < 0.5)
    dc = pack_bits(rng.random((37, bits)) < 0.5)
    out = np.empty((5, 37), dtype=np.uint8 if bits <= 255 else np.uint16)
    K.hamming_distances(hamming_words(qc), hamming_words(dc), out)
    assert out.tolist() == _loop_dist(qc, dc)


def test_relevance_kernels_share_a_label():
    rng = np.random.default_rng(1)
    q_cls, d_cls = rng.integers(0, 4, 6).astype(np.uint8), rng.integers(0, 4, 50).astype(np.uint8)
    out = np.empty((6, 50), np.uint8)
    K.relevance_classes(q_cls, d_cls, out)
    assert out.tolist() == [[int(a == b) for b in d_cls] for a in q_cls]
    for n_labels in (5, 21, 70):  # one uint8 / uint32 word, two uint64 words
        ql = rng.random((6, n_labels)) < 0.2
        dl = rng.random((50, n_labels)) < 0.2
        labels = E.Labels(ql, dl)
        K.relevance_words(labels.query, labels.db_t, out)
        expect = [[int(bool((a & b).any())) for b in dl] for a in ql]
        assert out.tolist() == expect


def test_bucket_counts_match_loops():
    rng = np.random.default_rng(2)
    dist = rng.integers(0, 17, (4, 103)).astype(np.uint8)
    rel = (rng.random((4, 103)) < 0.3).astype(np.uint8)
    cnt, rcnt = np.empty((4, 17), np.int64), np.empty((4, 17), np.int64)
    K.bucket_counts(dist, rel, cnt, rcnt)
    for i in range(4):
        assert cnt[i].tolist() == [sum(1 for d in dist[i] if d == t) for t in range(17)]
        assert rcnt[i].tolist() == [
            sum(1 for d, r in zip(dist[i], rel[i], strict=True) if d == t and r) for t in range(17)
        ]


@pytest.mark.parametrize("n_labels", [5, 70])  # one word, two words
def test_bucket_level_counts_match_loops(n_labels):
    rng = np.random.default_rng(n_labels)
    nq, nb, n_buckets = 4, 90, 9
    dist = rng.integers(0, n_buckets, (nq, nb)).astype(np.uint8)
    ql, dl = rng.random((nq, n_labels)) < 0.3, rng.random((nb, n_labels)) < 0.3
    labels = E.Labels(ql, dl)
    cut = np.array([0, 3, 8, 5], dtype=np.int64)
    out = np.empty((nq, n_buckets, n_labels + 1), np.int64)
    K.bucket_level_counts(dist, labels.query, labels.db_t, cut, out)
    for i in range(nq):
        expect = np.zeros((n_buckets, n_labels + 1), np.int64)
        for j in range(nb):
            if dist[i, j] <= cut[i]:
                expect[dist[i, j], int((ql[i] & dl[j]).sum())] += 1
        assert out[i].tolist() == expect.tolist()


def _ranks_by_sorting(dist_row, rel_row, depth):
    """0-based ranks of the relevant items among the top ``depth`` of ``sorted((d, column))``."""
    order = sorted(range(len(dist_row)), key=lambda j: (int(dist_row[j]), j))[:depth]
    return [r for r, j in enumerate(order) if rel_row[j]]


@pytest.mark.parametrize("cut_rule", ["exact", "wider", "full"])
def test_relevant_ranks_match_a_sorted_walk(cut_rule):
    rng = np.random.default_rng(3)
    nq, nb, n_buckets = 6, 120, 9
    dist = rng.integers(0, n_buckets, (nq, nb)).astype(np.uint8)
    rel = (rng.random((nq, nb)) < 0.25).astype(np.uint8)
    rel[2] = 0  # a query with no relevant item
    depth = np.array([1, 7, 50, 119, 120, 60], dtype=np.int64)
    exact = np.array([min(t for t in range(n_buckets) if (dist[i] <= t).sum() >= depth[i])
                      for i in range(nq)], dtype=np.int64)  # fmt: skip
    cut = {
        "exact": exact,
        "wider": np.minimum(exact + 2, n_buckets - 1),
        "full": np.full(nq, n_buckets - 1, np.int64),
    }[cut_rule]
    n_rel = rel.sum(axis=1)
    size = int(np.minimum(depth, n_rel).sum())
    ranks, precs = np.empty(size, np.int64), np.empty(size)
    offsets = np.empty(nq + 1, np.int64)
    cnt, rcnt = np.empty((nq, n_buckets), np.int64), np.empty((nq, n_buckets), np.int64)
    K.relevant_ranks(
        dist, rel, depth, cut, cnt, rcnt, offsets, ranks, precs, np.empty((2, nb + 1), np.int64)
    )
    for i in range(nq):
        expect = _ranks_by_sorting(dist[i], rel[i], int(depth[i]))
        got = ranks[offsets[i] : offsets[i + 1]].tolist()
        assert got == expect
        assert precs[offsets[i] : offsets[i + 1]].tolist() == [
            (m + 1) / (r + 1) for m, r in enumerate(expect)
        ]
        inside = [t <= cut[i] for t in range(n_buckets)]
        assert cnt[i].tolist() == [
            sum(1 for d in dist[i] if d == t) if inside[t] else 0 for t in range(n_buckets)
        ]
        assert rcnt[i].tolist() == [
            sum(1 for d, r in zip(dist[i], rel[i], strict=True) if d == t and r) if inside[t] else 0
            for t in range(n_buckets)
        ]


def test_relevant_ranks_refuses_a_short_output():
    dist = np.zeros((1, 10), np.uint8)
    rel = np.ones((1, 10), np.uint8)
    ranks, precs = np.empty(3, np.int64), np.empty(3)
    with pytest.raises(ValueError, match="shorter"):
        K.relevant_ranks(
            dist, rel, np.array([10]), np.array([0]), np.empty((1, 1), np.int64),
            np.empty((1, 1), np.int64), np.empty(2, np.int64), ranks, precs, np.empty((2, 11), np.int64),
        )  # fmt: skip


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("bits", [16, 64])
@pytest.mark.parametrize("k", [None, 30])
def test_both_backends_give_identical_floats(monkeypatch, multi, bits, k):
    rng = np.random.default_rng(bits + (k or 0))
    n_cls, nq, nb = 6, 40, 300
    centres = rng.random((n_cls, bits)) < 0.5
    first = rng.integers(0, n_cls, nq + nb)
    codes = pack_bits(centres[first] ^ (rng.random((nq + nb, bits)) < 0.25))
    labels = np.eye(n_cls, dtype=np.uint8)[first]
    if multi:
        labels |= (rng.random((nq + nb, n_cls)) < 0.2).astype(np.uint8)
    args = (codes[:nq], codes[nq:], labels[:nq], labels[nq:])
    results = {}
    for backend in ("numba", "numpy"):
        monkeypatch.setenv(E.BACKEND_ENV, backend)
        for ties in ("index", "expected"):
            results[backend, ties] = evaluate(
                *args, k=k, ties=ties, metrics=metric_groups(multi), p_at_n=(1, 10, 100, 1000)
            )
    for ties in ("index", "expected"):
        a, b = results["numba", ties], results["numpy", ties]
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_load_kernels_switch(monkeypatch):
    assert E.load_kernels("numpy") is None
    assert E.load_kernels("numba") is K
    monkeypatch.setenv(E.BACKEND_ENV, "cuda")
    with pytest.raises(ValueError, match="HASHBENCH_METRICS_BACKEND='cuda' is not one of"):
        E.load_kernels()


def test_missing_numba_falls_back_or_fails_clearly():
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "from hashbench.retrieval import metric_engine as E\n"
        "assert E.load_kernels('auto') is None\n"
        "try:\n"
        "    E.load_kernels('numba')\n"
        "except ImportError as err:\n"
        "    assert 'install numba' in str(err), err\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
