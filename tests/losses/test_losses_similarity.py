"""Eqs. 13-19 and 27 against slow loop references (over i, j), plus their properties."""

from __future__ import annotations

import math

import pytest
import torch

from hashbench.losses import (
    ClassSeparationLoss,
    ContrastiveLoss,
    KLSimilarityLoss,
    LaplacianLoss,
    OrderSensitiveRankingLoss,
    PairwiseLikelihoodLoss,
    PairwiseMSELoss,
    RankingTripletLoss,
    pairwise_similarity,
    shared_label_counts,
)

N, M, Q, C = 6, 5, 8, 4


def batch(seed: int = 0, n: int = N, q: int = Q, c: int = C):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, q, generator=g, dtype=torch.float64).tanh() * 1.2
    y = (torch.rand(n, c, generator=g) < 0.35).double()
    y[torch.arange(n), torch.randint(0, c, (n,), generator=g)] = 1.0
    return h, y


def dot(a, b) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def shares(ya, yb) -> float:
    return 1.0 if any(p > 0 and r > 0 for p, r in zip(ya, yb, strict=True)) else 0.0


def n_shared(ya, yb) -> float:
    return float(sum(1 for p, r in zip(ya, yb, strict=True) if p > 0 and r > 0))


def pairs(n: int, m: int | None):
    """Index pairs of the reference: ordered i != j within a batch, all pairs across two sets."""
    if m is None:
        return [(i, j) for i in range(n) for j in range(n) if i != j]
    return [(i, j) for i in range(n) for j in range(m)]


def close(a: torch.Tensor, b: float) -> None:
    torch.testing.assert_close(a, torch.tensor(b, dtype=a.dtype), rtol=1e-9, atol=1e-10)


def setup(other: bool, seed: int = 0):
    h, y = batch(seed)
    if not other:
        return h.tolist(), y.tolist(), h.tolist(), y.tolist(), {"h": h, "labels": y}, None
    h2, y2 = batch(seed + 100, n=M)
    kw = {"h": h, "labels": y, "h_other": h2, "labels_other": y2}
    return h.tolist(), y.tolist(), h2.tolist(), y2.tolist(), kw, M


# --- helpers -------------------------------------------------------------------------------------


def test_pairwise_similarity_and_counts_reference():
    _, y = batch(1)
    _, y2 = batch(2, n=M)
    s = pairwise_similarity(y, y2)
    g = shared_label_counts(y, y2)
    for i in range(N):
        for j in range(M):
            assert s[i, j].item() == shares(y[i].tolist(), y2[j].tolist())
            assert g[i, j].item() == n_shared(y[i].tolist(), y2[j].tolist())
    assert torch.equal(pairwise_similarity(y), pairwise_similarity(y, y))


# --- eq. 13 --------------------------------------------------------------------------------------


def test_laplacian_is_the_trace_form():
    """``sum`` reduction equals tr(H^T (D - R) H) built with loops (the survey's tr(A L A^T))."""
    h, _ = batch(3)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(N, 5, generator=g, dtype=torch.float64)
    sigma = 1.7
    xl = x.tolist()
    r = [
        [
            math.exp(-sum((a - b) ** 2 for a, b in zip(xl[i], xl[j], strict=True)) / (2 * sigma**2))
            for j in range(N)
        ]
        for i in range(N)
    ]
    lap = [
        [(sum(r[k][i] for k in range(N)) if i == j else 0.0) - r[i][j] for j in range(N)]
        for i in range(N)
    ]
    hl = h.tolist()
    trace = 0.0
    for k in range(Q):
        for i in range(N):
            for j in range(N):
                trace += hl[i][k] * lap[i][j] * hl[j][k]
    close(LaplacianLoss(sigma, "sum")(h=h, features=x), trace)
    close(LaplacianLoss(sigma)(h=h, features=x), trace / (N * (N - 1)))


