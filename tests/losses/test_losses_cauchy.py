"""Cauchy (DCH / seed 003) and cosine (HashGAN) terms against plain-loop references."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from hashbench.losses import (
    TERMS,
    CauchyCrossEntropyLoss,
    CauchyQuantizationLoss,
    CosineCrossEntropyLoss,
    CosineQuantizationLoss,
)
from hashbench.losses.cauchy import class_balance_weights


def _cos(a, b) -> float:
    dot = sum(float(x) * float(y) for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(float(x) ** 2 for x in a))
    nb = math.sqrt(sum(float(y) ** 2 for y in b))
    return dot / (na * nb)


def _sim(la, lb) -> float:
    return float(sum(float(x) * float(y) for x, y in zip(la, lb, strict=True)) > 0)


def _pairs(n: int, m: int | None):
    if m is None:
        return list(itertools.permutations(range(n), 2))
    return list(itertools.product(range(n), range(m)))


def _weights(sims: list[float], balance: bool) -> list[float]:
    if not balance:
        return [1.0] * len(sims)
    n1 = sum(1 for s in sims if s > 0)
    n0 = len(sims) - n1
    return [len(sims) / n1 if s > 0 else len(sims) / n0 for s in sims]


def _cauchy_ref(h, y, gamma, eps, balance, h2=None, y2=None, reduction="mean") -> float:
    """sum_ij w_ij [-S log sigma - (1 - S) log(1 - sigma)], sigma = gamma / (gamma + d)."""
    K = h.shape[1]
    hb, yb = (h, y) if h2 is None else (h2, y2)
    pairs = _pairs(len(h), None if h2 is None else len(h2))
    sims = [_sim(y[i], yb[j]) for i, j in pairs]
    ws = _weights(sims, balance)
    total = 0.0
    for (i, j), s, w in zip(pairs, sims, ws, strict=True):
        d = K / 2 * (1 - _cos(h[i], hb[j])) + eps
        sigma = gamma / (gamma + d)
        total += w * (-s * math.log(sigma) - (1 - s) * math.log(1 - sigma))
    return total if reduction == "sum" else total / len(pairs)


def _cosine_ref(h, y, alpha, balance, h2=None, y2=None) -> float:
    """sum_ij w_ij [-S log sig(a cos) - (1 - S) log(1 - sig(a cos))] / |S|."""
    hb, yb = (h, y) if h2 is None else (h2, y2)
    pairs = _pairs(len(h), None if h2 is None else len(h2))
    sims = [_sim(y[i], yb[j]) for i, j in pairs]
    ws = _weights(sims, balance)
    total = 0.0
    for (i, j), s, w in zip(pairs, sims, ws, strict=True):
        p = 1 / (1 + math.exp(-alpha * _cos(h[i], hb[j])))
        total += w * (-s * math.log(p) - (1 - s) * math.log(1 - p))
    return total / len(pairs)


def _data(n=7, q=12, c=3, seed=0, m=None):
    g = torch.Generator().manual_seed(seed)
    h = torch.tanh(2 * torch.randn(n, q, generator=g, dtype=torch.float64))
    y = torch.eye(c, dtype=torch.float64)[torch.randint(0, c, (n,), generator=g)]
    y[0, (y[0].argmax() + 1) % c] = 1  # one multi-label item
    if m is None:
        return h, y
    h2 = torch.tanh(2 * torch.randn(m, q, generator=g, dtype=torch.float64))
    y2 = torch.eye(c, dtype=torch.float64)[torch.randint(0, c, (m,), generator=g)]
    return h, y, h2, y2


@pytest.mark.parametrize("balance", [True, False])
@pytest.mark.parametrize("gamma,eps", [(20.0, 1e-6), (3.0, 0.0)])
def test_cauchy_cross_entropy_matches_reference(balance, gamma, eps):
    h, y = _data()
    got = CauchyCrossEntropyLoss(gamma=gamma, eps=eps, balance=balance)(h=h, labels=y)
    assert got.item() == pytest.approx(_cauchy_ref(h, y, gamma, eps, balance), rel=1e-10)
    got = CauchyCrossEntropyLoss(gamma=gamma, eps=eps, balance=balance, reduction="sum")
    ref = _cauchy_ref(h, y, gamma, eps, balance, reduction="sum")
    assert got(h=h, labels=y).item() == pytest.approx(ref, rel=1e-10)


def test_cauchy_cross_entropy_second_set_matches_reference():
    h, y, h2, y2 = _data(n=5, m=6, seed=3)
    got = CauchyCrossEntropyLoss(gamma=8.0)(h=h, labels=y, h_other=h2, labels_other=y2)
    assert got.item() == pytest.approx(_cauchy_ref(h, y, 8.0, 1e-6, True, h2, y2), rel=1e-10)


def test_cauchy_is_the_printed_dch_form():
    """sum w [S log(d / gamma) + log(1 + gamma / d)] (METHODS.md) equals the cross-entropy."""
    h, y = _data(seed=5)
    term = CauchyCrossEntropyLoss(gamma=5.0, eps=0.0, balance=False)
    K = h.shape[1]
    pairs = _pairs(len(h), None)
    total = 0.0
    for i, j in pairs:
        d = K / 2 * (1 - _cos(h[i], h[j]))
        total += _sim(y[i], y[j]) * math.log(d / 5.0) + math.log(1 + 5.0 / d)
    assert term(h=h, labels=y).item() == pytest.approx(total / len(pairs), rel=1e-10)


def test_distance_is_hamming_for_binary_codes():
    """d = K/2 (1 - cos) is the Hamming distance of +-1 codes (eq. 13): sigma by hand."""
    b = torch.tensor([[1.0, 1, 1, 1, -1, -1, 1, 1], [1.0, -1, 1, 1, -1, 1, 1, 1]])
    y = torch.tensor([[1.0, 0], [1.0, 0]])  # similar: loss = -log(gamma / (gamma + 2))
    got = CauchyCrossEntropyLoss(gamma=4.0, eps=0.0, balance=False)(h=b, labels=y)
    assert got.item() == pytest.approx(-math.log(4.0 / 6.0), rel=1e-6)


def test_weights_on_an_imbalanced_batch():
    y = torch.eye(2)[torch.tensor([0, 0, 0, 0, 1])]  # 12 similar, 8 dissimilar ordered pairs
    s = (y @ y.T > 0).float()
    mask = ~torch.eye(5, dtype=torch.bool)
    w = class_balance_weights(s, mask)
    assert w[(s > 0) & mask].tolist() == pytest.approx([20 / 12] * 12)
    assert w[(s == 0) & mask].tolist() == pytest.approx([20 / 8] * 8)
    assert torch.all(w[~mask] == 0)
    # both kinds carry the same total weight |S|
    assert w[(s > 0) & mask].sum().item() == pytest.approx(20.0)
    assert w[(s == 0) & mask].sum().item() == pytest.approx(20.0)
    # the loss with weights equals the reference's weighted mean, and differs from unweighted
    h = torch.tanh(torch.randn(5, 8, generator=torch.Generator().manual_seed(1)))
    weighted = CauchyCrossEntropyLoss(gamma=4.0)(h=h, labels=y).item()
    plain = CauchyCrossEntropyLoss(gamma=4.0, balance=False)(h=h, labels=y).item()
    assert weighted == pytest.approx(_cauchy_ref(h, y, 4.0, 1e-6, True), rel=1e-5)
    assert weighted != pytest.approx(plain, rel=1e-3)


def test_weights_with_one_kind_of_pair():
    s = torch.ones(3, 3)
    w = class_balance_weights(s, ~torch.eye(3, dtype=torch.bool))
    assert w[~torch.eye(3, dtype=torch.bool)].tolist() == [1.0] * 6


def _quant_ref(h, gamma) -> float:
    K = h.shape[1]
    ones = [1.0] * K
    return sum(
        math.log(1 + K / 2 * (1 - _cos([abs(float(v)) for v in r], ones)) / gamma) for r in h
    )


def test_cauchy_quantization_matches_reference_and_is_zero_for_binary_codes():
    h, _ = _data(seed=2)
    got = CauchyQuantizationLoss(gamma=7.0, reduction="sum")(h=h)
    assert got.item() == pytest.approx(_quant_ref(h, 7.0), rel=1e-10)
    assert CauchyQuantizationLoss(gamma=7.0)(h=h).item() == pytest.approx(
        _quant_ref(h, 7.0) / len(h), rel=1e-10
    )
    for q in (8, 24, 32, 48, 64):
        b = torch.where(torch.randn(9, q) >= 0, 1.0, -1.0)
        assert CauchyQuantizationLoss()(h=b).item() == 0.0
        assert CosineQuantizationLoss()(h=b).item() == 0.0
    assert CauchyQuantizationLoss()(h=0.5 * b).item() == 0.0  # |h| parallel to 1
    assert CauchyQuantizationLoss()(h=h.float()).item() > 0


@pytest.mark.parametrize("balance", [True, False])
def test_cosine_terms_match_reference(balance):
    h, y = _data(seed=4)
    got = CosineCrossEntropyLoss(alpha=3.0, balance=balance)(h=h, labels=y)
    assert got.item() == pytest.approx(_cosine_ref(h, y, 3.0, balance), rel=1e-10)
    h, y, h2, y2 = _data(n=4, m=5, seed=6)
    got = CosineCrossEntropyLoss(alpha=2.0)(h=h, labels=y, h_other=h2, labels_other=y2)
    assert got.item() == pytest.approx(_cosine_ref(h, y, 2.0, True, h2, y2), rel=1e-10)
    ones = [1.0] * h.shape[1]
    ref = sum(1 - _cos([abs(float(v)) for v in r], ones) for r in h) / len(h)
    assert CosineQuantizationLoss()(h=h).item() == pytest.approx(ref, rel=1e-10)


def test_registered_and_bad_arguments():
    assert TERMS["cauchy_cross_entropy"] is CauchyCrossEntropyLoss
    assert TERMS["cauchy_quantization"] is CauchyQuantizationLoss
    with pytest.raises(ValueError, match="gamma"):
        CauchyCrossEntropyLoss(gamma=0)
    with pytest.raises(ValueError, match="eps"):
        CauchyCrossEntropyLoss(eps=-1)
    with pytest.raises(ValueError, match="alpha"):
        CosineCrossEntropyLoss(alpha=-1)
    with pytest.raises(ValueError, match="labels"):
        CauchyCrossEntropyLoss()(h=torch.zeros(3, 8), labels=None)
    with pytest.raises(ValueError, match="2-d"):
        CauchyQuantizationLoss()(h=torch.zeros(8))
