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

Every image is decoded once when the dataset is first read (:mod:`hashbench.data.integrity`, cached
in ``<root>/splits/image-check.json``); files that do not decode are left out and counted in one
warning, so a damaged file cannot stop a run after training.

Defaults for data of any size (both also apply to :mod:`~hashbench.data.image_list`):

- ``image_size: null`` = the images' native size: the larger side of the most common image size,
  at most 224 (28 px digits stay 28 px; photos become 224 px).
- ``num_workers: null`` = :func:`default_num_workers`: 0 on a machine with 2 or fewer usable CPU
  cores, else ``min(4, cores - 1)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from lightning.pytorch.utilities import rank_zero_warn

from hashbench.data.base import DatasetArrays, DatasetNotFoundError, HashDataModule
from hashbench.data.integrity import ImageCheck, drop_unreadable, native_side

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


def default_num_workers() -> int:
    """DataLoader workers when ``num_workers`` is not set: 0 on <= 2 usable cores, else
    ``min(4, cores - 1)`` (one core stays with the training loop)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return 0 if cores <= 2 else min(4, cores - 1)


def check_files(
    dm: HashDataModule, paths: list[str], where: str, enabled: bool = True
) -> tuple[np.ndarray, ImageCheck]:
    """The decode check of ``paths`` (cached under ``dm.split_dir``) and, when ``dm.image_size`` is
    ``None``, the native size resolved into it. Returns the mask of files to keep and the check."""
    if enabled:
        names = [_relative(p, dm.root) for p in paths]
        keep, check = drop_unreadable(paths, dm.split_dir, where, names)
    else:
        keep, check = np.ones(len(paths), dtype=bool), ImageCheck()
    if dm.image_size is None:
        dm.image_size = native_side(check, [p for p, k in zip(paths, keep, strict=True) if k])
    return keep, check


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


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
        num_workers: DataLoader workers; ``None`` = :func:`default_num_workers` (0 on <= 2 cores,
            else ``min(4, cores - 1)``).
        augment: training augmentation.
        image_size: side images are resized to; ``None`` = the native size (the larger side of
            the most common image size, at most 224).
        layout: ``flat``, ``train_test`` or ``auto`` (``train_test`` when ``root/train`` and
            ``root/test`` or ``root/val`` exist).
        dataset_name: name used in results and cache keys (:attr:`key`); default ``image-folder``.
        check_images: decode every image once (cached) and leave out those that fail.
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
        num_workers: int | None = None,
        augment: Literal["none", "crop", "flip_crop"] = "none",
        image_size: int | None = None,
        layout: Literal["auto", "flat", "train_test"] = "auto",
        dataset_name: str | None = None,
        check_images: bool = True,
    ) -> None:
        workers = default_num_workers() if num_workers is None else num_workers
        super().__init__(
            root, protocol, seed, batch_size, eval_batch_size, workers, augment, image_size
        )
        if image_size is not None and image_size < 1:
            raise ValueError(
                f"image_size must be positive (or null for the native size), got {image_size}"
            )
        self.layout = layout
        self.check_images = check_images
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
        keep, check = check_files(self, paths, f"image folder {self.root}", self.check_images)
        idx = np.flatnonzero(keep)
        labels = np.eye(len(names), dtype=np.uint8)[np.asarray(label_idx, dtype=np.int64)[idx]]
        return DatasetArrays(
            images=[paths[i] for i in idx],
            labels=labels,
            source=np.asarray(source)[idx],
            class_names=names,
            extra={
                "layout": "flat" if flat else "train_test",
                "corrupt": sorted(_relative(p, self.root) for p in check.bad),
            },
        )
