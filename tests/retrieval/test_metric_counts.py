"""The shared counting step of the metric engine (one pass per query chunk) against plain loops.

Covers the code paths the single-pass ``evaluate`` brought: bucket counts two keys at a time
(``bucket_counts``, odd and even rows, relevance as a matrix or marked row by row), relevance from
packed label rows or from label words, the per-label-set level histogram and relevant counts,
similarity levels at columns, the word-level ``sparse_flatnonzero``, and ``evaluate`` on databases
large enough for those paths, compared with rankings and counts written out as loops.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hashbench.retrieval import metric_engine as E
from hashbench.retrieval.codes import pack_bits
from hashbench.retrieval.metrics import evaluate

pytestmark = pytest.mark.usefixtures("metrics_backend")  # numba kernels and numpy engine


def _case(seed, nq, nb, bits, n_classes=5, multi=True, density=0.3):
    rng = np.random.default_rng(seed)
    pool = rng.random((4, bits)) < 0.5
    qb = pool[rng.integers(0, 4, nq)] ^ (rng.random((nq, bits)) < 0.2)
    db = pool[rng.integers(0, 4, nb)] ^ (rng.random((nb, bits)) < 0.2)
    if multi:
        ql = (rng.random((nq, n_classes)) < density).astype(np.uint8)
        dl = (rng.random((nb, n_classes)) < density).astype(np.uint8)
        ql[0] = 0  # a query without labels: nothing is relevant
        ql[1] = ql[2]  # two queries with the same label set
    else:
        ql = np.eye(n_classes, dtype=np.uint8)[rng.integers(0, n_classes, nq)]
        dl = np.eye(n_classes, dtype=np.uint8)[rng.integers(0, n_classes, nb)]
    return pack_bits(qb), pack_bits(db), ql, dl


def _loop_dist(qc, dc):
    qi = [int.from_bytes(bytes(r), "big") for r in qc]
    di = [int.from_bytes(bytes(r), "big") for r in dc]
    return [[bin(a ^ b).count("1") for b in di] for a in qi]


def _loop_levels(ql, dl):
    return [[sum(1 for a, b in zip(q, d, strict=True) if a and b) for d in dl] for q in ql]


def _loop_counts(dist, rel, n_buckets):
    cnt = [[sum(1 for d in row if d == t) for t in range(n_buckets)] for row in dist]
    rcnt = [
        [sum(1 for d, r in zip(row, rr, strict=True) if d == t and r) for t in range(n_buckets)]
        for row, rr in zip(dist, rel, strict=True)
    ]
    return cnt, rcnt


# ------------------------------------------------------------------------------------------------
# bucket_counts: every path (pairs of keys, odd rows, uint8 / uint16 keys, matrix / callable)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_buckets,nb",
    [(9, 400), (9, 401), (17, 1300), (17, 1301), (65, 300), (137, 90), (9, 7)],
)
def test_bucket_counts_match_loops(n_buckets, nb):
    rng = np.random.default_rng(n_buckets * 1000 + nb)
    dist = rng.integers(0, n_buckets, (4, nb)).astype(np.uint8)
    dist[0, : nb // 2] = n_buckets - 1  # the last bucket is crowded in one row
    rel = rng.random((4, nb)) < 0.3
    rel[1] = False
    expect = _loop_counts(dist.tolist(), rel.tolist(), n_buckets)
    for given in (rel, lambda i, key: np.bitwise_or(key, rel[i].view(np.uint8), out=key)):
        cnt, rcnt = E.bucket_counts(dist, given, n_buckets)
        assert cnt.tolist() == expect[0] and rcnt.tolist() == expect[1]
        assert cnt.dtype == np.int64 and rcnt.dtype == np.int64


def test_bucket_counts_uint16_distances():
    rng = np.random.default_rng(0)
    dist = rng.integers(0, 265, (3, 50)).astype(np.uint16)
    rel = rng.random((3, 50)) < 0.5
    cnt, rcnt = E.bucket_counts(dist, rel, 265)
    assert (cnt.tolist(), rcnt.tolist()) == _loop_counts(dist.tolist(), rel.tolist(), 265)


# ------------------------------------------------------------------------------------------------
# Labels: relevance, levels, level histogram, relevant counts
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("packed_rows", [True, False])
@pytest.mark.parametrize(
    "n_classes,multi",
    [(3, True), (12, True), (21, True), (40, True), (70, True), (6, False), (300, False)],
)
def test_labels_match_loops(monkeypatch, packed_rows, n_classes, multi):
    if not packed_rows:  # relevance from the label words instead of the packed label rows
        monkeypatch.setattr(E, "LABEL_BITS_BYTES", 0)
    _, _, ql, dl = _case(n_classes, 9, 83, 8, n_classes=n_classes, multi=multi, density=0.15)
    if multi:
        ql[3, :] = 1  # a query with every label
    levels = _loop_levels(ql, dl)
    rel = [[lv > 0 for lv in row] for row in levels]
    labels = E.Labels(ql != 0, dl != 0)
    assert (labels.label_bits is not None) == (multi and packed_rows)
    assert labels.rel(slice(0, 9)).tolist() == rel
    assert labels.rel(slice(4, 100)).tolist() == rel[4:]
    key = np.full(83, 6, dtype=np.uint8)
    for qi in range(9):
        k = key.copy()
        labels.mark_relevant(qi, k)
        assert k.tolist() == [6 + r for r in rel[qi]]
    cols = np.array([0, 5, 5, 40, 82])
    for qi in range(9):
        assert labels.levels_at(qi, cols).tolist() == [levels[qi][c] for c in cols]
        assert labels.levels_at(qi, None).tolist() == levels[qi]
    grid = np.array([[1, 2, 3], [82, 0, 0], [7, 7, 8]])
    got = labels.levels_at(slice(2, 5), grid)
    assert got.tolist() == [[levels[2 + i][c] for c in grid[i]] for i in range(3)]
    hist = labels.level_hist(slice(0, 9))
    assert hist.tolist() == [
        [sum(1 for lv in row if lv == level) for level in range(n_classes + 1)] for row in levels
    ]
    assert labels.n_relevant(slice(0, 9)).tolist() == [sum(r) for r in rel]


def test_level_hist_in_float64_beyond_float32_exact_counts(monkeypatch):
    """Databases above 2**24 items sum the multiplicities in float64 (forced here)."""
    _, _, ql, dl = _case(4, 6, 120, 8, n_classes=9, density=0.3)
    expect = E.Labels(ql != 0, dl != 0).level_hist(slice(0, 6))
    monkeypatch.setattr(E, "FLOAT32_EXACT_COUNTS", 0)
    assert E.Labels(ql != 0, dl != 0).level_hist(slice(0, 6)).tolist() == expect.tolist()
    levels = _loop_levels(ql, dl)
    assert expect.tolist() == [[row.count(lv) for lv in range(10)] for row in levels]


def test_sparse_flatnonzero_with_known_count():
    rng = np.random.default_rng(2)
    for n in (64, 65, 71, 800, 5003):
        for density in (0.0, 0.01, 0.05, 0.099, 0.101, 0.4):
            mask = rng.random(n) < density
            expect = [j for j in range(n) if mask[j]]
            assert E.sparse_flatnonzero(mask, len(expect)).tolist() == expect


# ------------------------------------------------------------------------------------------------
# evaluate on databases where the paired counting, the head cut and the level tables are used
# ------------------------------------------------------------------------------------------------


def _loop_reference(qc, dc, ql, dl, k, seed, radius, ns):
    """Index-rule metrics, order-free metrics and tie-averaged NDCG/ACG, one query at a time."""
    dist, levels = _loop_dist(qc, dc), _loop_levels(ql, dl)
    nb = len(dc)
    perm = np.random.default_rng(seed).permutation(nb)
    pos = {int(item): p for p, item in enumerate(perm)}
    kk = nb if k is None else min(k, nb)
    bits = qc.shape[1] * 8
    out: dict[str, list] = {}

    def add(key, value):
        out.setdefault(key, []).append(value)

    for i in range(len(qc)):
        order = sorted(range(nb), key=lambda j, i=i: (dist[i][j], pos[j]))
        lv = [levels[i][j] for j in order]
        rel = [v > 0 for v in lv]
        hits, total = 0, 0.0
        for rank, r in enumerate(rel[:kk], 1):
            if r:
                hits += 1
                total += hits / rank
        add("ap", total / hits if hits else 0.0)
        n_rel = sum(rel)
        for n in ns:
            got = sum(rel[: min(n, nb)])
            add(f"P@{n}", got / min(n, nb))
            add(f"R@{n}", got / n_rel if n_rel else 0.0)
        disc = [1 / math.log2(r + 2) for r in range(nb)]
        ideal = sum((2.0**v - 1) * disc[r] for r, v in enumerate(sorted(lv, reverse=True)[:kk]))
        dcg = sum((2.0**v - 1) * disc[r] for r, v in enumerate(lv[:kk]))
        add("ndcg", dcg / ideal if ideal else 0.0)
        add("acg", sum(lv[:kk]) / kk)
        # ties="expected" NDCG / ACG: every rank of a bucket gets the bucket's mean gain and level
        row = sorted(range(nb), key=lambda j, i=i: dist[i][j])
        e_dcg = e_cg = 0.0
        for rank in range(kk):
            t = dist[i][row[rank]]
            bucket = [levels[i][j] for j in range(nb) if dist[i][j] == t]
            e_dcg += sum(2.0**v - 1 for v in bucket) / len(bucket) * disc[rank]
            e_cg += sum(bucket) / len(bucket)
        add("ndcg_exp", e_dcg / ideal if ideal else 0.0)
        add("acg_exp", e_cg / kk)
        prec, recall = [], []
        for r in range(bits + 1):
            ball = [rel_j for rel_j, j in zip(rel, order, strict=True) if dist[i][j] <= r]
            prec.append(sum(ball) / len(ball) if ball else 0.0)
            recall.append(sum(ball) / n_rel if n_rel else 0.0)
        add("prec", prec)
        add("rec", recall)
        pos_d = [dist[i][j] for j in range(nb) if levels[i][j] > 0]
        neg_d = [dist[i][j] for j in range(nb) if levels[i][j] == 0]
        if pos_d and neg_d:
            wins = sum(1.0 if a < b else 0.5 if a == b else 0.0 for a in pos_d for b in neg_d)
            add("auc", wins / (len(pos_d) * len(neg_d)))
    return {key: np.mean(np.array(v, dtype=np.float64), axis=0) for key, v in out.items()}


@pytest.mark.parametrize(
    "multi,bits,nb,k",
    [(True, 8, 401, 50), (True, 8, 400, None), (False, 16, 1230, 200), (True, 16, 1225, 7)],
)
def test_evaluate_on_paired_counting_matches_loops(multi, bits, nb, k):
    qc, dc, ql, dl = _case(bits + nb, 5, nb, bits, n_classes=21 if multi else 6, multi=multi)
    ns = (1, 30, nb, 5000)
    ref = _loop_reference(qc, dc, ql, dl, k, seed=4, radius=2, ns=ns)
    name = "all" if k is None else str(k)
    out = evaluate(qc, dc, ql, dl, k=k, seed=4, p_at_n=ns, per_query=True)
    assert out[f"mAP@{name}"] == pytest.approx(ref["ap"], abs=1e-12)
    assert out[f"per_query/mAP@{name}"].mean() == pytest.approx(out[f"mAP@{name}"], abs=1e-15)
    for n in ns:
        assert out[f"P@{n}"] == pytest.approx(ref[f"P@{n}"], abs=1e-12)
        assert out[f"R@{n}"] == pytest.approx(ref[f"R@{n}"], abs=1e-12)
    np.testing.assert_allclose(out["pr_curve/precision"], ref["prec"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["pr_curve/recall"], ref["rec"], rtol=0, atol=1e-12)
    assert out["P@H<=2"] == pytest.approx(ref["prec"][2], abs=1e-12)
    assert out["R@H<=2"] == pytest.approx(ref["rec"][2], abs=1e-12)
    assert out["AUC"] == pytest.approx(ref["auc"], abs=1e-12)
    assert out[f"NDCG@{name}"] == pytest.approx(ref["ndcg"], abs=1e-12)
    assert out[f"ACG@{name}"] == pytest.approx(ref["acg"], abs=1e-12)
    exp = evaluate(qc, dc, ql, dl, k=k, ties="expected", metrics=("ndcg", "pr_curve", "auc"))
    assert exp[f"NDCG@{name}"] == pytest.approx(ref["ndcg_exp"], abs=1e-12)
    assert exp[f"ACG@{name}"] == pytest.approx(ref["acg_exp"], abs=1e-12)
    np.testing.assert_array_equal(exp["pr_curve/precision"], out["pr_curve/precision"])
    # every chunking gives the same figures, bit for bit
    for cs in (1, 2):
        again = evaluate(qc, dc, ql, dl, k=k, seed=4, p_at_n=ns, chunk_size=cs)
        for key, value in again.items():
            np.testing.assert_array_equal(value, out[key], err_msg=key)
