"""`HashDataModule`: the five protocol sets of a dataset as Lightning data loaders.

A dataset module subclasses :class:`HashDataModule` and implements :meth:`HashDataModule.load`, which
reads the files as distributed and returns a :class:`DatasetArrays`: every image of the dataset (in
memory as ``uint8`` or as file paths), multi-hot labels, each item's official side (``train`` /
``test``) and optional per-image tags. The base class draws (or reloads) the protocol's split and
serves the sets.

A batch is a dict: ``image`` ``uint8 (B, C, H, W)`` in the dataset's native size and channels (the
method adapts it to its backbone, see :mod:`hashbench.data.transforms`), ``label`` ``float (B, c)``
multi-hot, ``index`` ``int64 (B,)`` positions in the whole dataset (for tags, neighbour lists and
per-image state).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from hashbench.data.protocols import (
    SPLIT_VERSION,
    SPLITS,
    Protocol,
    get_protocol,
    load_or_create_split,
)

Split = Literal["train", "val_query", "val_database", "query", "database"]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where the configuration says; the message says how to get them."""


class CorruptDatasetError(ValueError):
    """A dataset file exists but cannot be read as the expected format."""


@dataclass
class DatasetArrays:
    """Everything a dataset module reads from disk.

    Attributes:
        images: ``uint8 (N, C, H, W)`` array, or ``N`` image file paths (loaded and resized on access).
        labels: multi-hot ``(N, c)`` ``uint8``.
        source: ``(N,)`` official side of each item, ``"train"`` or ``"test"``.
        class_names: ``c`` names.
        tags: optional per-image tag lists (user tags, or a synthetic source - see ``tag_source``).
        tag_source: where the tags come from (``"user"``, ``"synthetic:<rule>"``), recorded in results.
    """

    images: np.ndarray | Sequence[str]
    labels: np.ndarray
    source: np.ndarray
    class_names: list[str]
    tags: list[list[str]] | None = None
    tag_source: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        self.labels = np.asarray(self.labels, dtype=np.uint8)
        self.source = np.asarray(self.source)
        if self.labels.ndim != 2 or self.labels.shape[0] != n or len(self.source) != n:
            raise ValueError(
                f"inconsistent dataset arrays: {n} images, labels {self.labels.shape}, "
                f"{len(self.source)} sources"
            )
        if self.tags is not None and len(self.tags) != n:
            raise ValueError(f"{len(self.tags)} tag lists for {n} images")


