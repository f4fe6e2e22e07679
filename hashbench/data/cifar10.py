"""CIFAR-10 (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", TR, 2009).

Reads the official "python version" pickles. Expected layout, ``root`` being either the folder that
holds ``cifar-10-batches-py`` or that folder itself::

    <root>/cifar-10-batches-py/
        data_batch_1 ... data_batch_5   10,000 training images each
        test_batch                      10,000 test images
        batches.meta                    class names (optional: else the standard names)

Get it from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and unpack it in ``root``
(``tar -xzf cifar-10-python.tar.gz -C <root>``); a ``cifar-10-python.tar.gz`` left in ``root`` is
unpacked on first use, and ``download=True`` fetches it.

Each batch is a pickled dict (read with ``encoding="bytes"``) with ``b"data"``, a
``uint8 (10000, 3072)`` array whose rows are the red, green and blue 32x32 planes in row-major
order, and ``b"labels"``, a list of class indices 0..9. Only the globals a numpy array needs are
allowed while unpickling, so a tampered file is an error instead of code execution.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Literal

import numpy as np

from hashbench.data.base import (
    CorruptDatasetError,
    DatasetArrays,
    DatasetNotFoundError,
    HashDataModule,
)
from hashbench.files import atomic_path

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]

LAYOUT = (
    f"Expected layout: <root>/{FOLDER}/{{{','.join(TRAIN_BATCHES)},{TEST_BATCH},{META}}} "
    f"(root may also be the {FOLDER} folder itself). Download {URL} and unpack it in the root "
    f"(`tar -xzf {ARCHIVE} -C <root>`), or pass download=True."
)

# Globals a pickled numpy array needs (numpy 1.x and 2.x spellings, protocols 2-5).
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # bytes pickled by Python 3 with protocol 2
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle API
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def read_cifar_pickle(path: str | os.PathLike) -> dict:
    """Unpickle one CIFAR batch file (``encoding="bytes"``, numpy arrays only).

    Raises:
        CorruptDatasetError: the file is not a readable pickle of a dict.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except OSError as e:
        raise CorruptDatasetError(f"{path} cannot be read ({e})") from e
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise CorruptDatasetError(
            f"{path} is not a CIFAR python pickle ({type(e).__name__}: {e}); the file is truncated "
            f"or corrupt - download {URL} again"
        ) from e
    if not isinstance(obj, dict):
        raise CorruptDatasetError(f"{path} holds a {type(obj).__name__}, expected a pickled dict")
    return obj


def _key(d: dict, name: str):  # noqa: ANN202
    """``d[b"name"]`` (as the originals have it) or ``d["name"]`` (a re-pickled copy)."""
    if name.encode() in d:
        return d[name.encode()]
    return d.get(name)


