"""RMSProp with Nesterov momentum (seed 000 eqs. 5-7) against the update written out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from hashbench.optim import RMSPropNesterov

A = [0.5, 2.0, -1.0]
C = [1.0, -3.0, 0.25]


def _grad(x: list[float]) -> list[float]:
    """Gradient of f(x) = sum_k (a_k x_k^2 / 2 + c_k x_k^3 / 3)."""
    return [a * xi + c * xi * xi for a, c, xi in zip(A, C, x, strict=True)]


def _loss(p: torch.Tensor) -> torch.Tensor:
    a, c = torch.tensor(A, dtype=p.dtype), torch.tensor(C, dtype=p.dtype)
    return (a * p**2 / 2 + c * p**3 / 3).sum()


def _by_hand(x0, lr, alpha, beta, eps, steps):
    """Eqs. 5-7 with the gradient at the interim point chi + alpha v, in plain Python."""
    chi, r, v = list(x0), [0.0] * len(x0), [0.0] * len(x0)
    for _ in range(steps):
        interim = [c + alpha * vi for c, vi in zip(chi, v, strict=True)]
        g = _grad(interim)
        r = [beta * ri + (1 - beta) * gi * gi for ri, gi in zip(r, g, strict=True)]  # (5)
        v = [
            alpha * vi - lr / (math.sqrt(ri) + eps) * gi for vi, ri, gi in zip(v, r, g, strict=True)
        ]  # (6)
        chi = [c + vi for c, vi in zip(chi, v, strict=True)]  # (7)
    return chi, v


@pytest.mark.parametrize("alpha,beta,eps", [(0.9, 0.0005, 1e-8), (0.5, 0.9, 0.0), (0.0, 0.3, 1e-6)])
def test_two_steps_match_equations_5_to_7(alpha: float, beta: float, eps: float) -> None:
    x0 = [0.3, -0.7, 1.1]
    p = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = RMSPropNesterov([p], lr=0.05, alpha=alpha, beta=beta, eps=eps)
    for _ in range(2):
        opt.zero_grad()
        _loss(p).backward()
        opt.step()
    chi, v = _by_hand(x0, 0.05, alpha, beta, eps, 2)
    # the optimiser's committed point is chi; the parameter holds the next interim chi + alpha v
    torch.testing.assert_close(opt.committed(p), torch.tensor(chi, dtype=torch.float64))
    interim = [c + alpha * vi for c, vi in zip(chi, v, strict=True)]
    torch.testing.assert_close(p.detach(), torch.tensor(interim, dtype=torch.float64))


def test_first_step_is_close_to_sign_descent_with_paper_values() -> None:
    # beta = 0.0005: r ~ g^2 after one step, so chi moves by ~ -delta sign(g)
    p = torch.tensor([2.0, -5.0], requires_grad=True)
    opt = RMSPropNesterov([p], lr=0.01)
    (p * torch.tensor([3.0, -100.0])).sum().backward()
    opt.step()
    moved = opt.committed(p) - torch.tensor([2.0, -5.0])
    torch.testing.assert_close(moved, torch.tensor([-0.01, 0.01]), rtol=1e-3, atol=0)


def test_parameters_without_gradient_are_left_alone() -> None:
    a = torch.tensor([1.0], requires_grad=True)
    b = torch.tensor([2.0], requires_grad=True)
    opt = RMSPropNesterov([a, b], lr=0.1)
    (a * 2).sum().backward()
    opt.step()
    assert b.item() == 2.0 and a.item() != 1.0
    assert torch.equal(opt.committed(b), b.detach())


@pytest.mark.parametrize(
    "kw,match",
    [({"lr": 0}, "lr"), ({"alpha": 1.0}, "alpha"), ({"beta": -0.1}, "beta"), ({"eps": -1}, "eps")],
)
def test_bad_hyper_parameters_are_rejected(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RMSPropNesterov([torch.zeros(1, requires_grad=True)], **kw)
