"""The :class:`PairwiseTerm` base: pairs, similarity and reduction owned once, checked with a tiny
subclass against explicit Python loops."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import Tensor

from hashbench.losses.base import PairwiseTerm


class ToyPairTerm(PairwiseTerm):
    """``v_ij = s_ij * (h_i . h_j) + 1`` per pair."""

    def pair_values(self, h: Tensor, h_b: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        return sim * (h @ h_b.T) + 1.0


class GradedToy(ToyPairTerm):
    graded = True
    nonnegative_sim = True


class MaxPairTerm(ToyPairTerm):
    """A term with its own reduction: the largest value over the pairs."""

    def reduce(self, values: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        return values.masked_fill(~mask, float("-inf")).max()


def batch(seed: int, n: int, q: int = 4, c: int = 3) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, q, generator=g, dtype=torch.float64)
    y = (torch.rand(n, c, generator=g) < 0.5).double()
    return h, y


def loop_values(h, y, h_b, y_b, same: bool, graded: bool = False) -> list[float]:
    """The toy values over the pairs, by explicit loops."""
    out = []
    for i in range(len(h)):
        for j in range(len(h_b)):
            if same and i == j:
                continue
            shared = sum(1 for a, b in zip(y[i], y_b[j], strict=True) if a > 0 and b > 0)
            s = float(shared) if graded else float(shared > 0)
            dot = sum(a * b for a, b in zip(h[i], h_b[j], strict=True))
            out.append(s * dot + 1.0)
    return out


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("other", [False, True])
@pytest.mark.parametrize("cls", [ToyPairTerm, GradedToy])
def test_reduced_value_matches_a_python_loop(cls, other, reduction):
    h, y = batch(0, 5)
    kw = {"h": h, "labels": y}
    h_b, y_b = h, y
    if other:
        h_b, y_b = batch(1, 3)
        kw.update(h_other=h_b, labels_other=y_b)
    vals = loop_values(h.tolist(), y.tolist(), h_b.tolist(), y_b.tolist(), not other, cls.graded)
    expected = sum(vals) if reduction == "sum" else sum(vals) / len(vals)
    out = cls(reduction=reduction)(**kw)
    torch.testing.assert_close(out, torch.tensor(expected, dtype=h.dtype), rtol=1e-12, atol=1e-12)


def test_explicit_sim_replaces_labels():
    h, _ = batch(2, 4)
    sim = torch.rand(4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = 0.0
    for i in range(4):
        for j in range(4):
            if i != j:
                expected += sim[i, j].item() * float(h[i] @ h[j]) + 1.0
    out = ToyPairTerm(reduction="sum")(h=h, labels=None, sim=sim)
    torch.testing.assert_close(out, torch.tensor(expected, dtype=h.dtype))


def test_batch_without_pairs_gives_zero():
    h, y = batch(4, 1)
    assert ToyPairTerm()(h=h, labels=y).item() == 0.0


def test_own_reduction_override():
    h, y = batch(5, 5)
    vals = loop_values(h.tolist(), y.tolist(), h.tolist(), y.tolist(), True)
    out = MaxPairTerm()(h=h, labels=y)
    torch.testing.assert_close(out, torch.tensor(max(vals), dtype=h.dtype))


def test_checks_reduction_and_nonnegative_sim():
    with pytest.raises(ValueError, match="reduction"):
        ToyPairTerm(reduction="median")
    h, _ = batch(6, 3)
    with pytest.raises(ValueError, match="GradedToy needs a non-negative"):
        GradedToy()(h=h, labels=None, sim=-torch.ones(3, 3, dtype=h.dtype))
    ToyPairTerm()(h=h, labels=None, sim=-torch.ones(3, 3, dtype=h.dtype))  # allowed here


def test_inputs_match_forward_and_pair_values_is_required():
    names = PairwiseTerm.inputs + PairwiseTerm.optional_inputs
    params = list(inspect.signature(PairwiseTerm.forward).parameters)[1:]
    assert params == list(names)
    h, y = batch(7, 3)
    with pytest.raises(NotImplementedError, match="pair_values"):
        PairwiseTerm()(h=h, labels=y)
