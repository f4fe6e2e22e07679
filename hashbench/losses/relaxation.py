"""Relaxations (survey section 4.5, eqs. 23-25).

Eqs. (23) and (24) are transforms, not objective terms: :class:`ScheduledTanh` replaces ``sgn`` by
``tanh(beta x)`` with a schedule for ``beta``, :class:`InnerProductRelaxation` is the real-valued
pair similarity ``phi_ij = 1/2 h_i^T h_j``. They are registered in
:data:`hashbench.losses.RELAXATIONS`, not in ``TERMS``. Eq. (25) is a term,
:class:`L1ToBinaryLoss`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from hashbench.losses.base import Reduction, check_codes, check_positive
from hashbench.losses.constraints import AbsL1ConstraintLoss

Schedule = Literal["constant", "power", "step"]


class ScheduledTanh(nn.Module):
    """``tanh(beta x)`` as a smooth ``sgn``, with ``beta`` growing during training, survey eq. (23).

    (Survey refs. [47, 48, 66], e.g. Zhang, Lin, Zhang et al., DRSCH, TIP 2015; the continuation of
    Cao, Long, Wang, Yu, "HashNet: Deep Learning to Hash by Continuation", ICCV 2017.) As ``beta``
    grows, ``tanh(beta x) -> sgn(x)``.

    Defect in the survey: the printed right-hand side ``(1 - exp(-beta A)) / (1 + exp(-beta A))``
    equals ``tanh(beta A / 2)``, not the ``tanh(beta A)`` of its left-hand side and text.
    Implemented: ``tanh(beta x)`` (the factor 2 is absorbed in ``beta``).

    Schedules of ``beta`` at training step ``t`` (set with :meth:`set_step`, e.g. to the trainer's
    ``global_step`` at every step, so resuming needs no saved state):

    - ``"constant"``: ``beta0``;
    - ``"power"``: ``beta0 (1 + gamma t)^power`` (HashNet's, ``gamma = 0.005``, ``power = 0.5``);
    - ``"step"``: ``beta0 factor^(t // every)``;

    capped at ``beta_max`` when given.

    Args:
        beta0: initial ``beta``.
        schedule: ``"constant"``, ``"power"`` or ``"step"``.
        gamma: rate of the ``"power"`` schedule.
        power: exponent of the ``"power"`` schedule.
        factor: multiplier of the ``"step"`` schedule.
        every: steps between multiplications of the ``"step"`` schedule.
        beta_max: upper bound on ``beta`` (``None``: none).
    """

    equation = "23"

    def __init__(
        self,
        beta0: float = 1.0,
        schedule: Schedule = "constant",
        gamma: float = 0.005,
        power: float = 0.5,
        factor: float = 2.0,
        every: int = 1000,
        beta_max: float | None = None,
    ) -> None:
        super().__init__()
        if schedule not in ("constant", "power", "step"):
            raise ValueError(f"schedule must be 'constant', 'power' or 'step', got {schedule!r}")
        self.beta0 = check_positive(beta0, "beta0")
        self.schedule = schedule
        self.gamma = check_positive(gamma, "gamma", allow_zero=True)
        self.power = float(power)
        self.factor = check_positive(factor, "factor")
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every!r}")
        self.every = int(every)
        self.beta_max = None if beta_max is None else check_positive(beta_max, "beta_max")
        self.step = 0

    def beta_at(self, step: int) -> float:
        """``beta`` at training step ``step`` (pure)."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        try:
            if self.schedule == "constant":
                beta = self.beta0
            elif self.schedule == "power":
                beta = self.beta0 * (1.0 + self.gamma * step) ** self.power
            else:
                beta = self.beta0 * self.factor ** (step // self.every)
        except OverflowError:
            beta = math.inf
        if self.beta_max is not None:
            beta = min(beta, self.beta_max)
        if not math.isfinite(beta):
            raise ValueError(f"beta overflowed at step {step}; set beta_max to cap the schedule")
        return float(beta)

    @property
    def beta(self) -> float:
        """``beta`` at the current step."""
        return self.beta_at(self.step)

    def set_step(self, step: int) -> None:
        """Set the training step that determines ``beta``."""
        self.step = int(step)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.beta * x)

    def extra_repr(self) -> str:
        return f"schedule={self.schedule}, beta0={self.beta0}, step={self.step}, beta={self.beta:g}"


def inner_product_similarity(
    h: Tensor, h_other: Tensor | None = None, scale: float = 0.5
) -> Tensor:
    """``phi[i, j] = scale * h_i^T h_j`` (``scale = 1/2``: survey eq. 24), shape ``(n, m)``."""
    check_codes(h)
    h_b = h if h_other is None else check_codes(h_other, "h_other")
    return scale * (h @ h_b.T)


class InnerProductRelaxation(nn.Module):
    """Real-valued pair similarity replacing the binary one, survey eq. (24).

    ``phi_ij = 1/2 A_.i^T A_.j`` replaces ``Omega_ij = 1/2 B_.i^T B_.j`` (Li, Wang, Kang, DPSH,
    IJCAI 2016; survey ref. [42]). Returns the ``(n, m)`` matrix for the batch against itself or a
    second set; :class:`hashbench.losses.PairwiseLikelihoodLoss` uses it.

    Args:
        scale: factor of the inner product (``1/2`` in the survey).
    """

    equation = "24"

    def __init__(self, scale: float = 0.5) -> None:
        super().__init__()
        self.scale = check_positive(scale, "scale")

    def forward(self, h: Tensor, h_other: Tensor | None = None) -> Tensor:
        return inner_product_similarity(h, h_other, self.scale)


class L1ToBinaryLoss(AbsL1ConstraintLoss):
    """L1 regulariser towards +-1, survey eq. (25): DSH's relaxation of the binary constraint.

    ``L_j = || |h_j| - 1 ||_1`` (Liu, Wang, Shan, Chen, "Deep Supervised Hashing for Fast Image
    Retrieval", CVPR 2016; survey ref. [49]); the same function as eq. (7),
    :class:`hashbench.losses.AbsL1ConstraintLoss`. DSH's full loss is
    :class:`hashbench.losses.ContrastiveLoss` plus ``alpha`` times this term summed over the two
    items of each pair.

    Defect in the survey: printed ``||A_.j - 1||_1`` (no absolute value), which pulls every output
    to +1. Implemented: ``|| |A_.j| - 1 ||_1`` as in DSH.

    Reduction: per-item L1 over bits, mean over the items of the batch (``sum`` with
    ``reduction="sum"``).

    Args:
        reduction: ``"mean"`` or ``"sum"`` over items.
    """

    equation = "25"

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


__all__ = [
    "InnerProductRelaxation",
    "L1ToBinaryLoss",
    "ScheduledTanh",
    "inner_product_similarity",
]
