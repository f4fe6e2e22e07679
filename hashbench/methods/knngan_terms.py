"""knngan's own loss terms (seed 000, eqs. 10-12): ``L_MSE``, ``L_per`` with its frozen network
``theta``, ``L_H``, and the straight-through code ``b`` the generator sees.

Peng, Wu, Zi, *Laser & Optoelectronics Progress* 55(10), 2018; the method is
:class:`hashbench.methods.knngan.KNNGAN` (formulas and interpretations in its module docstring and
``docs/methods/knngan.md``). The adversarial terms are :mod:`hashbench.losses.adversarial`.
"""

from __future__ import annotations

import torch
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


class PerceptualFeatures(nn.Module):
    """``theta(.)``: the last conv layer's feature map of a frozen backbone (eq. 11).

    Args:
        backbone: ``efficientnet_lite0``, ``small_cnn``, ``vgg16``/``vgg19``/``alexnet`` or
            ``resnet18``/``resnet50``.
        pretrained: weights (see :func:`hashbench.models.backbones.build_backbone`).
        size: input side the images are resized to (``None`` = native size).
    """

    def __init__(self, backbone: str, pretrained: bool | str, size: int | None) -> None:
        super().__init__()
        from hashbench.data.transforms import InputAdapter, InputSpec
        from hashbench.models.backbones import build_backbone, input_spec

        spec = input_spec(backbone)
        self.adapter = InputAdapter(InputSpec(size, spec.channels, spec.mean, spec.std))
        self.name = backbone
        self.net, _ = build_backbone(backbone, pretrained)
        self.net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> PerceptualFeatures:  # always frozen, eval-mode BN
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        x = self.adapter(images)
        net = self.net
        if self.name == "efficientnet_lite0":
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
