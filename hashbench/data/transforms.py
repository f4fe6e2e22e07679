"""Image transforms: the backbone input adapter (run by the method) and training augmentation
(run by the DataModule).

Images leave a DataModule as ``uint8 (N, C, H, W)`` in the dataset's native size and channels
(``C = 1`` for Fashion-MNIST/MNIST, ``3`` for CIFAR-10/SVHN/photos). Each backbone declares what it
wants as an :class:`InputSpec` (see :func:`hashbench.models.backbones.input_spec`), and the method
turns a batch into the backbone's input with an :class:`InputAdapter` - a small ``nn.Module`` that
runs on the batch's device (GPU when there is one), so no DataModule needs to know the backbone.

Training augmentation is per image, on ``uint8 (C, H, W)`` tensors, before batching:
:func:`train_augmentation` (random crop with zero padding, optionally a horizontal flip).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

AugmentKind = Literal["none", "flip_crop", "crop"]
AUGMENT_KINDS: tuple[str, ...] = ("none", "flip_crop", "crop")


@dataclass(frozen=True)
class InputSpec:
    """What a backbone expects as input.

    Args:
        size: square side ``S`` the backbone wants (images are resized to ``S x S``); ``None`` keeps
            the native size.
        channels: 1 or 3. Grey images are repeated to 3 channels, RGB images averaged to 1, when the
            image's channels differ.
        mean: per-channel mean in ``[0, 1]`` units (``len == channels``).
        std: per-channel standard deviation in ``[0, 1]`` units (``len == channels``, all ``> 0``).
    """

    size: int | None
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.size is not None and (
            isinstance(self.size, bool) or not isinstance(self.size, int) or self.size <= 0
        ):
            raise ValueError(f"InputSpec.size={self.size!r}: expected a positive int or None.")
        if self.channels not in (1, 3):
            raise ValueError(f"InputSpec.channels={self.channels!r}: expected 1 or 3.")
        for field_name in ("mean", "std"):
            value = getattr(self, field_name)
            if len(value) != self.channels:
                raise ValueError(
                    f"InputSpec.{field_name}={value!r} has {len(value)} values for "
                    f"channels={self.channels}: give one value per channel."
                )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"InputSpec.std={self.std!r}: every value must be > 0.")


class InputAdapter(nn.Module):
    """Turn an image batch into a backbone's normalised float input, as an :class:`InputSpec` says.

    For a batch ``x`` of shape ``(N, C, H, W)``:

    1. ``x <- x / 255`` for ``uint8`` input; a floating input is taken to be in ``[0, 1]`` units
       already (e.g. a generator's ``tanh`` output mapped by ``(y + 1) / 2``), and gradients flow
       through;
    2. channels: ``C = 1 -> 3`` repeats the grey channel; ``C = 3 -> 1`` takes the plain mean of
       R, G and B (**Resolved:** an unweighted average, not ITU-R luma weights);
    3. resize to ``size x size`` (bilinear, ``align_corners=False``, antialiased) when
       ``spec.size`` is set and differs from ``(H, W)``; a non-square image is stretched, not
       cropped;
    4. ``x <- (x - mean[c]) / std[c]`` per channel.

    Channel reduction runs before the resize and channel expansion after it (both are linear, so the
    result is the same; the resize just handles fewer channels). ``mean`` and ``std`` are
    non-persistent buffers: they follow ``.to(device)`` and stay out of checkpoints.

    Args:
        spec: the backbone's :class:`InputSpec`.
    """

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        if not isinstance(spec, InputSpec):
            raise TypeError(
                f"InputAdapter(spec=...) expects an InputSpec, got {type(spec).__name__}."
            )
        self.spec = spec
        self.register_buffer(
            "mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )

    def forward(self, images: Tensor) -> Tensor:
        """Adapt ``images`` ``(N, C, H, W)`` (``uint8``, or float in ``[0, 1]``) to the backbone.

        Args:
            images: the batch; ``C`` must be 1 or 3.

        Returns:
            ``float32 (N, spec.channels, S, S)`` with ``S = spec.size`` (native ``H, W`` when
            ``spec.size`` is ``None``).
        """
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(
                f"InputAdapter expects images of shape (N, C, H, W) with C = 1 or 3, got "
                f"{tuple(images.shape)}; a single image needs a batch dimension (image[None])."
            )
        if images.dtype == torch.uint8:
            x = images.float().div_(255.0)
        elif images.is_floating_point():
            x = images.float()
        else:
            raise TypeError(
                f"InputAdapter expects uint8 images (0-255) or floating images in [0, 1], "
                f"got dtype {images.dtype}."
            )
        want = self.spec.channels
        if x.shape[1] == 3 and want == 1:
            x = x.mean(dim=1, keepdim=True)
        size = self.spec.size
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            x = F.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        if x.shape[1] == 1 and want == 3:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        s = self.spec
        return f"size={s.size}, channels={s.channels}, mean={s.mean}, std={s.std}"


class TrainAugmentation:
    """Per-image training augmentation on ``uint8 (C, H, W)`` tensors (``torchvision`` v2).

    ``"crop"``: zero-pad ``padding`` pixels on every side, then crop a random ``H x W`` window (the
    usual CIFAR/MNIST translation augmentation). ``"flip_crop"``: the same, then a horizontal flip
    with probability 0.5. ``"none"``: the image unchanged. Output shape and dtype equal the input's.

    Flips are wrong for digits (MNIST, SVHN: a mirrored 2, 3, 5, 7 is not that digit) - use
    ``"crop"`` there; ``"flip_crop"`` suits objects and scenes (CIFAR-10, Fashion-MNIST, NUS-WIDE).

    Randomness comes from the global torch RNG, which the DataLoader seeds per worker: with the same
    ``torch.manual_seed`` the same images come out. Picklable, so it works with worker processes.

    Args:
        kind: ``"none"``, ``"crop"`` or ``"flip_crop"``.
        padding: pixels of zero padding on each side before the random crop (``>= 0``).
    """

    def __init__(self, kind: AugmentKind = "none", padding: int = 2) -> None:
        if kind not in AUGMENT_KINDS:
            raise ValueError(
                f"augmentation kind={kind!r} is unknown: expected one of {AUGMENT_KINDS}."
            )
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"augmentation padding={padding!r}: expected an int >= 0.")
        self.kind = kind
        self.padding = padding
        self._crops: dict[tuple[int, int], Callable[[Tensor], Tensor]] = {}
        self._flip: Callable[[Tensor], Tensor] | None = None
        if kind == "flip_crop":
            from torchvision.transforms import v2

            self._flip = v2.RandomHorizontalFlip(p=0.5)

    def _crop(self, hw: tuple[int, int]) -> Callable[[Tensor], Tensor]:
        crop = self._crops.get(hw)
        if crop is None:
            from torchvision.transforms import v2

            crop = v2.RandomCrop(hw, padding=self.padding, fill=0, padding_mode="constant")
            self._crops[hw] = crop
        return crop

    def __call__(self, image: Tensor) -> Tensor:
        """Augment one image ``(C, H, W)``; returns a tensor of the same shape and dtype."""
        if self.kind == "none":
            return image
        if image.dim() != 3:
            raise ValueError(
                f"train augmentation works on one image (C, H, W), got shape {tuple(image.shape)}."
            )
        if self.padding > 0:
            image = self._crop((int(image.shape[-2]), int(image.shape[-1])))(image)
        if self._flip is not None:
            image = self._flip(image)
        return image

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, padding={self.padding})"


def train_augmentation(kind: AugmentKind = "none", padding: int = 2) -> Callable[[Tensor], Tensor]:
    """The per-image ``uint8 (C, H, W)`` training augmentation a DataModule's train set applies.

    Random crop with ``padding`` pixels of zero padding (``"crop"``), plus a random horizontal
    flip (``"flip_crop"``); ``"none"`` returns images unchanged. Flips are wrong for digits (MNIST,
    SVHN): use ``"crop"`` for them. See :class:`TrainAugmentation`.

    Args:
        kind: ``"none"``, ``"crop"`` or ``"flip_crop"``.
        padding: zero padding on each side before the random crop, in pixels.

    Returns:
        A picklable callable mapping an image tensor to an augmented one of the same shape and
        dtype.
    """
    return TrainAugmentation(kind, padding)
