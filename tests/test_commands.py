"""`hashbench encode` and `hashbench search` on a checkpoint trained on the fixture dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashbench.cli import main
from hashbench.retrieval.codes import hamming_distances
from hashbench.retrieval.index import HammingIndex
from tests.fixtures import fixture_data_args, quick_trainer_args

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoint(fashion_mnist_root: Path, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    assert (
        main(
            [
                "fit",
                "--config",
                str(REPO / "configs/methods/dsh.yaml"),
                *fixture_data_args(fashion_mnist_root),
                "--model.init_args.bits",
                "16",
                *quick_trainer_args(runs, train_batches=3),
            ]
        )
        == 0
    )
    return next(runs.rglob("last.ckpt"))


def test_encode_writes_codes_ids_and_index(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "codes"
    assert (
        main(["encode", "--ckpt", str(checkpoint), "--split", "database", "--out", str(out)]) == 0
    )  # the dataset comes from the checkpoint
    codes = np.load(out / "database.codes.npy")
    ids = np.load(out / "database.ids.npy")
    assert codes.dtype == np.uint8 and codes.shape == (len(ids), 2)
    index = HammingIndex.load(out / "database.faissb")
    assert index.ntotal == len(ids)
    meta = json.loads((out / "database.json").read_text())
    assert meta["bits"] == 16 and meta["n"] == len(ids) and meta["method"] == "DSH"
    # the index answers with the true distances and the dataset ids
    dist, got = index.search(codes[:3], 5)
    full = hamming_distances(codes[:3], codes)
    np.testing.assert_array_equal(dist, np.sort(full, axis=1)[:, :5])
    assert set(got.ravel()) <= set(ids.tolist())


def test_search_by_id_and_by_image(checkpoint: Path, tmp_path: Path, fashion_mnist_root, capsys):
    out = tmp_path / "codes"
    main(["encode", "--ckpt", str(checkpoint), "--out", str(out)])
    capsys.readouterr()
    assert (
        main(
            [
                "search",
                "--ckpt",
                str(checkpoint),
                "--index",
                str(out / "database.faissb"),
                "--query_ids",
                "[3]",
                "--k",
                "4",
                "--json",
                "true",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    results = report[0]["results"]
    distances = [r["distance"] for r in results]
    assert len(results) == 4 and distances[0] == 0 and distances == sorted(distances)
    assert all(r["labels"] for r in results)
    # an image file as the query, and an inclusive radius
    from hashbench.data.fashion_mnist import FashionMNISTDataModule

    dm = FashionMNISTDataModule(str(fashion_mnist_root), protocol="tiny", download=False)
    png = tmp_path / "q.png"
    Image.fromarray(dm.arrays.images[3, 0]).save(png)
    assert (
        main(
            [
                "search",
                "--ckpt",
                str(checkpoint),
                "--index",
                str(out / "database.faissb"),
                "--image",
                f"[{png}]",
                "--radius",
                "2",
                "--json",
                "true",
            ]
        )
        == 0
    )
    ball = json.loads(capsys.readouterr().out)[0]["results"]
    assert ball and all(r["distance"] <= 2 for r in ball)
    assert 3 in [r["id"] for r in ball]
    # the table form
    assert (
        main(
            [
                "search",
                "--ckpt",
                str(checkpoint),
                "--index",
                str(out / "database.faissb"),
                "--query_ids",
                "[3]",
            ]
        )
        == 0
    )
    assert "rank" in capsys.readouterr().out


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="hashbench fit"):
        main(["encode", "--ckpt", str(tmp_path / "nope.ckpt"), "--out", str(tmp_path)])


@pytest.mark.parametrize("name", ["itq", "sdh"])
def test_baseline_command_fits_and_evaluates(name: str, fashion_mnist_root: Path, capsys) -> None:
    assert (
        main(
            [
                "baseline",
                "--baseline",
                name,
                "--bits",
                "16",
                *fixture_data_args(fashion_mnist_root),
                "--json",
                "true",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["mAP@all"] <= 1.0 and result["fit_s"] >= 0
    assert {"P@H<=2", "AUC", "encode_per_s"} <= set(result)


def test_baseline_command_rejects_bad_bits(fashion_mnist_root: Path) -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        main(
            [
                "baseline",
                "--baseline",
                "lsh",
                "--bits",
                "12",
                *fixture_data_args(fashion_mnist_root),
            ]
        )


def test_encode_with_a_baseline(fashion_mnist_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "codes"
    assert (
        main(
            [
                "encode",
                "--baseline",
                "itq",
                "--bits",
                "16",
                "--split",
                "query",
                *fixture_data_args(fashion_mnist_root),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    meta = json.loads((out / "query.json").read_text())
    assert meta["baseline"] == "itq" and meta["bits"] == 16
    assert HammingIndex.load(out / "query.faissb").ntotal == meta["n"] == 100


def test_encode_needs_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="either --ckpt"):
        main(["encode", "--out", str(tmp_path)])
