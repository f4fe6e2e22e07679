"""Benchmark grids: the shipped YAMLs, --only / --shard selection, and missing data."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hashbench.baselines import BASELINES
from hashbench.bench.cells import expand_cells, parse_only, parse_shard, select_cells
from hashbench.bench.cli import bench_main
from hashbench.bench.config import BenchConfigError, load_bench_config
from hashbench.methods import METHODS

from .conftest import REPO, write_grid

SHIPPED = ("fashion-mnist", "mnist", "cifar10", "nus-wide", "svhn")


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("profile", ["default", "paper"])
def test_shipped_grids_cover_every_method(name: str, profile: str) -> None:
    cfg = load_bench_config(REPO / "benchmarks" / f"{name}.yaml", profile)
    assert cfg.name == name
    assert cfg.bits == (8, 16, 32, 48, 64)
    expected = (set(METHODS) | set(BASELINES)) - {"composite"}
    assert set(cfg.methods) == expected
    assert cfg.protocol and cfg.layout
    assert cfg.profile.args.get("trainer.max_epochs")
    if profile == "paper":
        assert len(cfg.seeds) >= 2


def test_only_filters_methods_bits_and_seeds(tmp_path: Path, fashion_mnist_root: Path) -> None:
    grid = write_grid(
        tmp_path / "g.yaml", fashion_mnist_root, ["dsh", "itq", "lsh"], [8, 16, 32], [0, 1]
    )
    cfg = load_bench_config(grid)
    cells = expand_cells(cfg)
    assert len(cells) == 18
    assert [c.kind for c in cells[:12]] == ["baseline"] * 12  # baselines first
    picked = select_cells(cells, parse_only(["dsh,itq", "32"], cfg))
    assert sorted(c.id for c in picked) == sorted(
        f"{m}/32bits/seed{s}" for m in ("dsh", "itq") for s in (0, 1)
    )
    picked = select_cells(cells, parse_only(["seed=1", "16bits"], cfg))
    assert sorted(c.id for c in picked) == sorted(
        f"{m}/16bits/seed1" for m in ("dsh", "itq", "lsh")
    )
    with pytest.raises(BenchConfigError, match="neither a method"):
        parse_only(["nosuch"], cfg)
    with pytest.raises(BenchConfigError, match="not in the grid"):
        parse_only(["64"], cfg)
    assert parse_shard("2/5") == (2, 5) and parse_shard(None) is None
    for bad in ("0/2", "3/2", "x"):
        with pytest.raises(BenchConfigError):
            parse_shard(bad)


def test_bad_grids_are_rejected(tmp_path: Path, fashion_mnist_root: Path) -> None:
    grid = write_grid(tmp_path / "g.yaml", fashion_mnist_root, ["nosuch"], [8])
    with pytest.raises(BenchConfigError, match="unknown method"):
        load_bench_config(grid)
    grid = write_grid(tmp_path / "g.yaml", fashion_mnist_root, ["itq"], [12])
    with pytest.raises(BenchConfigError, match="bits"):
        load_bench_config(grid)
    with pytest.raises(BenchConfigError, match="no profile"):
        load_bench_config(write_grid(tmp_path / "g.yaml", fashion_mnist_root, ["itq"], [8]), "nope")
    with pytest.raises(BenchConfigError, match="not found"):
        load_bench_config(tmp_path / "missing.yaml")


def test_missing_nus_wide_stops_at_once(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may appear here
    t0 = time.perf_counter()
    rc = bench_main(["--config", str(REPO / "benchmarks/nus-wide.yaml"), "--results", "results"])
    assert rc == 2
    assert time.perf_counter() - t0 < 10
    err = capsys.readouterr().err
    assert "data/nus-wide" in err and "Imagelist.txt" in err and "Expected layout" in err
    assert "Nothing was run or written" in err
    assert list(tmp_path.iterdir()) == []


def test_missing_dataset_files_stop_before_any_cell(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "no-mnist"
    empty.mkdir()
    grid = write_grid(
        tmp_path / "g.yaml",
        empty,
        ["dsh", "itq"],
        [8],
        data_config="configs/data/mnist.yaml",
        name="mnist",
        layout="data/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz",
    )
    rc = bench_main(
        ["--config", str(grid), "--results", str(tmp_path / "results"), "--progress", "false"]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte" in err and str(empty) in err
    assert "Expected layout" in err and "data/mnist/" in err
    assert not (tmp_path / "results").exists()


def test_help_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from hashbench.bench.cli import build_parser; build_parser().format_help();"
        "print('HEAVY', [m for m in ('torch', 'lightning', 'faiss', 'pandas') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def test_index_kinds_match_the_index_module() -> None:
    from hashbench.bench.config import INDEX_KINDS
    from hashbench.retrieval.index import KINDS

    assert tuple(KINDS) == INDEX_KINDS


def test_leaderboard_without_records_is_an_error(tmp_path: Path, capsys) -> None:
    from hashbench.bench.cli import leaderboard_main

    assert leaderboard_main(["--results", str(tmp_path / "none")]) == 2
    assert "no records" in capsys.readouterr().err


def test_profile_add_cells_and_results_folder(tmp_path: Path, fashion_mnist_root: Path) -> None:
    from hashbench.bench.cells import expand_cells

    from .conftest import TINY_PROFILE, write_grid

    quick = {**TINY_PROFILE, "results": str(tmp_path / "own"), "bits": [8]}
    grid = write_grid(
        tmp_path / "g.yaml",
        fashion_mnist_root,
        ["itq"],
        [8, 16, 32],
        extra={
            "profiles": {
                "default": {**TINY_PROFILE, "add_cells": [{"bits": [16], "seeds": [1, 2]}]},
                "quick": quick,
            }
        },
    )
    cfg = load_bench_config(grid)
    ids = [c.id for c in expand_cells(cfg)]
    assert ids == [
        "itq/8bits/seed0",
        "itq/16bits/seed0",
        "itq/16bits/seed1",
        "itq/16bits/seed2",
        "itq/32bits/seed0",
    ]
    assert cfg.all_seeds() == (0, 1, 2) and cfg.profile.results is None
    # the quick profile writes its own folder when --results is not given
    from hashbench.bench.cli import bench_main

    rc = bench_main(["--config", str(grid), "--profile", "quick", "--progress", "false"])
    assert rc == 0
    paths = [p.relative_to(tmp_path / "own").as_posix() for p in (tmp_path / "own").rglob("*.gz")]
    assert paths == ["raw/fashion-mnist/quick/itq/8bits-seed0.json.gz"]
    assert (tmp_path / "own" / "leaderboard.md").is_file()
    bad = write_grid(
        tmp_path / "bad.yaml",
        fashion_mnist_root,
        ["itq"],
        [8],
        extra={"profiles": {"default": {"add_cells": [{"bits": [12], "seeds": [1]}]}}},
    )
    with pytest.raises(BenchConfigError, match=r"add_cells\[0\]\.bits"):
        load_bench_config(bad)


@pytest.mark.parametrize("method", ["dsh", "knngan", "wsdh"])
def test_patched_cell_config_is_the_resolved_one(method: str, tmp_path: Path) -> None:
    """The plan resolves one cell per method and patches the others: the same configs."""
    from hashbench.bench.cells import Cell, patch_cell, resolve_deep

    cfg = load_bench_config(REPO / "benchmarks/fashion-mnist.yaml")
    first = Cell(1, method, 8, 0, "deep")
    template = resolve_deep(cfg, first, tmp_path / "a", False)
    for bits, seed in ((16, 1), (64, 2)):
        cell = Cell(1, method, bits, seed, "deep")
        assert patch_cell(template, cell, tmp_path / "b") == resolve_deep(
            cfg, cell, tmp_path / "b", False
        )


def test_profile_kinds_keeps_only_those_methods(tmp_path: Path, fashion_mnist_root: Path) -> None:
    from .conftest import TINY_PROFILE

    grid = write_grid(
        tmp_path / "g.yaml",
        fashion_mnist_root,
        ["dsh", "itq", "lsh"],
        [8],
        extra={
            "profiles": {
                "default": TINY_PROFILE,
                "long": {**TINY_PROFILE, "kinds": ["deep"]},
                "shallow": {**TINY_PROFILE, "kinds": ["baseline"]},
                "bad": {**TINY_PROFILE, "kinds": ["shallow"]},
            }
        },
    )
    assert load_bench_config(grid).methods == ("dsh", "itq", "lsh")
    assert load_bench_config(grid, "long").methods == ("dsh",)
    assert load_bench_config(grid, "shallow").methods == ("itq", "lsh")
    with pytest.raises(BenchConfigError, match=r"profiles\.bad\.kinds must be a non-empty list"):
        load_bench_config(grid, "bad")


def test_shipped_budget_profile_is_deep_only() -> None:
    cfg = load_bench_config(REPO / "benchmarks" / "fashion-mnist.yaml", "budget")
    assert set(cfg.methods) == set(METHODS) - {"composite"}
    assert cfg.profile.args["trainer.max_epochs"] == 40
