"""GAN networks of the GAN hashing methods, and the image-grid writer of their samples.

- ``knngan`` (seed 000): :class:`TransposedConvGenerator` ``G(b, z)`` and :class:`ConvCritic`
  ``f_phi``;
- ``pcaegan`` / ``pcwgan`` (seed 003): :class:`UpsamplingGenerator` ``G(c, z)``,
  :class:`PairDiscriminator` ``D`` (critic score + pair embedding) and :class:`CodeDiscriminator`
  ``C``;
- :func:`save_image_grid`: a grid of images in ``[0, 1]`` written atomically as a PNG.

Every generator maps the concatenation ``[code, noise]`` through a linear projection, batch norm and
ReLU (:func:`projection`) to a small feature map that convolutions upsample to the image. The
critics carry no batch norm (the WGAN-GP penalty is per sample). Their losses are in
:mod:`hashbench.losses.adversarial`.

Parameters are created in the order the layers are listed in each docstring, so a seed gives the
same initial weights as the methods' original inline networks (and the state-dict keys are theirs).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from hashbench.files import atomic_path


def projection(in_features: int, out_features: int, bias: bool = True) -> nn.Sequential:
    """``Linear(in, out) -> BatchNorm1d(out) -> ReLU``: a generator's first layer."""
    return nn.Sequential(
        nn.Linear(in_features, out_features, bias=bias),
        nn.BatchNorm1d(out_features),
        nn.ReLU(inplace=True),
    )


def same_conv(cin: int, cout: int) -> list[nn.Module]:
    """A 4x4 stride-1 conv keeping the spatial size (zero padding 1 before, 2 after)."""
    return [nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(cin, cout, 4, 1, 0)]


# -- generators ------------------------------------------------------------------------------------
class TransposedConvGenerator(nn.Module):
    """``G(b, z)``: code + noise -> image in ``[0, 1]`` (a small DCGAN generator; knngan).

    ``Linear(q + d, 2w * h0 * w0) -> BN -> ReLU -> ConvT(2w, w, 4, 2, 1) -> BN -> ReLU ->
    ConvT(w, C, 4, 2, 1) -> tanh``, ``h0 = ceil(H / 4)``, ``w0 = ceil(W / 4)``, cropped to
    ``H x W``, mapped by ``(y + 1) / 2`` to ``[0, 1]``.

    Args:
        code_dim: ``q``.
        noise_dim: ``d``.
        shape: ``(C, H, W)`` of the images.
        width: ``w``, channels of the last hidden layer.
    """

    def __init__(self, code_dim: int, noise_dim: int, shape: tuple[int, int, int], width: int = 32):
        super().__init__()
        c, h, w = shape
        self.shape = (c, h, w)
        self.h0, self.w0 = math.ceil(h / 4), math.ceil(w / 4)
        self.fc = projection(code_dim + noise_dim, 2 * width * self.h0 * self.w0)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, c, 4, 2, 1),
            nn.Tanh(),
        )
        self.width = width

    def forward(self, b: Tensor, z: Tensor) -> Tensor:
        x = self.fc(torch.cat([b, z], dim=1)).view(-1, 2 * self.width, self.h0, self.w0)
        x = x.contiguous(memory_format=torch.channels_last)  # NHWC: oneDNN's faster path on CPU
        _, h, w = self.shape
        return (self.net(x)[:, :, :h, :w] + 1) / 2


