"""Tests of hashbench.retrieval.metrics against slow, obviously-correct references.

References are plain Python loops: Hamming distance by popcount of XORed integers, ranking by
``sorted(key=(distance, shuffle position))``, then a walk down the ranked list. ``ties="expected"``
is checked against the average over *every* order within distance buckets on cases small enough to
enumerate; rankings without ties are checked against scikit-learn and torchmetrics.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from torchmetrics.functional.retrieval import (
    retrieval_average_precision,
    retrieval_normalized_dcg,
    retrieval_precision,
    retrieval_recall,
)

from hashbench.retrieval.codes import pack_bits
from hashbench.retrieval.metrics import (
    DEFAULT_METRICS,
    P_AT_N,
    auc,
    evaluate,
    hamming_radius_metrics,
    mean_average_precision,
    ndcg_acg_at_k,
    pr_curve,
    precision_recall_at_n,
    relevance,
    tie_order,
)

pytestmark = pytest.mark.usefixtures("metrics_backend")  # numba kernels and numpy engine

# ------------------------------------------------------------------------------------------------
# Seeded cases
# ------------------------------------------------------------------------------------------------


def make_case(seed, nq, nb, bits=8, n_classes=4, pool=6, multi_label=True, flip=0.0, density=0.35):
    """Codes drawn from a small pool (many ties); labels multi-hot or one-hot."""
    rng = np.random.default_rng(seed)
    pool_bits = rng.random((pool, bits)) < 0.5
    q_bits = pool_bits[rng.integers(0, pool, nq)] ^ (rng.random((nq, bits)) < flip)
    d_bits = pool_bits[rng.integers(0, pool, nb)] ^ (rng.random((nb, bits)) < flip)
    if multi_label:
        ql = (rng.random((nq, n_classes)) < density).astype(np.uint8)
        dl = (rng.random((nb, n_classes)) < density).astype(np.uint8)
    else:
        ql = np.eye(n_classes, dtype=np.float32)[rng.integers(0, n_classes, nq)]
        dl = np.eye(n_classes, dtype=np.float32)[rng.integers(0, n_classes, nb)]
    return pack_bits(q_bits), pack_bits(d_bits), ql, dl


# ------------------------------------------------------------------------------------------------
# Slow references
# ------------------------------------------------------------------------------------------------


def ref_distances(qc, dc):
    qi = [int.from_bytes(bytes(row), "big") for row in qc]
    di = [int.from_bytes(bytes(row), "big") for row in dc]
    return [[bin(a ^ b).count("1") for b in di] for a in qi]


def ref_levels(ql, dl):
    """Shared labels between every query and database item (similarity level)."""
    return [
        [sum(1 for a, b in zip(qrow, drow, strict=True) if a != 0 and b != 0) for drow in dl]
        for qrow in ql
    ]


def ref_position(nb, seed):
    perm = np.random.default_rng(seed).permutation(nb)
    pos = [0] * nb
    for p, item in enumerate(perm):
        pos[int(item)] = p
    return pos


def ref_rankings(qc, dc, seed):
    dist = ref_distances(qc, dc)
    pos = ref_position(len(dc), seed)
    return dist, [sorted(range(len(dc)), key=lambda j, d=d: (d[j], pos[j])) for d in dist]


def ref_ap(rel_ranked, k, normalize):
    """AP@k of a ranked 0/1 list, walking down the list."""
    k = len(rel_ranked) if k is None else min(k, len(rel_ranked))
    hits, total = 0, 0.0
    for j in range(k):
        if rel_ranked[j]:
            hits += 1
            total += hits / (j + 1)
    denom = hits if normalize == "retrieved" else min(k, sum(rel_ranked))
    return total / denom if denom else 0.0


def ref_dcg(levels_ranked, k):
    return sum((2.0 ** levels_ranked[i] - 1) / math.log2(i + 2) for i in range(k))


def ref_ndcg_acg(levels_ranked, k):
    k = len(levels_ranked) if k is None else min(k, len(levels_ranked))
    ideal = ref_dcg(sorted(levels_ranked, reverse=True), k)
    ndcg = ref_dcg(levels_ranked, k) / ideal if ideal else 0.0
    return ndcg, sum(levels_ranked[:k]) / k


def ref_metrics_of_ranking(levels_ranked, dist_ranked, k, normalize, ns, radius):
    """Every order-dependent per-query metric of one ranked list."""
    rel = [lv > 0 for lv in levels_ranked]
    n_rel = sum(rel)
    out = {"ap": ref_ap(rel, k, normalize)}
    for n in ns:  # N larger than the database is capped at its size (PROTOCOL.md)
        hits = sum(rel[:n])
        out[f"P@{n}"] = hits / min(n, len(rel))
        out[f"R@{n}"] = hits / n_rel if n_rel else 0.0
    ball = [r for r, d in zip(rel, dist_ranked, strict=True) if d <= radius]
    out["ap_ball"] = ref_ap(ball, None, "retrieved")
    out["ndcg"], out["acg"] = ref_ndcg_acg(levels_ranked, k)
    return out


def ref_index_metrics(qc, dc, ql, dl, k, normalize, ns, radius, seed=0):
    dist, ranks = ref_rankings(qc, dc, seed)
    levels = ref_levels(ql, dl)
    per_query = []
    for qi, order in enumerate(ranks):
        per_query.append(
            ref_metrics_of_ranking(
                [levels[qi][j] for j in order],
                [dist[qi][j] for j in order],
                k,
                normalize,
                ns,
                radius,
            )
        )
    return {key: float(np.mean([p[key] for p in per_query])) for key in per_query[0]}


def distinct_arrangements(values):
    """Every distinct ordering of a multiset (each is equally likely under a uniform shuffle)."""
    if not values:
        return [()]
    out = []
    for v in sorted(set(values)):
        rest = list(values)
        rest.remove(v)
        out.extend((v, *tail) for tail in distinct_arrangements(rest))
    return out


def ref_expected_metrics(qc, dc, ql, dl, k, normalize, ns, radius):
    """Average over every distinct order within distance buckets (each equally likely)."""
    assert sorted(distinct_arrangements([0, 1, 1])) == sorted(
        set(itertools.permutations([0, 1, 1]))
    )
    dist = ref_distances(qc, dc)
    levels = ref_levels(ql, dl)
    per_query = []
    for qi in range(len(qc)):
        buckets = sorted(set(dist[qi]))
        arrangements = [
            distinct_arrangements([levels[qi][j] for j in range(len(dc)) if dist[qi][j] == t])
            for t in buckets
        ]
        sizes = [len(a[0]) for a in arrangements]
        dist_ranked = [t for t, s in zip(buckets, sizes, strict=True) for _ in range(s)]
        acc: dict[str, float] = {}
        count = 0
        for combo in itertools.product(*arrangements):
            ranked = [lv for part in combo for lv in part]
            m = ref_metrics_of_ranking(ranked, dist_ranked, k, normalize, ns, radius)
            for key, v in m.items():
                acc[key] = acc.get(key, 0.0) + v
            count += 1
        per_query.append({key: v / count for key, v in acc.items()})
    return {key: float(np.mean([p[key] for p in per_query])) for key in per_query[0]}


def ref_order_free(qc, dc, ql, dl, radius):
    dist = ref_distances(qc, dc)
    levels = ref_levels(ql, dl)
    bits = qc.shape[1] * 8
    prec = np.zeros((len(qc), bits + 1))
    rec = np.zeros((len(qc), bits + 1))
    aucs = []
    for qi in range(len(qc)):
        rel = [lv > 0 for lv in levels[qi]]
        n_rel = sum(rel)
        for r in range(bits + 1):
            ball = [rel[j] for j in range(len(dc)) if dist[qi][j] <= r]
            prec[qi, r] = sum(ball) / len(ball) if ball else 0.0
            rec[qi, r] = sum(ball) / n_rel if n_rel else 0.0
        pos = [dist[qi][j] for j in range(len(dc)) if rel[j]]
        neg = [dist[qi][j] for j in range(len(dc)) if not rel[j]]
        if pos and neg:
            wins = sum(1.0 if a < b else 0.5 if a == b else 0.0 for a in pos for b in neg)
            aucs.append(wins / (len(pos) * len(neg)))
    p, r = prec.mean(0), rec.mean(0)
    pr, rr = p[min(radius, bits)], r[min(radius, bits)]
    return {
        "pr_curve/precision": p,
        "pr_curve/recall": r,
        f"P@H<={radius}": pr,
        f"R@H<={radius}": rr,
        f"F1@H<={radius}": 2 * pr * rr / (pr + rr) if pr + rr else 0.0,
        "AUC": float(np.mean(aucs)) if aucs else float("nan"),
    }


def k_key(k):
    return "all" if k is None else str(k)


# ------------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------------


def test_tie_order_is_inverse_of_seeded_permutation():
    for n, seed in [(0, 0), (1, 3), (17, 0), (1000, 42)]:
        key = tie_order(n, seed)
        perm = np.random.default_rng(seed).permutation(n)
        assert key.dtype == np.int64 and sorted(key.tolist()) == list(range(n))
        assert all(key[perm[p]] == p for p in range(n))
        np.testing.assert_array_equal(key, tie_order(n, seed))
    assert not np.array_equal(tie_order(50, 0), tie_order(50, 1))


def test_relevance_matches_loops():
    _, _, ql, dl = make_case(0, 9, 31, n_classes=5)
    ql[0] = 0  # a query with no label: nothing is relevant
    rel = relevance(ql, dl)
    levels = ref_levels(ql, dl)
    assert rel.dtype == np.bool_ and rel.shape == (9, 31)
    np.testing.assert_array_equal(rel, np.array(levels) > 0)
    assert not rel[0].any()
    # float, bool and int labels agree
    np.testing.assert_array_equal(rel, relevance(ql.astype(bool), dl.astype(np.float64)))


# ------------------------------------------------------------------------------------------------
# mAP (priority)
# ------------------------------------------------------------------------------------------------

KS = (None, 1, 5, 13, 40, 60, 500)


@pytest.mark.parametrize("multi_label", [True, False])
@pytest.mark.parametrize("normalize", ["retrieved", "relevant"])
def test_map_index_matches_reference(multi_label, normalize):
    for seed in range(3):
        qc, dc, ql, dl = make_case(seed, 12, 60, bits=16, multi_label=multi_label, flip=0.05)
        ql[0] = 0  # no relevant item: contributes 0, still counts
        for k in KS:
            ref = ref_index_metrics(qc, dc, ql, dl, k, normalize, (), 2, seed=seed)["ap"]
            got = mean_average_precision(qc, dc, ql, dl, k=k, normalize=normalize, seed=seed)
            assert got == pytest.approx(ref, abs=1e-12), (seed, k)


@pytest.mark.parametrize("normalize", ["retrieved", "relevant"])
def test_map_expected_matches_enumeration(normalize):
    for seed in range(8):
        qc, dc, ql, dl = make_case(seed, 4, 10, bits=8, pool=3, n_classes=3)
        for k in (None, 1, 2, 3, 5, 7, 9):
            ref = ref_expected_metrics(qc, dc, ql, dl, k, normalize, (), 2)["ap"]
            got = mean_average_precision(qc, dc, ql, dl, k=k, ties="expected", normalize=normalize)
            assert got == pytest.approx(ref, abs=1e-12), (seed, k)


def test_map_expected_with_large_cut_bucket():
    """One bucket of 9 items cut at every depth: exercises the hypergeometric sum."""
    rng = np.random.default_rng(7)
    qc = np.zeros((3, 1), np.uint8)
    dc = np.array([[0], [1], [1], [1], [1], [1], [1], [1], [1], [1], [3]], np.uint8)
    ql = np.eye(3)[[0, 1, 2]]
    dl = np.eye(3)[rng.integers(0, 3, len(dc))]
    for normalize in ("retrieved", "relevant"):
        for k in range(1, len(dc) + 1):
            ref = ref_expected_metrics(qc, dc, ql, dl, k, normalize, (), 2)["ap"]
            got = mean_average_precision(qc, dc, ql, dl, k=k, ties="expected", normalize=normalize)
            assert got == pytest.approx(ref, abs=1e-12), (normalize, k)


def ref_expected_ap_one_query(dist, rel, k, normalize):
    """Expected AP@k of one query from the conditional formula, summed term by term.

    The formula itself is checked by enumeration above; this checks the closed forms, the
    hypergeometric weights (exact integer binomials) and the truncated sum on big buckets.
    """
    order = np.argsort(dist, kind="stable")
    dist, rel = np.asarray(dist)[order], np.asarray(rel)[order]
    n_rel_total = int(rel.sum())
    s_full, r_full, n_seen = 0.0, 0, 0
    for t in sorted(set(dist.tolist())):
        n, r = int((dist == t).sum()), int(rel[dist == t].sum())
        m = min(n, k - n_seen)
        if m <= 0:
            break
        if m == n:
            for p in range(1, n + 1):
                cond = (p - 1) * (r - 1) / (n - 1) if n > 1 else 0.0
                s_full += r / n * (r_full + 1 + cond) / (n_seen + p)
            r_full += r
            n_seen += n
            continue
        total = 0.0
        for x in range(max(0, m - (n - r)), min(m, r) + 1):
            pmf = math.comb(r, x) * math.comb(n - r, m - x) / math.comb(n, m)
            s_cut = 0.0
            for p in range(1, m + 1):
                cond = (p - 1) * (x - 1) / (m - 1) if m > 1 else 0.0
                s_cut += x / m * (r_full + 1 + cond) / (n_seen + p)
            if normalize == "retrieved":
                denom = r_full + x
                total += pmf * ((s_full + s_cut) / denom if denom else 0.0)
            else:
                total += pmf * s_cut
        if normalize == "retrieved":
            return total
        return (s_full + total) / min(k, n_rel_total) if n_rel_total else 0.0
    denom = r_full if normalize == "retrieved" else min(k, n_rel_total)
    return s_full / denom if denom else 0.0


def test_map_expected_on_big_buckets():
    """Buckets of hundreds of items cut deep inside: the truncated hypergeometric sum is exact."""
    rng = np.random.default_rng(21)
    nb = 1500
    dist_levels = np.r_[np.zeros(100), np.ones(1200), np.full(200, 2)].astype(int)
    d_bits = np.zeros((nb, 8), bool)
    d_bits[dist_levels >= 1, 0] = True
    d_bits[dist_levels >= 2, 1] = True
    dc = pack_bits(d_bits)
    qc = np.zeros((1, 1), np.uint8)
    ql = np.array([[1, 0]])
    dl = np.zeros((nb, 2))
    dl[np.arange(nb), (rng.random(nb) < 0.45).astype(int)] = 1  # label 1 is irrelevant
    dl = dl[:, ::-1].copy()  # column 0 (the query's label) set where the draw was 1
    rel = relevance(ql, dl)[0]
    for k in (150, 700, 1250):
        for normalize in ("retrieved", "relevant"):
            ref = ref_expected_ap_one_query(dist_levels, rel, k, normalize)
            got = mean_average_precision(qc, dc, ql, dl, k=k, ties="expected", normalize=normalize)
            assert got == pytest.approx(ref, rel=1e-10, abs=1e-12), (k, normalize)


def test_map_expected_is_average_over_seeds_in_the_limit():
    """Sanity check on a bigger case: the index-rule mean over seeds approaches the expectation."""
    qc, dc, ql, dl = make_case(3, 6, 200, bits=8, pool=4)
    exp = mean_average_precision(qc, dc, ql, dl, k=50, ties="expected")
    idx = np.mean([mean_average_precision(qc, dc, ql, dl, k=50, seed=s) for s in range(200)])
    assert idx == pytest.approx(exp, abs=0.01)


def test_map_matches_sklearn_without_ties():
    """Database codes at distinct distances from an all-zero query: no ties at all."""
    rng = np.random.default_rng(1)
    bits, nb = 64, 65
    d_bits = np.zeros((nb, bits), bool)
    for i, w in enumerate(rng.permutation(nb)):
        d_bits[i, rng.choice(bits, w, replace=False)] = True
    dc = pack_bits(d_bits)
    qc = np.zeros((5, bits // 8), np.uint8)
    dist = d_bits.sum(1)
    ql = np.eye(4)[rng.integers(0, 4, 5)]
    dl = (rng.random((nb, 4)) < 0.3).astype(int)
    rel = relevance(ql, dl)
    expect = np.mean([average_precision_score(rel[i], -dist) for i in range(5)])
    for ties in ("index", "expected"):
        for seed in (0, 5):
            got = mean_average_precision(qc, dc, ql, dl, ties=ties, seed=seed)
            assert got == pytest.approx(expect, abs=1e-12)


def test_map_matches_torchmetrics_without_ties():
    rng = np.random.default_rng(2)
    bits, nb = 64, 60
    d_bits = np.zeros((nb, bits), bool)
    for i, w in enumerate(rng.permutation(nb)):
        d_bits[i, rng.choice(bits, w, replace=False)] = True
    dc, dist = pack_bits(d_bits), d_bits.sum(1)
    qc = np.zeros((4, bits // 8), np.uint8)
    ql = np.eye(3)[rng.integers(0, 3, 4)]
    dl = np.eye(3)[rng.integers(0, 3, nb)]
    rel = torch.from_numpy(relevance(ql, dl))
    # torchmetrics only counts items with a positive score: use bits + 1 - distance.
    score = torch.from_numpy((bits + 1 - dist).astype(np.float32))
    for k in (None, 1, 10, 25, nb):
        expect = np.mean(
            [retrieval_average_precision(score, rel[i], top_k=k).item() for i in range(4)]
        )
        got = mean_average_precision(qc, dc, ql, dl, k=k)
        assert got == pytest.approx(expect, abs=1e-6)
        levels = torch.from_numpy(np.array(ref_levels(ql, dl)))
        ndcg_tm = np.mean(
            [
                retrieval_normalized_dcg(score, (2 ** levels[i] - 1), top_k=k).item()
                for i in range(4)
            ]
        )
        assert ndcg_acg_at_k(qc, dc, ql, dl, k=k)[f"NDCG@{k_key(k)}"] == pytest.approx(
            ndcg_tm, abs=1e-6
        )
        if k is not None:
            out = precision_recall_at_n(qc, dc, ql, dl, p_at_n=(k,))
            p_tm = np.mean([retrieval_precision(score, rel[i], top_k=k).item() for i in range(4)])
            r_tm = np.mean([retrieval_recall(score, rel[i], top_k=k).item() for i in range(4)])
            assert out[f"P@{k}"] == pytest.approx(p_tm, abs=1e-6)
            assert out[f"R@{k}"] == pytest.approx(r_tm, abs=1e-6)


def test_queries_without_relevant_items_count_as_zero():
    qc, dc, ql, dl = make_case(4, 6, 40, multi_label=False, n_classes=3)
    base = mean_average_precision(qc, dc, ql, dl)
    ql2 = np.concatenate([ql, np.zeros((1, 3))])  # a query with no label
    qc2 = np.concatenate([qc, qc[:1]])
    for ties in ("index", "expected"):
        for normalize in ("retrieved", "relevant"):
            b = mean_average_precision(qc, dc, ql, dl, ties=ties, normalize=normalize)
            got = mean_average_precision(qc2, dc, ql2, dl, ties=ties, normalize=normalize)
            assert got == pytest.approx(b * 6 / 7, abs=1e-12)
    assert base > 0


def test_normalizers_agree_at_all():
    qc, dc, ql, dl = make_case(5, 8, 50)
    for ties in ("index", "expected"):
        a = mean_average_precision(qc, dc, ql, dl, ties=ties, normalize="retrieved")
        b = mean_average_precision(qc, dc, ql, dl, ties=ties, normalize="relevant")
        assert a == pytest.approx(b, abs=1e-12)


# ------------------------------------------------------------------------------------------------
# evaluate and the other groups
# ------------------------------------------------------------------------------------------------

NS = (1, 2, 5, 10, 30, 59, 60, 1000)


@pytest.mark.parametrize("multi_label", [True, False])
@pytest.mark.parametrize("normalize", ["retrieved", "relevant"])
def test_evaluate_index_matches_reference(multi_label, normalize):
    for seed, bits in [(0, 8), (1, 16)]:
        qc, dc, ql, dl = make_case(seed, 10, 60, bits=bits, multi_label=multi_label, flip=0.05)
        ql[1] = 0
        for k in (None, 7, 60):
            ref = ref_index_metrics(qc, dc, ql, dl, k, normalize, NS, 2, seed=seed)
            ref.update(ref_order_free(qc, dc, ql, dl, 2))
            out = evaluate(qc, dc, ql, dl, k=k, normalize=normalize, seed=seed, p_at_n=NS)
            _compare(out, ref, k, 2, NS)


@pytest.mark.parametrize("normalize", ["retrieved", "relevant"])
def test_evaluate_expected_matches_enumeration(normalize):
    ns = (1, 2, 3, 6, 8)
    for seed in range(4):
        qc, dc, ql, dl = make_case(seed, 4, 9, bits=8, pool=3, n_classes=3)
        for k, radius in [(None, 2), (3, 0), (6, 4)]:
            ref = ref_expected_metrics(qc, dc, ql, dl, k, normalize, ns, radius)
            ref.update(ref_order_free(qc, dc, ql, dl, radius))
            out = evaluate(
                qc, dc, ql, dl, k=k, ties="expected", normalize=normalize, p_at_n=ns, radius=radius
            )
            _compare(out, ref, k, radius, ns)


def _compare(out, ref, k, radius, ns):
    kk = k_key(k)
    assert out[f"mAP@{kk}"] == pytest.approx(ref["ap"], abs=1e-12)
    for n in ns:
        assert out[f"P@{n}"] == pytest.approx(ref[f"P@{n}"], abs=1e-12)
        assert out[f"R@{n}"] == pytest.approx(ref[f"R@{n}"], abs=1e-12)
    np.testing.assert_allclose(out["P@N_curve"], [ref[f"P@{n}"] for n in ns], atol=1e-12)
    np.testing.assert_allclose(out["R@N_curve"], [ref[f"R@{n}"] for n in ns], atol=1e-12)
    np.testing.assert_array_equal(out["P@N_curve/N"], ns)
    assert out[f"mAP@H<={radius}"] == pytest.approx(ref["ap_ball"], abs=1e-12)
    for key in ("P", "R", "F1"):
        assert out[f"{key}@H<={radius}"] == pytest.approx(ref[f"{key}@H<={radius}"], abs=1e-12)
    np.testing.assert_allclose(out["pr_curve/precision"], ref["pr_curve/precision"], atol=1e-12)
    np.testing.assert_allclose(out["pr_curve/recall"], ref["pr_curve/recall"], atol=1e-12)
    assert out[f"NDCG@{kk}"] == pytest.approx(ref["ndcg"], abs=1e-12)
    assert out[f"ACG@{kk}"] == pytest.approx(ref["acg"], abs=1e-12)
    assert out["AUC"] == pytest.approx(ref["AUC"], abs=1e-12, nan_ok=True)


def test_group_functions_equal_evaluate():
    qc, dc, ql, dl = make_case(8, 9, 70, bits=16, flip=0.1)
    for ties in ("index", "expected"):
        full = evaluate(qc, dc, ql, dl, k=20, ties=ties, seed=3, radius=1)
        parts = {}
        parts["mAP@20"] = mean_average_precision(qc, dc, ql, dl, k=20, ties=ties, seed=3)
        parts.update(precision_recall_at_n(qc, dc, ql, dl, ties=ties, seed=3))
        parts.update(hamming_radius_metrics(qc, dc, ql, dl, radius=1, ties=ties, seed=3))
        parts.update(pr_curve(qc, dc, ql, dl))
        parts.update(ndcg_acg_at_k(qc, dc, ql, dl, k=20, ties=ties, seed=3))
        parts.update(auc(qc, dc, ql, dl))
        assert full.keys() == parts.keys()
        for key in full:
            np.testing.assert_array_equal(full[key], parts[key])


def test_evaluate_keys_and_selection():
    qc, dc, ql, dl = make_case(9, 5, 700, bits=16)
    out = evaluate(qc, dc, ql, dl)
    scalar = {k for k, v in out.items() if not isinstance(v, np.ndarray)}
    ns = list(P_AT_N)  # N > 700 capped at the database size, keys kept
    expected = {"mAP@all", "P@H<=2", "R@H<=2", "mAP@H<=2", "F1@H<=2", "NDCG@all", "ACG@all", "AUC"}
    expected |= {f"P@{n}" for n in ns} | {f"R@{n}" for n in ns}
    assert scalar == expected
    assert all(isinstance(out[k], float) for k in scalar)
    assert out["pr_curve/precision"].shape == (17,) and out["pr_curve/recall"].shape == (17,)
    assert out["P@N_curve"].shape == (len(ns),)
    assert set(DEFAULT_METRICS) == {"mAP", "P@N", "hamming_radius", "pr_curve", "ndcg", "auc"}
    only = evaluate(qc, dc, ql, dl, k=100, metrics=("mAP",), normalize="relevant")
    assert list(only) == ["mAP@100"]
    assert "mAP@H<=3" in evaluate(qc, dc, ql, dl, metrics="hamming_radius", radius=3)
    assert evaluate(qc, dc, ql, dl, metrics=()) == {}
    # the curves are monotone where they must be
    assert np.all(np.diff(out["pr_curve/recall"]) >= 0) and out["pr_curve/recall"][-1] == 1.0
    assert np.all(np.diff(out["R@N_curve"]) >= 0)


def test_chunking_gives_identical_results():
    qc, dc, ql, dl = make_case(10, 23, 90, bits=16, flip=0.05)
    for ties in ("index", "expected"):
        for k in (None, 17):
            ref = evaluate(qc, dc, ql, dl, k=k, ties=ties, chunk_size=None)
            for cs in (1, 4, 23, 100):
                out = evaluate(qc, dc, ql, dl, k=k, ties=ties, chunk_size=cs)
                assert out.keys() == ref.keys()
                for key in ref:
                    np.testing.assert_array_equal(out[key], ref[key], err_msg=f"{key} cs={cs}")


def test_threads_give_identical_results_in_query_order():
    """Chunks scored on several threads: every metric and per-query value equals one thread's."""
    for multi in (True, False):
        qc, dc, ql, dl = make_case(12, 41, 120, bits=16, flip=0.05, multi_label=multi)
        for ties in ("index", "expected"):
            ref = evaluate(qc, dc, ql, dl, k=30, ties=ties, chunk_size=3, per_query=True)
            for threads in (2, 5):
                out = evaluate(
                    qc, dc, ql, dl, k=30, ties=ties, chunk_size=3, per_query=True, threads=threads
                )
                assert out.keys() == ref.keys()
                for key in ref:
                    np.testing.assert_array_equal(out[key], ref[key], err_msg=f"{key} t={threads}")
    with pytest.raises(ValueError, match="threads"):
        evaluate(qc, dc, ql, dl, threads=0)
    with pytest.raises(ValueError, match="threads"):
        evaluate(qc, dc, ql, dl, threads=1.5)


