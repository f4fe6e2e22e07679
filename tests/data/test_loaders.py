"""Dataset modules on generated copies of their real on-disk formats."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from hashbench.data import DATAMODULES, get_datamodule_class
from hashbench.data import cifar10 as cifar_mod
from hashbench.data.base import (
    CorruptDatasetError,
    DatasetNotFoundError,
    HashDataModule,
    HashDataset,
)
from hashbench.data.cifar10 import CIFAR10DataModule
from hashbench.data.fashion_mnist import FashionMNISTDataModule, MNISTDataModule
from hashbench.data.image_folder import ImageFolderDataModule
from hashbench.data.image_list import ImageListDataModule, MissingImagesWarning, parse_image_list
from tests.fixtures import (
    CIFAR10_NAMES,
    make_cifar10,
    make_idx_dataset,
    make_image_folder,
    make_image_list,
    pattern_scores,
)

# -- helpers ---------------------------------------------------------------------------------------


def _all_images(dm: HashDataModule) -> np.ndarray:
    images = dm.arrays.images
    if isinstance(images, np.ndarray):
        return images
    ds = HashDataset(dm.arrays, np.arange(len(images)), dm.image_size)
    return np.stack([ds.image(i) for i in range(len(images))])


def _assert_images_match_labels(dm: HashDataModule) -> None:
    """Each image's bright cells are exactly its labels (fixture pattern), for every item."""
    scores = pattern_scores(_all_images(dm), dm.num_classes)
    np.testing.assert_array_equal(scores > 150, dm.arrays.labels > 0)


def _check_batches(dm: HashDataModule, channels: int, size: int) -> None:
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"image", "label", "index"}
    assert batch["image"].dtype == torch.uint8
    assert batch["image"].shape == (dm.batch_size, channels, size, size)
    assert batch["label"].dtype == torch.float32
    assert batch["label"].shape == (dm.batch_size, dm.num_classes)
    assert batch["index"].dtype == torch.int64
    idx = batch["index"].numpy()
    assert np.isin(idx, dm.split["train"]).all()
    np.testing.assert_array_equal(batch["label"].numpy(), dm.arrays.labels[idx])
    val = dm.val_dataloader()
    assert len(val) == 2
    for loader, name in zip(val, ("val_query", "val_database"), strict=True):
        got = np.concatenate([b["index"].numpy() for b in loader])
        np.testing.assert_array_equal(got, dm.split[name])
    first = next(iter(val[0]))
    assert first["image"].shape[1:] == (channels, size, size)
    np.testing.assert_array_equal(first["label"].numpy(), dm.arrays.labels[first["index"].numpy()])


# -- registry --------------------------------------------------------------------------------------


def test_registry() -> None:
    assert {"fashion-mnist", "mnist", "cifar10", "image-list", "image-folder"} <= set(DATAMODULES)
    for name, cls in DATAMODULES.items():
        assert issubclass(cls, HashDataModule)
        assert cls.name == name
        assert get_datamodule_class(name) is cls
    with pytest.raises(ValueError, match="unknown dataset 'no-such-data'.*cifar10"):
        get_datamodule_class("no-such-data")
    assert CIFAR10DataModule.default_protocol == "cifar10-59k"
    assert FashionMNISTDataModule.default_protocol == "fashion-mnist-69k"


# -- IDX: Fashion-MNIST and MNIST ------------------------------------------------------------------


def test_fashion_mnist(fashion_mnist_root: Path) -> None:
    dm = FashionMNISTDataModule(
        str(fashion_mnist_root), protocol="tiny", download=False, batch_size=32, eval_batch_size=64
    )
    a = dm.arrays
    assert a.images.shape == (720, 1, 28, 28) and a.images.dtype == np.uint8
    assert a.labels.shape == (720, 10) and a.labels.dtype == np.uint8
    assert (a.labels.sum(axis=1) == 1).all()
    assert (a.source == "train").sum() == 600 and (a.source == "test").sum() == 120
    assert a.class_names[0] == "T-shirt/top"
    _assert_images_match_labels(dm)
    _check_batches(dm, 1, 28)
    assert {len(dm.split[k]) for k in ("query", "train")} == {100, 500}
    assert (a.source[dm.split["query"]] == "test").all()
    assert (a.source[dm.split["train"]] == "train").all()
    assert (fashion_mnist_root / "splits" / "tiny-seed0.npz").is_file()


