"""Classification losses (survey section 4.4, eqs. 20-22, and the hinge-softmax of eq. 26).

Convention: these terms take ``logits`` ``(n, c)``; the method owns the classifier that produces
them (typically ``nn.Linear(q, c)`` on the relaxed code ``h``, bias-free on ``b`` or ``h`` for
eq. 22, or cosine logits for a normalised-weight softmax). The terms own no parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hashbench.losses.base import (
    Reduction,
    Term,
    check_positive,
    check_reduction,
    reduce_items,
    reduce_pairs,
)


def _check_logits_labels(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    if logits.ndim != 2 or not logits.is_floating_point():
        raise ValueError(
            f"`logits` must be a 2-d float tensor (items, classes), got {tuple(logits.shape)}"
        )
    if labels.shape != logits.shape:
        raise ValueError(
            f"`labels` must be multi-hot (items, classes) like `logits` {tuple(logits.shape)}, got "
            f"{tuple(labels.shape)}; one-hot encode single labels (hashbench labels are multi-hot)"
        )
    return logits, (labels > 0).to(logits.dtype)


class SoftmaxLoss(Term):
    """Softmax cross-entropy, survey eq. (20).

    ``L = -(1/N) sum_i log( exp(W_{y_i}^T x_i) / sum_j exp(W_j^T x_i) )`` on ``logits = W^T x``
    (standard; e.g. Guo, Zhang, Li, PAKDD 2016, and Lin, Yang, Hsiao, Chen, CVPRW 2015).

    Interpretation (multi-label): the target distribution of an item is its normalised multi-hot
    vector, ``L_i = -sum_c (y_ic / |y_i|) log softmax(logits_i)_c``; for one-hot labels this is
    eq. (20) exactly. Items with no label are left out of the mean.

    Reduction: mean over the labelled items of the batch (``sum`` with ``reduction="sum"``).

    Args:
        reduction: ``"mean"`` or ``"sum"`` over items.
    """

    inputs = ("logits", "labels")
    equation = "20"

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        logits, y = _check_logits_labels(logits, labels)
        count = y.sum(1)
        has = count > 0
        target = y / count.clamp_min(1.0)[:, None]
        per_item = -(target * F.log_softmax(logits, dim=1)).sum(1)
        per_item = per_item[has]
        if per_item.numel() == 0:
            return logits.sum() * 0.0
        return reduce_items(per_item, self.reduction)


class MultiLabelBCELoss(Term):
    """Multi-label binary cross-entropy, survey eq. (21).

    ``L_x = -sum_{l=1}^{c} (y_l log p_l + (1 - y_l) log(1 - p_l))`` with ``p = sigmoid(logits)``
    (e.g. Chen, Cai, Lu et al., MICCAI 2018, survey ref. [48]); computed from the logits stably.

    Reduction: per-item sum over labels, mean over the items of the batch (``sum`` with
    ``reduction="sum"``).

    Args:
        reduction: ``"mean"`` or ``"sum"`` over items.
    """

    inputs = ("logits", "labels")
    equation = "21"

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        logits, y = _check_logits_labels(logits, labels)
        per_item = F.binary_cross_entropy_with_logits(logits, y, reduction="none").sum(1)
        return reduce_items(per_item, self.reduction)


class LinearClassificationLoss(Term):
    """Linear (least-squares) classification of the codes, survey eq. (22).

    ``L = ||Y - B W||_F^2`` (Zhou, Shen, Liu et al., "Graph Convolutional Network Hashing", IEEE
    TCyb 2018; survey ref. [46]); per item ``||y_i - logits_i||_2^2`` with ``logits = B W``
    computed by the method's bias-free linear classifier on the codes (``b`` as printed, or ``h``
    for a gradient to the encoder).

    Reduction: per-item squared error summed over classes, mean over the items of the batch
    (``sum`` with ``reduction="sum"``).

    Args:
        reduction: ``"mean"`` or ``"sum"`` over items.
    """

    inputs = ("logits", "labels")
    equation = "22"

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        logits, y = _check_logits_labels(logits, labels)
        return reduce_items((y - logits).pow(2).sum(1), self.reduction)


class HingeSoftmaxLoss(Term):
    """Hinge-softmax loss, survey eq. (26).

    With ``p = softmax(logits)``: ``L(y, p) = 0`` if ``p_y >= max_{c != y} p_c + m``, else
    ``-log p_y`` (Guo, Zhang, Li, "Hash Learning with Convolutional Neural Networks for Semantic
    Based Image Retrieval", PAKDD 2016; survey ref. [43]). Items already classified with a
    probability margin ``m`` stop contributing.

    Interpretation (multi-label): the condition and ``-log p_y`` are evaluated for each positive
    label ``y`` against the largest probability among the item's *negative* labels; for one-hot
    labels this is eq. (26) exactly. An item with every class positive has no competitor and costs
    0. The default ``m = 0.1`` is ours (the survey gives no value).

    Reduction: mean over the (item, positive label) pairs of the batch (one per item for
    single-label data); ``sum`` with ``reduction="sum"``.

    Args:
        margin: probability margin ``m``.
        reduction: ``"mean"`` or ``"sum"`` over (item, positive label) pairs.
    """

    inputs = ("logits", "labels")
    equation = "26"

    def __init__(self, margin: float = 0.1, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.margin = check_positive(margin, "margin", allow_zero=True)
        self.reduction = check_reduction(reduction)

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        logits, y = _check_logits_labels(logits, labels)
        pos = y > 0
        log_p = F.log_softmax(logits, dim=1)
        p = log_p.exp()
        neg_max = p.masked_fill(pos, -1.0).max(1, keepdim=True).values  # -1: no negative label
        active = pos & (p < neg_max + self.margin) & (neg_max >= 0)
        values = torch.where(active, -log_p, torch.zeros_like(log_p))
        return reduce_pairs(values, pos, self.reduction)  # over the (item, positive label) pairs


__all__ = ["HingeSoftmaxLoss", "LinearClassificationLoss", "MultiLabelBCELoss", "SoftmaxLoss"]
