"""Resuming an interrupted sweep, failed cells, sharding and byte-identical leaderboards."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from hashbench.bench import records as rec
from hashbench.bench.leaderboard import render_markdown, write_leaderboard
from hashbench.bench.sweep import run_benchmark

from .conftest import SweepRun, bench, copy_results, write_grid


def _mtimes(results: Path) -> dict[str, int]:
    return {
        p.name + p.parent.name: p.stat().st_mtime_ns for p in (results / "raw").rglob("*.json.gz")
    }


def test_resume_computes_only_the_missing_cell(bench_sweep: SweepRun, tmp_path: Path) -> None:
    results = copy_results(bench_sweep, tmp_path / "results")
    victim = results / "raw/fashion-mnist/default/dsh/16bits-seed0.json.gz"
    victim.unlink()  # killed mid-run: no record ...
    leftover = victim.parent / f".{victim.name}.x1y2z3{rec.TMP_SUFFIX}"
    leftover.write_text('{"status": "ok", "trunc')  # ... and half a temporary file
    assert len(rec.load_records(results)) == 3  # readers ignore the temporary file
    before = _mtimes(results)
    report = run_benchmark(
        bench_sweep.grid,
        results=results,
        runs_dir=tmp_path / "runs",
        progress=False,
        figures=False,
        echo=lambda _: None,
    )
    assert report.ran == ["dsh/16bits/seed0"]
    assert report.shared_data_cells == 1  # the deep cell reused the runner's dataset arrays
    assert sorted(report.skipped) == ["dsh/8bits/seed0", "itq/16bits/seed0", "itq/8bits/seed0"]
    assert not leftover.exists()
    after = _mtimes(results)
    assert {k: v for k, v in after.items() if k in before} == before  # the others untouched
    assert rec.read_record(victim)["status"] == "ok"
    assert "| dsh | deep |" in (results / "leaderboard.md").read_text()


def test_sweep_killed_between_cells_resumes(
    fashion_mnist_root: Path, tmp_path: Path, monkeypatch
) -> None:
    grid = write_grid(tmp_path / "grid.yaml", fashion_mnist_root, ["itq", "lsh"], [8, 16])
    calls = []
    import hashbench.bench.sweep as sweep_module

    original = sweep_module.run_baseline

    def killed_at_third(cfg, cell, *args, **kwargs):
        calls.append(cell.id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(cfg, cell, *args, **kwargs)

    monkeypatch.setattr(sweep_module, "run_baseline", killed_at_third)
    kwargs = dict(
        results=tmp_path / "results",
        runs_dir=tmp_path / "runs",
        progress=False,
        figures=False,
        echo=lambda _: None,
    )
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(grid, **kwargs)
    done = {r["cell"] for r in rec.load_records(tmp_path / "results")}
    assert done == set(calls[:2])
    monkeypatch.setattr(sweep_module, "run_baseline", original)
    report = run_benchmark(grid, **kwargs)
    assert sorted(report.ran) == sorted(set(report.ran))
    assert (
        set(report.ran)
        == {
            "itq/8bits/seed0",
            "itq/16bits/seed0",
            "lsh/8bits/seed0",
            "lsh/16bits/seed0",
        }
        - done
    )
    assert len(report.ran) == 2 and len(rec.load_records(tmp_path / "results")) == 4


def test_failed_cell_is_recorded_and_the_sweep_finishes(
    fashion_mnist_root: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    from hashbench.methods.dsh import DSH

    def boom(self, batch, batch_idx):
        raise RuntimeError("boom: training exploded")

    monkeypatch.setattr(DSH, "training_step", boom)
    grid = write_grid(
        tmp_path / "grid.yaml",
        fashion_mnist_root,
        ["dsh", "itq", "dsh_bad"],
        [8],
        extra={"variants": {"dsh_bad": {"base": "dsh", "args": {"model.init_args.nosuch": 1}}}},
    )
    results = tmp_path / "results"
    rc = bench(grid, results, tmp_path / "runs", "--figures", "false")
    assert rc == 1
    bad = rec.read_record(results / "raw/fashion-mnist/default/dsh_bad/8bits-seed0.json.gz")
    assert bad["status"] == "failed" and "invalid configuration" in bad["error"]
    failed = rec.read_record(results / "raw/fashion-mnist/default/dsh/8bits-seed0.json.gz")
    assert failed["status"] == "failed"
    assert failed["error"] == "RuntimeError: boom: training exploded"
    assert "boom" in failed["traceback"] and "Traceback" in failed["traceback"]
    assert failed["config_hash"] == rec.config_hash(failed["config"])
    ok = rec.read_record(results / "raw/fashion-mnist/default/itq/8bits-seed0.json.gz")
    assert ok["status"] == "ok"
    md = (results / "leaderboard.md").read_text()
    assert "### Failed cells" in md and "RuntimeError: boom" in md
    assert "1 ok, 2 failed" in md
    assert "2 cell(s) failed" in capsys.readouterr().out
    # a rerun retries the failed cell only
    monkeypatch.undo()
    capsys.readouterr()
    assert bench(grid, results, tmp_path / "runs", "--dry_run") == 0
    actions = {
        line.split()[1]: line.split()[0]
        for line in capsys.readouterr().out.splitlines()
        if "bits/seed" in line
    }
    assert actions == {
        "itq/8bits/seed0": "skip",
        "dsh/8bits/seed0": "retry",
        "dsh_bad/8bits/seed0": "retry",
    }


def test_leaderboard_is_byte_identical_when_regenerated(
    bench_sweep: SweepRun, tmp_path: Path
) -> None:
    results = copy_results(bench_sweep, tmp_path / "results")
    first_md = (results / "leaderboard.md").read_bytes()
    first_csv = (results / "leaderboard.csv").read_bytes()
    write_leaderboard(results, figures=True)
    assert (results / "leaderboard.md").read_bytes() == first_md
    assert (results / "leaderboard.csv").read_bytes() == first_csv
    from hashbench.bench.cli import bench_main

    assert bench_main(["--leaderboard_only", "true", "--results", str(results)]) == 0
    assert (results / "leaderboard.md").read_bytes() == first_md
    # the records' order on disk does not matter
    records = rec.load_records(results)
    assert render_markdown(list(reversed(records))) == render_markdown(records)


_VOLATILE = (
    "times",
    "memory",
    "started_at",
    "finished_at",
    "run_dir",
    "best_checkpoint",
    "git_commit",  # another engineer may commit, or hold the git index lock, meanwhile
    "git_dirty",
)


def _normalised(records: list[dict]) -> list[dict]:
    out = []
    for r in records:
        r = {k: v for k, v in r.items() if k not in _VOLATILE and k != "_path"}
        r["finished_at"] = "2000-01-01T00:00:00Z"
        out.append(r)
    return out


def test_sharded_runs_merge_to_the_same_leaderboard(bench_sweep: SweepRun, tmp_path: Path) -> None:
    """Shards 1/2 and 2/2 of the 8-bit cells give the records and leaderboard of one run."""
    results = tmp_path / "results"
    ran = []
    for shard in ("1/2", "2/2"):
        report = run_benchmark(
            bench_sweep.grid,
            results=results,
            runs_dir=tmp_path / "runs",
            only=["8"],
            shard=shard,
            progress=False,
            figures=False,
            echo=lambda _: None,
        )
        assert len(report.ran) == 1
        ran += report.ran
    assert sorted(ran) == ["dsh/8bits/seed0", "itq/8bits/seed0"]
    sharded = rec.load_records(results)
    single = [r for r in rec.load_records(bench_sweep.results) if r["bits"] == 8]
    assert [r["cell"] for r in sharded] == [r["cell"] for r in single]
    for a, b in zip(sharded, single, strict=True):
        assert a["config_hash"] == b["config_hash"]
        assert a["metrics"] == pytest.approx(b["metrics"], abs=1e-12)
    assert render_markdown(_normalised(sharded)) == render_markdown(_normalised(single))
    merged = (results / "leaderboard.md").read_text()
    assert "| dsh | deep |" in merged and "| itq |" in merged


def test_shards_are_disjoint_and_cover_the_grid(bench_sweep: SweepRun) -> None:
    from hashbench.bench.cells import expand_cells, select_cells
    from hashbench.bench.config import load_bench_config

    cfg = load_bench_config(bench_sweep.grid)
    cells = expand_cells(cfg)
    parts = [select_cells(cells, None, (i, 3)) for i in (1, 2, 3)]
    ids = [c.id for part in parts for c in part]
    assert sorted(ids) == sorted(c.id for c in cells) and len(ids) == len(set(ids))
    assert [c.id for c in select_cells(cells, None, (1, 1))] == [c.id for c in cells]


def test_records_are_written_atomically(tmp_path: Path) -> None:
    path = rec.record_path(tmp_path, "bench", "m", 8, 0)
    rec.write_record(path, {"status": "ok", "value": 1.5, "nan": float("nan")})
    # gzip-compressed JSON, readable without hashbench, and the same bytes for the same record
    assert path.name.endswith(".json.gz")
    assert json.loads(gzip.decompress(path.read_bytes())) == {
        "status": "ok",
        "value": 1.5,
        "nan": None,
    }
    first = path.read_bytes()
    rec.write_record(path, {"status": "ok", "value": 1.5, "nan": float("nan")})
    assert path.read_bytes() == first
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert re.fullmatch(r"[0-9a-f]{16}", rec.config_hash({"a": [1, 2]}))
    assert rec.config_hash({"a": 1, "b": 2}) == rec.config_hash({"b": 2, "a": 1})


def test_leaderboard_only_writes_the_profile_folder(monkeypatch) -> None:
    """``--leaderboard_only`` with ``--config``/``--profile`` regenerates that profile's table."""
    from hashbench.bench import cli

    grid = str(Path(__file__).resolve().parents[2] / "benchmarks" / "fashion-mnist.yaml")
    written = []
    monkeypatch.setattr(
        cli, "_write_leaderboard", lambda results, figures: written.append(results) or 0
    )
    for argv in (
        ["--config", grid, "--profile", "budget"],
        ["--config", grid, "--profile", "quick"],
        ["--config", grid],
        ["--config", grid, "--profile", "budget", "--results", "elsewhere"],
        [],
    ):
        assert cli.bench_main([*argv, "--leaderboard_only", "true"]) == 0
    assert written == ["results/budget", "results/quick", "results", "elsewhere", "results"]
