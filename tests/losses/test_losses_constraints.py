"""Eqs. 1-12 and DHN's smooth quantisation against slow loop references, plus their properties."""

from __future__ import annotations

import math

import pytest
import torch

from hashbench.losses import (
    AbsL1ConstraintLoss,
    BitBalanceSumLoss,
    BitIndependenceLoss,
    BitMeanLoss,
    BitVarianceLoss,
    ClampedConstraintLoss,
    L1ToBinaryLoss,
    NearestBinaryLoss,
    ParameterRegularizationLoss,
    QuantizationLoss,
    ReconstructionLoss,
    SmoothQuantizationLoss,
    SparsityKLLoss,
    SparsityL1Loss,
    binary_codes,
)

N, Q = 7, 6


def codes(seed: int = 0, n: int = N, q: int = Q) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, q, generator=g, dtype=torch.float64) * 1.2


def rows(h: torch.Tensor) -> list[list[float]]:
    return h.tolist()


def hadamard(k: int) -> torch.Tensor:
    """Sylvester Hadamard matrix of order 2^k (columns mutually orthogonal, +-1)."""
    m = torch.ones(1, 1, dtype=torch.float64)
    for _ in range(k):
        m = torch.cat([torch.cat([m, m], 1), torch.cat([m, -m], 1)], 0)
    return m


def close(a: torch.Tensor, b: float) -> None:
    torch.testing.assert_close(a, torch.tensor(b, dtype=a.dtype), rtol=1e-10, atol=1e-10)


# --- eq. 1 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("average_dims", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reconstruction_reference(reduction, average_dims):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 2, 3, generator=g, dtype=torch.float64)
    x_hat = torch.randn(4, 2, 3, generator=g, dtype=torch.float64)
    per_item = []
    for i in range(4):
        s = 0.0
        for a in range(2):
            for b in range(3):
                s += (x[i, a, b].item() - x_hat[i, a, b].item()) ** 2
        per_item.append(s / 6 if average_dims else s)
    ref = sum(per_item) / 4 if reduction == "mean" else sum(per_item)
    close(ReconstructionLoss(reduction, average_dims)(x=x, x_hat=x_hat), ref)


def test_reconstruction_zero_for_perfect_reconstruction():
    x = codes(2)
    close(ReconstructionLoss()(x=x, x_hat=x.clone()), 0.0)
    with pytest.raises(ValueError, match="same shape"):
        ReconstructionLoss()(x=x, x_hat=x[:, :3])


# --- eq. 2 and DHN --------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_quantization_reference(reduction):
    h = codes(3)
    total = 0.0
    for row in rows(h):
        total += sum((v - (1.0 if v >= 0 else -1.0)) ** 2 for v in row)
    ref = total / N if reduction == "mean" else total
    close(QuantizationLoss(reduction)(h=h), ref)


def test_quantization_default_b_and_explicit_b():
    h = codes(4)
    h[0, 0] = 0.0  # 0 binarises to +1, never 0
    b = binary_codes(h)
    assert set(b.unique().tolist()) == {-1.0, 1.0} and b[0, 0] == 1.0
    term = QuantizationLoss()
    torch.testing.assert_close(term(h=h), term(h=h, b=b))
    other = -b
    assert term(h=h, b=other) > term(h=h)


def test_quantization_zero_on_binary_codes():
    b = binary_codes(codes(5))
    close(QuantizationLoss()(h=b), 0.0)
    close(SmoothQuantizationLoss()(h=b), 0.0)
    assert QuantizationLoss()(h=0.5 * b) > 0


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_smooth_quantization_reference(reduction):
    h = codes(6)
    total = sum(math.log(math.cosh(abs(v) - 1.0)) for row in rows(h) for v in row)
    close(SmoothQuantizationLoss(reduction)(h=h), total / N if reduction == "mean" else total)


def test_smooth_quantization_stable_for_large_outputs():
    h = torch.tensor([[1000.0, -2000.0]], dtype=torch.float64, requires_grad=True)
    out = SmoothQuantizationLoss()(h=h)
    close(out, 999.0 - math.log(2) + 1999.0 - math.log(2))
    out.backward()
    assert torch.isfinite(h.grad).all()


# --- eq. 3 ---------------------------------------------------------------------------------------


def test_bit_independence_reference():
    h = codes(7)
    ref = 0.0
    for k in range(Q):
        for m in range(Q):
            g = sum(h[i, k].item() * h[i, m].item() for i in range(N)) / N
            ref += (g - (1.0 if k == m else 0.0)) ** 2
    close(BitIndependenceLoss()(h=h), ref)


def test_bit_independence_zero_for_orthogonal_bits():
    hd = hadamard(3)  # 8 items x 8 mutually orthogonal +-1 bit columns
    close(BitIndependenceLoss()(h=hd), 0.0)
    correlated = hd.clone()
    correlated[:, 1] = correlated[:, 0]
    assert BitIndependenceLoss()(h=correlated) > 1.0


# --- eqs. 4-6 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bit_balance_sum_reference(reduction):
    h = codes(8)
    ref = sum(sum(h[i, k].item() for i in range(N)) ** 2 for k in range(Q))
    close(BitBalanceSumLoss(reduction)(h=h), ref / N if reduction == "mean" else ref)


@pytest.mark.parametrize("center", [True, False])
def test_bit_variance_reference(center):
    h = codes(9)
    ref = 0.0
    for k in range(Q):
        col = [h[i, k].item() for i in range(N)]
        mu = sum(col) / N if center else 0.0
        ref -= sum((v - mu) ** 2 for v in col) / N
    close(BitVarianceLoss(center)(h=h), ref)


