"""Image datasets described by list files, the format most hashing repositories ship.

One image per line: a path relative to ``root`` followed by its multi-hot label vector, separated by
whitespace (DeepHash-pytorch's NUS-WIDE, MS-COCO and ImageNet-100 lists, HashNet's, DCH's)::

    images/0001_2124494179.jpg 0 1 0 0 1 ... 0
    images\\0002_174174086.jpg 1 0 0 0 0 ... 0      (Windows separators are accepted)

Blank lines and lines starting with ``#`` are skipped; paths must not contain whitespace; every line
of every list must have the same number of labels, each ``0`` or ``1``. Items of ``train_list`` get
source ``train``, items of ``test_list`` source ``test`` (protocols that draw queries "from test"
use them); a single ``list_file`` gives every item source ``train`` (and a protocol's
source rule then falls back to all items).

Every listed file is checked once when the dataset is read: missing or empty files are left out and
reported in one warning (:class:`MissingImagesWarning`) with their count and first names, so a
partial download never fails in the middle of an epoch. The files that exist are decoded once
(:mod:`hashbench.data.integrity`, cached next to the splits); those that do not decode are left out
and counted the same way (:class:`~hashbench.data.integrity.CorruptImagesWarning`).

``test_list`` is optional: when the file is not there, ``train_list`` is read alone (every item
on the ``train`` side) with a warning that says how to silence it. ``image_size: null`` and
``num_workers: null`` resolve as in :mod:`~hashbench.data.image_folder` (native size up to 224;
0 workers on <= 2 cores, else ``min(4, cores - 1)``).

Split files go next to the (first) list file, ``<list folder>/splits/<protocol>-seed<k>.npz``: the
split belongs to the list, and one image folder often serves several lists (NUS-WIDE-21 and -81).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from lightning.pytorch.utilities import rank_zero_warn

from hashbench.data.base import (
    CorruptDatasetError,
    DatasetArrays,
    DatasetNotFoundError,
    HashDataModule,
)
from hashbench.data.image_folder import check_files, default_num_workers

LAYOUT = (
    "Expected: `root` is the image folder, and each list file has one line per image, "
    "'<path relative to root> <0/1> <0/1> ...' (a multi-hot label vector), e.g. "
    "'images/0001.jpg 0 1 0 1'. List paths are taken relative to root first, then to the "
    "working directory."
)
SHOWN_MISSING = 5


class MissingImagesWarning(UserWarning):
    """Some listed image files are missing (or empty) and were left out of the dataset."""


def normalise_path(path: str) -> str:
    """A list entry as a POSIX relative path (Windows ``\\`` separators become ``/``)."""
    return path.replace("\\", "/")


def parse_image_list(
    path: str | os.PathLike, num_labels: int | None = None, num_labels_from: str | None = None
) -> tuple[list[str], np.ndarray]:
    """Read a list file into normalised relative paths and a ``uint8 (n, c)`` label matrix.

    Args:
        path: the list file.
        num_labels: the label count every line must have (``None``: taken from the first line).
        num_labels_from: where ``num_labels`` comes from (another list file), for error messages.

    Raises:
        CorruptDatasetError: a malformed line, naming the file and line number.
    """
    path = Path(path)
    paths: list[str] = []
    rows: list[str] = []
    try:
        with open(path, encoding="utf-8-sig") as f:
            for lineno, line in enumerate(f, 1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                parts = text.split()
                where = f"{path}, line {lineno}"
                if len(parts) < 2:
                    raise CorruptDatasetError(
                        f"{where}: expected '<relative/path> <0/1> <0/1> ...', got {text[:80]!r}"
                    )
                labels = parts[1:]
                if not set(labels) <= {"0", "1"}:
                    bad = next(t for t in labels if t not in ("0", "1"))
                    raise CorruptDatasetError(
                        f"{where}: label {bad!r} is not 0 or 1 (expected a multi-hot label vector "
                        f"after the path; paths must not contain whitespace)"
                    )
                if num_labels is None:
                    num_labels = len(labels)
                elif len(labels) != num_labels:
                    before = (
                        f"{num_labels_from} has" if num_labels_from else "the lines before have"
                    )
                    raise CorruptDatasetError(
                        f"{where}: {len(labels)} labels, but {before} {num_labels} per line"
                    )
                paths.append(normalise_path(parts[0]))
                rows.append("".join(labels))
    except UnicodeDecodeError as e:
        raise CorruptDatasetError(f"{path} is not a UTF-8 text list file ({e})") from e
    except OSError as e:
        raise DatasetNotFoundError(f"image list {path} cannot be read ({e}).\n{LAYOUT}") from e
    if not paths:
        raise CorruptDatasetError(f"{path} lists no images.\n{LAYOUT}")
    labels_arr = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8) - ord("0")
    return paths, labels_arr.reshape(len(paths), num_labels)


def _is_usable_file(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size > 0


class ImageListDataModule(HashDataModule):
    """A multi-label (or one-hot) image dataset given by list files; images are read from disk.

    Batches hold ``uint8 (B, 3, image_size, image_size)`` images (plain resize, no crop).

    Args:
        root: the image folder that the list's paths are relative to.
        train_list: list file of the official training side (source ``train``); a relative path
            is looked up under ``root`` first, then the working directory.
        test_list: list file of the official test side (source ``test``), optional: ``None``
            reads ``train_list`` alone, and a test list that does not exist is skipped with a
            warning.
        list_file: one list file for the whole dataset, instead of ``train_list``/``test_list``.
        protocol: split preset (e.g. ``nus-wide-21``, ``nus-wide-81``); default ``tiny`` - set the
            preset that matches your dataset.
        seed: split seed.
        batch_size: training batch size.
        eval_batch_size: evaluation batch size.
        num_workers: DataLoader workers; ``None`` = 0 on <= 2 cores, else ``min(4, cores - 1)``.
        augment: training augmentation.
        image_size: side images are resized to; ``None`` = the native size (the larger side of
            the most common image size, at most 224).
        class_names: one name per label column (default ``"0"``, ``"1"``, ...).
        dataset_name: name used in results and cache keys (:attr:`key`); default ``image-list``.
            Set it (e.g. ``nus-wide``) when several list datasets are used side by side.
        check_images: decode every image once (cached) and leave out those that fail.
    """

    name: ClassVar[str] = "image-list"
    default_protocol = "tiny"

    def __init__(
        self,
        root: str,
        train_list: str | None = None,
        test_list: str | None = None,
        list_file: str | None = None,
        protocol: str | None = None,
        seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int | None = None,
        augment: Literal["none", "crop", "flip_crop"] = "none",
        image_size: int | None = None,
        class_names: list[str] | None = None,
        dataset_name: str | None = None,
        check_images: bool = True,
    ) -> None:
        workers = default_num_workers() if num_workers is None else num_workers
        super().__init__(
            root, protocol, seed, batch_size, eval_batch_size, workers, augment, image_size
        )
        if list_file is not None and (train_list is not None or test_list is not None):
            raise ValueError("give either list_file or train_list (+ test_list), not both")
        if list_file is None and train_list is None:
            raise ValueError(
                "ImageListDataModule needs list_file, or train_list (and optionally test_list)"
            )
        if image_size is not None and image_size < 1:
            raise ValueError(
                f"image_size must be positive (or null for the native size), got {image_size}"
            )
        self.check_images = check_images
        self.lists: dict[str, str] = (
            {"train": list_file}
            if list_file is not None
            else {"train": train_list, **({"test": test_list} if test_list is not None else {})}
        )
        self.class_names = list(class_names) if class_names is not None else None
        if dataset_name is not None:
            self.name = dataset_name

    def list_path(self, name: str) -> Path:
        """Where list file ``name`` is: under ``root`` if there, else relative to the cwd."""
        p = Path(name).expanduser()
        candidates = [p] if p.is_absolute() else [self.root / p, p]
        for c in candidates:
            if c.is_file():
                return c
        raise DatasetNotFoundError(
            f"image list {name!r} not found (looked for {', '.join(map(str, candidates))})."
            f"\n{LAYOUT}"
        )

    def _lists_present(self) -> dict[str, str]:
        """:attr:`lists` without a ``test_list`` that does not exist (optional: a warning says so)."""
        lists = dict(self.lists)
        if "test" in lists:
            try:
                self.list_path(lists["test"])
            except DatasetNotFoundError:
                rank_zero_warn(
                    f"test list {lists['test']!r} not found under {self.root} or the working "
                    f"directory, so every item comes from {lists['train']} (source 'train'). "
                    "test_list is optional: pass --data.init_args.test_list null to read the "
                    "training list alone without this warning, or give the test list's path."
                )
                del lists["test"]
        return lists

    @property
    def split_dir(self) -> Path:
        return self.list_path(next(iter(self.lists.values()))).parent / "splits"

    def load(self) -> DatasetArrays:
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"image folder {self.root} does not exist.\n{LAYOUT}")
        rel_paths: list[str] = []
        label_blocks: list[np.ndarray] = []
        sources: list[np.ndarray] = []
        num_labels = None
        files: dict[str, str] = {}
        for side, name in self._lists_present().items():
            path = self.list_path(name)
            p, y = parse_image_list(path, num_labels, files.get("train"))
            files[side] = str(path)
            num_labels = y.shape[1]
            rel_paths += p
            label_blocks.append(y)
            sources.append(np.full(len(p), side))
        labels = np.concatenate(label_blocks)
        source = np.concatenate(sources)
        full = [str(self.root / p) for p in rel_paths]
        keep = np.fromiter((_is_usable_file(f) for f in full), dtype=bool, count=len(full))
        missing = [rel_paths[i] for i in np.flatnonzero(~keep)]
        listed = " and ".join(files.values())
        if not keep.any():
            raise DatasetNotFoundError(
                f"none of the {len(full)} images listed in {listed} exists under {self.root} "
                f"(first: {rel_paths[0]}); is root the folder the list's paths are relative to?\n"
                f"{LAYOUT}"
            )
        if missing:
            shown = ", ".join(missing[:SHOWN_MISSING]) + (
                ", ..." if len(missing) > SHOWN_MISSING else ""
            )
            rank_zero_warn(
                f"{len(missing)} of {len(full)} images listed in {listed} are missing or empty "
                f"under {self.root} and are left out ({shown}). Restoring them later changes "
                "the dataset, so the saved split will no longer match and must be drawn again.",
                category=MissingImagesWarning,
            )
        seen: set[str] = set()
        duplicates = [p for p in rel_paths if p in seen or seen.add(p)]
        if duplicates:
            rank_zero_warn(
                f"{len(duplicates)} paths appear more than once in {listed} (first: "
                f"{duplicates[0]}); each occurrence is a separate item, so an image can be its own "
                "match across query and database."
            )
        class_names = self.class_names or [str(i) for i in range(labels.shape[1])]
        if len(class_names) != labels.shape[1]:
            raise ValueError(
                f"class_names has {len(class_names)} names but {listed} has "
                f"{labels.shape[1]} labels"
            )
        present = np.flatnonzero(keep)
        readable, check = check_files(
            self, [full[i] for i in present], f"the image list {listed}", self.check_images
        )
        idx = present[readable]
        return DatasetArrays(
            images=[full[i] for i in idx],
            labels=labels[idx],
            source=source[idx],
            class_names=class_names,
            extra={
                "lists": files,
                "missing": missing,
                "corrupt": sorted(rel_paths[i] for i in present[~readable]),
            },
        )