def test_laplacian_other_set_and_explicit_sim():
    h, _ = batch(5)
    h2, _ = batch(6, n=M)
    g = torch.Generator().manual_seed(7)
    sim = torch.rand(N, M, generator=g, dtype=torch.float64)
    ha, hb = h.tolist(), h2.tolist()
    ref = 0.0
    for i, j in pairs(N, M):
        ref += 0.5 * sim[i, j].item() * sum((a - b) ** 2 for a, b in zip(ha[i], hb[j], strict=True))
    out = LaplacianLoss(reduction="sum")(h=h, features=None, sim=sim, h_other=h2)
    close(out, ref)


def test_laplacian_zero_for_equal_codes_and_ignores_feature_gradients():
    h = torch.ones(N, Q, dtype=torch.float64)
    x = torch.randn(N, 3, dtype=torch.float64, requires_grad=True)
    out = LaplacianLoss()(h=h, features=x)
    close(out, 0.0)
    h2, _ = batch(8)
    h2.requires_grad_(True)
    LaplacianLoss()(h=h2, features=x).backward()
    assert x.grad is None  # affinities are constants


# --- eq. 14 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("other", [False, True])
@pytest.mark.parametrize("dis", [0.0, -1.0])
def test_pairwise_mse_reference(other, dis):
    ha, ya, hb, yb, kw, m = setup(other, 9)
    vals = []
    for i, j in pairs(N, m):
        s = shares(ya[i], yb[j])
        target = Q * (s if s else dis)
        vals.append((target - dot(ha[i], hb[j])) ** 2)
    close(PairwiseMSELoss(dis)(**kw), sum(vals) / len(vals))
    close(PairwiseMSELoss(dis, "sum")(**kw), sum(vals))


