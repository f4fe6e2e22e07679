"""Reconstruction error (survey section 4.1, eq. 1)."""

from __future__ import annotations

from torch import Tensor

from hashbench.losses.base import Reduction, Term, check_reduction, reduce_items


class ReconstructionLoss(Term):
    """Reconstruction error, survey eq. (1).

    ``L = ||X - W B - c 1_{1xN}||_F^2`` (Bai, Wang, Zhao et al., *Frontiers of Information
    Technology & Electronic Engineering* 19(9), 2018; survey ref. [38]); written per item as
    ``||x_i - x_hat_i||_2^2`` with ``x_hat_i = W b_i + c`` (or any decoder's output: an
    auto-encoder's, a GAN generator's image).

    Defect in the survey: the printed norm carries the subscript ``1xN``; the text defines the
    Frobenius norm and the all-ones matrix ``1_{axb}``, so the bias is broadcast as ``c 1_{1xN}``.
    Implemented: the squared Frobenius norm of ``X - X_hat``.

    The decoder is the method's; this term takes its output ``x_hat``. Tensors of any shape
    ``(n, ...)`` are flattened per item.

    Reduction: per-item squared error summed over the item's dimensions (divided by their number
    with ``average_dims``), then mean over the items of the batch (``sum`` with
    ``reduction="sum"``).

    Args:
        reduction: ``"mean"`` or ``"sum"`` over items.
        average_dims: divide each item's error by its number of dimensions (pixel-wise MSE).
    """

    inputs = ("x", "x_hat")
    equation = "1"

    def __init__(self, reduction: Reduction = "mean", average_dims: bool = False) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.average_dims = average_dims

    def forward(self, x: Tensor, x_hat: Tensor) -> Tensor:
        if x.shape != x_hat.shape or x.ndim < 1:
            raise ValueError(
                f"`x` and `x_hat` must have the same shape (n, ...), got {tuple(x.shape)} and "
                f"{tuple(x_hat.shape)}"
            )
        err = (x - x_hat).reshape(x.shape[0], -1).pow(2)
        per_item = err.mean(1) if self.average_dims else err.sum(1)
        return reduce_items(per_item, self.reduction)
