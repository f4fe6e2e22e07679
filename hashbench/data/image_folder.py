"""Image datasets stored as one sub-folder per class (torchvision ``ImageFolder`` style).

Two layouts (``layout="auto"`` picks the second when ``root/train`` and ``root/test`` or
``root/val`` exist)::

    flat:        <root>/<class>/**/*.jpg          every item has source "train"
    train_test:  <root>/train/<class>/**/*.jpg    source "train"
                 <root>/test/<class>/**/*.jpg     source "test" (or <root>/val/...)

Classes are the sub-folder names sorted by name (the union of both sides in ``train_test``); labels
are one-hot. Image files are found by extension (see :data:`IMAGE_EXTENSIONS`, any case), in
sub-folders too, in sorted order; hidden files and folders and ``<root>/splits`` (where hashbench
writes its split files) are ignored. A class folder without images is left out with a warning.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from lightning.pytorch.utilities import rank_zero_warn

from hashbench.data.base import DatasetArrays, DatasetNotFoundError, HashDataModule

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
)
RESERVED = ("splits",)
TEST_SIDES = ("test", "val")

LAYOUT = (
    "Expected layout: <root>/<class>/<image files>, or <root>/train/<class>/<image files> plus "
    f"<root>/test/<class>/<image files> (or <root>/val/...); image extensions: "
    f"{', '.join(IMAGE_EXTENSIONS)}."
)


def list_images(folder: Path) -> list[str]:
    """Image files under ``folder`` (recursively), sorted, hidden entries skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [
            os.path.join(dirpath, f)
            for f in filenames
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)
        ]
    return sorted(found)


def class_folders(side: Path, reserved: tuple[str, ...] = ()) -> list[str]:
    """Names of the class sub-folders of ``side`` (visible, not ``reserved``)."""
    return sorted(
        d.name
        for d in side.iterdir()
        if d.is_dir() and not d.name.startswith(".") and d.name not in reserved
    )


class ImageFolderDataModule(HashDataModule):
    """A single-label image dataset stored as one folder per class; images are read from disk.

    Batches hold ``uint8 (B, 3, image_size, image_size)`` images (plain resize, no crop).

    Args:
        root: the dataset folder (see the module docstring for the layouts); splits go to
            ``<root>/splits``.
        protocol: split preset; default ``tiny`` - choose one whose per-class counts your data has.
        seed: split seed.
        batch_size: training batch size.
        eval_batch_size: evaluation batch size.
        num_workers: DataLoader workers (image decoding is the bottleneck: use several).
        augment: training augmentation.
        image_size: side images are resized to.
        layout: ``flat``, ``train_test`` or ``auto`` (``train_test`` when ``root/train`` and
            ``root/test`` or ``root/val`` exist).
        dataset_name: name used in results and cache keys (:attr:`key`); default ``image-folder``.
    """

    name: ClassVar[str] = "image-folder"
    default_protocol = "tiny"

    def __init__(
        self,
        root: str,
        protocol: str | None = None,
        seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        augment: Literal["none", "crop", "flip_crop"] = "none",
        image_size: int = 224,
        layout: Literal["auto", "flat", "train_test"] = "auto",
        dataset_name: str | None = None,
    ) -> None:
        super().__init__(
            root, protocol, seed, batch_size, eval_batch_size, num_workers, augment, image_size
        )
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.layout = layout
        if dataset_name is not None:
            self.name = dataset_name

    def sides(self) -> dict[str, Path]:
        """The folder of each source (``train`` / ``test``) for the configured layout."""
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"image folder {self.root} does not exist.\n{LAYOUT}")
        test = next((self.root / t for t in TEST_SIDES if (self.root / t).is_dir()), None)
        split_layout = (self.root / "train").is_dir() and test is not None
        if self.layout == "train_test" or (self.layout == "auto" and split_layout):
            if not split_layout:
                raise DatasetNotFoundError(
                    f"{self.root} lacks train/ and test/ (or val/) folders (layout='train_test').\n"
                    f"{LAYOUT}"
                )
            return {"train": self.root / "train", "test": test}
        return {"train": self.root}

    def load(self) -> DatasetArrays:
        sides = self.sides()
        flat = len(sides) == 1
        files: dict[tuple[str, str], list[str]] = {}
        for src, folder in sides.items():
            for cls in class_folders(folder, RESERVED if flat else ()):
                files[src, cls] = list_images(folder / cls)
        names = sorted({cls for _, cls in files})
        empty = [cls for cls in names if not any(files.get((s, cls)) for s in sides)]
        if empty:
            rank_zero_warn(
                f"{len(empty)} class folders under {self.root} hold no images and are left out "
                f"({', '.join(empty[:5])}{', ...' if len(empty) > 5 else ''})"
            )
        names = [cls for cls in names if cls not in empty]
        if not names:
            raise DatasetNotFoundError(f"no class folders with images under {self.root}.\n{LAYOUT}")
        paths: list[str] = []
        label_idx: list[int] = []
        source: list[str] = []
        for src in sides:
            for c, cls in enumerate(names):
                found = files.get((src, cls), [])
                paths += found
                label_idx += [c] * len(found)
                source += [src] * len(found)
        labels = np.eye(len(names), dtype=np.uint8)[np.asarray(label_idx, dtype=np.int64)]
        return DatasetArrays(
            images=paths,
            labels=labels,
            source=np.asarray(source),
            class_names=names,
            extra={"layout": "flat" if flat else "train_test"},
        )