def test_auc_matches_sklearn_with_ties():
    qc, dc, ql, dl = make_case(11, 7, 80, bits=8, pool=5)
    dist = np.array(ref_distances(qc, dc))
    rel = relevance(ql, dl)
    vals = [roc_auc_score(rel[i], -dist[i]) for i in range(7) if 0 < rel[i].sum() < 80]
    assert auc(qc, dc, ql, dl)["AUC"] == pytest.approx(np.mean(vals), abs=1e-12)
    no_rel = auc(qc, dc, np.zeros_like(ql), dl)["AUC"]
    assert math.isnan(no_rel)


def test_ndcg_expected_matches_torchmetrics_tie_average():
    """torchmetrics (like scikit-learn) averages gains over tied scores: the exact expectation."""
    qc, dc, ql, dl = make_case(12, 5, 40, bits=8, pool=4, n_classes=5)
    dist = np.array(ref_distances(qc, dc))
    levels = torch.from_numpy(np.array(ref_levels(ql, dl)))
    score = torch.from_numpy((9 - dist).astype(np.float32))
    for k in (None, 3, 11):
        expect = np.mean(
            [
                retrieval_normalized_dcg(score[i], 2 ** levels[i] - 1, top_k=k).item()
                for i in range(5)
            ]
        )
        got = ndcg_acg_at_k(qc, dc, ql, dl, k=k, ties="expected")[f"NDCG@{k_key(k)}"]
        assert got == pytest.approx(expect, abs=1e-6)