def test_mnist_uncompressed(mnist_root: Path) -> None:
    assert (mnist_root / "t10k-images-idx3-ubyte").is_file()
    dm = MNISTDataModule(str(mnist_root), protocol="tiny", download=False, batch_size=16)
    assert dm.arrays.images.shape == (720, 1, 28, 28)
    _assert_images_match_labels(dm)
    _check_batches(dm, 1, 28)


def test_mnist_missing_root(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as e:
        _ = MNISTDataModule(str(root), download=False).arrays
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(root) in msg
    assert "t10k-labels-idx1-ubyte.gz" in msg  # the how-to names all four files


def test_fashion_mnist_missing_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FashionMNISTDataModule, "system_dirs", ())
    with pytest.raises(DatasetNotFoundError, match="dataset-fashion-mnist") as e:
        _ = FashionMNISTDataModule(str(tmp_path / "nowhere"), download=False).arrays
    assert "train-images-idx3-ubyte.gz" in str(e.value)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_idx_is_corrupt(tmp_path: Path, gz: bool) -> None:
    root = make_idx_dataset(tmp_path, n_train_per_class=5, n_test_per_class=2, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    path = root / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDatasetError) as e:
        _ = MNISTDataModule(str(root), download=False).arrays
    assert name in str(e.value)


def test_idx_label_count_mismatch_is_corrupt(tmp_path: Path) -> None:
    root = make_idx_dataset(tmp_path, n_train_per_class=5, n_test_per_class=2, gz=True)
    from hashbench.data.idx import write_idx

    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(CorruptDatasetError, match="t10k-images-idx3-ubyte"):
        _ = MNISTDataModule(str(root), download=False).arrays


# -- CIFAR-10 --------------------------------------------------------------------------------------


def test_cifar10(cifar10_root: Path) -> None:
    dm = CIFAR10DataModule(str(cifar10_root), protocol="tiny", batch_size=32)
    a = dm.arrays
    assert a.images.shape == (720, 3, 32, 32) and a.images.dtype == np.uint8
    assert a.labels.shape == (720, 10) and (a.labels.sum(axis=1) == 1).all()
    assert (a.source[:600] == "train").all() and (a.source[600:] == "test").all()
    assert a.class_names == CIFAR10_NAMES
    _assert_images_match_labels(dm)  # would fail for a wrong plane order / reshape
    _check_batches(dm, 3, 32)
    assert dm.metric_k is None and dm.key == "cifar10/tiny-seed0-split2"


def test_cifar10_default_protocol_needs_full_dataset(cifar10_root: Path) -> None:
    dm = CIFAR10DataModule(str(cifar10_root))
    assert dm.protocol.name == "cifar10-59k"
    with pytest.raises(
        ValueError, match="cifar10-59k query: class 'airplane' has 72 available items.*lacks 28"
    ):
        _ = dm.split


def test_cifar10_root_is_the_batches_folder(tmp_path: Path) -> None:
    make_cifar10(tmp_path, n_train_per_class=5, n_test_per_class=1)
    dm = CIFAR10DataModule(str(tmp_path / "cifar-10-batches-py"))
    assert dm.arrays.images.shape == (60, 3, 32, 32)
    flat = make_cifar10(
        tmp_path / "flat", n_train_per_class=5, n_test_per_class=1, nested=False, meta=False
    )
    dm = CIFAR10DataModule(str(flat))
    assert dm.arrays.labels.shape == (60, 10)
    assert dm.arrays.class_names == CIFAR10_NAMES  # the standard names without batches.meta


def test_cifar10_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as e:
        _ = CIFAR10DataModule(str(tmp_path / "nowhere")).arrays
    msg = str(e.value)
    assert "cifar-10-batches-py" in msg and "data_batch_1" in msg and "test_batch" in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg
    make_cifar10(tmp_path, n_train_per_class=5, n_test_per_class=1)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="missing data_batch_3"):
        _ = CIFAR10DataModule(str(tmp_path)).arrays


def test_cifar10_download_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(cifar_mod.urllib.request, "urlopen", offline)
    with pytest.raises(DatasetNotFoundError, match="downloading https://www.cs.toronto.edu"):
        _ = CIFAR10DataModule(str(tmp_path), download=True).arrays
    assert os.listdir(tmp_path) == []  # no partial download left


def test_cifar10_unpacks_archive_in_root(tmp_path: Path) -> None:
    src = make_cifar10(tmp_path / "src", n_train_per_class=5, n_test_per_class=1)
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    dm = CIFAR10DataModule(str(root))
    assert dm.arrays.images.shape == (60, 3, 32, 32)
    assert (root / "cifar-10-batches-py" / "test_batch").is_file()
    assert sorted(p.name for p in root.iterdir()) == [
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
    ]


