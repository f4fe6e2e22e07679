"""SVHN DataModule on tiny ``.mat`` files in the official format (tests/fixtures.py: make_svhn)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import yaml

from hashbench.data import get_datamodule_class
from hashbench.data.base import CorruptDatasetError, DatasetNotFoundError
from hashbench.data.svhn import URL, SVHNDataModule, read_svhn_mat
from tests.fixtures import make_svhn, pattern_scores

REPO = Path(__file__).resolve().parents[2]


def test_registered_with_default_protocol() -> None:
    assert get_datamodule_class("svhn") is SVHNDataModule
    assert SVHNDataModule.name == "svhn" and SVHNDataModule.default_protocol == "svhn"
    cfg = yaml.safe_load((REPO / "configs/data/svhn.yaml").read_text())["data"]
    assert cfg["class_path"] == "hashbench.data.svhn.SVHNDataModule"
    assert cfg["init_args"]["protocol"] == "svhn"


def test_read_mat_maps_label_10_to_digit_0(tmp_path: Path) -> None:
    make_svhn(tmp_path, n_train_per_class=3, n_test_per_class=1)
    raw = scipy.io.loadmat(tmp_path / "train_32x32.mat")
    assert raw["X"].shape == (32, 32, 3, 30) and raw["X"].dtype == np.uint8
    assert raw["y"].shape == (30, 1) and set(raw["y"].ravel()) == set(range(1, 11))
    images, labels = read_svhn_mat(tmp_path / "train_32x32.mat")
    assert images.shape == (30, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.where(raw["y"].ravel() == 10, 0, raw["y"].ravel()))
    assert labels.min() == 0 and labels.max() == 9
    # (H, W, C, N) -> (N, C, H, W) keeps pixels in place
    np.testing.assert_array_equal(images[7, 2, 5, 11], raw["X"][5, 11, 2, 7])


def test_datamodule_on_fixture(svhn_root: Path) -> None:
    dm = SVHNDataModule(str(svhn_root), protocol="tiny", batch_size=32)
    a = dm.arrays
    assert a.images.shape == (720, 3, 32, 32) and a.labels.shape == (720, 10)
    assert (a.labels.sum(1) == 1).all() and dm.num_classes == 10 and not dm.multi_label
    assert list(a.source[:600]) == ["train"] * 600 and list(a.source[600:]) == ["test"] * 120
    assert a.class_names == [str(d) for d in range(10)]
    # images and labels stay aligned, digit 0 included: the bright cell is the label's
    np.testing.assert_array_equal(pattern_scores(a.images, 10).argmax(1), a.labels.argmax(1))
    assert (a.labels[:, 0] == 1).sum() == 72
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (32, 3, 32, 32) and batch["label"].shape == (32, 10)
    assert len(dm.split["train"]) == 500 and len(dm.split["query"]) == 100
    assert dm.key == "svhn/tiny-seed0-split2"


def test_default_protocol_needs_the_full_dataset(svhn_root: Path) -> None:
    dm = SVHNDataModule(str(svhn_root))
    assert dm.protocol.name == "svhn"
    with pytest.raises(ValueError, match="svhn"):
        _ = dm.split


def test_missing_files_name_layout_and_url(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as e:
        _ = SVHNDataModule(str(tmp_path / "nowhere")).arrays
    msg = str(e.value)
    assert "train_32x32.mat" in msg and "test_32x32.mat" in msg and URL in msg
    assert "10 meaning digit 0" in msg
    make_svhn(tmp_path, n_train_per_class=2, n_test_per_class=1)
    (tmp_path / "test_32x32.mat").unlink()
    with pytest.raises(DatasetNotFoundError, match="missing test_32x32.mat"):
        _ = SVHNDataModule(str(tmp_path)).arrays


def _save(path: Path, **arrays) -> Path:
    scipy.io.savemat(path, arrays, format="5")
    return path


def test_corrupt_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.mat"
    bad.write_bytes(b"this is not a MATLAB file" * 10)
    with pytest.raises(CorruptDatasetError, match="cannot be read as a MATLAB file"):
        read_svhn_mat(bad)
    make_svhn(tmp_path, n_train_per_class=2, n_test_per_class=1)
    full = (tmp_path / "train_32x32.mat").read_bytes()
    trunc = tmp_path / "trunc.mat"
    trunc.write_bytes(full[: len(full) // 2])
    with pytest.raises(CorruptDatasetError, match="download it again"):
        read_svhn_mat(trunc)
    x = np.zeros((32, 32, 3, 4), np.uint8)
    y = np.array([[1], [2], [10], [3]], np.uint8)
    with pytest.raises(CorruptDatasetError, match="lacks the 'X' / 'y'"):
        read_svhn_mat(_save(tmp_path / "k.mat", images=x, y=y))
    with pytest.raises(CorruptDatasetError, match=r"expected uint8 \(32, 32, 3, N\)"):
        read_svhn_mat(_save(tmp_path / "s.mat", X=np.zeros((4, 3, 32, 32), np.uint8), y=y))
    with pytest.raises(CorruptDatasetError, match="for 4 images"):
        read_svhn_mat(_save(tmp_path / "n.mat", X=x, y=y[:3]))
    with pytest.raises(CorruptDatasetError, match="outside 1..10"):
        read_svhn_mat(_save(tmp_path / "z.mat", X=x, y=np.array([[0], [1], [2], [3]], np.uint8)))
    # float labels (MATLAB doubles) are accepted when integral
    _, labels = read_svhn_mat(_save(tmp_path / "d.mat", X=x, y=y.astype(np.float64)))
    np.testing.assert_array_equal(labels, [1, 2, 0, 3])
