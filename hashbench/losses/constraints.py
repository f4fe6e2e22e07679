"""Hash-code constraints (survey section 4.2, eqs. 2-12) and DHN's smooth quantisation.

Quantisation (2, and DHN's ``log cosh``), bit independence (3), bit balance (4, 5, 6), hash
constraints (7, 8, 9), parameter regularisation (10), sparsity (11, 12).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from hashbench.losses.base import (
    Reduction,
    Term,
    binary_codes,
    check_codes,
    check_positive,
    check_reduction,
    reduce_items,
)


class QuantizationLoss(Term):
    """Quantisation error, survey eq. (2).

    ``L = ||A - B||_F^2`` (survey refs. [23, 38, 40-42, 63, 64]; e.g. Liong, Lu, Wang et al.,
    CVPR 2015), per item ``||h_i - b_i||_2^2``. ``b`` defaults to ``where(h >= 0, 1, -1)``,
    detached, so the gradient pulls ``h`` towards its own binarisation.

    Reduction: mean over the items of the batch (``sum`` with ``reduction="sum"``). The knngan
    term ``L_H = 1/2 ||b - R||^2`` is this term with weight 1/2 and ``reduction="sum"``.

    Args:
        reduction: ``"mean"`` or ``"sum"`` over items.
    """

    inputs = ("h",)
    optional_inputs = ("b",)
    equation = "2"

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, h: Tensor, b: Tensor | None = None) -> Tensor:
        check_codes(h)
        if b is None:
            b = binary_codes(h)
        elif b.shape != h.shape:
            raise ValueError(
                f"`b` must have the shape of `h` {tuple(h.shape)}, got {tuple(b.shape)}"
            )
        return reduce_items((h - b.to(h.dtype)).pow(2).sum(1), self.reduction)


def _log_cosh(x: Tensor) -> Tensor:
    """Numerically stable ``log(cosh(x)) = |x| + log(1 + exp(-2|x|)) - log 2``."""
    ax = x.abs()
    return ax + F.softplus(-2.0 * ax) - math.log(2.0)


class SmoothQuantizationLoss(Term):
    """Smooth quantisation of DHN (not in the survey; needed for a DHN configuration).

    ``L = sum_i sum_k log cosh(|h_ik| - 1)`` (Zhu, Long, Wang, Cao, "Deep Hashing Network for
    Efficient Similarity Retrieval", AAAI 2016): a smooth surrogate of ``|| |h| - 1 ||_1`` that is
    quadratic near the target and linear far from it. Zero exactly on +-1 codes.

    Reduction: per-item sum over bits, mean over the items of the batch (``sum`` with
    ``reduction="sum"``).

    Args:
        reduction: ``"mean"`` or ``"sum"`` over items.
    """

    inputs = ("h",)
    equation = "DHN"

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, h: Tensor) -> Tensor:
        check_codes(h)
        return reduce_items(_log_cosh(h.abs() - 1.0).sum(1), self.reduction)


class BitIndependenceLoss(Term):
    """Bit independence (decorrelation), survey eq. (3).

    ``L = || (1/n) H^T H - I ||_F^2`` for the ``(n, q)`` batch codes ``H``, i.e. the bits' second
    moment matrix is pushed to the identity (survey ref. [9], Wang, Zhang, Sebe, Shen, TPAMI 2017).

    Defect in the survey: ``||B B^T - I||_F^2`` (``B`` of size ``L x N``) has diagonal ``N`` for
    +-1 codes, so it can never approach ``I``. Implemented: the normalised form ``(1/n) H^T H``.
    Applied to the relaxed codes ``h`` (``B`` carries no gradient); pass +-1 codes as ``h`` to
    evaluate it on binary codes.

    Reduction: none over items - a statistic of the whole batch (the ``1/n`` is inside the norm);
    summed over the ``q x q`` entries.
    """

    inputs = ("h",)
    equation = "3"

    def forward(self, h: Tensor) -> Tensor:
        check_codes(h)
        n, q = h.shape
        gram = h.T @ h / n
        eye = torch.eye(q, dtype=h.dtype, device=h.device)
        return (gram - eye).pow(2).sum()


class BitBalanceSumLoss(Term):
    """Bit balance as the squared norm of the per-bit sums, survey eq. (4).

    ``L = ||B 1||_2^2`` (Jiang, Li, "Deep Cross-Modal Hashing", CVPR 2017; survey ref. [41]):
    ``sum_k (sum_i h_ik)^2``, zero when every bit is +1 and -1 equally often.

    Defect in the survey: printed ``||B I||_2^2`` with ``I``; ``B I = B`` would make this the
    squared norm of the codes. Implemented: ``B 1`` with ``1`` the all-ones vector (DCMH's
    ``||F 1||^2``), applied to the relaxed codes ``h``.

    Reduction: ``"mean"`` divides the batch value by ``n`` (the items of the batch), ``"sum"`` is
    the printed value on the batch. For constant codes the value is ``q n`` (mean) or ``q n^2``
    (sum); compare eq. (6), which divides by ``n^2``.

    Args:
        reduction: ``"mean"`` (divide by ``n``) or ``"sum"`` (printed form).
    """

    inputs = ("h",)
    equation = "4"

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, h: Tensor) -> Tensor:
        check_codes(h)
        value = h.sum(0).pow(2).sum()
        return value / h.shape[0] if self.reduction == "mean" else value


class BitVarianceLoss(Term):
    """Bit balance by maximising each bit's variance, survey eq. (5).

    ``L = -(1/n) tr(H_c^T H_c) = -sum_k Var_i(h_ik)`` (survey ref. [65], He, thesis, UESTC 2018;
    the variance term of Liong, Lu, Wang et al., "Deep Hashing for Compact Binary Codes
    Learning", CVPR 2015). For +-1 codes ``Var(h_k) = 1 - mean_k^2``, so the minimum ``-q`` is
    reached exactly by balanced codes.

    Defect in the survey: "tr(.) denotes the rank" - it is the trace. Also, the printed
    ``tr(A A^T)``, if minimised, would shrink the outputs; the heading says the within-bit variance
    is *maximised*. Implemented: the negative (centred) variance, a quantity to minimise (it is
    negative). Interpretation: ``center=False`` gives ``-(1/n) tr(A A^T)`` uncentred, as in DH,
    which assumes zero-mean outputs.

    Reduction: the variance is the mean over the items of the batch (biased, ``1/n``); summed
    over bits.

    Args:
        center: subtract the batch mean of each bit before squaring (a true variance).
    """

    inputs = ("h",)
    equation = "5"

    def __init__(self, center: bool = True) -> None:
        super().__init__()
        self.center = center

    def forward(self, h: Tensor) -> Tensor:
        check_codes(h)
        hc = h - h.mean(0, keepdim=True) if self.center else h
        return -hc.pow(2).sum() / h.shape[0]


class BitMeanLoss(Term):
    """Bit balance as zero-mean bits, survey eq. (6).

    ``L = sum_{k=1}^{q} (mean_i h_ik)^2`` (Zhao, Huang, Wang, Tan, "Deep Semantic Ranking Based
    Hashing for Multi-Label Image Retrieval", CVPR 2015; survey ref. [21]); zero for balanced
    codes. Applied to the relaxed codes ``h`` (the survey writes ``B``, which has no gradient).

    Reduction: the mean over the items of the batch is inside the formula; summed over bits.
    """

    inputs = ("h",)
    equation = "6"

    def forward(self, h: Tensor) -> Tensor:
        check_codes(h)
        return h.mean(0).pow(2).sum()


class AbsL1ConstraintLoss(Term):
    """Hash constraint ``|| |h| - 1 ||_1``, survey eq. (7).

    ``L = sum_j || |A_.j| - 1 ||_1`` (Wang, Yu, Xiao, *Acta Automatica Sinica* 2019; survey
    ref. [66]): every output's magnitude is pulled to 1. Zero exactly on +-1 codes. The same
    function as eq. (25), DSH's regulariser (:class:`hashbench.losses.L1ToBinaryLoss`).

    Defect in the survey: the sum runs over ``i = 1..N`` while the summand is indexed by ``j``.
    Implemented: the sum over items.

    Reduction: per-item L1 over bits, mean over the items of the batch (``sum`` with
    ``reduction="sum"``).

    Args:
        reduction: ``"mean"`` or ``"sum"`` over items.
    """

    inputs = ("h",)
    equation = "7"

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, h: Tensor) -> Tensor:
        check_codes(h)
        return reduce_items((h.abs() - 1.0).abs().sum(1), self.reduction)


class NearestBinaryLoss(Term):
    """Hash constraint: squared distance to the nearest +-1 value, survey eq. (8).

    ``L_j = sum_k min((h_jk + 1)^2, (h_jk - 1)^2) = sum_k (|h_jk| - 1)^2`` (Chen, thesis, Xidian
    University 2018; survey ref. [63]). Zero exactly on +-1 codes.

    Defect in the survey: printed ``min(||A_.j + 1||^2, ||A_.j - 1||^2)`` with the all-ones vector
    - a minimum over whole vectors, which pulls every code towards all +1 or all -1 (the same code
    for every item). Implemented: the minimum per bit (distance to the nearest binary code).

    Reduction: per-item sum over bits, mean over the items of the batch (``sum`` with
    ``reduction="sum"``).

    Args:
        reduction: ``"mean"`` or ``"sum"`` over items.
    """

    inputs = ("h",)
    equation = "8"

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, h: Tensor) -> Tensor:
        check_codes(h)
        per_bit = torch.minimum((h + 1.0).pow(2), (h - 1.0).pow(2))
        return reduce_items(per_bit.sum(1), self.reduction)


class ClampedConstraintLoss(Term):
    """Hash constraint on clamped outputs, survey eq. (9).

    ``L_j = sum_{i=1}^{q} (1 - |f(A_ij)|)^2`` with ``f`` = clamp to ``[-1, 1]`` (Guo, Zhang, Li,
    "Hash Learning with Convolutional Neural Networks for Semantic Based Image Retrieval", PAKDD
    2016; survey ref. [43]). Zero for every output with ``|h| >= 1`` (and no gradient there).

    Reduction: per-item sum over bits, mean over the items of the batch (``sum`` with
    ``reduction="sum"``).

    Args:
        reduction: ``"mean"`` or ``"sum"`` over items.
    """

    inputs = ("h",)
    equation = "9"

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, h: Tensor) -> Tensor:
        check_codes(h)
        per_bit = (1.0 - h.clamp(-1.0, 1.0).abs()).pow(2)
        return reduce_items(per_bit.sum(1), self.reduction)


class ParameterRegularizationLoss(Term):
    """Parameter regularisation, survey eq. (10).

    ``L = sum_W ||W||_F`` over the given parameter tensors (Bai, Wang, Zhao et al., FITEE 2018;
    survey ref. [38]); ``squared=True`` gives ``sum_W ||W||_F^2`` (weight decay, as in Liong et al.,
    CVPR 2015).

    Input ``weights``: a list (or tuple) of parameter tensors, e.g. ``[head.linear.weight]``.

    Reduction: none - summed over the tensors (an empty list gives 0).

    Args:
        squared: use the squared Frobenius norm.
    """

    inputs = ("weights",)
    equation = "10"

    def __init__(self, squared: bool = False) -> None:
        super().__init__()
        self.squared = squared

    def forward(self, weights: list[Tensor] | tuple[Tensor, ...]) -> Tensor:
        if isinstance(weights, Tensor):
            weights = [weights]
        weights = list(weights)
        if not weights:
            return torch.zeros(())
        norms = [w.pow(2).sum() if self.squared else torch.linalg.vector_norm(w) for w in weights]
        return torch.stack(norms).sum()


class SparsityKLLoss(Term):
    """Sparsity by KL divergence of mean activations, survey eq. (11).

    ``L = sum_{k=1}^{s} KL(rho || rho_hat_k) = sum_k rho log(rho / rho_hat_k)
    + (1 - rho) log((1 - rho) / (1 - rho_hat_k))`` with ``rho_hat_k = (1/n) sum_i a_k(x_i)`` the
    mean activation of unit ``k`` over the batch (sparse auto-encoder; Ou, Wu, Zhu et al., Computer
    Engineering & Science 2015; survey ref. [68]).

    Defect in the survey: the second term lacks its ``log``, and ``rho_hat_i = (1/N) sum_i a_i(x)``
    uses ``i`` both for the unit and the sample. Implemented: the Bernoulli KL, averaging over
    samples.

    Activations must lie in ``(0, 1)``: with ``input_range="signed"`` (tanh codes)
    ``a = (1 + h) / 2``; with ``"unit"`` (sigmoid outputs) ``a = h``. ``rho_hat`` is clamped to
    ``[eps, 1 - eps]``.

    Reduction: the mean over the items of the batch is inside ``rho_hat``; summed over units.

    Args:
        rho: target mean activation (close to 0 for sparsity), in ``(0, 1)``.
        input_range: ``"signed"`` for outputs in ``[-1, 1]``, ``"unit"`` for outputs in ``[0, 1]``.
        eps: clamp for ``rho_hat``.
    """

    inputs = ("h",)
    equation = "11"

    def __init__(
        self,
        rho: float = 0.05,
        input_range: Literal["signed", "unit"] = "signed",
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if not 0.0 < rho < 1.0:
            raise ValueError(f"rho must be in (0, 1), got {rho!r}")
        if input_range not in ("signed", "unit"):
            raise ValueError(f"input_range must be 'signed' or 'unit', got {input_range!r}")
        self.rho = float(rho)
        self.input_range = input_range
        self.eps = check_positive(eps, "eps")

    def forward(self, h: Tensor) -> Tensor:
        check_codes(h)
        a = (1.0 + h) / 2.0 if self.input_range == "signed" else h
        rho_hat = a.mean(0).clamp(self.eps, 1.0 - self.eps)
        rho = self.rho
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        return kl.sum()


class SparsityL1Loss(Term):
    """Sparsity by an L1 penalty, survey eq. (12).

    ``L_i = alpha ||h_i||_1`` (Masci, Bronstein, Bronstein et al., "Sparse similarity-preserving
    hashing", arXiv 1312.5479 / ICLR 2014; survey ref. [44]).

    Interpretation: the survey writes ``alpha ||B_.i||_1`` on the binary code; for +-1 codes that is
    the constant ``q`` (no effect), so the penalty is applied to the network output ``h``, whose
    zeros are the sparse code's zeros, as in [44].

    Reduction: per-item L1 over bits, mean over the items of the batch (``sum`` with
    ``reduction="sum"``).

    Args:
        alpha: sparsity strength.
        reduction: ``"mean"`` or ``"sum"`` over items.
    """

    inputs = ("h",)
    equation = "12"

    def __init__(self, alpha: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.alpha = check_positive(alpha, "alpha", allow_zero=True)
        self.reduction = check_reduction(reduction)

    def forward(self, h: Tensor) -> Tensor:
        check_codes(h)
        return self.alpha * reduce_items(h.abs().sum(1), self.reduction)


__all__ = [
    "AbsL1ConstraintLoss",
    "BitBalanceSumLoss",
    "BitIndependenceLoss",
    "BitMeanLoss",
    "BitVarianceLoss",
    "ClampedConstraintLoss",
    "NearestBinaryLoss",
    "ParameterRegularizationLoss",
    "QuantizationLoss",
    "SmoothQuantizationLoss",
    "SparsityKLLoss",
    "SparsityL1Loss",
]
