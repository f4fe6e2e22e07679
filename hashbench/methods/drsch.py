"""DRSCH: Deep Regularized Similarity Comparison Hashing (Zhang, Lin, Zuo, Zhang, TIP 2015).

R. Zhang, L. Lin, R. Zhang, W. Zuo, L. Zhang, "Bit-Scalable Deep Hashing With Regularized Similarity
Learning for Image Retrieval and Person Re-Identification", *IEEE Transactions on Image
Processing* 24(12): 4766-4779, 2015. Seed 002 (METHODS.md section 2) fine-tunes it as WS-DRSCH.

Loss of a mini-batch of relaxed codes ``h = tanh(z)`` with similarity ``s_ij = 1`` when images ``i``
and ``j`` share a label (METHODS.md: "triplet ranking on codes with a Laplacian regulariser over the
batch similarity graph"):

    L = mean_{(q, i, j): s_qi = 1, s_qj = 0}  max(0, d(q, i) - d(q, j) + M)
        + lambda * mean_{i != j} 1/2 s_ij ||h_i - h_j||^2

with ``d(a, b) = (q_bits - h_a . h_b) / 2`` the relaxed Hamming distance. The second term is the
Laplacian regulariser ``tr(H^T L H)`` of the batch similarity graph (``L = D - S``), averaged over
the ordered pairs. Built from the shared terms :class:`~hashbench.losses.RankingTripletLoss`
(survey eq. 19, here with 0/1 similarity levels) and :class:`~hashbench.losses.LaplacianLoss`
(eq. 13, with the explicit label graph as affinity).

Interpretation (the TIP paper's exact normalisations are not in METHODS.md): every image of the batch
is an anchor and every (similar, dissimilar) pair of the rest of the batch forms a triplet; the
margin ``M`` defaults to 2 Hamming units (``null`` = ``bits / 4``; measured on Fashion-MNIST at 32 bits
with 5 epochs: 0.724 P@500 with ``M = 2`` against 0.427 with ``M = bits / 4 = 8``, docs/methods/
wsdh.md); ``lambda`` defaults to 0.1; the bit-scalable per-bit weights of the paper (optional in
METHODS.md) are not implemented: all bits weigh 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hashbench.losses import LaplacianLoss, RankingTripletLoss
from hashbench.losses.base import pairwise_similarity
from hashbench.methods.base import Optim, PairwiseHashingMethod
from hashbench.retrieval.evaluation import DEFAULT_TIES, TieRule


def drsch_loss(h: Tensor, sim: Tensor, margin: float, laplacian_weight: float) -> dict[str, Tensor]:
    """DRSCH loss terms of a batch (see the module docstring).

    Args:
        h: relaxed codes ``(n, q)`` in ``[-1, 1]``.
        sim: ``(n, n)`` 0/1 similarity.
        margin: triplet margin ``M`` in Hamming units.
        laplacian_weight: ``lambda``.

    Returns:
        ``{"loss", "triplet", "laplacian"}``.
    """
    triplet = RankingTripletLoss(margin=margin)(h=h, labels=None, sim=sim)
    laplacian = LaplacianLoss()(h=h, features=None, sim=sim)
    return {
        "loss": triplet + laplacian_weight * laplacian,
        "triplet": triplet,
        "laplacian": laplacian,
    }


class DRSCH(PairwiseHashingMethod):
    """DRSCH (Zhang et al., TIP 2015) on the shared backbone + ``tanh`` hash head.

    Args:
        bits: code length.
        backbone: backbone name.
        pretrained: backbone weights (see :class:`HashingMethod`).
        margin: triplet margin in Hamming units (default 2); ``None`` = ``bits / 4``.
        laplacian_weight: weight ``lambda`` of the Laplacian regulariser.
        optim: optimiser settings.
        ties: tie rule of the reported metrics.
    """

    activation = "tanh"

    def __init__(
        self,
        bits: int = 32,
        backbone: str = "small_cnn",
        pretrained: bool | str = False,
        margin: float | None = 2.0,
        laplacian_weight: float = 0.1,
        optim: Optim = Optim(),
        ties: TieRule = DEFAULT_TIES,
    ) -> None:
        super().__init__(bits, backbone, pretrained, optim, ties)
        self.margin = check_drsch_args(bits, margin, laplacian_weight)
        self.laplacian_weight = laplacian_weight

    def loss(self, h: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return drsch_loss(h, pairwise_similarity(labels), self.margin, self.laplacian_weight)


def check_drsch_args(bits: int, margin: float | None, laplacian_weight: float) -> float:
    """The effective margin (``bits / 4`` when ``None``); clear errors for negative values."""
    if margin is not None and margin < 0:
        raise ValueError(f"DRSCH margin must be >= 0 (Hamming units), got {margin}")
    if laplacian_weight < 0:
        raise ValueError(f"DRSCH laplacian_weight must be >= 0, got {laplacian_weight}")
    return bits / 4.0 if margin is None else float(margin)