@pytest.mark.parametrize("what", ["garbage", "truncated", "not-a-dict", "bad-shape", "code"])
def test_cifar10_corrupt_pickle(tmp_path: Path, what: str) -> None:
    make_cifar10(tmp_path, n_train_per_class=5, n_test_per_class=1)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    if what == "garbage":
        path.write_bytes(b"\x00\x01 this is not a pickle")
    elif what == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif what == "not-a-dict":
        path.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    elif what == "bad-shape":
        path.write_bytes(
            pickle.dumps(
                {b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}, protocol=2
            )
        )
    else:
        marker = tmp_path / "pwned"

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(CorruptDatasetError) as e:
        _ = CIFAR10DataModule(str(tmp_path)).arrays
    assert "data_batch_2" in str(e.value)
    if what == "code":
        assert not (tmp_path / "pwned").exists()
        assert "refusing" in str(e.value)


# -- image lists -----------------------------------------------------------------------------------


def _image_list_dm(root: Path, **kwargs) -> ImageListDataModule:
    kwargs.setdefault("train_list", "train.txt")
    kwargs.setdefault("test_list", "test.txt")
    return ImageListDataModule(str(root), protocol="tiny", image_size=32, batch_size=32, **kwargs)


def test_image_list(image_list_dataset) -> None:
    fx = image_list_dataset
    dm = _image_list_dm(fx.root)
    a = dm.arrays
    n_train, n_test = len(fx.paths["train"]), len(fx.paths["test"])
    assert len(a.images) == n_train + n_test == 360
    np.testing.assert_array_equal(a.labels, np.concatenate([fx.labels["train"], fx.labels["test"]]))
    assert list(a.source) == ["train"] * n_train + ["test"] * n_test
    assert dm.multi_label and dm.num_classes == 5
    assert a.class_names == ["0", "1", "2", "3", "4"]
    assert a.images[0] == str(fx.root / fx.paths["train"][0])
    _assert_images_match_labels(dm)
    _check_batches(dm, 3, 32)
    assert dm.split_dir == fx.root / "splits"
    assert (dm.split_dir / "tiny-seed0.npz").is_file()


def test_image_list_single_file_and_options(tmp_path: Path) -> None:
    # its own copy: the same images listed with other sides are another dataset for the split file
    fx = make_image_list(tmp_path, n_train_per_class=66, seed=4)  # tiny: 10 + 50 + 5 held out
    dm = ImageListDataModule(
        str(fx.root),
        list_file=str(fx.list_file),
        protocol="tiny",
        image_size=16,
        class_names=list("abcde"),
        dataset_name="toy-list",
    )
    assert (dm.arrays.source == "train").all()
    assert dm.arrays.class_names == list("abcde")
    assert dm.key == "toy-list/tiny-seed0-split2" and ImageListDataModule.name == "image-list"
    assert dm.dataset("query")[0]["image"].shape == (3, 16, 16)
    assert len(dm.split["query"]) == 50
    with pytest.raises(ValueError, match="class_names has 2 names"):
        _ = ImageListDataModule(str(fx.root), list_file="all.txt", class_names=["a", "b"]).arrays


def test_image_list_duplicates_are_reported(tmp_path: Path) -> None:
    fx = make_image_list(tmp_path, n_train_per_class=50, n_test_per_class=10, multi_label=False)
    with fx.test_list.open("a") as f:
        f.write(fx.train_list.read_text().splitlines()[0] + "\n")
    with pytest.warns(UserWarning, match="1 paths appear more than once"):
        assert len(_image_list_dm(fx.root).arrays.images) == 301


def test_image_list_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs list_file"):
        ImageListDataModule(str(tmp_path))
    with pytest.raises(ValueError, match="not both"):
        ImageListDataModule(str(tmp_path), train_list="a.txt", list_file="b.txt")


def test_image_list_windows_paths_and_jpeg(tmp_path: Path) -> None:
    fx = make_image_list(
        tmp_path,
        n_train_per_class=50,
        n_test_per_class=10,
        windows_paths=True,
        image_format="jpeg",
        multi_label=False,
    )
    assert "\\" in fx.train_list.read_text()
    dm = _image_list_dm(fx.root)
    assert len(dm.arrays.images) == 300
    assert all("\\" not in p for p in dm.arrays.images)
    assert not dm.multi_label
    _assert_images_match_labels(dm)


