"""DRSCH (hashbench/methods/drsch.py): the loss against loops, and argument checks."""

from __future__ import annotations

import pytest
import torch

from hashbench.losses.base import pairwise_similarity
from hashbench.methods.drsch import DRSCH, drsch_loss


def _loop_reference(h: torch.Tensor, s: torch.Tensor, margin: float, lam: float) -> float:
    n, q = h.shape
    hinges = []
    for a in range(n):
        for i in range(n):
            for j in range(n):
                if len({a, i, j}) < 3 or s[a, i] != 1 or s[a, j] != 0:
                    continue
                d_ai = (q - float(h[a] @ h[i])) / 2
                d_aj = (q - float(h[a] @ h[j])) / 2
                hinges.append(max(0.0, d_ai - d_aj + margin))
    lap = [
        0.5 * float(s[i, j]) * float(((h[i] - h[j]) ** 2).sum())
        for i in range(n)
        for j in range(n)
        if i != j
    ]
    triplet = sum(hinges) / max(len(hinges), 1)
    return triplet + lam * sum(lap) / len(lap)


@pytest.mark.parametrize("margin, lam", [(2.0, 0.1), (0.0, 1.0), (5.0, 0.0)])
def test_loss_matches_loops(margin: float, lam: float) -> None:
    g = torch.Generator().manual_seed(0)
    h = torch.tanh(torch.randn(7, 8, generator=g, dtype=torch.float64))
    labels = torch.eye(3, dtype=torch.float64)[torch.tensor([0, 1, 2, 0, 1, 0, 2])]
    s = pairwise_similarity(labels)
    out = drsch_loss(h, s, margin, lam)
    assert float(out["loss"]) == pytest.approx(_loop_reference(h, s, margin, lam), rel=1e-10)


def test_method_loss_and_gradients() -> None:
    model = DRSCH(bits=16)
    assert model.margin == 2.0 and model.threshold == 0.0
    assert DRSCH(bits=16, margin=None).margin == 4.0  # None = bits / 4
    images = torch.randint(0, 255, (6, 1, 28, 28), dtype=torch.uint8)
    labels = torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2])]
    out = model.loss(model(images), labels)
    out["loss"].backward()
    assert model.hash_head.linear.weight.grad.abs().sum() > 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="margin"):
        DRSCH(bits=16, margin=-1.0)
    with pytest.raises(ValueError, match="laplacian_weight"):
        DRSCH(bits=16, laplacian_weight=-0.5)
    with pytest.raises(ValueError):
        DRSCH(bits=12)
