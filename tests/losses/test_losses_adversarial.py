"""Wasserstein GAN terms and the WGAN-GP gradient penalty (hashbench.losses.adversarial) against hand
computations, closed forms and an independent per-sample gradient computation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hashbench.losses.adversarial import (
    gradient_penalty,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)


def test_wasserstein_terms() -> None:
    f_real, f_fake = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.5, -1.0])
    assert wasserstein_critic_loss(f_real, f_fake).item() == pytest.approx((0.5 - 1.0) / 2 - 7 / 3)
    assert wasserstein_generator_loss(f_fake).item() == pytest.approx(0.25)


def test_gradient_penalty_of_a_linear_image_critic() -> None:
    """f(x) = <w, x> on (C, H, W) images: grad = w everywhere, penalty (||w|| - 1)^2."""

    class Linear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.arange(12.0).view(1, 3, 2, 2) / 10)

        def forward(self, x):
            return (x * self.w).flatten(1).sum(1)

    critic = Linear()
    real, fake = torch.rand(5, 3, 2, 2), torch.rand(5, 3, 2, 2)
    norm = math.sqrt(sum((k / 10) ** 2 for k in range(12)))
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx((norm - 1) ** 2, rel=1e-5)


def test_gradient_penalty_equals_hand_computation() -> None:
    w = torch.tensor([0.5, -2.0, 1.0, 0.25])
    real, fake = torch.randn(3, 4), torch.randn(3, 4)
    # linear critic: the gradient is w everywhere
    gp = gradient_penalty(lambda x: x @ w, real, fake)
    assert gp.item() == pytest.approx((math.sqrt(5.3125) - 1) ** 2, rel=1e-6)
    # quadratic critic sum x^2: gradient 2 x^ at x^ = a real + (1 - a) fake
    a = torch.tensor([0.0, 0.3, 1.0])
    gp = gradient_penalty(lambda x: x.pow(2).sum((1, 2)), real.view(3, 2, 2), fake.view(3, 2, 2), a)
    ref = 0.0
    for i in range(3):
        x = [float(a[i] * real[i, k] + (1 - a[i]) * fake[i, k]) for k in range(4)]
        ref += (math.sqrt(sum((2 * v) ** 2 for v in x)) - 1) ** 2
    assert gp.item() == pytest.approx(ref / 3, rel=1e-6)
    # differentiable in the critic's parameters (WGAN-GP trains through it)
    lin = torch.nn.Linear(4, 1)
    gradient_penalty(lambda x: lin(x).squeeze(1), real, fake).backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def test_gradient_penalty_and_its_parameter_gradient_match_the_closed_form() -> None:
    """Linear critic f(x) = w^T x + c: GP = (||w|| - 1)^2, dGP/dw = 2 (||w|| - 1) w / ||w||,
    dGP/dc = 0, whatever the samples; the gradients via torch.autograd.grad."""
    torch.manual_seed(3)
    lin = nn.Linear(6, 1).double()
    real = torch.randn(4, 6, dtype=torch.float64)
    fake = torch.randn(4, 6, dtype=torch.float64)
    gp = gradient_penalty(lambda x: lin(x).squeeze(1), real, fake)
    w = lin.weight.detach().flatten()
    norm = w.norm()
    assert gp.item() == pytest.approx(float((norm - 1) ** 2), rel=1e-12)
    g_w, g_c = torch.autograd.grad(gp, [lin.weight, lin.bias], allow_unused=True)
    torch.testing.assert_close(g_w.flatten(), 2 * (norm - 1) * w / norm, rtol=1e-12, atol=1e-12)
    assert g_c is None  # the penalty does not depend on the bias


def test_gradient_penalty_matches_per_sample_gradients_of_a_nonlinear_critic() -> None:
    """A small conv critic: the batched penalty equals one autograd.grad per interpolate."""
    torch.manual_seed(0)
    critic = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 4 * 4, 1), nn.Flatten(0)
    ).double()
    real = torch.rand(5, 1, 6, 6, dtype=torch.float64)
    fake = torch.rand(5, 1, 6, 6, dtype=torch.float64)
    a = torch.rand(5, dtype=torch.float64)
    gp = gradient_penalty(critic, real, fake, a)
    terms = []
    for i in range(5):
        x = (a[i] * real[i : i + 1] + (1 - a[i]) * fake[i : i + 1]).requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x).sum(), x)
        terms.append((math.sqrt(float((g**2).sum())) - 1) ** 2)
    assert gp.item() == pytest.approx(sum(terms) / 5, rel=1e-12)


def test_gradient_penalty_mixing_weights_come_from_the_generator() -> None:
    """Drawn a ~ U(0, 1) per sample from ``generator`` (one number per sample, any sample shape)."""
    real, fake = torch.rand(4, 2, 3, 3), torch.rand(4, 2, 3, 3)

    def critic(x):
        return x.pow(3).flatten(1).sum(1)

    a = torch.rand(4, generator=torch.Generator().manual_seed(7))
    drawn = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    assert torch.equal(drawn, gradient_penalty(critic, real, fake, a))
    # the draw equals that of a (n, 1, 1, 1) tensor: the same numbers from the same stream
    a4 = torch.rand(4, 1, 1, 1, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a4.flatten(), a)


def test_gradient_penalty_is_computed_under_no_grad() -> None:
    """The input gradient needs autograd: it is enabled inside, whatever the caller's mode."""
    lin = nn.Linear(3, 1)
    with torch.no_grad():
        gp = gradient_penalty(lambda x: lin(x).squeeze(1), torch.rand(2, 3), torch.rand(2, 3))
    w = lin.weight.detach()
    assert gp.item() == pytest.approx(float((w.norm() - 1) ** 2), rel=1e-6)
