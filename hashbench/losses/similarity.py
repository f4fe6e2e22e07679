"""Similarity preservation (survey section 4.3, eqs. 13-19 and 27).

Sample-space similarity: Laplacian (13); the KNN graph term lives in :mod:`hashbench.losses.knn`.
Semantic similarity: pairwise MSE (14), pairwise likelihood (15), class separation (16),
contrastive margin (17), KL between semantic and Hamming distributions (18), ranking triplets (19)
and their order-sensitive weighting (27).

All pairs are taken within the mini-batch (ordered pairs ``i != j``) or between the batch and a
second set (``h_other``: all ``n x m`` pairs); see :mod:`hashbench.losses`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from hashbench.losses.base import (
    PairwiseTerm,
    Reduction,
    check_positive,
    check_rows,
    reduce_pairs,
    relaxed_hamming,
    resolve_pairs,
    squared_euclidean,
)


class LaplacianLoss(PairwiseTerm):
    """Laplacian similarity preservation, survey eq. (13).

    ``L = tr(A L A^T) = 1/2 sum_{i,j} r_ij ||h_i - h_j||^2`` with the graph Laplacian
    ``L = D - R``, ``d_jj = sum_i r_ij`` and the heat-kernel affinity
    ``r_ij = exp(-||x_i - x_j||^2 / (2 sigma^2))`` on the input features (Bai, Wang, Zhao et al.,
    FITEE 2018; survey ref. [38]). Taken over the pairs of a batch: ``features`` are the batch's
    input features ``(n, d)``; an explicit affinity ``sim`` ``(n, m)`` replaces the heat kernel.

    The affinities are constants: features are detached (the survey fixes ``R`` from the inputs).

    Defect in the survey: ``r_ij`` is called a "distance"; it is a similarity (large for close
    samples), as the heat kernel shows. Implemented: the heat kernel as written.

    Reduction: ``"sum"`` gives ``sum_{i != j} 1/2 r_ij ||h_i - h_j||^2``, i.e. ``tr(H^T L H)`` on
    the batch; ``"mean"`` (default) divides by the number of ordered pairs ``n (n - 1)`` (or
    ``n m`` against ``h_other``).

    Args:
        sigma: bandwidth of the heat kernel.
        reduction: ``"mean"`` or ``"sum"`` over pairs.
    """

    inputs = ("h", "features")
    optional_inputs = ("sim", "h_other", "features_other")
    equation = "13"

    def __init__(self, sigma: float = 1.0, reduction: Reduction = "mean") -> None:
        sigma = check_positive(sigma, "sigma")
        super().__init__(reduction)
        self.sigma = sigma

    def forward(
        self,
        h: Tensor,
        features: Tensor | None,
        sim: Tensor | None = None,
        h_other: Tensor | None = None,
        features_other: Tensor | None = None,
    ) -> Tensor:
        h_b, r, mask = resolve_pairs(h, h_other, sim=sim, need_sim=False)
        if r is None:
            r = self._heat_kernel(h, h_b, features, h_other, features_other)
        return self.pair_loss(h, h_b, r, mask)

    def _heat_kernel(
        self,
        h: Tensor,
        h_b: Tensor,
        features: Tensor | None,
        h_other: Tensor | None,
        features_other: Tensor | None,
    ) -> Tensor:
        """``r_ij = exp(-||x_i - x_j||^2 / (2 sigma^2))`` on the detached features."""
        if features is None:
            raise ValueError("LaplacianLoss needs `features` (n, d) or an explicit `sim`")
        xa = check_rows(features.reshape(features.shape[0], -1), h.shape[0], "features")
        if h_other is None:
            xb = xa
        elif features_other is None:
            raise ValueError("with `h_other`, pass `features_other` (or an explicit `sim`)")
        else:
            xb = features_other.reshape(features_other.shape[0], -1)
            check_rows(xb, h_b.shape[0], "features_other")
        d2 = squared_euclidean(xa.detach().to(h.dtype), xb.detach().to(h.dtype))
        return torch.exp(-d2 / (2.0 * self.sigma**2))

    def pair_values(self, h: Tensor, h_b: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        return 0.5 * sim * squared_euclidean(h, h_b)


class PairwiseMSELoss(PairwiseTerm):
    """Pairwise inner-product regression, survey eq. (14).

    ``L = ||q S - B^T B||_F^2``, per pair ``(q s_ij - h_i^T h_j)^2`` (Zhang, Li, Jiang et al.,
    TCSVT 2017; survey ref. [39]); ``s_ij = 1`` for similar pairs (shared label), and
    ``dissimilar_target`` (the survey's 0) otherwise; ``-1`` gives KSH's form. A graded ``sim`` in
    ``[0, 1]`` interpolates: target ``q (s + (1 - s) dissimilar_target)``.

    Defect in the survey: ``B`` is ``L x N``, so ``B B^T`` is ``L x L`` and cannot be compared with
    ``L S`` (``N x N``). Implemented: the item Gram matrix ``B^T B``; the code length multiplies
    ``S``. Applied to relaxed codes ``h`` (DPSH-style relaxation, eq. 24).

    Reduction: mean over the ordered pairs ``i != j`` of the batch (or the ``n x m`` pairs against
    ``h_other``); ``sum`` with ``reduction="sum"``.

    Args:
        dissimilar_target: target value of ``s`` for dissimilar pairs (0 in the survey).
        reduction: ``"mean"`` or ``"sum"`` over pairs.
    """

    equation = "14"

    def __init__(self, dissimilar_target: float = 0.0, reduction: Reduction = "mean") -> None:
        dissimilar_target = float(dissimilar_target)
        super().__init__(reduction)
        self.dissimilar_target = dissimilar_target

    def pair_values(self, h: Tensor, h_b: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        target = h.shape[1] * (sim + (1.0 - sim) * self.dissimilar_target)
        return (target - h @ h_b.T).pow(2)


class PairwiseLikelihoodLoss(PairwiseTerm):
    """Pairwise negative log-likelihood (cross-entropy), survey eq. (15), as in DPSH.

    ``Omega_ij = 1/2 h_i^T h_j`` (relaxed by eq. 24), ``p(s_ij | h) = sigma(Omega_ij)`` for similar
    and ``1 - sigma(Omega_ij)`` for dissimilar pairs, and
    ``L = -sum (s_ij Omega_ij - log(1 + exp(Omega_ij)))`` (Li, Wang, Kang, "Feature Learning based
    Deep Supervised Hashing with Pairwise Labels", IJCAI 2016; the survey cites it for eq. 24 and
    Jiang, Li, DCMH, CVPR 2017 for eq. 15). Computed stably as ``softplus(Omega) - s Omega``.
    A graded ``sim`` in ``[0, 1]`` gives the soft-label cross-entropy.

    Reduction: mean over the ordered pairs ``i != j`` of the batch (or the ``n x m`` pairs against
    ``h_other``); ``sum`` with ``reduction="sum"``. DPSH's quantisation term is
    :class:`hashbench.losses.QuantizationLoss`.

    Args:
        scale: the factor of the inner product (``1/2`` in DPSH).
        reduction: ``"mean"`` or ``"sum"`` over pairs.
    """

    equation = "15"

    def __init__(self, scale: float = 0.5, reduction: Reduction = "mean") -> None:
        scale = check_positive(scale, "scale")
        super().__init__(reduction)
        self.scale = scale

    def pair_values(self, h: Tensor, h_b: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        omega = self.scale * (h @ h_b.T)
        return F.softplus(omega) - sim * omega


class ClassSeparationLoss(PairwiseTerm):
    """Within- minus between-class scatter of pair differences, survey eq. (16).

    ``Sigma_W = (1/N_S) sum_{(i,j) in S} ||h_i - h_j||^2`` over similar pairs and
    ``Sigma_B = (1/N_D) sum_{(i,j) in D} ||h_i - h_j||^2`` over dissimilar pairs;
    ``L = Sigma_W - between_weight * Sigma_B`` (Liong, Lu, Wang, Moulin, Zhou, "Deep Hashing for
    Compact Binary Codes Learning" (SDH), CVPR 2015; survey ref. [40]). With a graded ``sim`` the
    two means are weighted by ``s`` and ``1 - s``.

    Defect in the survey: printed ``tr(Sigma_B - Sigma_W)`` with each ``Sigma`` already a trace (a
    scalar); minimised as printed it would *shrink* the between-class scatter, the opposite of the
    stated aim ("minimise within-class, maximise between-class variance"; SDH maximises
    ``tr(Sigma_B - Sigma_W)``). Implemented: ``Sigma_W - Sigma_B`` to minimise. It is unbounded
    below for unbounded codes: use it with tanh codes or a quantisation term.

    Reduction: each scatter is a mean over its pairs (ordered ``i != j`` within the batch, or all
    ``n x m`` against ``h_other``); a batch without similar (dissimilar) pairs contributes 0 to
    ``Sigma_W`` (``Sigma_B``).

    Args:
        between_weight: weight of the between-class scatter.
    """

    equation = "16"

    def __init__(self, between_weight: float = 1.0) -> None:
        super().__init__()
        self.between_weight = check_positive(between_weight, "between_weight", allow_zero=True)

    def pair_values(self, h: Tensor, h_b: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        return squared_euclidean(h, h_b)

    def reduce(self, values: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        d = values.masked_fill(~mask, 0.0)
        w_sim = sim.masked_fill(~mask, 0.0)
        w_dis = (1.0 - sim).masked_fill(~mask, 0.0)
        within = _weighted_mean(d, w_sim)
        between = _weighted_mean(d, w_dis)
        return within - self.between_weight * between


def _weighted_mean(values: Tensor, weights: Tensor) -> Tensor:
    """``sum(w v) / sum(w)``, 0 when the weights sum to 0."""
    total = weights.sum()
    tiny = torch.finfo(values.dtype).tiny
    return torch.where(total > 0, (weights * values).sum() / total.clamp_min(tiny), 0.0)


def _safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(x)`` with gradient 0 (not inf) at ``x = 0``."""
    pos = x > 0
    return torch.where(
        pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x)
    )


class ContrastiveLoss(PairwiseTerm):
    """Contrastive margin loss, survey eq. (17), in DSH's form by default.

    ``L_ij = 1/2 s_ij d_ij + 1/2 (1 - s_ij) max(m - d_ij, 0)`` (Liu, Wang, Shan, Chen, "Deep
    Supervised Hashing for Fast Image Retrieval" (DSH), CVPR 2016; survey ref. [49]) with
    ``d_ij = ||h_i - h_j||_2^2`` and default margin ``m = 2q``. Similar pairs are pulled together;
    dissimilar pairs cost nothing once ``d_ij >= m``. DSH's regulariser is eq. (25),
    :class:`hashbench.losses.L1ToBinaryLoss`.

    Other distances (``distance=``): ``"l1"``, ``d_ij = ||h_i - h_j||_1``, the survey's printed
    eq. (17) (Zhong, Shao, Liu, PRCV 2018; ref. [45]), default margin ``q``; ``"euclidean"``,
    ``d_ij = ||h_i - h_j||_2`` (WSDH's pretraining loss, METHODS.md method 2), default margin
    ``sqrt(2q)``. Interpretation: the default margins are half the largest distance between +-1
    codes, as DSH's ``2q`` is. The printed eq. (17) and WSDH have no factor ``1/2``: give the term
    weight 2 to match them.

    Interpretation: the survey writes the distance on binary codes ``B``; it is applied to the real
    outputs ``h`` (as DSH does). A graded ``sim`` in ``[0, 1]`` weights the two parts.

    Reduction: mean over the ordered pairs ``i != j`` of the batch (or the ``n x m`` pairs against
    ``h_other``); ``sum`` with ``reduction="sum"``. Memory: ``distance="l1"`` builds an
    ``(n, m, q)`` tensor, the others ``(n, m)``.

    Args:
        margin: margin ``m``; ``None`` for the default of the chosen distance (``2q`` for DSH).
        distance: ``"sq_euclidean"`` (DSH), ``"l1"`` (survey's printed form) or ``"euclidean"``.
        reduction: ``"mean"`` or ``"sum"`` over pairs.
    """

    equation = "17"

    def __init__(
        self,
        margin: float | None = None,
        distance: Literal["sq_euclidean", "l1", "euclidean"] = "sq_euclidean",
        reduction: Reduction = "mean",
    ) -> None:
        if distance not in ("sq_euclidean", "l1", "euclidean"):
            raise ValueError(
                f"distance must be 'sq_euclidean', 'l1' or 'euclidean', got {distance!r}"
            )
        if margin is not None:
            check_positive(margin, "margin", allow_zero=True)
        margin = None if margin is None else float(margin)
        super().__init__(reduction)
        self.margin = margin
        self.distance = distance

    def margin_for(self, bits: int) -> float:
        """The margin used for codes of ``bits`` bits."""
        if self.margin is not None:
            return self.margin
        return {"sq_euclidean": 2.0 * bits, "l1": float(bits), "euclidean": math.sqrt(2.0 * bits)}[
            self.distance
        ]

    def pair_values(self, h: Tensor, h_b: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        if self.distance == "l1":
            d = (h[:, None, :] - h_b[None, :, :]).abs().sum(-1)
        else:
            d = squared_euclidean(h, h_b)
            if self.distance == "euclidean":
                d = _safe_sqrt(d)
        m = self.margin_for(h.shape[1])
        return 0.5 * sim * d + 0.5 * (1.0 - sim) * (m - d).clamp_min(0.0)


class KLSimilarityLoss(PairwiseTerm):
    """KL divergence between semantic and Hamming-space pair distributions, survey eq. (18).

    ``p_ij = G_ij / sum_{k != m} G_km`` with ``G_ij`` the number of labels items ``i`` and ``j``
    share, ``v_ij = exp(-d_H(b_i, b_j)) / sum_{k != m} exp(-d_H(b_k, b_m))``, ``p_ii = v_ii = 0``,
    and ``L = KL(P || V) = sum_{i != j} p_ij log(p_ij / v_ij)`` (Ma, Li, Meng et al., "Global and
    local semantics-preserving based deep hashing for cross-modal retrieval", Neurocomputing 2018;
    survey ref. [24], "Lei et al." in the survey's text). ``d_H`` is relaxed as
    ``(q - h_i^T h_j) / 2`` (exact on +-1 codes). An explicit graded ``sim`` (``n, m``,
    non-negative) replaces ``G``.

    Interpretation: the distributions are over the pairs of the mini-batch (ordered ``i != j``), or
    over all ``n x m`` pairs against ``h_other``, not over the whole training set. ``temperature``
    divides ``d_H`` (1 = the printed formula). Pairs with ``p_ij = 0`` contribute 0; a batch with no
    shared label at all gives 0.

    Reduction: none - one divergence between two distributions over the batch's pairs.

    Args:
        temperature: ``v_ij`` proportional to ``exp(-d_H / temperature)``.
    """

    equation = "18"
    graded = True
    nonnegative_sim = True

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = check_positive(temperature, "temperature")

    def pair_values(self, h: Tensor, h_b: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        """The logits ``-d_H(h_i, h_j) / temperature`` of ``V``."""
        return -relaxed_hamming(h, h_b) / self.temperature

    def reduce(self, values: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        """``KL(P || V)`` with ``P`` the normalised ``sim`` and ``V`` the softmax of ``values``."""
        g = sim.masked_fill(~mask, 0.0)
        p = g / g.sum().clamp_min(torch.finfo(values.dtype).tiny)  # all zero: P = 0, loss 0
        # excluded pairs get the most negative finite logit (v = 0 when any pair is left; -inf
        # would give NaN gradients for a batch without pairs)
        lowest = torch.finfo(values.dtype).min
        logits = values.masked_fill(~mask, lowest)
        log_v = logits - torch.logsumexp(logits.reshape(-1), 0)
        pos = p > 0
        log_p = torch.log(torch.where(pos, p, torch.ones_like(p)))
        return torch.where(
            pos, p * (log_p - log_v.masked_fill(~pos, 0.0)), torch.zeros_like(p)
        ).sum()


class RankingTripletLoss(PairwiseTerm):
    """Semantic ranking triplet loss, survey eq. (19).

    For a query ``q`` and a list ``{x_i}`` ranked by similarity level ``r_i`` (number of labels
    shared with ``q``), ``L(q) = sum_i sum_{j: r_j < r_i} [d_H(b_q, b_i) - d_H(b_q, b_j) + M]_+``
    (Zhao, Huang, Wang, Tan, "Deep Semantic Ranking Based Hashing for Multi-Label Image Retrieval"
    (DSRH), CVPR 2015; survey ref. [21]). ``d_H`` is relaxed as ``(q - h_q^T h_i) / 2``.

    Interpretation: every item of the batch is a query and the list is the rest of the batch (or
    ``h_other``); an explicit graded ``sim`` replaces the shared-label counts as ``r``. The margin
    is in Hamming-distance units (default 1 bit; our choice).

    Reduction: mean over the valid triplets ``(q, i, j)`` of the batch (``r_qj < r_qi``, ``i, j !=
    q``; 0 if there are none); ``sum`` with ``reduction="sum"``. Memory: ``(n, m, m)``.

    Args:
        margin: margin ``M`` in Hamming-distance units.
        reduction: ``"mean"`` or ``"sum"`` over triplets.
    """

    equation = "19"
    graded = True

    def __init__(self, margin: float = 1.0, reduction: Reduction = "mean") -> None:
        margin = check_positive(margin, "margin", allow_zero=True)
        super().__init__(reduction)
        self.margin = margin

    def _weights(self, r_i: Tensor, r_j: Tensor) -> Tensor | None:
        return None

    def pair_values(self, h: Tensor, h_b: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        """The relaxed Hamming distances ``d(q, i)`` ``(n, m)``."""
        return relaxed_hamming(h, h_b)

    def reduce(self, values: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        """Hinges ``[d(q,i) - d(q,j) + M]_+`` over the valid triplets, shapes ``(n, m, m)``: query
        ``q`` from the batch, ``i``, ``j`` from the list (the batch minus ``q``, or ``h_other``)."""
        hinge = (values[:, :, None] - values[:, None, :] + self.margin).clamp_min(0.0)
        r_i = sim[:, :, None]
        r_j = sim[:, None, :]
        valid = (r_j < r_i) & mask[:, :, None] & mask[:, None, :]
        w = self._weights(r_i, r_j)
        return reduce_pairs(hinge if w is None else w * hinge, valid, self.reduction)


class OrderSensitiveRankingLoss(RankingTripletLoss):
    """Order-sensitive (gain-weighted) ranking triplet loss, survey eq. (27).

    ``L(q) = sum_i sum_{j: r_j < r_i} (2^{r_i} - 2^{r_j}) / Z
    [d_H(b_q, b_i) - d_H(b_q, b_j) + M]_+``
    (Chen, Cai, Lu, Feng, Zhou, "Order-Sensitive Deep Hashing for Multimorbidity Medical Image
    Retrieval", MICCAI 2018; survey ref. [48]; the weighting follows DSRH's). Violations between
    items far apart in the ranking cost more.

    Defect in the survey: the printed hinge ``d_H(b_i, b_j) - d_H(b_i, b_j) + M`` is the constant
    ``M``. Implemented: ``d_H(b_q, b_i) - d_H(b_q, b_j) + M`` with ``q`` the query, as in [48].
    ``d_H`` relaxed as in eq. (19). Resolved: ``Z`` ("a constant related to the list length") is
    the number of valid triplets of the batch with ``reduction="mean"``, 1 with ``"sum"``.

    Reduction: ``sum`` of the weighted hinges over valid triplets, divided by their number
    (``"mean"``, default) or not (``"sum"``). Memory: ``(n, m, m)``.

    Args:
        margin: margin ``M`` in Hamming-distance units.
        reduction: ``"mean"`` or ``"sum"`` over triplets.
    """

    equation = "27"

    def _weights(self, r_i: Tensor, r_j: Tensor) -> Tensor | None:
        return torch.pow(2.0, r_i) - torch.pow(2.0, r_j)


__all__ = [
    "ClassSeparationLoss",
    "ContrastiveLoss",
    "KLSimilarityLoss",
    "LaplacianLoss",
    "OrderSensitiveRankingLoss",
    "PairwiseLikelihoodLoss",
    "PairwiseMSELoss",
    "RankingTripletLoss",
]