def load_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """Read an image file as RGB ``uint8 (3, size, size)`` (plain resize, no crop)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"image file {path} is missing") from None
    except OSError as e:
        raise CorruptDatasetError(f"image file {path} cannot be read as an image: {e}") from e


class HashDataset(Dataset):
    """One protocol set: items ``indices`` of ``arrays``; optional per-image transform (augmentation)."""

    def __init__(
        self,
        arrays: DatasetArrays,
        indices: np.ndarray,
        image_size: int | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.arrays = arrays
        self.indices = np.asarray(indices, dtype=np.int64)
        self.image_size = image_size
        self.transform = transform
        self._labels = torch.from_numpy(arrays.labels[self.indices].astype(np.float32))

    def __len__(self) -> int:
        return len(self.indices)

    def image(self, i: int) -> np.ndarray:
        """The ``uint8 (C, H, W)`` image at dataset position ``i``."""
        images = self.arrays.images
        if isinstance(images, np.ndarray):
            return images[i]
        return load_image(images[i], self.image_size or 224)

    def __getitem__(self, j: int) -> dict[str, torch.Tensor]:
        i = int(self.indices[j])
        image = torch.from_numpy(np.ascontiguousarray(self.image(i)))
        if self.transform is not None:
            image = self.transform(image)
        return {"image": image, "label": self._labels[j], "index": torch.tensor(i)}


class HashDataModule(L.LightningDataModule):
    """Base DataModule: a dataset split by a named protocol into the five sets of PROTOCOL.md.

    Args:
        root: folder holding the dataset files (layout per subclass); splits go to ``<root>/splits``.
        protocol: split preset name (see :mod:`hashbench.data.protocols`); ``None`` = the dataset's default.
        seed: split seed; the split is written on first use and reused.
        batch_size: training batch size.
        eval_batch_size: batch size for validation, test and prediction.
        num_workers: DataLoader worker processes.
        augment: training augmentation (``none``, ``crop``, ``flip_crop``); flips are wrong for digits.
        image_size: side images read from files are resized to (file datasets only).
    """

    name: ClassVar[str] = "dataset"
    default_protocol: ClassVar[str] = "tiny"

    def __init__(
        self,
        root: str,
        protocol: str | None = None,
        seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        augment: Literal["none", "crop", "flip_crop"] = "none",
        image_size: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # lets `hashbench search` rebuild the data from a checkpoint
        self.root = Path(root).expanduser()
        self.protocol: Protocol = get_protocol(protocol or self.default_protocol)
        self.seed = seed
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.augment = augment
        self.image_size = image_size
        self._arrays: DatasetArrays | None = None
        self._split: dict[str, np.ndarray] | None = None

    # -- to implement ---------------------------------------------------------------------------
    def load(self) -> DatasetArrays:
        """Read the dataset from :attr:`root`; raise :class:`DatasetNotFoundError` naming the layout."""
        raise NotImplementedError

    # -- dataset state ----------------------------------------------------------------------------
    @property
    def split_dir(self) -> Path:
        return self.root / "splits"

    @property
    def arrays(self) -> DatasetArrays:
        """The whole dataset (read once), restricted to the protocol's ``top_labels`` if any."""
        if self._arrays is None:
            arrays = self.load()
            if self.protocol.top_labels:
                arrays = restrict_to_top_labels(arrays, self.protocol.top_labels)
            self._arrays = arrays
        return self._arrays

    @property
    def split(self) -> dict[str, np.ndarray]:
        """Item indices of the five sets, drawn on first use and saved under :attr:`split_dir`."""
        if self._split is None:
            a = self.arrays
            self._split = load_or_create_split(
                self.split_dir, self.protocol, a.labels, a.source, self.seed, a.class_names
            )
        return self._split

    def share_loaded_data(self, other: HashDataModule) -> bool:
        """Reuse ``other``'s already-read arrays and split when they are the same data; says whether.

        Only when both are the same class with the same root, protocol, split seed and every other
        constructor argument both record (image size included) (so the same files would be read). The arrays
        object is a shallow copy, so a method that replaces one of its fields (tags, say) does not
        change what ``other`` holds. A sweep uses this to read a dataset once for all its cells.
        """
        if other._arrays is None or other._split is None:
            return False
        mine, theirs = dict(self.hparams), dict(other.hparams)
        common = {k for k in mine.keys() & theirs.keys() if not k.startswith("_")}
        if not (
            type(self) is type(other)
            and self.root.resolve() == other.root.resolve()
            and self.protocol == other.protocol
            and self.seed == other.seed
            and all(mine[k] == theirs[k] for k in common)
        ):
            return False
        self._arrays = dataclasses.replace(other._arrays)
        self._split = dict(other._split)
        return True

    @property
    def num_classes(self) -> int:
        return self.arrays.labels.shape[1]

    @property
    def multi_label(self) -> bool:
        return bool((self.arrays.labels.sum(axis=1) > 1).any())

    @property
    def metric_k(self) -> int | None:
        """The protocol's metric depth (``None`` = the whole database)."""
        return self.protocol.k

    @property
    def key(self) -> str:
        """Identifies the data a model sees: dataset, protocol, split seed and split layout (cache
        keys, records)."""
        return f"{self.name}/{self.protocol.name}-seed{self.seed}-split{SPLIT_VERSION}"

    def labels(self, split: Split) -> np.ndarray:
        """Multi-hot labels of ``split``."""
        return self.arrays.labels[self.split[split]]

    def tags(self, index: int) -> list[str]:
        """Tag list of dataset item ``index`` (empty when the dataset has none)."""
        tags = self.arrays.tags
        return [] if tags is None else tags[index]

    # -- Lightning hooks ------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        _ = self.split  # reads the data and writes the split file once, on the main process

    def setup(self, stage: str | None = None) -> None:
        _ = self.split

    def dataset(self, split: Split, train: bool = False) -> HashDataset:
        """The :class:`HashDataset` of ``split`` (with training augmentation when ``train``)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; one of {SPLITS}")
        transform = None
        if train and self.augment != "none":
            from hashbench.data.transforms import train_augmentation

            transform = train_augmentation(self.augment)
        return HashDataset(self.arrays, self.split[split], self.image_size, transform)

    def dataloader(self, split: Split, train: bool = False) -> DataLoader:
        """A loader over ``split``: shuffled with ``batch_size`` when ``train``, else in order."""
        return DataLoader(
            self.dataset(split, train),
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            drop_last=train and len(self.split[split]) > self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train", train=True)

    def val_dataloader(self) -> list[DataLoader]:
        return [self.dataloader("val_query"), self.dataloader("val_database")]

    def test_dataloader(self) -> list[DataLoader]:
        return [self.dataloader("query"), self.dataloader("database")]

    def predict_dataloader(self) -> list[DataLoader]:
        return [self.dataloader("query"), self.dataloader("database")]


def restrict_to_top_labels(arrays: DatasetArrays, top: int) -> DatasetArrays:
    """Keep the ``top`` most frequent labels (ties by label order); items keep only those labels."""
    counts = arrays.labels.sum(axis=0)
    keep = np.sort(np.argsort(-counts, kind="stable")[:top])
    return DatasetArrays(
        images=arrays.images,
        labels=arrays.labels[:, keep],
        source=arrays.source,
        class_names=[arrays.class_names[k] for k in keep],
        tags=arrays.tags,
        tag_source=arrays.tag_source,
        extra=arrays.extra,
    )
