"""Cauchy and cosine pairwise likelihood terms of Deep Cauchy Hashing and HashGAN.

Cauchy terms: Cao, Long, Liu, Wang, "Deep Cauchy Hashing for Hamming Space Retrieval", CVPR 2018,
as used in stage 3 of PC-AEGAN (Qiang et al., *Journal of Taiyuan University of Technology* 51(4),
2020, eqs. 1, 4, 13-16; METHODS.md section 3). Cosine terms: Cao, Liu, Long, Wang, "HashGAN: Deep
Learning to Hash with Pair Conditional Wasserstein GAN", CVPR 2018 (the PC-WGAN ablation).

Pairs follow :mod:`hashbench.losses`: the ordered pairs ``i != j`` of a batch, or all ``n x m``
pairs against a second set (``h_other``). The normalised distance of eq. (13) is

    d(h_i, h_j) = K/2 * (1 - cos(h_i, h_j)),   K = code length,

the Hamming distance for +-1 codes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hashbench.losses.base import (
    PairwiseTerm,
    Reduction,
    Term,
    check_codes,
    check_positive,
    check_reduction,
    reduce_items,
)


def cosine_matrix(h_a: Tensor, h_b: Tensor) -> Tensor:
    """``cos[i, j] = <a_i, b_j> / sqrt(|a_i|^2 |b_j|^2)`` (0 for a zero vector).

    The norms are multiplied inside one square root, so two +-1 codes give exactly ``cos = 1``.
    """
    dot = h_a @ h_b.T
    norms = torch.sqrt(
        (h_a.pow(2).sum(1, keepdim=True) * h_b.pow(2).sum(1)[None, :]).clamp_min(1e-24)
    )
    return dot / norms


def cauchy_distance(h_a: Tensor, h_b: Tensor, eps: float = 0.0) -> Tensor:
    """``d[i, j] = K/2 * max(1 - cos(a_i, b_j), 0) + eps`` (seed 003 eq. 13)."""
    return 0.5 * h_a.shape[1] * (1.0 - cosine_matrix(h_a, h_b)).clamp_min(0.0) + eps


def _cosine_to_ones(a: Tensor) -> Tensor:
    """``cos(a_i, 1)`` per row of ``a`` ``(n, K)``, ``1`` the all-ones vector."""
    return a.sum(1) / torch.sqrt((a.pow(2).sum(1) * a.shape[1]).clamp_min(1e-24))


def class_balance_weights(sim: Tensor, mask: Tensor) -> Tensor:
    """``w_ij = |S| / |S_1|`` for similar and ``|S| / |S_0|`` for dissimilar pairs (eq. 4).

    ``|S|`` counts the pairs selected by ``mask``, ``|S_1|`` the similar (``s > 0``) and ``|S_0|``
    the dissimilar ones among them. A kind of pair that does not occur gets weight 0 (it has no
    pairs to weigh).
    """
    pos = (sim > 0) & mask
    neg = (sim <= 0) & mask
    total = mask.sum().to(sim.dtype)
    n_pos = pos.sum().to(sim.dtype)
    n_neg = neg.sum().to(sim.dtype)
    w_pos = total / n_pos.clamp_min(1.0)
    w_neg = total / n_neg.clamp_min(1.0)
    return torch.where(pos, w_pos, torch.where(neg, w_neg, torch.zeros_like(sim)))


class CauchyCrossEntropyLoss(PairwiseTerm):
    """Weighted Cauchy cross-entropy, DCH (Cao et al., CVPR 2018) / seed 003 eqs. (1), (4), (15).

    With ``d_ij = K/2 (1 - cos(h_i, h_j)) + eps`` and ``sigma(d) = gamma / (gamma + d)``:

        L_Fc = sum_ij w_ij [ -s_ij log sigma(d_ij) - (1 - s_ij) log(1 - sigma(d_ij)) ]
             = sum_ij w_ij [ s_ij log(d_ij / gamma) + log(1 + gamma / d_ij) ]

    computed as ``s log1p(d / gamma) + (1 - s) log1p(gamma / d)``. ``w_ij`` are the class-imbalance
    weights of eq. (4) over the pairs of the batch (``balance=False``: all 1).

    Resolved (METHODS.md section 3): eq. (15) of the seed is garbled; this is DCH's form.
    Interpretation: ``eps`` (default 1e-6, DCH's released code adds the same constant) keeps
    ``log(gamma / d)`` finite for two parallel codes of a dissimilar pair; ``s`` is 1 for items
    sharing a label, else 0 (an explicit ``sim`` is used as given).

    Reduction: ``"mean"`` (default) divides the weighted sum by the number of pairs ``|S|``;
    ``"sum"`` returns the weighted sum. A batch without pairs gives 0.

    Args:
        gamma: Cauchy scale ``gamma`` (> 0).
        eps: constant added to the distance (>= 0).
        balance: use the weights ``w_ij`` of eq. (4).
        reduction: ``"mean"`` or ``"sum"`` over pairs.
    """

    equation = "DCH"

    def __init__(
        self,
        gamma: float = 20.0,
        eps: float = 1e-6,
        balance: bool = True,
        reduction: Reduction = "mean",
    ) -> None:
        gamma = check_positive(gamma, "gamma")
        eps = check_positive(eps, "eps", allow_zero=True)
        super().__init__(reduction)
        self.gamma = gamma
        self.eps = eps
        self.balance = bool(balance)

    def pair_values(self, h: Tensor, h_b: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        d = cauchy_distance(h, h_b, self.eps)
        values = sim * torch.log1p(d / self.gamma) + (1.0 - sim) * torch.log1p(self.gamma / d)
        return values * class_balance_weights(sim, mask) if self.balance else values


class CauchyQuantizationLoss(Term):
    """Cauchy quantisation loss, DCH (Cao et al., CVPR 2018) / seed 003 eqs. (12), (16).

        L_Fq = sum_i log(1 + d(|h_i|, 1) / gamma),   d(|h_i|, 1) = K/2 (1 - cos(|h_i|, 1)),

    ``1`` the all-ones vector: the negative log of the Cauchy prior ``P(h_i)`` of eq. (12). It is 0
    exactly when ``|h_i|`` is parallel to ``1`` (e.g. +-1 codes).

    Reduction: ``"mean"`` (default) over items, or ``"sum"`` (the printed eq. 16).

    Args:
        gamma: Cauchy scale ``gamma`` (> 0).
        reduction: ``"mean"`` or ``"sum"`` over items.
    """

    inputs = ("h",)
    equation = "DCH-q"

    def __init__(self, gamma: float = 20.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.gamma = check_positive(gamma, "gamma")
        self.reduction = check_reduction(reduction)

    def forward(self, h: Tensor) -> Tensor:
        check_codes(h)
        cos = _cosine_to_ones(h.abs())
        d = 0.5 * h.shape[1] * (1.0 - cos).clamp_min(0.0)
        return reduce_items(torch.log1p(d / self.gamma), self.reduction)


class CosineCrossEntropyLoss(PairwiseTerm):
    """HashGAN's weighted cosine cross-entropy (Cao, Liu, Long, Wang, CVPR 2018, eq. 6).

    The adaptive sigmoid of the cosine, ``P(s_ij = 1) = sigma(alpha cos(h_i, h_j))``, gives

        L = sum_ij w_ij [ log(1 + exp(alpha cos_ij)) - alpha s_ij cos_ij ],

    with the class-imbalance weights ``w_ij`` of seed 003 eq. (4) (``balance=False``: all 1).

    Interpretation: ``alpha`` is a fixed hyper-parameter (HashGAN chooses it so that the sigmoid
    spans (0, 1) over cos in [-1, 1]); default 10.

    Reduction: ``"mean"`` (default) divides the weighted sum by the number of pairs; ``"sum"``.

    Args:
        alpha: sigmoid slope (> 0).
        balance: use the weights ``w_ij`` of eq. (4).
        reduction: ``"mean"`` or ``"sum"`` over pairs.
    """

    equation = "HashGAN"

    def __init__(
        self, alpha: float = 10.0, balance: bool = True, reduction: Reduction = "mean"
    ) -> None:
        alpha = check_positive(alpha, "alpha")
        super().__init__(reduction)
        self.alpha = alpha
        self.balance = bool(balance)

    def pair_values(self, h: Tensor, h_b: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        x = self.alpha * cosine_matrix(h, h_b)
        values = torch.nn.functional.softplus(x) - sim * x
        return values * class_balance_weights(sim, mask) if self.balance else values


class CosineQuantizationLoss(Term):
    """HashGAN's cosine quantisation loss (Cao, Liu, Long, Wang, CVPR 2018, eq. 7).

        L_q = sum_i (1 - cos(|h_i|, 1)),

    0 for +-1 codes.

    Reduction: ``"mean"`` (default) over items, or ``"sum"``.

    Args:
        reduction: ``"mean"`` or ``"sum"`` over items.
    """

    inputs = ("h",)
    equation = "HashGAN-q"

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, h: Tensor) -> Tensor:
        check_codes(h)
        cos = _cosine_to_ones(h.abs())
        return reduce_items((1.0 - cos).clamp_min(0.0), self.reduction)
