"""DHIH: Deep Highly Interrelated Hashing, a unary supervised method (seed 004).

He Zhouyu, Feng Xupeng, Liu Lijun, Huang Qingsong, "Deep Highly Interrelated Hashing for Fast Image
Retrieval" (面向大规模图像检索的深度强相关散列学习方法), *Journal of Computer Research and
Development* 57(11): 2375-2388, 2020, DOI 10.7544/issn1000-1239.2020.20190498. Only the abstract
is available (``shared/seeds/004_7400aba1a4ea4dce.txt``); METHODS.md section 4.

From the abstract (fixed):

- a *unary* deep supervised method: each image is trained on its own label, no ``n x n`` (or
  batch) similarity matrix is formed, so the training cost grows linearly with the number of images;
- a CNN with an added hash layer; codes are compared by Hamming distance; any CNN can be used;
- a "highly interrelated" loss that "adjusts the distance between features by changing the model's
  sensitivity to the weight matrix", enlarging inter-class and shrinking intra-class distances;
- experiments on CIFAR-10, NUS-WIDE (multi-label) and SVHN.

Interpretation (this project's reading, METHODS.md section 4 "Resolved"): the loss is a
normalised-weight, normalised-feature softmax with a target-class margin (the CosFace / SphereFace
family - the classifier's sensitivity to the *norm* of the weights is removed, and only angles count)
on the ``tanh`` hash-layer output ``h`` of each image:

    cos theta_ic = <W_c, h_i> / (||W_c|| ||h_i||)
    logit_ic     = s * psi(theta_ic)           if c is a label of image i
                   s * cos theta_ic            otherwise
    psi(theta)   = cos theta - m                                    (margin_type="cosine", default)
                 = (-1)^k cos(m theta) - 2k,  theta in [k pi/m, (k+1) pi/m]
                                                                    (margin_type="angular", m >= 1)

    single-label:  L_cls = -(1/n) sum_i log softmax(logit_i)_{y_i}
    multi-label:   L_cls = (1/n) sum_i sum_c BCE(sigmoid(logit_ic), y_ic)   (margin on every positive)

    L = L_cls + lambda_q (1/n) sum_i ||h_i - b_i||^2 + lambda_b sum_k (mean_i h_ik)^2,

with ``b = where(h >= 0, +1, -1)`` (bit ``1[h >= 0]``, never ``sign``) detached: the quantisation
term of the survey's eq. (2) (:class:`~hashbench.losses.QuantizationLoss`) and the optional bit
balance of eq. (6) (:class:`~hashbench.losses.BitMeanLoss`). The classification terms are the
library's :class:`~hashbench.losses.SoftmaxLoss` (eq. 20) and
:class:`~hashbench.losses.MultiLabelBCELoss` (eq. 21) applied to the margin logits.

Resolved (details the abstract cannot fix):

- ``normalize=False`` uses the raw inner products ``<W_c, h_i>`` (scaled by ``s``) and the cosine
  margin is subtracted from the target logit as ``s * m``; with ``m = 0``, ``s = 1`` this is plain
  softmax cross-entropy of a bias-free linear classifier on ``h`` (the ablation). The angular margin
  needs angles, and without normalisation uses SphereFace's ``||W_y|| ||h|| psi(theta_y)``.
- ``m`` is the subtracted cosine margin for ``cosine`` and the angle multiplier for ``angular``
  (``m = 1`` is no margin there); angles use ``cos`` clamped to ``[-1 + 1e-7, 1 - 1e-7]``.
- single- vs multi-label follows the DataModule (``multi_label: null``), or per batch when there is
  none. Class weights ``W`` ``(c, bits)`` are this method's parameters, built from the DataModule's
  ``num_classes`` when not given; they are not used at retrieval time.
- defaults ``s = 16``, ``m = 0.25``, ``lambda_q = 0.05``, ``lambda_b = 0`` are this project's choices
  (the paper's values are unknown).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashbench.losses import BitMeanLoss, MultiLabelBCELoss, QuantizationLoss, SoftmaxLoss
from hashbench.methods.base import HashingMethod, Optim
from hashbench.retrieval.evaluation import DEFAULT_TIES, TieRule

MarginType = Literal["cosine", "angular"]
_EPS = 1e-7


def _angular_psi(cos: Tensor, m: float) -> Tensor:
    """SphereFace's monotone ``psi(theta) = (-1)^k cos(m theta) - 2k``, ``theta = acos(cos)``."""
    theta = torch.acos(cos.clamp(-1.0 + _EPS, 1.0 - _EPS))
    k = torch.floor(theta * m / math.pi).detach()
    sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
    return sign * torch.cos(m * theta) - 2.0 * k