def read_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 (n, 3, 32, 32)`` and labels ``int64 (n,)`` of one CIFAR-10 batch file."""
    d = read_cifar_pickle(path)
    data, labels = _key(d, "data"), _key(d, "labels")
    if data is None or labels is None:
        raise CorruptDatasetError(
            f"{path} lacks the b'data' / b'labels' entries of a CIFAR-10 batch "
            f"(keys: {sorted(map(repr, d))})"
        )
    data = np.asarray(data)
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise CorruptDatasetError(f"{path}: labels are not integers ({e})") from e
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CorruptDatasetError(
            f"{path}: b'data' is {data.dtype} {data.shape}, expected uint8 (n, 3072)"
        )
    if len(labels) != len(data):
        raise CorruptDatasetError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= 10):
        raise CorruptDatasetError(f"{path}: labels outside 0..9 ({labels.min()}..{labels.max()})")
    return data.reshape(-1, 3, 32, 32), labels


def find_batches_dir(root: Path) -> Path | None:
    """The ``cifar-10-batches-py`` folder for ``root`` (it, or its child), or ``None``."""
    for d in (root / FOLDER, root):
        if (d / TEST_BATCH).is_file() or (d / TRAIN_BATCHES[0]).is_file():
            return d
    if (root / FOLDER).is_dir():
        return root / FOLDER
    if root.name == FOLDER and root.is_dir():
        return root
    return None


def _extract(archive: Path, dest: Path) -> None:
    """Unpack ``archive`` into ``dest`` atomically (the batches folder appears complete or not)."""
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".cifar10-extract-"))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # pragma: no cover - Python without extraction filters
                tar.extractall(tmp)  # noqa: S202
        if not (tmp / FOLDER).is_dir():
            raise CorruptDatasetError(f"{archive} does not contain a {FOLDER} folder")
        os.replace(tmp / FOLDER, dest / FOLDER)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise CorruptDatasetError(
            f"{archive} cannot be unpacked ({e}); delete it and download {URL} again"
        ) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download(dest: Path) -> Path:
    try:
        with (
            atomic_path(dest / ARCHIVE, suffix=".part") as tmp,
            open(tmp, "wb") as out,
            urllib.request.urlopen(URL, timeout=30) as r,
        ):
            shutil.copyfileobj(r, out)
        return dest / ARCHIVE
    except Exception as e:  # noqa: BLE001 - offline, DNS, HTTP: all mean "get it by hand"
        raise DatasetNotFoundError(
            f"CIFAR-10 not found under {dest}, and downloading {URL} failed ({e}).\n{LAYOUT}"
        ) from None


class CIFAR10DataModule(HashDataModule):
    """CIFAR-10: 50,000 train + 10,000 test 32x32 RGB images of 10 classes.

    Batches hold ``uint8 (B, 3, 32, 32)`` images; labels are one-hot over the 10 classes; items of
    ``data_batch_*`` have source ``train``, those of ``test_batch`` source ``test``.

    Args:
        root: folder holding ``cifar-10-batches-py`` (or that folder itself); splits go to
            ``<root>/splits``.
        protocol: split preset, default ``cifar10-59k`` (``cifar10-54k`` and ``cifar10-50k`` too).
        seed: split seed.
        batch_size: training batch size.
        eval_batch_size: evaluation batch size.
        num_workers: DataLoader workers.
        augment: training augmentation (``flip_crop`` is the usual choice for CIFAR).
        download: fetch ``cifar-10-python.tar.gz`` (163 MB) into ``root`` when files are missing.
    """

    name = "cifar10"
    default_protocol = "cifar10-59k"

    def __init__(
        self,
        root: str,
        protocol: str | None = None,
        seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        augment: Literal["none", "crop", "flip_crop"] = "none",
        download: bool = False,
    ) -> None:
        super().__init__(root, protocol, seed, batch_size, eval_batch_size, num_workers, augment)
        self.download = download

    def batches_dir(self) -> Path:
        """The ``cifar-10-batches-py`` folder, unpacking or downloading the archive if needed."""
        found = find_batches_dir(self.root)
        if found is not None:
            return found
        archive = self.root / ARCHIVE
        if not archive.is_file() and self.download:
            archive = _download(self.root)
        if archive.is_file():
            _extract(archive, self.root)
            return self.root / FOLDER
        raise DatasetNotFoundError(f"CIFAR-10 not found under {self.root}.\n{LAYOUT}")

    def load(self) -> DatasetArrays:
        folder = self.batches_dir()
        files = [*TRAIN_BATCHES, TEST_BATCH]
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            raise DatasetNotFoundError(
                f"CIFAR-10 under {folder} is incomplete: missing {', '.join(missing)}.\n{LAYOUT}"
            )
        images, labels, source = [], [], []
        for name in files:
            x, y = read_batch(folder / name)
            images.append(x)
            labels.append(y)
            source.append(np.full(len(y), "test" if name == TEST_BATCH else "train"))
        y = np.concatenate(labels)
        return DatasetArrays(
            np.concatenate(images),
            np.eye(10, dtype=np.uint8)[y],
            np.concatenate(source),
            self._class_names(folder),
        )

    @staticmethod
    def _class_names(folder: Path) -> list[str]:
        path = folder / META
        if not path.is_file():
            return list(CIFAR10_CLASSES)
        names = _key(read_cifar_pickle(path), "label_names")
        if not isinstance(names, (list, tuple)) or len(names) != 10:
            raise CorruptDatasetError(f"{path}: expected b'label_names' with 10 class names")
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