def test_wide_codes_and_uint16_distances():
    """b > 127 uses uint16 counting keys; b > 255 uint16 distances."""
    for bits in (136, 264):
        qc, dc, ql, dl = make_case(13, 5, 30, bits=bits, flip=0.3)
        ref = ref_index_metrics(qc, dc, ql, dl, 10, "retrieved", (5,), 2)
        ref.update(ref_order_free(qc, dc, ql, dl, 2))
        out = evaluate(qc, dc, ql, dl, k=10, p_at_n=(5,))
        _compare(out, ref, 10, 2, (5,))
        assert out["pr_curve/precision"].shape == (bits + 1,)


@pytest.mark.parametrize(
    "n_classes,multi_label", [(70, True), (130, True), (300, False), (64, True)]
)
def test_many_classes(n_classes, multi_label):
    """Label bit masks spanning several uint64 words; > 256 classes as class indices."""
    qc, dc, ql, dl = make_case(
        16, 6, 50, n_classes=n_classes, multi_label=multi_label, density=0.02
    )
    if multi_label:  # make sure labels beyond the first word matter
        ql[::2, -3:] = 1
        dl[::3, -3:] = 1
    else:
        dl[:10] = ql[np.arange(10) % 6]
    ref = ref_index_metrics(qc, dc, ql, dl, 9, "retrieved", (4,), 2)
    ref.update(ref_order_free(qc, dc, ql, dl, 2))
    assert 0 < np.mean(ref_levels(ql, dl)) and not math.isnan(ref["AUC"])
    _compare(evaluate(qc, dc, ql, dl, k=9, p_at_n=(4,)), ref, 9, 2, (4,))


