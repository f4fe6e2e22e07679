"""DSH: Deep Supervised Hashing (Liu, Wang, Shan, Chen, CVPR 2016).

Loss over the pairs ``(i, j)`` of a mini-batch, on real-valued (linear) outputs ``h`` (METHODS.md, 2):

    L = 1/2 s_ij ||h_i - h_j||^2 + 1/2 (1 - s_ij) max(m - ||h_i - h_j||^2, 0)
        + alpha (|| |h_i| - 1 ||_1 + || |h_j| - 1 ||_1),        m = 2q by default,

with ``s_ij = 1`` when the images share a label. Built from the shared terms
:class:`~hashbench.losses.ContrastiveLoss` (survey eq. 17) and
:class:`~hashbench.losses.L1ToBinaryLoss` (eq. 25). Seed 002 fine-tunes it (WS-DSH); seed 000
compares with it.

Resolved: the pair term is averaged over the ordered pairs ``i != j`` of the batch and the
regulariser over its images; since each image sits in ``2 (B - 1)`` ordered pairs, the paper's
per-pair sum corresponds to weighting the per-image mean by ``2 alpha``. ``alpha`` here multiplies
the per-image mean (default 0.01, the paper's value, which trains well in this normalisation).
"""

from __future__ import annotations

import torch

from hashbench.losses import ContrastiveLoss, L1ToBinaryLoss
from hashbench.methods.base import Optim, PairwiseHashingMethod
from hashbench.retrieval.evaluation import DEFAULT_TIES, TieRule


class DSH(PairwiseHashingMethod):
    """Deep Supervised Hashing (Liu et al., CVPR 2016) on the shared backbone + linear hash head.

    Args:
        bits: code length.
        backbone: backbone name.
        pretrained: backbone weights (see :class:`HashingMethod`).
        margin: contrastive margin ``m``; ``None`` = ``2 * bits`` (the paper's choice).
        alpha: weight of the ``|| |h| - 1 ||_1`` regulariser (paper: 0.01).
        optim: optimiser settings.
        ties: tie rule of the reported metrics.
    """

    activation = "identity"

    def __init__(
        self,
        bits: int = 32,
        backbone: str = "small_cnn",
        pretrained: bool | str = False,
        margin: float | None = None,
        alpha: float = 0.01,
        optim: Optim = Optim(),
        ties: TieRule = DEFAULT_TIES,
    ) -> None:
        super().__init__(bits, backbone, pretrained, optim, ties)
        self.contrastive = ContrastiveLoss(margin=margin)
        self.regulariser = L1ToBinaryLoss()
        self.alpha = alpha

    def loss(self, h: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        contrastive = self.contrastive(h=h, labels=labels)
        reg = self.regulariser(h=h)
        return {
            "loss": contrastive + self.alpha * reg,
            "contrastive": contrastive,
            "l1_to_binary": reg,
        }
