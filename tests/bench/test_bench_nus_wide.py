"""`make bench DATASET=nus-wide` end to end on a NUS-WIDE fixture in the real file layout.

The fixture (:func:`tests.fixtures.make_nus_wide`) has ``ImageList/Imagelist.txt`` (Windows paths),
``Groundtruth/AllLabels/Labels_<concept>.txt``, ``ConceptsList/Concepts81.txt``, the images under
``Flickr/`` and the user tags in ``NUS_WID_Tags/`` (``All_Tags.txt``, ``Final_Tag_List.txt``,
``TagList1k.txt``, ``AllTags1k.txt``). The grid is the shipped ``benchmarks/nus-wide.yaml`` with a
tiny override (the ``tiny`` protocol, three methods at one code length, one epoch of two batches)
and runs through ``hashbench bench --config <grid>``, the command ``make bench DATASET=nus-wide``
runs.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import yaml

from hashbench.bench.records import load_records, read_record, record_path
from tests.fixtures import make_nus_wide

from .conftest import REPO, TINY_PROFILE, bench

METHODS = ["wsdh", "dsh", "itq"]
BITS = 16


def tiny_nus_wide_grid(path: Path, root: Path) -> Path:
    """``benchmarks/nus-wide.yaml`` cut to a tiny grid on the fixture at ``root``."""
    grid = yaml.safe_load((REPO / "benchmarks/nus-wide.yaml").read_text())
    grid["data"]["config"] = str(REPO / grid["data"]["config"])  # same data config, absolute
    grid["data"]["args"] = {
        **grid["data"]["args"],
        "root": str(root),
        "image_size": 32,
        "bow": True,  # BoW_int.dat: the visual features of wsdh's tag cleaning
        "batch_size": 32,
        "eval_batch_size": 128,
        "num_workers": 0,
    }
    grid["protocol"] = "tiny"
    grid["methods"] = METHODS
    grid["bits"] = [BITS]
    grid["seeds"] = [0]
    # no ImageNet ResNet-18 weights offline: the baselines read the (32 px) pixels
    grid["baselines"] = {"features": "pixels", "pretrained": False}
    grid["index"] = {**grid["index"], "k": 50}
    grid["method_args"] = {
        "wsdh": {"model.init_args.stage1_epochs": 1, "model.init_args.skipgram_epochs": 2}
    }
    grid["profiles"] = {"default": {**TINY_PROFILE, "method_args": {}}}
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def test_make_bench_nus_wide_with_user_tags(tmp_path: Path) -> None:
    fx = make_nus_wide(tmp_path / "nus-wide", seed=3)
    for name in ("All_Tags.txt", "Final_Tag_List.txt", "TagList1k.txt", "AllTags1k.txt"):
        assert (fx.root / "NUS_WID_Tags" / name).is_file()
    grid = tiny_nus_wide_grid(tmp_path / "nus-wide.yaml", fx.root)
    results = tmp_path / "results"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = bench(grid, results, tmp_path / "runs", "--profile", "default", "--figures", "false")
    assert rc == 0, out.getvalue()

    records = load_records(results)
    assert {r["method"] for r in records} == set(METHODS)
    for r in records:
        assert r["status"] == "ok", (r["method"], r.get("error"), r.get("traceback"))
        assert r["benchmark"] == "nus-wide" and r["bits"] == BITS
        assert r["protocol"]["name"] == "tiny"
        assert 0.0 <= r["metrics"]["P@500"] <= 1.0
    wsdh = read_record(record_path(results, "nus-wide", "wsdh", BITS, 0))
    assert wsdh is not None and wsdh["status"] == "ok"
    # the fixture's NUS_WID_Tags/All_Tags.txt, neither classifier predictions nor label-derived
    assert wsdh["tag_source"] == "user"
    dsh = read_record(record_path(results, "nus-wide", "dsh", BITS, 0))
    assert dsh is not None and dsh.get("tag_source") is None

    board = (results / "leaderboard.md").read_text()
    assert "nus-wide" in board and all(m in board for m in METHODS)
    assert "synthetic tags" not in board
    assert (results / "leaderboard.csv").is_file()
