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


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["encode", "--ckpt", str(tmp_path / "nope.ckpt"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nope.ckpt not found" in err and "hashbench fit" in err and "Traceback" not in err


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


def test_baseline_command_rejects_bad_bits(fashion_mnist_root: Path, capsys) -> None:
    argv = ["baseline", "--baseline", "lsh", "--bits", "12", *fixture_data_args(fashion_mnist_root)]
    assert main(argv) == 2
    assert "multiple of 8" in capsys.readouterr().err


def test_baseline_prints_the_split_sizes(fashion_mnist_root: Path, capsys) -> None:
    argv = ["baseline", "--baseline", "lsh", "--bits", "16", *fixture_data_args(fashion_mnist_root)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "720 images, 10 classes" in out and "train 500" in out and "query 100" in out
    assert out.index("train 500") < out.index("mAP")  # before the results


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


def test_encode_needs_exactly_one_source(tmp_path: Path, capsys) -> None:
    assert main(["encode", "--out", str(tmp_path)]) == 2
    assert "either --ckpt" in capsys.readouterr().err


# -- search refuses an index that another model or another dataset made ----------------------------


def _search(checkpoint: Path, index: Path, *extra: str) -> list[str]:
    return [
        "search",
        "--ckpt",
        str(checkpoint),
        "--index",
        str(index),
        "--query_ids",
        "[3]",
        *extra,
    ]


def _refusal(capsys) -> str:
    """The error line; it must name the index and the checkpoint on one line."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith("hashbench search: error: index ")
    return first


def test_encode_records_provenance_in_the_index(checkpoint: Path, tmp_path: Path) -> None:
    main(["encode", "--ckpt", str(checkpoint), "--out", str(tmp_path)])
    prov = HammingIndex.load(tmp_path / "database.faissb").provenance
    assert prov["kind"] == "method" and prov["class_path"] == "hashbench.methods.dsh.DSH"
    assert prov["bits"] == 16 and prov["dataset"].startswith("fashion-mnist/tiny-seed0")
    assert len(prov["model_fingerprint"]) == len(prov["data_fingerprint"]) == 16


def test_search_refuses_a_baseline_index(
    checkpoint: Path, fashion_mnist_root: Path, tmp_path: Path, capsys
) -> None:
    encode = ["encode", "--baseline", "lsh", "--bits", "32", "--out", str(tmp_path)]
    assert main([*encode, *fixture_data_args(fashion_mnist_root)]) == 0
    capsys.readouterr()
    assert main(_search(checkpoint, tmp_path / "database.faissb")) == 2
    line = _refusal(capsys)
    assert str(tmp_path / "database.faissb") in line and str(checkpoint) in line
    assert "baseline lsh (32 bits)" in line and "DSH (16 bits" in line


def test_search_refuses_an_index_of_another_checkpoint(
    checkpoint: Path, tmp_path: Path, capsys
) -> None:
    import torch

    other = tmp_path / "other.ckpt"
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    name = next(k for k, v in saved["state_dict"].items() if v.is_floating_point())
    saved["state_dict"][name] = saved["state_dict"][name] + 1.0  # same method and bits
    torch.save(saved, other)
    main(["encode", "--ckpt", str(other), "--out", str(tmp_path)])
    capsys.readouterr()
    assert main(_search(checkpoint, tmp_path / "database.faissb")) == 2
    line = _refusal(capsys)
    assert str(other) in line and str(checkpoint) in line and "not by this checkpoint" in line


def test_search_refuses_an_index_of_another_dataset(
    checkpoint: Path, mnist_root: Path, tmp_path: Path, capsys
) -> None:
    mnist = fixture_data_args(mnist_root)  # same format and key, other images
    assert main(["encode", "--ckpt", str(checkpoint), *mnist, "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(_search(checkpoint, tmp_path / "database.faissb")) == 2
    line = _refusal(capsys)
    assert str(checkpoint) in line and "was encoded from dataset" in line
    # the same data given to search as well: the index belongs to it
    assert main([*_search(checkpoint, tmp_path / "database.faissb"), *mnist]) == 0


def test_search_warns_about_an_index_without_provenance(
    checkpoint: Path, tmp_path: Path, capsys
) -> None:
    main(["encode", "--ckpt", str(checkpoint), "--out", str(tmp_path)])
    sidecar = tmp_path / "database.faissb.json"
    meta = json.loads(sidecar.read_text())
    del meta["provenance"]  # as written before provenance was recorded
    sidecar.write_text(json.dumps(meta))
    capsys.readouterr()
    assert main(_search(checkpoint, tmp_path / "database.faissb")) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "records no provenance" in err


def test_search_rejects_unknown_query_ids(checkpoint: Path, tmp_path: Path, capsys) -> None:
    main(["encode", "--ckpt", str(checkpoint), "--out", str(tmp_path)])
    capsys.readouterr()
    argv = ["search", "--ckpt", str(checkpoint), "--index", str(tmp_path / "database.faissb")]
    assert main([*argv, "--query_ids", "[999999]"]) == 2
    err = capsys.readouterr().err
    assert "--query_ids [999999]" in err and "ids 0 to 719" in err and "Traceback" not in err
