"""SVHN (Netzer, Wang, Coates, Bissacco, Wu, Ng, "Reading Digits in Natural Images with Unsupervised
Feature Learning", NIPS Workshop on Deep Learning and Unsupervised Feature Learning, 2011).

Reads the official cropped-digit files ("Format 2") as distributed at
http://ufldl.stanford.edu/housenumbers/. Expected layout under ``root``::

    <root>/train_32x32.mat   73,257 training digits
    <root>/test_32x32.mat    26,032 test digits
    (<root>/extra_32x32.mat  531,131 extra digits: not used)

Each file is a MATLAB (v5) file with ``X``, ``uint8 (32, 32, 3, N)`` (height, width, RGB channel,
image), and ``y``, ``(N, 1)`` labels 1..10, where **10 means the digit 0**. The module maps 10 to 0,
so class ``k`` is the digit ``k``, and serves ``uint8 (B, 3, 32, 32)`` images. Files are read with
:func:`scipy.io.loadmat`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from hashbench.data.base import (
    CorruptDatasetError,
    DatasetArrays,
    DatasetNotFoundError,
    HashDataModule,
)

URL = "http://ufldl.stanford.edu/housenumbers/"
FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
SVHN_CLASSES = [str(d) for d in range(10)]

LAYOUT = (
    f"Expected layout: <root>/{FILES['train']} and <root>/{FILES['test']} (the official "
    f"cropped-digit 'Format 2' MATLAB files with X uint8 (32, 32, 3, N) and y (N, 1) in 1..10, "
    f"10 meaning digit 0). Download them from {URL} (e.g. `wget {URL}{FILES['train']} "
    f"{URL}{FILES['test']} -P <root>`)."
)


def read_svhn_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 (n, 3, 32, 32)`` and digit labels ``int64 (n,)`` (0..9) of one SVHN file.

    Raises:
        DatasetNotFoundError: no file at ``path``.
        CorruptDatasetError: the file is not a MATLAB file with SVHN's ``X`` / ``y`` arrays.
    """
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"SVHN file {path} is missing.\n{LAYOUT}")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # noqa: BLE001 - any reader failure means a corrupt file
        raise CorruptDatasetError(
            f"{path} cannot be read as a MATLAB file ({type(e).__name__}: {e}); it is truncated or "
            f"corrupt - download it again from {URL}. Note: v7.3 (HDF5) files are not supported; "
            "the official files are v5."
        ) from e
    if "X" not in mat or "y" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise CorruptDatasetError(
            f"{path} lacks the 'X' / 'y' arrays of an SVHN cropped-digit file (keys: {keys}).\n"
            f"{LAYOUT}"
        )
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"])
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise CorruptDatasetError(
            f"{path}: 'X' is {x.dtype} {x.shape}, expected uint8 (32, 32, 3, N).\n{LAYOUT}"
        )
    if y.size != x.shape[3] or (y.ndim == 2 and y.shape[1] != 1) or y.ndim > 2:
        raise CorruptDatasetError(
            f"{path}: 'y' has shape {y.shape} for {x.shape[3]} images, expected ({x.shape[3]}, 1)"
        )
    raw = y.reshape(-1)
    if raw.dtype.kind not in "iuf" or (
        raw.dtype.kind == "f" and not np.array_equal(raw, np.round(raw))
    ):
        raise CorruptDatasetError(f"{path}: 'y' is {raw.dtype}, expected integer labels 1..10")
    labels = raw.astype(np.int64)
    if labels.size and (labels.min() < 1 or labels.max() > 10):
        raise CorruptDatasetError(
            f"{path}: labels outside 1..10 ({labels.min()}..{labels.max()}); SVHN writes digit 0 "
            "as 10 and has no label 0"
        )
    labels = np.where(labels == 10, 0, labels)
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1))  # (N, C, H, W)
    return images, labels


class SVHNDataModule(HashDataModule):
    """SVHN cropped digits: 73,257 train + 26,032 test 32x32 RGB images of the digits 0-9.

    Labels are one-hot over the digits (SVHN's label 10 is digit 0); items of ``train_32x32.mat``
    have source ``train``, those of ``test_32x32.mat`` source ``test``.

    Args:
        root: folder with ``train_32x32.mat`` and ``test_32x32.mat``; splits go to ``<root>/splits``.
        protocol: split preset, default ``svhn`` (100 per class test queries, 500 per class
            training images, the rest as database, mAP@all).
        seed: split seed.
        batch_size: training batch size.
        eval_batch_size: evaluation batch size.
        num_workers: DataLoader workers.
        augment: training augmentation (``crop``; flips are wrong for digits).
    """

    name = "svhn"
    default_protocol = "svhn"

    def __init__(
        self,
        root: str,
        protocol: str | None = None,
        seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        augment: Literal["none", "crop", "flip_crop"] = "none",
    ) -> None:
        super().__init__(root, protocol, seed, batch_size, eval_batch_size, num_workers, augment)

    def load(self) -> DatasetArrays:
        missing = [f for f in FILES.values() if not (self.root / f).is_file()]
        if missing:
            raise DatasetNotFoundError(
                f"SVHN not found under {self.root}: missing {', '.join(missing)}.\n{LAYOUT}"
            )
        images, labels, source = [], [], []
        for side, name in FILES.items():
            x, y = read_svhn_mat(self.root / name)
            images.append(x)
            labels.append(y)
            source.append(np.full(len(y), side))
        return DatasetArrays(
            np.concatenate(images),
            np.eye(10, dtype=np.uint8)[np.concatenate(labels)],
            np.concatenate(source),
            list(SVHN_CLASSES),
        )
