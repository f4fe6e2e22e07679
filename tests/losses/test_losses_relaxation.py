"""Eqs. 23-25: scheduled tanh, inner-product relaxation, L1 towards +-1."""

from __future__ import annotations

import math

import pytest
import torch

from hashbench.losses import (
    RELAXATIONS,
    InnerProductRelaxation,
    L1ToBinaryLoss,
    ScheduledTanh,
    inner_product_similarity,
)


def test_scheduled_tanh_schedules():
    assert ScheduledTanh(2.0).beta_at(10_000) == 2.0
    power = ScheduledTanh(1.0, "power", gamma=0.005, power=0.5)
    for t in (0, 1, 200, 10_000):
        assert power.beta_at(t) == pytest.approx((1 + 0.005 * t) ** 0.5)
    step = ScheduledTanh(1.0, "step", factor=2.0, every=100, beta_max=5.0)
    assert [step.beta_at(t) for t in (0, 99, 100, 250, 1000, 10**7)] == [1, 1, 2, 4, 5, 5]
    with pytest.raises(ValueError, match="beta_max"):
        ScheduledTanh(1.0, "step", factor=10.0, every=1).beta_at(10**6)


def test_scheduled_tanh_forward_and_limit():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64)
    relax = ScheduledTanh(1.5, "power")
    relax.set_step(300)
    beta = 1.5 * (1 + 0.005 * 300) ** 0.5
    assert relax.beta == pytest.approx(beta)
    torch.testing.assert_close(relax(x), torch.tanh(beta * x))
    # the survey's printed right-hand side is tanh(beta x / 2): same function at twice the beta
    printed = (1 - torch.exp(-2 * beta * x)) / (1 + torch.exp(-2 * beta * x))
    torch.testing.assert_close(relax(x), printed)
    # large beta approaches the binarisation 1[x >= 0] as +-1
    relax.set_step(0)
    sharp = ScheduledTanh(1e4)(x)
    torch.testing.assert_close(sharp, torch.where(x >= 0, 1.0, -1.0).double(), atol=1e-3, rtol=0)
    assert torch.autograd.gradcheck(ScheduledTanh(0.7), (x.clone().requires_grad_(True),))


def test_inner_product_relaxation_reference():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(4, 3, generator=g, dtype=torch.float64)
    h2 = torch.randn(2, 3, generator=g, dtype=torch.float64)
    phi = InnerProductRelaxation()(h, h2)
    for i in range(4):
        for j in range(2):
            ref = 0.5 * sum(h[i, k].item() * h2[j, k].item() for k in range(3))
            assert phi[i, j].item() == pytest.approx(ref)
    torch.testing.assert_close(inner_product_similarity(h), 0.5 * h @ h.T)
    assert set(RELAXATIONS) == {"scheduled_tanh", "inner_product"}


def test_l1_to_binary_is_dsh_regulariser():
    h = torch.tensor([[0.5, -2.0, 1.0], [-1.0, 1.0, 0.0]], dtype=torch.float64)
    # per item: |0.5-1| + |2-1| + 0 = 1.5 ; 0 + 0 + 1 = 1
    out = L1ToBinaryLoss()(h=h)
    assert out.item() == pytest.approx(1.25)
    assert L1ToBinaryLoss("sum")(h=h).item() == pytest.approx(2.5)
    # the printed ||h - 1||_1 (no abs) would charge the -1 bits; the intended form does not
    b = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    assert (b - 1).abs().sum().item() == 2.0
    assert L1ToBinaryLoss()(h=b).item() == 0.0
    assert math.isfinite(L1ToBinaryLoss()(h=h * 1e6).item())
