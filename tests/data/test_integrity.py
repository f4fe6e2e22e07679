"""Unreadable images are found when a dataset is read, not at test time (hashbench.data.integrity);
the defaults of the file datasets (native image size, worker count, optional test list)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hashbench.data import integrity
from hashbench.data.base import CorruptDatasetError, HashDataset
from hashbench.data.image_folder import ImageFolderDataModule, default_num_workers
from hashbench.data.image_list import ImageListDataModule
from hashbench.data.integrity import CorruptImagesWarning, check_images
from hashbench.data.nus_wide import NUSWIDEDataModule
from tests.fixtures import make_image_folder, make_image_list, make_nus_wide


def _damage(root: Path) -> tuple[Path, Path]:
    """One file that is not an image at all, one PNG cut in half (its header still reads)."""
    garbage = root / "train" / "cat" / "0000.png"
    garbage.write_bytes(b"\x89PNG not really")
    truncated = root / "test" / "ant" / "0001.png"
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return garbage, truncated


def test_corrupt_images_are_left_out_and_counted_before_training(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path, n_train_per_class=4, n_test_per_class=2, num_classes=3)
    garbage, truncated = _damage(root)
    dm = ImageFolderDataModule(str(root), image_size=8)
    with pytest.warns(CorruptImagesWarning, match=r"2 of 18 .*train/cat/0000\.png") as record:
        arrays = dm.arrays  # reading the dataset (setup) finds them, no batch is loaded
    assert "test/ant/0001.png" in str(record[0].message)
    assert len(arrays.images) == 16 and str(garbage) not in arrays.images
    assert str(truncated) not in arrays.images
    assert arrays.extra["corrupt"] == ["test/ant/0001.png", "train/cat/0000.png"]
    assert len(arrays.labels) == len(arrays.source) == 16
    every = HashDataset(arrays, np.arange(len(arrays.images)), image_size=8)
    assert all(every[i]["image"].shape == (3, 8, 8) for i in range(len(every)))


def test_all_images_corrupt_is_an_error_naming_files(tmp_path: Path) -> None:
    root = make_image_folder(
        tmp_path, n_train_per_class=1, n_test_per_class=0, num_classes=1, layout="flat"
    )
    for f in root.rglob("*.png"):
        f.write_bytes(b"nope")
    with pytest.raises(CorruptDatasetError, match=r"none of the 1 image files.*0000\.png"):
        _ = ImageFolderDataModule(str(root), layout="flat").arrays


def test_the_check_runs_once_per_file_state(tmp_path: Path, monkeypatch) -> None:
    root = make_image_folder(tmp_path, n_train_per_class=2, n_test_per_class=1, num_classes=2)
    paths = sorted(str(p) for p in root.rglob("*.png"))
    calls: list[str] = []
    real = integrity.check_image

    def counting(path: str):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(integrity, "check_image", counting)
    first = check_images(paths, tmp_path / "cache")
    assert not first.cached and len(calls) == len(paths) and first.size == (32, 32)
    second = check_images(paths, tmp_path / "cache")
    assert second.cached and len(calls) == len(paths)  # nothing decoded again
    assert (second.bad, second.size) == (first.bad, first.size)
    Path(paths[0]).write_bytes(b"changed")  # a changed file: checked again, and found
    third = check_images(paths, tmp_path / "cache")
    assert not third.cached and list(third.bad) == [paths[0]]


def test_the_cache_is_used_by_the_datamodule(tmp_path: Path, monkeypatch) -> None:
    root = make_image_folder(tmp_path, n_train_per_class=2, n_test_per_class=1, num_classes=2)
    _ = ImageFolderDataModule(str(root)).arrays
    assert (root / "splits" / integrity.CACHE_NAME).is_file()
    monkeypatch.setattr(integrity, "check_image", lambda p: pytest.fail(f"decoded {p} again"))
    dm = ImageFolderDataModule(str(root))
    assert len(dm.arrays.images) == 6 and dm.image_size == 32


def test_image_list_leaves_corrupt_images_out(tmp_path: Path) -> None:
    data = make_image_list(tmp_path, n_train_per_class=3, n_test_per_class=1, num_classes=2)
    bad = data.paths["train"][0]
    (data.root / bad).write_bytes(b"GIF89a broken")
    dm = ImageListDataModule(str(data.root), train_list="train.txt", test_list="test.txt")
    with pytest.warns(CorruptImagesWarning, match=bad):
        arrays = dm.arrays
    assert arrays.extra["corrupt"] == [bad]
    assert str(data.root / bad) not in arrays.images


def test_nus_wide_leaves_corrupt_images_out(tmp_path: Path) -> None:
    data = make_nus_wide(tmp_path, per_concept=4, num_concepts=2, missing=1, unlabelled=0)
    bad = data.rel_paths[0]
    (data.root / "Flickr" / bad).write_bytes(b"\xff\xd8\xff not a jpeg")
    dm = NUSWIDEDataModule(str(data.root), tags="none", bow=False)
    with pytest.warns(CorruptImagesWarning, match=bad):
        arrays = dm.arrays
    assert arrays.extra["corrupt"] == [bad]
    assert not any(p.endswith(bad) for p in arrays.images)


# -- defaults for bring-your-own data ---------------------------------------------------------------


def test_image_size_defaults_to_the_native_size(tmp_path: Path) -> None:
    small = make_image_folder(tmp_path / "small", 2, 1, num_classes=2, image_size=28)
    dm = ImageFolderDataModule(str(small))
    assert dm.image_size is None and dm.hparams["image_size"] is None
    _ = dm.arrays
    assert dm.image_size == 28
    assert HashDataset(dm.arrays, [0], dm.image_size)[0]["image"].shape == (3, 28, 28)
    big = make_image_folder(tmp_path / "big", 1, 0, num_classes=1, image_size=300, layout="flat")
    dm = ImageFolderDataModule(str(big), layout="flat")
    _ = dm.arrays
    assert dm.image_size == integrity.NATIVE_SIDE_CAP == 224
    assert ImageFolderDataModule(str(big), image_size=64, layout="flat").image_size == 64


@pytest.mark.parametrize(("cores", "workers"), [(1, 0), (2, 0), (3, 2), (4, 3), (16, 4)])
def test_default_workers_follow_the_machine(monkeypatch, cores: int, workers: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert default_num_workers() == workers
    assert ImageFolderDataModule("unused").num_workers == workers
    assert ImageFolderDataModule("unused", num_workers=1).num_workers == 1


def test_data_configs_default_to_native_size_and_machine_workers() -> None:
    import yaml

    configs = Path(__file__).resolve().parents[2] / "configs" / "data"
    for name in ("image_folder.yaml", "image_list.yaml"):
        args = yaml.safe_load((configs / name).read_text())["data"]["init_args"]
        assert args["image_size"] is None and args["num_workers"] is None, name


def test_test_list_is_optional(tmp_path: Path) -> None:
    data = make_image_list(tmp_path, n_train_per_class=2, n_test_per_class=1, num_classes=2)
    data.test_list.unlink()
    dm = ImageListDataModule(str(data.root), train_list="train.txt", test_list="test.txt")
    with pytest.warns(UserWarning, match=r"--data\.init_args\.test_list null"):
        arrays = dm.arrays
    assert set(arrays.source) == {"train"} and len(arrays.images) == 4
