"""One line saying what a DataModule will serve: the data, its size and the size of each split.

``hashbench fit`` and ``hashbench baseline`` print it before training, so a user sees at once
whether their data was read as they meant (how many images, classes and items per split).
"""

from __future__ import annotations

from hashbench.data.base import HashDataModule


def split_summary(dm: HashDataModule) -> str:
    """``"<key>: N images, C classes (S px); train a, val_query b, ..."`` (reads the data)."""
    arrays = dm.arrays
    sizes = ", ".join(f"{name} {len(ids)}" for name, ids in dm.split.items())
    images = arrays.images
    side = images.shape[-1] if hasattr(images, "shape") else dm.image_size
    pixels = f", {side} px" if side else ""
    return (
        f"data {dm.key}: {len(arrays.labels)} images, {arrays.labels.shape[1]} classes{pixels}, "
        f"{dm.num_workers} loader workers; split: {sizes}"
    )