def margin_logits(
    h: Tensor,
    weight: Tensor,
    labels: Tensor,
    scale: float = 16.0,
    margin: float = 0.25,
    margin_type: MarginType = "cosine",
    normalize: bool = True,
) -> Tensor:
    """Logits of the highly interrelated loss: scaled cosines with a margin on the labels.

    Args:
        h: relaxed codes ``(n, q)``.
        weight: class weights ``(c, q)``.
        labels: multi-hot ``(n, c)``; the margin applies to every positive entry.
        scale: ``s``.
        margin: ``m`` (subtracted cosine margin, or angle multiplier for ``angular``).
        margin_type: ``cosine`` (``cos theta - m``) or ``angular`` (``psi(m theta)``).
        normalize: L2-normalise ``h`` and the rows of ``weight`` (else raw inner products).

    Returns:
        ``(n, c)`` logits.
    """
    if h.ndim != 2 or weight.ndim != 2 or weight.shape[1] != h.shape[1]:
        raise ValueError(
            f"`h` must be (n, q) and `weight` (c, q), got {tuple(h.shape)} and "
            f"{tuple(weight.shape)}"
        )
    if labels.shape != (h.shape[0], weight.shape[0]):
        raise ValueError(
            f"`labels` must be multi-hot (n, c) = {(h.shape[0], weight.shape[0])}, got "
            f"{tuple(labels.shape)}; one-hot encode single labels"
        )
    pos = labels > 0
    if normalize:
        cos = F.normalize(h, dim=1, eps=1e-12) @ F.normalize(weight, dim=1, eps=1e-12).T
        if margin_type == "cosine":
            target = cos - margin
        else:
            target = _angular_psi(cos, margin)
        return scale * torch.where(pos, target, cos)
    raw = h @ weight.T
    if margin_type == "cosine":
        return scale * (raw - margin * pos.to(raw.dtype))
    norms = h.norm(dim=1, keepdim=True) * weight.norm(dim=1)[None, :]
    cos = raw / norms.clamp_min(1e-12)
    return scale * torch.where(pos, norms * _angular_psi(cos, margin), raw)


