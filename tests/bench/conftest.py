"""Shared helpers of the bench tests: tiny grids on the Fashion-MNIST fixture, one shared sweep.

The ``bench_sweep`` fixture runs one two-method (``dsh`` deep, ``itq`` baseline), two-bit (8, 16),
one-seed sweep through ``hashbench bench`` on the tiny fixture (1 epoch, 2 training batches) and is
shared by the tests of this folder: treat its results folder as read-only (copy it to mutate it).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from hashbench.bench.cli import bench_main

REPO = Path(__file__).resolve().parents[2]


#: Training profile of the tests: one epoch of two batches on the CPU, no logger.
TINY_PROFILE = {
    "trainer_config": str(REPO / "configs/trainer/quick.yaml"),
    "args": {
        "trainer.max_epochs": 1,
        "trainer.limit_train_batches": 2,
        "trainer.accelerator": "cpu",
        "trainer.logger": False,
    },
}


def write_grid(
    path: Path,
    root: Path,
    methods: list[str],
    bits: list[int],
    seeds: list[int] | None = None,
    data_config: str = "configs/data/fashion_mnist.yaml",
    name: str = "fashion-mnist",
    profile_args: dict | None = None,
    layout: str = "",
    extra: dict | None = None,
) -> Path:
    """Write a benchmark YAML for the tiny fixture at ``root``; returns ``path``."""
    profile = {**TINY_PROFILE, "args": {**TINY_PROFILE["args"], **(profile_args or {})}}
    grid = {
        "name": name,
        "data": {
            "config": str(REPO / data_config),
            "args": {"root": str(root), "download": False, "batch_size": 32},
            "layout": layout,
        },
        "protocol": "tiny",
        "methods": methods,
        "bits": bits,
        "seeds": seeds or [0],
        "metrics": ["mAP", "mAP@H<=2", "P@H<=2", "P@500"],
        "baselines": {"features": "pixels", "pretrained": False},
        "index": {"kind": "flat", "k": 50, "radius": 2},
        "profiles": {"default": profile},
        **(extra or {}),
    }
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def bench(grid: Path, results: Path, runs: Path, *extra: str) -> int:
    """``hashbench bench`` on a grid, quietly; returns the exit code."""
    return bench_main(
        [
            "--config",
            str(grid),
            "--results",
            str(results),
            "--runs_dir",
            str(runs),
            "--progress",
            "false",
            *extra,
        ]
    )


@dataclass
class SweepRun:
    grid: Path
    results: Path
    runs: Path
    root: Path
    rc: int
    output: str


@pytest.fixture(scope="session")
def bench_sweep(tmp_path_factory: pytest.TempPathFactory, fashion_mnist_root: Path) -> SweepRun:
    """The reference sweep: dsh + itq, 8 and 16 bits, seed 0, with figures (read-only)."""
    import contextlib
    import io

    base = tmp_path_factory.mktemp("bench-sweep")
    grid = write_grid(base / "grid.yaml", fashion_mnist_root, ["dsh", "itq"], [8, 16])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = bench(grid, base / "results", base / "runs")
    return SweepRun(grid, base / "results", base / "runs", fashion_mnist_root, rc, out.getvalue())


def copy_results(run: SweepRun, dest: Path) -> Path:
    """A private copy of the reference sweep's results folder."""
    shutil.copytree(run.results, dest)
    return dest
