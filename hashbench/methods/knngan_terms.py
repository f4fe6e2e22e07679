"""knngan's own loss terms (seed 000, eqs. 10-12): ``L_MSE``, ``L_per`` with its frozen network
``theta``, ``L_H``, and the straight-through code ``b`` the generator sees.

Peng, Wu, Zi, *Laser & Optoelectronics Progress* 55(10), 2018; the method is
:class:`hashbench.methods.knngan.KNNGAN` (formulas and interpretations in its module docstring and
``docs/methods/knngan.md``). The adversarial terms are :mod:`hashbench.losses.adversarial`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashbench.losses.base import binary_codes
from hashbench.losses.constraints import QuantizationLoss


def straight_through(r: Tensor) -> Tensor:
    """``b`` in the forward pass, the identity's gradient to ``R`` in the backward pass."""
    return r + (binary_codes(r) - r).detach()


_QUANTIZATION = QuantizationLoss()  # ||h_i - b_i||^2 with b = binary_codes(h), mean over items


def quantization_loss(r: Tensor, reduction: str = "sum") -> Tensor:
    """``L_H = 1/2 ||b - R||^2`` (eq. 12), averaged over the batch: half the shared
    :class:`~hashbench.losses.constraints.QuantizationLoss` (survey eq. 2).

    ``reduction="sum"``: summed over the ``q`` bits (eq. 12 literally); ``"mean"``: averaged over
    them, ``1/(2q) ||b - R||^2`` (per element, like ``L_MSE`` per pixel and ``L_per`` per feature).
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"quantization reduction must be 'mean' or 'sum', got {reduction!r}")
    value = 0.5 * _QUANTIZATION(h=r)
    return value / r.shape[1] if reduction == "mean" else value


def pixel_mse(real: Tensor, fake: Tensor) -> Tensor:
    """``L_MSE = 1/(CWH) sum (I - I^R)^2`` (eq. 10), averaged over the batch."""
    return (real - fake).pow(2).mean()


class FrozenSameConv(nn.Module):
    """A frozen TensorFlow-"same" convolution with its eval-mode batch norm folded in.

    Computes ``bn(conv(pad_same(x)))`` of EfficientNet's ``Conv2dDynamicSamePadding`` followed by a
    ``BatchNorm2d`` in eval mode as one convolution: weight ``w s`` and bias ``beta + (c - mu) s``
    with ``s = gamma / sqrt(var + eps)`` (``c`` the conv's bias, if any). It is the same function;
    only float rounding differs (~1e-6 relative in float32; ~1e-14 in float64, where the fold is
    done in float64: the folded weights are computed from the stored originals in the input's
    dtype, once per dtype and device). Per input size it also drops the kernel taps that only ever
    meet the zero padding (at ``perceptual_size 32`` the 5x5 depthwise kernels of the last stages
    see 1x1 and 2x2 maps) and hands symmetric padding to the convolution instead of padding the
    tensor; a depthwise convolution with uneven padding (stride 2) gets zero taps on the side with
    less padding and even padding instead of a padded copy of its input. All three only remove or
    add products with zero. Only the input gets a gradient (no parameters).
    """

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        if tuple(conv.dilation) != (1, 1) or tuple(conv.padding) not in ((0, 0),):
            raise ValueError("FrozenSameConv folds same-padded convolutions without dilation only")
        n = conv.out_channels
        zeros = torch.zeros(n, dtype=conv.weight.dtype, device=conv.weight.device)
        for name, value in (
            ("conv_weight", conv.weight),
            ("conv_bias", zeros if conv.bias is None else conv.bias),
            ("bn_weight", bn.weight if bn.affine else zeros + 1),
            ("bn_bias", bn.bias if bn.affine else zeros),
            ("bn_mean", bn.running_mean),
            ("bn_var", bn.running_var),
        ):
            self.register_buffer(name, value.detach().clone())
        self.eps = float(bn.eps)
        self.stride = (int(conv.stride[0]), int(conv.stride[-1]))
        self.groups = conv.groups
        self._folded: dict = {}

    def folded(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
        """``(weight, bias)`` of the folded convolution in ``dtype`` on ``device``."""
        with torch.no_grad():
            cast = {n: b.to(device, dtype) for n, b in self.named_buffers()}
            scale = cast["bn_weight"] / torch.sqrt(cast["bn_var"] + self.eps)
            weight = cast["conv_weight"] * scale.view(-1, 1, 1, 1)
            bias = cast["bn_bias"] + (cast["conv_bias"] - cast["bn_mean"]) * scale
        return weight, bias

    @staticmethod
    def _axis(size: int, k: int, s: int) -> tuple[int, int, int, int]:
        """``(first tap, last tap + 1, pad before, pad after)`` along one axis of "same" padding."""
        out = math.ceil(size / s)
        pad = max((out - 1) * s + k - size, 0)
        before = pad // 2
        first = max(0, before - (out - 1) * s)  # taps before it meet only the leading zeros
        last = min(k - 1, size - 1 + before)  # taps after it meet only the trailing zeros
        before -= first
        after = max(0, (out - 1) * s + (last - first + 1) - size - before)
        return first, last + 1, before, after

    def plan(self, x: Tensor) -> tuple[Tensor, Tensor, tuple[int, int, int, int]]:
        """``(weight, bias, (left, right, top, bottom))`` for input ``x``: the folded, cropped
        weight in ``x``'s memory format and the zero padding still needed; cached per dtype,
        device, memory format and input size (the buffers are frozen)."""
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        key = (x.dtype, x.device, self.conv_weight.data_ptr(), channels_last, *x.shape[-2:])
        if key not in self._folded:
            weight, bias = self.folded(x.dtype, x.device)
            (kh, kw), (sh, sw) = weight.shape[-2:], self.stride
            h0, h1, top, bottom = self._axis(x.shape[-2], kh, sh)
            w0, w1, left, right = self._axis(x.shape[-1], kw, sw)
            weight = weight[:, :, h0:h1, w0:w1]
            if self.groups > 1 and (top, left) != (bottom, right):
                # uneven padding (stride 2, depthwise): zero taps on the side with less padding and
                # even padding give the same windows without a padded copy of the input
                zeros = (max(right - left, 0), max(left - right, 0))
                zeros += (max(bottom - top, 0), max(top - bottom, 0))
                weight = F.pad(weight, zeros)
                top = bottom = max(top, bottom)
                left = right = max(left, right)
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            weight = weight.contiguous(memory_format=fmt)
            if len(self._folded) > 16:
                self._folded.clear()
            self._folded[key] = (weight, bias, (left, right, top, bottom))
        return self._folded[key]

    def forward(self, x: Tensor) -> Tensor:
        weight, bias, (left, right, top, bottom) = self.plan(x)
        if top == bottom and left == right:
            return F.conv2d(x, weight, bias, self.stride, (top, left), 1, self.groups)
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, weight, bias, self.stride, 0, 1, self.groups)


def fold_efficientnet_batch_norms(net: nn.Module) -> nn.Module:
    """Fold every eval-mode batch norm of an ``efficientnet_lite_pytorch`` EfficientNet into the
    convolution before it (:class:`FrozenSameConv`), in place; the norms become identities.

    Only for a frozen network in eval mode (``theta``): the running statistics are taken as fixed.
    """
    pairs = [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]
    for block in net._blocks:
        if hasattr(block, "_expand_conv"):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
        if getattr(block, "has_se", False):
            raise ValueError("fold_efficientnet_batch_norms: squeeze-excitation blocks unsupported")
    for module, conv, bn in pairs:
        setattr(module, conv, FrozenSameConv(getattr(module, conv), getattr(module, bn)))
        setattr(module, bn, nn.Identity())
    return net


class PerceptualFeatures(nn.Module):
    """``theta(.)``: the last conv layer's feature map of a frozen backbone (eq. 11).

    Args:
        backbone: ``efficientnet_lite0``, ``small_cnn``, ``vgg16``/``vgg19``/``alexnet`` or
            ``resnet18``/``resnet50``.
        pretrained: weights (see :func:`hashbench.models.backbones.build_backbone`).
        size: input side the images are resized to (``None`` = native size).
        fold_batch_norm: for ``efficientnet_lite0``, fold its (frozen, eval-mode) batch norms into
            the convolutions (:func:`fold_efficientnet_batch_norms`): the same function, about
            2.5 times faster forward and backward at ``size 32`` on CPU (docs/methods/knngan.md).
    """

    def __init__(
        self, backbone: str, pretrained: bool | str, size: int | None, fold_batch_norm: bool = True
    ) -> None:
        super().__init__()
        from hashbench.data.transforms import InputAdapter, InputSpec
        from hashbench.models.backbones import build_backbone, input_spec

        spec = input_spec(backbone)
        self.adapter = InputAdapter(InputSpec(size, spec.channels, spec.mean, spec.std))
        self.name = backbone
        self.net, _ = build_backbone(backbone, pretrained)
        self.net.eval().requires_grad_(False)
        self.folded = bool(fold_batch_norm and backbone == "efficientnet_lite0")
        if self.folded:
            fold_efficientnet_batch_norms(self.net)

    def train(self, mode: bool = True) -> PerceptualFeatures:  # always frozen, eval-mode BN
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        x = self.adapter(images)
        net = self.net
        if self.name == "efficientnet_lite0":
            if self.folded:  # NHWC: oneDNN's fast path for the depthwise convolutions
                x = x.contiguous(memory_format=torch.channels_last)
            return net.extract_features(x)
        if self.name == "small_cnn":
            return net.features(x)
        if self.name.startswith(("vgg", "alexnet")):
            return net.features(x)
        if self.name.startswith("resnet"):
            for layer in (net.conv1, net.bn1, net.relu, net.maxpool):
                x = layer(x)
            return net.layer4(net.layer3(net.layer2(net.layer1(x))))
        raise ValueError(f"no perceptual features for backbone {self.name!r}")


def perceptual_loss(
    theta: nn.Module, real: Tensor, fake: Tensor, target: Tensor | None = None
) -> Tensor:
    """``L_per = mean (theta(I) - theta(I^R))^2`` (eq. 11), ``theta(I)`` without gradient.

    ``target``: ``theta(real)`` already computed (e.g. cached per item); ``real`` is then unused.
    """
    if target is None:
        with torch.no_grad():
            target = theta(real)
    return (theta(fake) - target.detach()).pow(2).mean()
