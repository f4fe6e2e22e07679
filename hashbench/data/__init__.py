"""Datasets, split protocols and the dataset registry.

:data:`DATAMODULES` maps a dataset name to its :class:`~hashbench.data.base.HashDataModule`
subclass. It is built on first access, so ``import hashbench.data.protocols`` (pure numpy) does not
pull in Lightning and the dataset modules.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hashbench.data.base import HashDataModule

    DATAMODULES: dict[str, type[HashDataModule]]

# dataset name -> "module:Class"; the class's ``name`` attribute is the same string.
_REGISTRY = {
    "fashion-mnist": "hashbench.data.fashion_mnist:FashionMNISTDataModule",
    "mnist": "hashbench.data.fashion_mnist:MNISTDataModule",
    "cifar10": "hashbench.data.cifar10:CIFAR10DataModule",
    "svhn": "hashbench.data.svhn:SVHNDataModule",
    "image-list": "hashbench.data.image_list:ImageListDataModule",
    "image-folder": "hashbench.data.image_folder:ImageFolderDataModule",
    "nus-wide": "hashbench.data.nus_wide:NUSWIDEDataModule",
}

__all__ = ["DATAMODULES", "get_datamodule_class"]


def _load(spec: str) -> type[HashDataModule]:
    module, cls = spec.split(":")
    return getattr(import_module(module), cls)


def get_datamodule_class(name: str) -> type[HashDataModule]:
    """The DataModule class of dataset ``name``; a clear error lists the known names."""
    try:
        spec = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_REGISTRY))}"
        ) from None
    return _load(spec)


def __getattr__(name: str) -> Any:
    if name == "DATAMODULES":
        registry = {key: _load(spec) for key, spec in _REGISTRY.items()}
        globals()["DATAMODULES"] = registry
        return registry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
