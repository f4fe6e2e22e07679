"""Datasets, split protocols and the dataset registry.

:data:`DATAMODULES` (a :class:`~hashbench.registry.Registry`) maps a dataset name to its
:class:`~hashbench.data.base.HashDataModule` subclass. Entries are lazy import paths, so
``import hashbench.data.protocols`` (pure numpy) does not pull in Lightning and the dataset
modules; a class is imported the first time it is looked up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hashbench.registry import Registry

if TYPE_CHECKING:
    from hashbench.data.base import HashDataModule

# dataset name -> "module:Class"; the class's ``name`` attribute is the same string.
DATAMODULES: Registry[type[HashDataModule]] = Registry(
    "dataset",
    {
        "fashion-mnist": "hashbench.data.fashion_mnist:FashionMNISTDataModule",
        "mnist": "hashbench.data.fashion_mnist:MNISTDataModule",
        "cifar10": "hashbench.data.cifar10:CIFAR10DataModule",
        "svhn": "hashbench.data.svhn:SVHNDataModule",
        "image-list": "hashbench.data.image_list:ImageListDataModule",
        "image-folder": "hashbench.data.image_folder:ImageFolderDataModule",
        "nus-wide": "hashbench.data.nus_wide:NUSWIDEDataModule",
    },
)

__all__ = ["DATAMODULES", "get_datamodule_class"]


def get_datamodule_class(name: str) -> type[HashDataModule]:
    """The DataModule class of dataset ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered (a ``ValueError`` listing the known names).
    """
    return DATAMODULES.get(name)