class DHIH(HashingMethod):
    """Deep Highly Interrelated Hashing (He, Feng, Liu, Huang, J. Comput. Res. Dev. 2020).

    Backbone + ``tanh`` hash layer trained by a margin softmax on normalised codes and class weights
    (see the module docstring for the formula and what is interpretation).

    Args:
        bits: code length.
        backbone: backbone name.
        pretrained: backbone weights (see :class:`HashingMethod`).
        num_classes: number of classes; ``None`` = the DataModule's ``num_classes`` at setup.
        scale: logit scale ``s`` (> 0).
        margin: ``m``: cosine margin (>= 0, ``cosine``) or angle multiplier (>= 1, ``angular``).
        margin_type: ``cosine`` (additive cosine margin) or ``angular`` (multiplicative angle).
        normalize: L2-normalise codes and class weights (``False``: raw inner products; ablation).
        multi_label: ``True`` for the sigmoid/BCE form, ``False`` for softmax, ``None`` = from the
            DataModule (or from the batch when there is none).
        quantization_weight: ``lambda_q``, weight of ``mean_i ||h_i - b_i||^2``.
        balance_weight: ``lambda_b``, weight of the bit balance ``sum_k (mean_i h_ik)^2``.
        optim: optimiser settings.
        ties: tie rule of the reported metrics.
    """

    activation = "tanh"

    def __init__(
        self,
        bits: int = 32,
        backbone: str = "small_cnn",
        pretrained: bool | str = False,
        num_classes: int | None = None,
        scale: float = 16.0,
        margin: float = 0.25,
        margin_type: MarginType = "cosine",
        normalize: bool = True,
        multi_label: bool | None = None,
        quantization_weight: float = 0.05,
        balance_weight: float = 0.0,
        optim: Optim = Optim(),
        ties: TieRule = DEFAULT_TIES,
    ) -> None:
        if not scale > 0 or not math.isfinite(scale):
            raise ValueError(f"DHIH: scale must be a positive number, got {scale}")
        if margin_type not in ("cosine", "angular"):
            raise ValueError(
                f"DHIH: margin_type must be 'cosine' or 'angular', got {margin_type!r}"
            )
        if margin_type == "cosine" and not margin >= 0:
            raise ValueError(f"DHIH: the cosine margin must be >= 0, got {margin}")
        if margin_type == "angular" and not margin >= 1:
            raise ValueError(
                f"DHIH: the angular margin is an angle multiplier and must be >= 1, got {margin}"
            )
        for name, w in (
            ("quantization_weight", quantization_weight),
            ("balance_weight", balance_weight),
        ):
            if not w >= 0:
                raise ValueError(f"DHIH: {name} must be >= 0, got {w}")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"DHIH: num_classes must be >= 1 or null, got {num_classes}")
        super().__init__(bits, backbone, pretrained, optim, ties)
        self.scale = float(scale)
        self.margin = float(margin)
        self.margin_type: MarginType = margin_type
        self.normalize = normalize
        self.multi_label = multi_label
        self.quantization_weight = float(quantization_weight)
        self.balance_weight = float(balance_weight)
        self.softmax = SoftmaxLoss()
        self.bce = MultiLabelBCELoss()
        self.quantization = QuantizationLoss()
        self.balance = BitMeanLoss()
        self.class_weight: nn.Parameter | None = None
        if num_classes is not None:
            self._build_classes(num_classes)

    def _build_classes(self, n: int) -> None:
        w = torch.empty(n, self.bits, device=self.device)
        nn.init.xavier_uniform_(w)
        self.class_weight = nn.Parameter(w)
        self.hparams["num_classes"] = int(n)

    def setup(self, stage: str) -> None:
        """Build the class weights from the DataModule and take its single/multi-label kind."""
        dm = self._datamodule()
        n = getattr(dm, "num_classes", None) if dm is not None else None
        if self.class_weight is None:
            if n is None:
                raise ValueError(
                    "DHIH: the class weights need num_classes; pass "
                    "--model.init_args.num_classes or use a HashDataModule"
                )
            self._build_classes(int(n))
        elif n is not None and int(n) != self.class_weight.shape[0]:
            raise ValueError(
                f"DHIH: num_classes={self.class_weight.shape[0]} but the data has {n} classes; "
                f"set num_classes: null or {n}"
            )
        if self.multi_label is None and dm is not None and hasattr(dm, "multi_label"):
            self.multi_label = bool(dm.multi_label)

    # -- objective ---------------------------------------------------------------------------------
    def logits(self, h: Tensor, labels: Tensor) -> Tensor:
        """Margin logits ``(n, c)`` of codes ``h`` (see :func:`margin_logits`)."""
        if self.class_weight is None:
            raise ValueError("DHIH: class weights not built; pass num_classes or call setup")
        return margin_logits(
            h,
            self.class_weight,
            labels,
            self.scale,
            self.margin,
            self.margin_type,
            self.normalize,
        )

    def loss(self, h: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """``{"loss", "classification", "quantization", "balance"}`` of one batch (unary terms)."""
        labels = labels.to(h.dtype)
        logits = self.logits(h, labels)
        multi = self.multi_label
        if multi is None:
            multi = bool((labels.sum(1) > 1).any())
        cls = (
            self.bce(logits=logits, labels=labels)
            if multi
            else self.softmax(logits=logits, labels=labels)
        )
        quant = self.quantization(h=h)
        terms = {"classification": cls, "quantization": quant}
        total = cls + self.quantization_weight * quant
        if self.balance_weight > 0:
            bal = self.balance(h=h)
            terms["balance"] = bal
            total = total + self.balance_weight * bal
        return {"loss": total, **terms}

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        out = self.loss(self(batch["image"]), batch["label"])
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in out.items()},
            prog_bar=False,
            on_step=False,
            on_epoch=True,
            batch_size=len(batch["label"]),
        )
        return out["loss"]