def test_image_list_missing_images_reported_once(tmp_path: Path) -> None:
    fx = make_image_list(tmp_path, n_train_per_class=62, n_test_per_class=10, missing=7)
    dm = _image_list_dm(fx.root, eval_batch_size=64)
    empty = fx.root / fx.paths["train"][3]
    empty.write_bytes(b"")  # an empty file counts as missing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.prepare_data()
        dm.setup("fit")
        for loader in [dm.train_dataloader(), *dm.val_dataloader(), *dm.test_dataloader()]:
            for _ in loader:
                pass
    missing = [w for w in caught if issubclass(w.category, MissingImagesWarning)]
    assert len(missing) == 1
    msg = str(missing[0].message)
    assert "8 of 367 images" in msg
    assert fx.paths["train"][3] in msg and fx.missing[0] in msg
    assert len(dm.arrays.images) == 367 - 8
    assert str(empty) not in dm.arrays.images
    assert sorted(dm.arrays.extra["missing"]) == sorted([*fx.missing, fx.paths["train"][3]])


def test_image_list_wrong_root(tmp_path: Path, image_list_dataset) -> None:
    fx = image_list_dataset
    with pytest.raises(DatasetNotFoundError, match=r"(?s)does not exist.*'<path relative to root>"):
        _ = _image_list_dm(tmp_path / "nowhere").arrays
    with pytest.raises(DatasetNotFoundError, match="image list 'train.txt' not found"):
        _ = _image_list_dm(tmp_path).arrays
    # lists found (absolute paths) but the root holds none of the images
    dm = _image_list_dm(tmp_path, train_list=str(fx.train_list), test_list=str(fx.test_list))
    with pytest.raises(DatasetNotFoundError, match="none of the 360 images"):
        _ = dm.arrays


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("images/x.png", "expected '<relative/path> <0/1>"),
        ("images/x.png 0 2 0 0 0", "label '2' is not 0 or 1"),
        ("images/my photo.png 0 1 0 0 0", "label 'photo.png' is not 0 or 1"),
        ("images/x.png 0 1 0", "3 labels, but the lines before have 5"),
    ],
)
def test_image_list_malformed_line(tmp_path: Path, line: str, match: str) -> None:
    fx = make_image_list(tmp_path, n_train_per_class=1, n_test_per_class=1)
    lines = fx.train_list.read_text().splitlines()
    lines.insert(2, line)
    fx.train_list.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptDatasetError, match=match) as e:
        _ = _image_list_dm(fx.root).arrays
    assert f"{fx.train_list}, line 3" in str(e.value)


def test_image_list_lists_disagree(tmp_path: Path) -> None:
    fx = make_image_list(tmp_path, n_train_per_class=1, n_test_per_class=1)
    fx.test_list.write_text("# comment\n\nimages/test/0000_c0.png 1 0\n")
    with pytest.raises(CorruptDatasetError) as e:
        _ = _image_list_dm(fx.root).arrays
    assert f"{fx.test_list}, line 3: 2 labels, but {fx.train_list} has 5" in str(e.value)