def test_bit_mean_reference():
    h = codes(10)
    ref = sum((sum(h[i, k].item() for i in range(N)) / N) ** 2 for k in range(Q))
    close(BitMeanLoss()(h=h), ref)


def test_bit_balance_terms_minimal_for_balanced_codes():
    balanced = hadamard(3)[:, 1:]  # every column but the first has four +1 and four -1
    constant = torch.ones_like(balanced)
    g = torch.Generator().manual_seed(0)
    unbalanced = torch.where(torch.rand(balanced.shape, generator=g) < 0.8, 1.0, -1.0).double()
    q = balanced.shape[1]
    for term in (BitBalanceSumLoss(), BitMeanLoss()):
        close(term(h=balanced), 0.0)
        assert term(h=unbalanced) > 0
        assert term(h=constant) >= term(h=unbalanced)
    variance = BitVarianceLoss()
    close(variance(h=balanced), -float(q))  # the minimum over +-1 codes
    assert variance(h=unbalanced) > variance(h=balanced)
    close(variance(h=constant), 0.0)


# --- eqs. 7-9 and 25 ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [AbsL1ConstraintLoss, L1ToBinaryLoss])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_abs_l1_reference(cls, reduction):
    h = codes(11)
    total = sum(abs(abs(v) - 1.0) for row in rows(h) for v in row)
    close(cls(reduction)(h=h), total / N if reduction == "mean" else total)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_nearest_binary_reference(reduction):
    h = codes(12)
    total = sum(min((v + 1) ** 2, (v - 1) ** 2) for row in rows(h) for v in row)
    close(NearestBinaryLoss(reduction)(h=h), total / N if reduction == "mean" else total)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_clamped_constraint_reference(reduction):
    h = codes(13)
    total = sum((1.0 - abs(max(-1.0, min(1.0, v)))) ** 2 for row in rows(h) for v in row)
    close(ClampedConstraintLoss(reduction)(h=h), total / N if reduction == "mean" else total)


@pytest.mark.parametrize(
    "cls", [AbsL1ConstraintLoss, NearestBinaryLoss, ClampedConstraintLoss, L1ToBinaryLoss]
)
def test_hash_constraints_zero_on_binary_codes(cls):
    mixed = binary_codes(codes(14))  # bits of both signs in every code
    assert (mixed == 1).any(1).all() and (mixed == -1).any(1).all()
    close(cls()(h=mixed), 0.0)
    assert cls()(h=0.3 * mixed) > 0


def test_nearest_binary_is_per_bit_not_per_vector():
    """The printed vector-level min would charge a mixed-sign code; the intended per-bit min does
    not (defect of eq. 8)."""
    h = torch.tensor([[1.0, -1.0, 1.0, -1.0]], dtype=torch.float64)
    printed = min(((h + 1) ** 2).sum().item(), ((h - 1) ** 2).sum().item())
    assert printed == 8.0
    close(NearestBinaryLoss()(h=h), 0.0)


def test_clamped_constraint_flat_beyond_one():
    h = torch.tensor([[1.5, -3.0, 1.0]], dtype=torch.float64, requires_grad=True)
    out = ClampedConstraintLoss()(h=h)
    close(out, 0.0)
    out.backward()
    assert (h.grad == 0).all()


# --- eq. 10 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("squared", [False, True])
def test_parameter_regularization_reference(squared):
    g = torch.Generator().manual_seed(15)
    ws = [torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(5, generator=g).double()]
    ref = 0.0
    for w in ws:
        s = sum(v * v for v in w.reshape(-1).tolist())
        ref += s if squared else math.sqrt(s)
    close(ParameterRegularizationLoss(squared)(weights=ws), ref)
    close(ParameterRegularizationLoss(squared)(weights=[torch.zeros(3, dtype=torch.float64)]), 0.0)
    assert ParameterRegularizationLoss()(weights=[]) == 0


# --- eqs. 11-12 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("input_range", ["signed", "unit"])
def test_sparsity_kl_reference(input_range):
    h = codes(16).tanh()
    if input_range == "unit":
        h = (h + 1) / 2
    rho = 0.1
    ref = 0.0
    for k in range(Q):
        acts = [h[i, k].item() for i in range(N)]
        if input_range == "signed":
            acts = [(1 + a) / 2 for a in acts]
        rho_hat = sum(acts) / N
        ref += rho * math.log(rho / rho_hat) + (1 - rho) * math.log((1 - rho) / (1 - rho_hat))
    close(SparsityKLLoss(rho, input_range)(h=h), ref)


def test_sparsity_kl_zero_at_target_activation():
    rho = 0.2
    a = torch.full((10, 3), rho, dtype=torch.float64)
    close(SparsityKLLoss(rho, "unit")(h=a), 0.0)
    close(SparsityKLLoss(rho, "signed")(h=2 * a - 1), 0.0)
    assert SparsityKLLoss(rho, "unit")(h=a + 0.3) > 0
    with pytest.raises(ValueError, match="rho"):
        SparsityKLLoss(rho=1.0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_sparsity_l1_reference(reduction):
    h = codes(17)
    total = 0.7 * sum(abs(v) for row in rows(h) for v in row)
    close(SparsityL1Loss(0.7, reduction)(h=h), total / N if reduction == "mean" else total)


def test_sparsity_l1_zero_for_zero_codes():
    close(SparsityL1Loss()(h=torch.zeros(3, 4, dtype=torch.float64)), 0.0)


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="2-d float tensor"):
        QuantizationLoss()(h=torch.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        QuantizationLoss(reduction="max")  # type: ignore[arg-type]
