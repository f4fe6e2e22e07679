"""Shared fixtures for the objective-term tests: seeded batches and term factories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from hashbench.losses import TERMS, KNNGraphLoss, Term

N_DATASET = 40  # items of the toy "training set" the KNN term indexes


def random_labels(n: int, c: int, gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """Multi-hot labels with 1-2 labels per item (every item labelled)."""
    y = (torch.rand(n, c, generator=gen) < 0.3).to(dtype)
    first = torch.randint(0, c, (n,), generator=gen)
    y[torch.arange(n), first] = 1.0
    return y


def make_context(
    n: int = 6,
    q: int = 8,
    c: int = 4,
    m: int = 5,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    other: bool = False,
) -> dict[str, Any]:
    """A random batch holding every vocabulary entry (second set only with ``other``).

    Numbers are drawn in float64 and cast, so the same seed gives the same values in any dtype.
    """
    gen = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    ctx: dict[str, Any] = {
        "h": torch.randn(n, q, generator=gen, dtype=f64).to(dtype).tanh().mul(1.3),
        "labels": random_labels(n, c, gen, dtype),
        "logits": torch.randn(n, c, generator=gen, dtype=f64).to(dtype),
        "x": torch.randn(n, 3, 2, 2, generator=gen, dtype=f64).to(dtype),
        "x_hat": torch.randn(n, 3, 2, 2, generator=gen, dtype=f64).to(dtype),
        "features": torch.randn(n, 5, generator=gen, dtype=f64).to(dtype),
        "index": torch.randperm(N_DATASET, generator=gen)[:n],
        "weights": [
            torch.randn(q, 7, generator=gen, dtype=f64).to(dtype),
            torch.randn(q, generator=gen, dtype=f64).to(dtype),
        ],
    }
    ctx["b"] = torch.where(ctx["h"] >= 0, 1.0, -1.0).to(dtype)
    if other:
        ctx["h_other"] = torch.randn(m, q, generator=gen, dtype=f64).to(dtype).tanh().mul(1.3)
        ctx["labels_other"] = random_labels(m, c, gen, dtype)
        ctx["features_other"] = torch.randn(m, 5, generator=gen, dtype=f64).to(dtype)
        ctx["index_other"] = torch.randperm(N_DATASET, generator=gen)[:m]
    return ctx


def make_term(key: str) -> Term:
    """The registry's term with default hyper-parameters, ready to call (KNN graph built)."""
    term = TERMS[key]()
    if isinstance(term, KNNGraphLoss):
        gen = torch.Generator().manual_seed(123)
        term = KNNGraphLoss(k1=3, k2=2).build(torch.randn(N_DATASET, 6, generator=gen))
    return term


@pytest.fixture
def context() -> Callable[..., dict[str, Any]]:
    return make_context


@pytest.fixture
def term_factory() -> Callable[[str], Term]:
    return make_term