def test_torch_inputs_are_accepted():
    qc, dc, ql, dl = make_case(14, 5, 30)
    a = evaluate(qc, dc, ql, dl, metrics=("mAP", "P@N"))
    b = evaluate(
        torch.from_numpy(qc),
        torch.from_numpy(dc),
        torch.from_numpy(ql),
        torch.from_numpy(dl),
        metrics=("mAP", "P@N"),
    )
    assert a["mAP@all"] == b["mAP@all"]


def test_bad_inputs_raise_clear_errors():
    qc, dc, ql, dl = make_case(15, 4, 20)
    with pytest.raises(ValueError, match="uint8"):
        mean_average_precision(qc.astype(np.int64), dc, ql, dl)
    with pytest.raises(ValueError, match="bits"):
        mean_average_precision(qc, np.concatenate([dc, dc], 1), ql, dl)
    with pytest.raises(ValueError, match="classes"):
        mean_average_precision(qc, dc, ql, dl[:, :2])
    with pytest.raises(ValueError, match="rows"):
        mean_average_precision(qc, dc, ql[:2], dl)
    with pytest.raises(ValueError, match="one-hot"):
        mean_average_precision(qc, dc, np.arange(4), dl)
    with pytest.raises(ValueError, match="k="):
        mean_average_precision(qc, dc, ql, dl, k=0)
    with pytest.raises(ValueError, match="ties"):
        mean_average_precision(qc, dc, ql, dl, ties="random")
    with pytest.raises(ValueError, match="normalize"):
        mean_average_precision(qc, dc, ql, dl, normalize="all")
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(qc, dc, ql, dl, metrics=("mAP", "map"))
    with pytest.raises(ValueError, match="chunk_size"):
        evaluate(qc, dc, ql, dl, chunk_size=0)
    with pytest.raises(ValueError, match="radius"):
        evaluate(qc, dc, ql, dl, radius=-1)
    with pytest.raises(ValueError, match="no queries"):
        evaluate(qc[:0], dc, ql[:0], dl)
    with pytest.raises(ValueError, match="no database"):
        evaluate(qc, dc[:0], ql, dl[:0])