class UpsamplingGenerator(nn.Module):
    """``G(c, z)``: code + noise -> image in ``[-1, 1]`` (pcaegan).

    ``Linear(q + d, 4w * (s/4)^2, no bias) -> BN -> ReLU`` to a ``(4w, s/4, s/4)`` map, then two
    blocks ``nearest x2 -> conv 3x3 (no bias) -> BN -> ReLU`` (``4w -> 2w -> w`` channels) and a
    last ``conv 3x3 -> tanh`` to ``C`` channels.

    Args:
        code_dim: ``q``.
        noise_dim: dimension of ``z``.
        channels: image channels ``C``.
        size: square image side ``s`` (divisible by 4).
        width: ``w``.
    """

    def __init__(self, code_dim: int, noise_dim: int, channels: int, size: int, width: int) -> None:
        super().__init__()
        if size < 4 or size % 4:
            raise ValueError(f"the generator needs an image side divisible by 4, got {size}")
        self.start = size // 4
        self.width = width
        self.project = projection(code_dim + noise_dim, 4 * width * self.start**2, bias=False)

        def up(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(True),
            )

        self.body = nn.Sequential(
            up(4 * width, 2 * width),
            up(2 * width, width),
            nn.Conv2d(width, channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, codes: Tensor, noise: Tensor) -> Tensor:
        x = self.project(torch.cat([codes, noise], 1))
        x = x.view(-1, 4 * self.width, self.start, self.start)
        # NHWC activations: oneDNN's faster convolutions on CPU (about 2x for this net's forward,
        # 1.5x forward + backward, at width 16 and 28 px); the same function
        x = x.contiguous(memory_format=torch.channels_last)
        for block in self.body:
            if isinstance(block, nn.Sequential):  # nearest x2 -> conv 3x3 as one sub-pixel step
                _upsample, conv, *rest = block
                x = upsampled_conv3x3(x, conv.weight, conv.bias)
                for layer in rest:
                    x = layer(x)
            else:
                x = block(x)
        return x


def subpixel_weight(weight: Tensor) -> Tensor:
    """The ``conv_transpose2d`` weight ``(C_in, C_out, 4, 4)`` (stride 2, padding 1) equal to a
    nearest x2 upsampling followed by a 3x3 convolution (padding 1) of ``weight`` ``(C_out, C_in,
    3, 3)``.

    Along each axis an output pixel ``2i`` sees ``w0 x[i-1] + (w1 + w2) x[i]`` and ``2i + 1`` sees
    ``(w0 + w1) x[i] + w2 x[i+1]``, so the transposed kernel is ``[w2, w1 + w2, w0 + w1, w0]``.
    """

    def axis(w: Tensor, dim: int) -> Tensor:
        w0, w1, w2 = w.unbind(dim)
        return torch.stack([w2, w1 + w2, w0 + w1, w0], dim)

    return axis(axis(weight, 2), 3).transpose(0, 1)


def upsampled_conv3x3(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``conv3x3(upsample_nearest_x2(x), weight, bias, padding=1)`` as one stride-2 transposed
    convolution (:func:`subpixel_weight`): the same function, 4 taps per output pixel instead of 9
    and no upsampled copy (about 1.7x faster forward + backward on CPU at the CPU setting)."""
    return nn.functional.conv_transpose2d(x, subpixel_weight(weight), bias, stride=2, padding=1)


# -- critics ---------------------------------------------------------------------------------------
class ConvCritic(nn.Module):
    """``f_phi(image)``: a small conv critic, no batch norm (knngan).

    ``Conv(C, w, 4, 2, 1) -> LeakyReLU(0.2) -> Conv(w, 2w, 4, 2, 1) -> LeakyReLU(0.2) -> Linear -> 1``
    on images in ``[0, 1]`` (mapped to ``[-1, 1]``); one score per image ``(n,)``.

    Args:
        shape: ``(C, H, W)``.
        width: ``w``.
    """

    def __init__(self, shape: tuple[int, int, int], width: int = 32):
        super().__init__()
        c, h, w = shape
        self.net = nn.Sequential(
            nn.Conv2d(c, width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
        )
        with torch.no_grad():
            n = self.net(torch.zeros(1, c, h, w)).shape[1]
        self.out = nn.Linear(n, 1)

    def forward(self, images: Tensor) -> Tensor:
        return self.out(self.net(images * 2 - 1)).squeeze(1)


class PairDiscriminator(nn.Module):
    """``D``: a critic score and a pair embedding per image in ``[-1, 1]`` (pcaegan).

    Five 4x4 convs (strides 2, 2, 2, 1, 1; the stride-1 ones keep the size, :func:`same_conv`) with
    ``w, 2w, 4w, 4w, 1 + embed_dim`` channels, LeakyReLU 0.2 after the first four and a per-sample
    layer norm (``GroupNorm(1, ch)``) after convs 2-4; the fifth conv's output is averaged over
    space: channel 0 is the critic score, the others the pair embedding.

    Args:
        channels: image channels.
        width: ``w``.
        embed_dim: pair-embedding size.
    """

    def __init__(self, channels: int, width: int, embed_dim: int) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int, norm: bool) -> list[nn.Module]:
            layers: list[nn.Module] = (
                [nn.Conv2d(cin, cout, 4, stride, 1)] if stride == 2 else same_conv(cin, cout)
            )
            if norm:
                layers.append(nn.GroupNorm(1, cout))
            return [*layers, nn.LeakyReLU(0.2, True)]

        self.trunk = nn.Sequential(
            *block(channels, width, 2, False),
            *block(width, 2 * width, 2, True),
            *block(2 * width, 4 * width, 2, True),
            *block(4 * width, 4 * width, 1, True),
            *same_conv(4 * width, 1 + embed_dim),
        )
        # NHWC weights, so the activations are NHWC too (oneDNN's faster path on CPU: the critic
        # phase with its gradient penalty ~15% faster at width 16); the same values and function
        self.trunk.to(memory_format=torch.channels_last)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(score (n,), embedding (n, embed_dim))`` of images in ``[-1, 1]``."""
        out = self.trunk(images).mean((2, 3))
        return out[:, 0], out[:, 1:]

    def score(self, images: Tensor) -> Tensor:
        """The critic score ``(n,)`` alone."""
        return self(images)[0]


class CodeDiscriminator(nn.Module):
    """``C``: ``FC -> LeakyReLU -> FC -> LayerNorm -> LeakyReLU -> FC`` -> a critic score (pcaegan).

    Args:
        code_dim: ``q``.
        width: hidden units.
    """

    def __init__(self, code_dim: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(code_dim, width),
            nn.LeakyReLU(0.2, True),
            nn.Linear(width, width),
            nn.LayerNorm(width),
            nn.LeakyReLU(0.2, True),
            nn.Linear(width, 1),
        )

    def forward(self, codes: Tensor) -> Tensor:
        return self.net(codes).squeeze(1)


# -- samples -----------------------------------------------------------------------------------------
def save_image_grid(images: Tensor, path: str | os.PathLike, nrow: int, padding: int = 2) -> Tensor:
    """Tile ``images`` ``(n, C, H, W)`` in ``[0, 1]``, ``nrow`` per row, and write the PNG ``path``.

    The file is written through :func:`hashbench.files.atomic_path` (never half-written, with the
    user's umask); its folder is created. Returns the grid ``(3, H', W')`` (e.g. for a logger).
    """
    from torchvision.utils import make_grid, save_image

    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding)
    with atomic_path(Path(path), suffix=".png.tmp") as tmp:
        save_image(grid, tmp, format="png")
    return grid
