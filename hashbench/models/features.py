"""Feature cache: backbone features of a dataset's images, extracted once and reused.

Features depend on the image, the backbone and its weights - not on the protocol - so the cache holds
one array per (dataset, backbone, weights) over the items any split has asked for::

    <cache_dir>/<dataset>/<backbone>-<weights>.npz
        features  float32 (n_cached, d)
        indices   int64   (n_cached,)   dataset positions, sorted

``cache_dir`` defaults to ``<data root>/features``. Items a later request needs that are not cached yet
are extracted and merged in. Files are written atomically. ``backbone="pixels"`` gives the flattened
images scaled to ``[0, 1]`` (nothing cached: reading them is as cheap as the cache).

The shallow baselines read their inputs from here, and so do methods that need fixed features
(e.g. ``knngan``'s neighbourhood structure), so deep and shallow methods see the same features.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from hashbench.data.base import HashDataModule, Split
from hashbench.files import atomic_path


def weights_tag(pretrained: bool | str, seed: int) -> str:
    """A short name for backbone weights: ``imagenet``, ``random-seed<k>`` or ``<file>-<hash>``."""
    if pretrained is True:
        return "imagenet"
    if not pretrained:
        return f"random-seed{seed}"
    path = Path(str(pretrained))
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    return f"{path.stem}-{digest}"


def _save_atomic(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path, suffix=".npz.tmp") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


@torch.no_grad()
def compute_features(
    datamodule: HashDataModule,
    indices: np.ndarray,
    backbone: str,
    pretrained: bool | str = False,
    seed: int = 0,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> np.ndarray:
    """Backbone features ``float32 (len(indices), d)`` of dataset items ``indices`` (no cache)."""
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from hashbench.data.base import HashDataset
    from hashbench.data.transforms import InputAdapter
    from hashbench.models.backbones import build_backbone, input_spec

    dataset = HashDataset(datamodule.arrays, indices, datamodule.image_size)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=datamodule.num_workers)
    if backbone == "pixels":
        chunks = [b["image"].flatten(1).float().div(255) for b in loader]
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float32)
    torch.manual_seed(seed)
    net, dim = build_backbone(backbone, pretrained)
    model = torch.nn.Sequential(InputAdapter(input_spec(backbone)), net).to(device).eval()
    out = np.empty((len(indices), dim), dtype=np.float32)
    pos = 0
    for batch in tqdm(
        loader,
        desc=f"features {backbone} ({len(indices)} images)",
        disable=not progress,
        leave=False,
    ):
        f = model(batch["image"].to(device)).float().cpu().numpy()
        out[pos : pos + len(f)] = f
        pos += len(f)
    return out


class FeatureCache:
    """Backbone features of a DataModule's items, computed once per (dataset, backbone, weights).

    Args:
        datamodule: the data (its ``arrays`` and ``split``).
        backbone: a backbone name, or ``pixels``.
        pretrained: backbone weights (see :func:`hashbench.models.backbones.build_backbone`).
        cache_dir: cache root; ``None`` = ``<datamodule.root>/features``.
        seed: torch seed for randomly initialised backbones.
        device: where extraction runs.
    """

    def __init__(
        self,
        datamodule: HashDataModule,
        backbone: str = "pixels",
        pretrained: bool | str = False,
        cache_dir: str | os.PathLike | None = None,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.datamodule = datamodule
        self.backbone = backbone
        self.pretrained = pretrained
        self.seed = seed
        self.device = device
        root = Path(cache_dir) if cache_dir is not None else datamodule.root / "features"
        self.path = root / datamodule.name / f"{backbone}-{weights_tag(pretrained, seed)}.npz"

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.path.exists():
            return np.zeros((0,), np.int64), np.zeros((0, 0), np.float32)
        try:
            with np.load(self.path) as z:
                return z["indices"], z["features"]
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"feature cache {self.path} is corrupt ({e}); delete it") from e

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Features of dataset items ``indices`` (extracting and caching the missing ones)."""
        indices = np.asarray(indices, dtype=np.int64)
        if self.backbone == "pixels":
            return compute_features(self.datamodule, indices, "pixels", progress=False)
        cached_idx, cached = self._load()
        missing = np.setdiff1d(indices, cached_idx)
        if len(missing):
            new = compute_features(
                self.datamodule,
                missing,
                self.backbone,
                self.pretrained,
                self.seed,
                device=self.device,
            )
            cached_idx = np.concatenate([cached_idx, missing])
            cached = new if cached.size == 0 else np.concatenate([cached, new])
            order = np.argsort(cached_idx)
            cached_idx, cached = cached_idx[order], cached[order]
            _save_atomic(self.path, features=cached, indices=cached_idx)
        return cached[np.searchsorted(cached_idx, indices)]

    def split(self, split: Split) -> np.ndarray:
        """Features of one protocol set; the first call extracts all five sets' items at once."""
        all_items = np.unique(np.concatenate(list(self.datamodule.split.values())))
        if self.backbone != "pixels":
            self.get(all_items)
        return self.get(self.datamodule.split[split])