def test_pairwise_mse_zero_for_ideal_codes():
    # items 0-3 share label 0 and code +1; items 4-7 label 1 and orthogonal codes (Hadamard rows)
    had = torch.tensor(
        [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float64
    )
    h = torch.cat([had[0].expand(4, 4), had[1].expand(1, 4), had[2].expand(1, 4)])
    y = torch.tensor([[1, 0, 0]] * 4 + [[0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    close(PairwiseMSELoss()(h=h, labels=y), 0.0)


# --- eq. 15 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("other", [False, True])
def test_pairwise_likelihood_reference(other):
    ha, ya, hb, yb, kw, m = setup(other, 10)
    vals = []
    for i, j in pairs(N, m):
        s = shares(ya[i], yb[j])
        omega = 0.5 * dot(ha[i], hb[j])
        vals.append(-(s * omega - math.log(1 + math.exp(omega))))
    close(PairwiseLikelihoodLoss()(**kw), sum(vals) / len(vals))


def test_pairwise_likelihood_properties():
    _, y = batch(11)
    close(PairwiseLikelihoodLoss()(h=torch.zeros(N, Q, dtype=torch.float64), labels=y), math.log(2))
    # similar pairs pulled together, dissimilar apart: ideal +-1 codes beat random ones
    y = torch.tensor([[1, 0]] * 3 + [[0, 1]] * 3, dtype=torch.float64)
    ideal = torch.cat([torch.ones(3, Q), -torch.ones(3, Q)]).double()
    h, _ = batch(12)
    assert PairwiseLikelihoodLoss()(h=ideal, labels=y) < PairwiseLikelihoodLoss()(h=h, labels=y)
    big = PairwiseLikelihoodLoss(reduction="sum")(h=100 * ideal, labels=y)
    assert torch.isfinite(big) and big < 1e-6


def test_explicit_sim_overrides_labels():
    h, y = batch(13)
    s = pairwise_similarity(y)
    torch.testing.assert_close(
        PairwiseLikelihoodLoss()(h=h, labels=None, sim=s), PairwiseLikelihoodLoss()(h=h, labels=y)
    )
    with pytest.raises(ValueError, match="shape"):
        PairwiseLikelihoodLoss()(h=h, labels=None, sim=s[:, :2])
    with pytest.raises(ValueError, match="labels"):
        PairwiseLikelihoodLoss()(h=h, labels=None)


# --- eq. 16 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("other", [False, True])
def test_class_separation_reference(other):
    ha, ya, hb, yb, kw, m = setup(other, 14)
    within, between = [], []
    for i, j in pairs(N, m):
        d = sum((a - b) ** 2 for a, b in zip(ha[i], hb[j], strict=True))
        (within if shares(ya[i], yb[j]) else between).append(d)
    assert within and between
    ref = sum(within) / len(within) - 0.5 * sum(between) / len(between)
    close(ClassSeparationLoss(0.5)(**kw), ref)


def test_class_separation_prefers_separated_classes():
    y = torch.tensor([[1, 0]] * 3 + [[0, 1]] * 3, dtype=torch.float64)
    separated = torch.cat([torch.ones(3, Q), -torch.ones(3, Q)]).double()
    mixed = torch.cat([torch.ones(3, Q), torch.ones(3, Q)]).double()
    mixed[::2] *= -1
    term = ClassSeparationLoss()
    close(term(h=separated, labels=y), -4.0 * Q)  # within 0, between ||2 * 1||^2
    assert term(h=separated, labels=y) < term(h=mixed, labels=y)
    # batches with one kind of pair only
    same = torch.ones(4, 2, dtype=torch.float64)
    h, _ = batch(15, n=4)
    assert torch.isfinite(term(h=h, labels=same))


# --- eq. 17 --------------------------------------------------------------------------------------


def _dist(a, b, kind: str) -> float:
    if kind == "l1":
        return sum(abs(x - y) for x, y in zip(a, b, strict=True))
    d2 = sum((x - y) ** 2 for x, y in zip(a, b, strict=True))
    return d2 if kind == "sq_euclidean" else math.sqrt(d2)


@pytest.mark.parametrize("other", [False, True])
@pytest.mark.parametrize("kind", ["sq_euclidean", "l1", "euclidean"])
def test_contrastive_reference(other, kind):
    ha, ya, hb, yb, kw, m = setup(other, 16)
    margin = {"sq_euclidean": 2.0 * Q, "l1": float(Q), "euclidean": math.sqrt(2.0 * Q)}[kind]
    vals = []
    for i, j in pairs(N, m):
        s = shares(ya[i], yb[j])
        d = _dist(ha[i], hb[j], kind)
        vals.append(0.5 * s * d + 0.5 * (1 - s) * max(margin - d, 0.0))
    close(ContrastiveLoss(distance=kind)(**kw), sum(vals) / len(vals))
    close(ContrastiveLoss(distance=kind, reduction="sum")(**kw), sum(vals))


def test_contrastive_default_margin_is_dsh():
    assert ContrastiveLoss().margin_for(32) == 64.0
    assert ContrastiveLoss(margin=3.0).margin_for(32) == 3.0


def test_contrastive_zero_beyond_margin_and_for_identical_similar_codes():
    code = torch.ones(1, Q, dtype=torch.float64)
    dissimilar = torch.tensor([[1, 0], [0, 1]], dtype=torch.float64)
    far = torch.cat([code, -code])  # ||.||^2 = 4q >= 2q
    close(ContrastiveLoss()(h=far, labels=dissimilar), 0.0)
    near = torch.cat([code, code * 0.9])
    assert ContrastiveLoss()(h=near, labels=dissimilar) > 0
    similar = torch.tensor([[1, 0], [1, 0]], dtype=torch.float64)
    close(ContrastiveLoss()(h=torch.cat([code, code]), labels=similar), 0.0)
    # exactly on the margin: no gradient from the hinge
    h = torch.cat([code, code]).clone()
    h[1, : Q // 2] = -1.0  # ||.||^2 = 4 * q/2 = 2q
    h.requires_grad_(True)
    out = ContrastiveLoss()(h=h, labels=dissimilar)
    close(out, 0.0)


def test_contrastive_euclidean_gradient_finite_at_zero_distance():
    h = torch.ones(2, Q, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    ContrastiveLoss(distance="euclidean")(h=h, labels=y).backward()
    assert torch.isfinite(h.grad).all()


# --- eq. 18 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("other", [False, True])
def test_kl_similarity_reference(other):
    ha, ya, hb, yb, kw, m = setup(other, 17)
    ps = pairs(N, m)
    g = {(i, j): n_shared(ya[i], yb[j]) for i, j in ps}
    dh = {(i, j): (Q - dot(ha[i], hb[j])) / 2 for i, j in ps}
    gsum = sum(g.values())
    vsum = sum(math.exp(-dh[p]) for p in ps)
    ref = 0.0
    for p in ps:
        pij = g[p] / gsum
        vij = math.exp(-dh[p]) / vsum
        if pij > 0:
            ref += pij * math.log(pij / vij)
    close(KLSimilarityLoss()(**kw), ref)


def test_kl_similarity_zero_when_distributions_match():
    y = torch.ones(5, 2, dtype=torch.float64)  # every pair shares 2 labels: P uniform
    h = torch.ones(5, Q, dtype=torch.float64) * 0.3  # all distances equal: V uniform
    close(KLSimilarityLoss()(h=h, labels=y), 0.0)
    h2, _ = batch(18, n=5)
    assert KLSimilarityLoss()(h=h2, labels=y) > 0
    no_shared = torch.eye(5, dtype=torch.float64)
    close(KLSimilarityLoss()(h=h2, labels=no_shared), 0.0)


# --- eqs. 19 and 27 ------------------------------------------------------------------------------


def _ranking_reference(ha, ya, hb, yb, m, margin, weighted):
    vals = []
    n = len(ha)
    lst = range(n) if m is None else range(m)
    for q in range(n):
        for i in lst:
            for j in lst:
                if m is None and (i == q or j == q):
                    continue
                ri, rj = n_shared(ya[q], yb[i]), n_shared(ya[q], yb[j])
                if not rj < ri:
                    continue
                dqi = (Q - dot(ha[q], hb[i])) / 2
                dqj = (Q - dot(ha[q], hb[j])) / 2
                w = 2**ri - 2**rj if weighted else 1.0
                vals.append(w * max(dqi - dqj + margin, 0.0))
    return vals


@pytest.mark.parametrize("other", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_ranking_reference(other, weighted):
    ha, ya, hb, yb, kw, m = setup(other, 19)
    vals = _ranking_reference(ha, ya, hb, yb, m, 1.5, weighted)
    assert vals
    cls = OrderSensitiveRankingLoss if weighted else RankingTripletLoss
    close(cls(margin=1.5)(**kw), sum(vals) / len(vals))
    close(cls(margin=1.5, reduction="sum")(**kw), sum(vals))


def _ranked_list(order_ok: bool):
    """One query with three list items at similarity levels 2, 1, 0 (shared labels)."""
    query_y = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    list_y = torch.tensor([[1, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=torch.float64)
    q = torch.ones(1, 8, dtype=torch.float64)
    items = torch.ones(3, 8, dtype=torch.float64)
    dists = [0, 2, 4] if order_ok else [4, 2, 0]  # Hamming distances to the query
    for k, d in enumerate(dists):
        items[k, :d] = -1.0
    return {"h": q, "labels": query_y, "h_other": items, "labels_other": list_y}


@pytest.mark.parametrize("cls", [RankingTripletLoss, OrderSensitiveRankingLoss])
def test_ranking_zero_when_order_respected(cls):
    close(cls(margin=1.0)(**_ranked_list(True)), 0.0)
    assert cls(margin=1.0)(**_ranked_list(False)) > 0
    assert cls(margin=3.0)(**_ranked_list(True)) > 0  # gap 2 < margin 3


def test_order_sensitive_weights_large_level_gaps_more():
    kw = _ranked_list(False)
    plain = RankingTripletLoss(reduction="sum")(**kw)
    weighted = OrderSensitiveRankingLoss(reduction="sum")(**kw)
    # triplets (2,1): w=2, hinge 3; (2,0): w=3, hinge 5; (1,0): w=1, hinge 3
    close(plain, 3.0 + 5.0 + 3.0)
    close(weighted, 2 * 3.0 + 3 * 5.0 + 1 * 3.0)


def test_ranking_without_triplets_is_zero():
    h, _ = batch(20)
    y = torch.ones(N, 2, dtype=torch.float64)  # every level equal: no r_j < r_i
    close(RankingTripletLoss()(h=h, labels=y), 0.0)
