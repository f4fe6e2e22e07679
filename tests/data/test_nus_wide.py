"""NUS-WIDE DataModule (hashbench/data/nus_wide.py) on its fixture in the distributed layout."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from hashbench.cli import main
from hashbench.data import get_datamodule_class
from hashbench.data.base import DatasetNotFoundError
from hashbench.data.image_list import MissingImagesWarning
from hashbench.data.nus_wide import NUSWIDEDataModule, map_windows_path
from tests.fixtures import REPO, make_nus_wide, pattern_scores, quick_trainer_args


def _dm(root: Path, **kw) -> NUSWIDEDataModule:
    return NUSWIDEDataModule(str(root), image_size=32, protocol=kw.pop("protocol", "tiny"), **kw)


def test_windows_path_mapping() -> None:
    assert map_windows_path(r"C:\ImageData\Flickr\actor\0001_2124494179.jpg") == (
        "actor/0001_2124494179.jpg"
    )
    assert map_windows_path(r"D:\nus\flickr\sky\x.jpg") == "sky/x.jpg"
    assert map_windows_path(r"E:\somewhere\else\cat\y.jpg") == "cat/y.jpg"
    assert map_windows_path("cat/y.jpg") == "cat/y.jpg"


def test_labels_tags_images_and_sides_align(nus_wide_dataset, tmp_path) -> None:
    fx = nus_wide_dataset
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = _dm(fx.root, bow=True).arrays
    missing_warnings = [w for w in caught if issubclass(w.category, MissingImagesWarning)]
    assert len(missing_warnings) == 1 and f"{len(fx.missing)} of" in str(
        missing_warnings[0].message
    )
    assert a.class_names == fx.concepts and a.tag_source == "user"
    expected = [
        i for i in range(len(fx.rel_paths)) if i not in fx.missing and i not in fx.unlabelled
    ]
    assert len(a.images) == len(expected)
    assert a.extra["unlabelled_dropped"] == len(fx.unlabelled)
    assert sorted(a.extra["missing"]) == sorted(fx.rel_paths[i] for i in fx.missing)
    for k, i in enumerate(expected):
        assert a.images[k] == str(fx.root / "Flickr" / fx.rel_paths[i])  # Windows path mapped
        assert (a.labels[k] == fx.labels[i]).all()
        assert a.tags[k] == fx.tags[i]
        assert a.source[k] == ("test" if i in fx.test else "train")
        assert a.extra["bow"][k, 20 * np.flatnonzero(fx.labels[i])[0]] >= 5
    dm = _dm(fx.root)
    ds = dm.dataset("train")
    imgs = np.stack([ds.image(int(i)) for i in ds.indices[:40]])
    scores = pattern_scores(imgs, len(fx.concepts))
    labels = a.labels[ds.indices[:40]]
    assert (scores[labels > 0].min()) > scores[labels == 0].max()  # images match their labels


def test_tags_1k_matches_all_tags(nus_wide_dataset) -> None:
    a = _dm(nus_wide_dataset.root, tags="all").arrays
    b = _dm(nus_wide_dataset.root, tags="1k").arrays
    assert [sorted(t) for t in a.tags] == [sorted(t) for t in b.tags]
    assert _dm(nus_wide_dataset.root, tags="none").arrays.tags is None


def test_missing_dataset_names_the_layout(tmp_path) -> None:
    with pytest.raises(DatasetNotFoundError) as e:
        _ = _dm(tmp_path / "nowhere").arrays
    msg = str(e.value)
    for part in ("ImageList/Imagelist.txt", "Labels_<concept>.txt", "All_Tags.txt", "train.txt"):
        assert part in msg
    assert get_datamodule_class("nus-wide") is NUSWIDEDataModule


def test_images_elsewhere_need_image_dir(tmp_path) -> None:
    fx = make_nus_wide(tmp_path / "n", per_concept=12, num_concepts=2, bow=False)
    (fx.root / "Flickr").rename(tmp_path / "pics")
    with pytest.raises(DatasetNotFoundError, match="image_dir"):
        _ = _dm(fx.root).arrays
    a = _dm(fx.root, image_dir=str(tmp_path / "pics")).arrays
    assert len(a.images) == 12 * 2


def test_list_file_form(nus_wide_dataset, tmp_path) -> None:
    fx = nus_wide_dataset
    lines = {"train": [], "test": []}
    for i, r in enumerate(fx.rel_paths):
        if i in fx.missing or i in fx.unlabelled:
            continue
        side = "test" if i in fx.test else "train"
        lines[side].append(f"Flickr/{r} " + " ".join(map(str, fx.labels[i])))
    root = tmp_path / "lists"
    root.mkdir()
    (root / "Flickr").symlink_to(fx.root / "Flickr")
    for side, ls in lines.items():
        (root / f"{side}.txt").write_text("\n".join(ls) + "\n")
    a = _dm(root).arrays
    assert a.labels.shape == (len(lines["train"]) + len(lines["test"]), len(fx.concepts))
    assert a.tags is None and (a.source == "test").sum() == len(lines["test"])


def test_both_presets_split_sizes(tmp_path) -> None:
    counts = (720,) * 21 + (40,) * 60  # 21 frequent concepts, 60 rare ones: 17,520 images
    fx = make_nus_wide(
        tmp_path / "big", per_concept=counts, num_concepts=81, link_images=True, bow=False, image_size=48,
        missing=5, unlabelled=3,
    )  # fmt: skip
    dm21 = _dm(fx.root, protocol="nus-wide-21")
    s = dm21.split
    assert dm21.num_classes == 21
    assert len(s["query"]) == 2100 and len(s["train"]) == 10500
    assert (
        len(s["val_query"]) == 1050 and len(s["val_database"]) == 10500
    )  # 50 per concept; = train
    assert len(s["database"]) == int(dm21.arrays.labels.any(1).sum()) - 2100
    dm81 = _dm(fx.root, protocol="nus-wide-81")
    s = dm81.split
    assert dm81.num_classes == 81 and len(dm81.arrays.images) == sum(counts)
    assert len(s["query"]) == 5000 and len(s["train"]) == 10000
    assert len(s["database"]) == sum(counts) - 5000


def test_fit_and_test_wsdh_end_to_end(nus_wide_dataset, tmp_path) -> None:
    data = [
        "--data", "hashbench.data.nus_wide.NUSWIDEDataModule",
        "--data.init_args.root", str(nus_wide_dataset.root),
        "--data.init_args.protocol", "tiny",
        "--data.init_args.image_size", "32",
        "--data.init_args.bow", "true",
        "--data.init_args.batch_size", "32",
    ]  # fmt: skip
    method = [
        "--config", str(REPO / "configs/methods/wsdh.yaml"),
        "--model.init_args.bits", "16",
        "--model.init_args.stage1_epochs", "1",
        "--model.init_args.skipgram_epochs", "2",
        "--model.init_args.stage1_cache", str(tmp_path / "stage1"),
    ]  # fmt: skip
    assert main(["fit", *method, *data, *quick_trainer_args(tmp_path)]) == 0
    best = next(c for c in sorted(tmp_path.rglob("*.ckpt")) if c.name != "last.ckpt")
    saved = torch.load(best, map_location="cpu", weights_only=False)
    assert saved["hyper_parameters"]["tag_source"] == "user"
    assert saved["wsdh"]["tag_stats"]["tags"] >= len(nus_wide_dataset.concepts)
    args = ["test", *method, *data, *quick_trainer_args(tmp_path), "--ckpt_path", str(best)]
    assert main(args) == 0


def test_tag_count_mismatch_names_both_counts(tmp_path) -> None:
    fx = make_nus_wide(tmp_path / "nus", per_concept=10, num_concepts=3, missing=0, bow=False)
    tags = fx.root / "NUS_WID_Tags/All_Tags.txt"
    n_images = len([x for x in (fx.root / "ImageList/Imagelist.txt").read_text().splitlines() if x])
    lines = tags.read_text().splitlines()
    tags.write_text("\n".join(lines[:-2]) + "\n")  # two images lose their tag line
    with pytest.raises(Exception, match="All_Tags.txt") as err:
        _ = _dm(fx.root).arrays
    msg = str(err.value)
    assert f"has {n_images - 2} lines" in msg and f"lists {n_images} images" in msg
    assert "Imagelist.txt" in msg and "tags 1k" in msg


def test_bench_wsdh_and_ws_ksh_on_user_tags_end_to_end(nus_wide_dataset, tmp_path) -> None:
    """`hashbench bench` (run_benchmark) on the fixture in the real layout, with its user tags."""
    import json

    import yaml

    from hashbench.bench.records import load_records
    from hashbench.bench.sweep import run_benchmark

    grid = {
        "name": "nus-wide-fixture",
        "data": {
            "config": str(REPO / "configs/data/nus_wide.yaml"),
            "args": {
                "root": str(nus_wide_dataset.root),
                "image_size": 32,
                "bow": True,
                "batch_size": 32,
                "num_workers": 0,
            },
        },
        "protocol": "tiny",
        "methods": ["wsdh", "ws_ksh", "ksh"],
        "bits": [16],
        "seeds": [0],
        "metrics": ["mAP", "P@500"],
        "method_args": {
            "wsdh": {"model.init_args.stage1_epochs": 1, "model.init_args.skipgram_epochs": 2},
            # a baseline's method_args are constructor arguments: the stage 1 of this wsdh
            "ws_ksh": {"stage1_epochs": 1},
        },
        "baselines": {"features": "pixels", "pretrained": False},
        "index": {"kind": "flat", "k": 50, "radius": 2},
        "profiles": {
            "default": {
                "trainer_config": str(REPO / "configs/trainer/quick.yaml"),
                "args": {
                    "trainer.max_epochs": 1,
                    "trainer.limit_train_batches": 2,
                    "trainer.accelerator": "cpu",
                    "trainer.logger": False,
                },
            }
        },
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    kw = dict(results=tmp_path / "results", runs_dir=tmp_path / "runs", progress=False)
    kw.update(leaderboard=False, figures=False, echo=lambda *_: None)
    first = run_benchmark(path, **kw)

    def records() -> dict[str, dict]:  # gzip JSON records (<results>/raw/.../*.json.gz)
        return {r["method"]: r for r in load_records(tmp_path / "results")}

    recs = records()
    assert recs["wsdh"]["status"] == "ok" and recs["ksh"]["status"] == "ok"
    assert recs["wsdh"]["tag_source"] == "user"  # the fixture's All_Tags.txt, not generated tags
    # ws_ksh is ordered after the deep cells: wsdh's stage 1 is cached when it runs
    assert not first.failed
    assert [p.cell.method for p in first.planned][-1] == "ws_ksh"
    facts = list((nus_wide_dataset.root / "stage1").glob("*.json"))
    assert facts and json.loads(facts[0].read_text())["tag_source"] == "user"
    assert recs["ws_ksh"]["status"] == "ok"
    assert recs["ws_ksh"]["config"]["params"]["stage1_epochs"] == 1
    assert recs["ws_ksh"]["stage1_file"] == recs["wsdh"]["stage1_file"]  # the grid's own stage 1
    assert set(recs["ws_ksh"]["metrics"]) == set(recs["ksh"]["metrics"])  # evaluated alike
    assert 0.0 <= recs["ws_ksh"]["metrics"]["P@500"] <= 1.0

    # a baseline argument that does not exist stops the sweep before any work, naming it
    grid["method_args"]["ws_ksh"] = {"stage1_epoch": 1}
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    from hashbench.bench.config import BenchConfigError

    with pytest.raises(BenchConfigError, match="stage1_epoch"):
        run_benchmark(path, **kw)
