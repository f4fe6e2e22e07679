"""Fashion-MNIST (Xiao, Rasul, Vollgraf, 2017) and MNIST (LeCun et al., 1998) from their IDX files.

Expected layout under ``root`` (``.gz`` or uncompressed)::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

Fashion-MNIST is the embedded default dataset: when ``root`` lacks the files, the module reads them
from where Debian's ``dataset-fashion-mnist`` package installs them (``/usr/share/datasets/fashion-mnist``,
``make data`` installs it), then tries the standard download; offline it fails with a message saying
how to get the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from hashbench.data.base import CorruptDatasetError, DatasetArrays, HashDataModule
from hashbench.data.idx import find_or_fetch, read_idx

IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


class _IDXDataModule(HashDataModule):
    """Shared reader for the MNIST-format datasets (10 classes, 28x28 grey)."""

    system_dirs: ClassVar[tuple[str, ...]] = ()
    url: ClassVar[str] = ""
    how_to_get: ClassVar[str] = ""
    class_names: ClassVar[list[str]] = [str(d) for d in range(10)]

    def __init__(
        self,
        root: str,
        protocol: str | None = None,
        seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        augment: Literal["none", "crop", "flip_crop"] = "none",
        download: bool = True,
    ) -> None:
        super().__init__(root, protocol, seed, batch_size, eval_batch_size, num_workers, augment)
        self.download = download

    def load(self) -> DatasetArrays:
        roots = [self.root, *(Path(d) for d in self.system_dirs)]
        images, labels, source = [], [], []
        for side, (img_name, lab_name) in IDX_FILES.items():
            img_path, lab_path = (
                find_or_fetch(
                    name,
                    roots,
                    self.url if self.download else None,
                    self.root,
                    self.how_to_get.format(root=self.root),
                )
                for name in (img_name, lab_name)
            )
            x, y = read_idx(img_path), read_idx(lab_path)
            if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
                raise CorruptDatasetError(
                    f"{img_path} holds {x.shape} and {lab_path} holds {y.shape}: expected "
                    "(n, 28, 28) images and (n,) labels of the same length"
                )
            if y.max(initial=0) >= len(self.class_names):
                raise CorruptDatasetError(f"{lab_path} has label {y.max()} outside 0..9")
            images.append(x[:, None])
            labels.append(np.eye(len(self.class_names), dtype=np.uint8)[y])
            source.append(np.full(len(y), side))
        return DatasetArrays(
            np.concatenate(images),
            np.concatenate(labels),
            np.concatenate(source),
            list(self.class_names),
        )


class FashionMNISTDataModule(_IDXDataModule):
    """Fashion-MNIST: 60,000 train + 10,000 test 28x28 grey images of 10 clothing classes.

    Args:
        root: folder with the four IDX files (see module docstring); splits are saved under it.
        protocol: split preset, default ``fashion-mnist-69k``.
        seed: split seed.
        batch_size: training batch size.
        eval_batch_size: evaluation batch size.
        num_workers: DataLoader workers.
        augment: training augmentation (``crop`` recommended over ``flip_crop`` only for digits).
        download: try the standard download when the files are nowhere on disk.
    """

    name = "fashion-mnist"
    default_protocol = "fashion-mnist-69k"
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    class_names = FASHION_CLASSES
    how_to_get = (
        "Get Fashion-MNIST one of these ways: `make data` (installs Debian's dataset-fashion-mnist "
        "package: `apt-get install dataset-fashion-mnist`, files in /usr/share/datasets/fashion-mnist), "
        "or download the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist "
        "into {root}."
    )


class MNISTDataModule(_IDXDataModule):
    """MNIST: 60,000 train + 10,000 test 28x28 grey digits.

    Args:
        root: folder with the four IDX files (same names as Fashion-MNIST's).
        protocol: split preset, default ``mnist-69k``.
        seed: split seed.
        batch_size: training batch size.
        eval_batch_size: evaluation batch size.
        num_workers: DataLoader workers.
        augment: training augmentation (use ``crop``: flips are wrong for digits).
        download: try the standard download when the files are nowhere on disk.
    """

    name = "mnist"
    default_protocol = "mnist-69k"
    system_dirs = ("/usr/share/datasets/mnist",)
    url = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    how_to_get = (
        "Download the four MNIST *-ubyte.gz files (train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into {root}."
    )