def test_parse_image_list_formats(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(b"\xef\xbb\xbfa\\b.jpg 1 0 1\r\n\r\n# skipped\n./c.jpg\t0 0 0\n")
    paths, labels = parse_image_list(path)
    assert paths == ["a/b.jpg", "./c.jpg"]
    np.testing.assert_array_equal(labels, [[1, 0, 1], [0, 0, 0]])
    assert labels.dtype == np.uint8
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(CorruptDatasetError, match="not a UTF-8 text list"):
        parse_image_list(path)
    path.write_text("# nothing\n")
    with pytest.raises(CorruptDatasetError, match="lists no images"):
        parse_image_list(path)


# -- image folders ---------------------------------------------------------------------------------


def test_image_folder(image_folder_root: Path) -> None:
    dm = ImageFolderDataModule(
        str(image_folder_root), protocol="tiny", image_size=32, batch_size=32
    )
    a = dm.arrays
    assert a.class_names == ["ant", "bee", "cat", "dog", "eel"]
    assert len(a.images) == 360 and a.labels.shape == (360, 5)
    assert (a.labels.sum(axis=1) == 1).all()
    assert (a.source == "train").sum() == 300 and (a.source == "test").sum() == 60
    assert a.extra["layout"] == "train_test"
    first_ant = a.images[int(np.flatnonzero(a.labels[:, 0])[0])]
    assert Path(first_ant).parent.name == "ant"
    _assert_images_match_labels(dm)
    _check_batches(dm, 3, 32)
    # the splits/ folder written under root is not a class on the next read
    again = ImageFolderDataModule(str(image_folder_root), protocol="tiny", image_size=32)
    assert again.arrays.class_names == a.class_names


def test_image_folder_flat_layout(tmp_path: Path) -> None:
    root = make_image_folder(
        tmp_path,
        n_train_per_class=55,  # tiny: 10 query + 50 train + 5 held-out validation per class
        n_test_per_class=10,
        num_classes=3,
        layout="flat",
        image_format="jpeg",
    )
    (root / "notes.txt").write_text("not an image")
    (root / "ant" / "readme.md").write_text("not an image")
    (root / "empty").mkdir()
    (root / ".cache").mkdir()
    dm = ImageFolderDataModule(str(root), image_size=32)
    with pytest.warns(UserWarning, match="1 class folders .* hold no images .*empty"):
        a = dm.arrays
    assert a.class_names == ["ant", "cat", "eel"]
    assert len(a.images) == 195 and (a.source == "train").all()
    assert len(dm.split["query"]) == 30  # tiny falls back to all items for its "test" queries
    _assert_images_match_labels(dm)


def test_image_folder_val_side_and_forced_layout(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path, n_train_per_class=2, n_test_per_class=1, num_classes=2)
    shutil.move(root / "test", root / "val")
    dm = ImageFolderDataModule(str(root), layout="train_test", image_size=8)
    assert (dm.arrays.source == "test").sum() == 2
    flat = ImageFolderDataModule(str(root), layout="flat", image_size=8)
    assert flat.arrays.class_names == ["train", "val"]


def test_image_folder_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"(?s)does not exist.*<root>/<class>"):
        _ = ImageFolderDataModule(str(tmp_path / "nowhere")).arrays
    with pytest.raises(DatasetNotFoundError, match=r"no class folders with images"):
        _ = ImageFolderDataModule(str(tmp_path)).arrays
    with pytest.raises(DatasetNotFoundError, match="lacks train/ and test/"):
        _ = ImageFolderDataModule(str(tmp_path), layout="train_test").arrays


def test_corrupt_image_file_names_the_file(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path, n_train_per_class=2, n_test_per_class=1, num_classes=2)
    bad = root / "train" / "cat" / "0000.png"
    bad.write_bytes(b"\x89PNG not really")
    dm = ImageFolderDataModule(str(root), image_size=8, check_images=False)
    i = dm.arrays.images.index(str(bad))
    ds = HashDataset(dm.arrays, np.arange(len(dm.arrays.images)), image_size=8)
    assert ds[i + 1]["image"].shape == (3, 8, 8)
    with pytest.raises(CorruptDatasetError, match="0000.png"):
        ds[i]


def test_gzip_helper_sanity(tmp_path: Path) -> None:
    """The fixture's gz files really are gzip (guards the truncation test above)."""
    root = make_idx_dataset(tmp_path, n_train_per_class=1, n_test_per_class=1, gz=True)
    with gzip.open(root / "train-labels-idx1-ubyte.gz") as f:
        assert f.read()[:4] == b"\x00\x00\x08\x01"


# -- configs/data ---------------------------------------------------------------------------------

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


@pytest.mark.parametrize(
    ("config", "dataset"),
    [
        ("fashion_mnist.yaml", "fashion-mnist"),
        ("mnist.yaml", "mnist"),
        ("cifar10.yaml", "cifar10"),
        ("image_list.yaml", "image-list"),
        ("image_folder.yaml", "image-folder"),
    ],
)
def test_data_configs_parse(config: str, dataset: str, request: pytest.FixtureRequest) -> None:
    """Each configs/data/*.yaml parses against its class's signature and loads the fixture copy."""
    import lightning as L
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_subclass_arguments(L.LightningDataModule, "data")
    fixture = {
        "fashion-mnist": "fashion_mnist_root",
        "mnist": "mnist_root",
        "cifar10": "cifar10_root",
        "image-list": "image_list_root",
        "image-folder": "image_folder_root",
    }[dataset]
    root = request.getfixturevalue(fixture)
    cfg = parser.parse_args(["--config", str(CONFIGS / config)])
    assert cfg.data.init_args.root == f"data/{dataset}"
    cfg = parser.parse_args(
        [
            "--config",
            str(CONFIGS / config),
            "--data.init_args.root",
            str(root),
            "--data.init_args.protocol",
            "tiny",
        ]
    )
    dm = parser.instantiate(cfg).data
    assert type(dm) is DATAMODULES[dataset]
    if dataset in ("image-list", "image-folder"):
        dm.image_size = 32
    dm.setup("fit")
    assert len(dm.split["query"]) == 10 * dm.num_classes
