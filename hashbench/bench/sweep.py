"""The sweep: every (method, bits, seed) cell of a benchmark grid, one JSON record each.

A benchmark is a YAML file (``benchmarks/<dataset>.yaml``, :mod:`hashbench.bench.config`, format
in ``docs/bench.md``). Before any work the sweep checks the grid (an unknown method or a bad code
length stops it at once), that the data config exists and that the dataset's files are on disk
(:class:`~hashbench.bench.config.DataMissingError`, naming the expected layout and location). It
then resolves every cell's configuration and hashes it (:mod:`hashbench.bench.cells`,
:func:`~hashbench.bench.records.config_hash`): a cell whose record says ``ok`` with the same hash is
skipped, so an interrupted sweep resumes where it stopped; failed cells and cells whose
configuration changed run again. Each cell runs through :mod:`hashbench.bench.executors`. A cell
that raises (or whose configuration does not resolve) is recorded as ``failed`` with its error and
traceback, and the sweep goes on; Ctrl+C stops it, leaving the current cell unrecorded. ``only``
filters the cells, ``shard=(i, n)`` keeps every n-th cell of the filtered list starting at the i-th
(independent jobs writing disjoint records, merged by the leaderboard).

Resolved: the split seed is the data config's ``seed`` for every cell (the benchmark's ``seeds``
seed training and the baselines' ``random_state``), so the std over seeds is the training
variance on one fixed split.
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashbench.bench import records as rec
from hashbench.bench.cells import (
    Cell,
    baseline_config,
    deep_cell_config,
    expand_cells,
    hashable_config,
    parse_only,
    parse_shard,
    resolve_data,
    resolve_deep,
    run_dir,
    select_cells,
)
from hashbench.bench.config import (
    BenchConfig,
    BenchConfigError,
    DataMissingError,
    load_bench_config,
    method_config_path,
    missing_data_message,
    no_data_config,
)
from hashbench.bench.executors import FeatureStore, display_path, run_baseline, run_deep
from hashbench.retrieval.evaluation import map_key


@dataclass
class PlannedCell:
    """A cell with its resolved configuration, hash, record path and what the sweep will do."""

    cell: Cell
    config: dict
    hash: str
    path: Path
    action: str  # run | skip | rerun (config changed) | retry (failed)
    training_config: dict | None = None  # a deep cell's full resolved config (what is built)
    error: str | None = None  # the configuration does not resolve: the cell is recorded as failed


@dataclass
class SweepReport:
    """What a sweep did."""

    planned: list[PlannedCell]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    leaderboard: Path | None = None
    shared_data_cells: int = 0


class Sweep:
    """A benchmark sweep: plan (configs, hashes, actions) then run.

    Args:
        cfg: the benchmark.
        results: results folder (records under ``<results>/raw/<name>/``).
        runs_dir: where deep cells' Lightning logs and checkpoints go.
        only: ``--only`` tokens.
        shard: ``(i, n)``.
        progress: show progress bars.
        keep_checkpoints: keep the deep cells' checkpoint files after their record is written.
        retry_failed: run cells whose record says ``failed`` again.
    """

    def __init__(
        self,
        cfg: BenchConfig,
        results: str | os.PathLike = "results",
        runs_dir: str | os.PathLike = "runs/bench",
        only: Sequence[str] | None = None,
        shard: tuple[int, int] | None = None,
        progress: bool = True,
        keep_checkpoints: bool = False,
        retry_failed: bool = True,
    ) -> None:
        self.cfg = cfg
        self.results = Path(results)
        self.runs_dir = Path(runs_dir)
        self.progress = progress
        self.keep_checkpoints = keep_checkpoints
        self.retry_failed = retry_failed
        self.cells = select_cells(expand_cells(cfg), parse_only(only, cfg), shard)
        self._datamodule = None
        self._data_cfg: dict | None = None
        self._env: dict | None = None
        self._features = FeatureStore()
        self._bar: Any = None
        #: deep cells that reused the benchmark DataModule's arrays (see :meth:`_share_data`)
        self.shared_data_cells = 0

    # -- checks -------------------------------------------------------------------------------------
    def check_configs(self) -> None:
        """Deep methods' config files exist (cheap; before anything is imported)."""
        missing = [
            str(method_config_path(self.cfg, m))
            for m in dict.fromkeys(c.method for c in self.cells if c.kind == "deep")
            if not method_config_path(self.cfg, m).is_file()
        ]
        if missing:
            raise BenchConfigError(f"{self.cfg.path}: method config(s) not found: {missing}")
        if not self.cfg.data_config.is_file():
            raise DataMissingError(missing_data_message(self.cfg, no_data_config(self.cfg)))

    def datamodule(self, load: bool = True):
        """The benchmark's DataModule, built once; ``load`` reads the data and the split."""
        if self._datamodule is None:
            from hashbench.training import build_datamodule

            data = resolve_data(self.cfg)
            self._data_cfg = hashable_config({"data": data})["data"]
            self._datamodule = build_datamodule(data)
        if load:
            from hashbench.data.base import DatasetNotFoundError

            try:
                self._datamodule.prepare_data()
            except DatasetNotFoundError as e:
                raise DataMissingError(
                    missing_data_message(self.cfg, f"the dataset is not on disk: {e}")
                ) from None
        return self._datamodule

    # -- plan ---------------------------------------------------------------------------------------
    def plan(self, load_data: bool = True) -> list[PlannedCell]:
        """Resolve every selected cell's config and hash; decide run / skip / rerun / retry."""
        self.check_configs()
        self.datamodule(load=load_data)
        planned = []
        for cell in self.cells:
            path = rec.record_path(self.results, self.cfg.name, cell.method, cell.bits, cell.seed)
            training, error = None, None
            if cell.kind == "deep":
                root = run_dir(self.runs_dir, self.cfg, cell)
                try:
                    training = resolve_deep(self.cfg, cell, root, self.progress)
                    config = deep_cell_config(self.cfg, cell, training)
                except Exception as e:  # noqa: BLE001 - recorded as a failed cell, sweep goes on
                    error = f"{type(e).__name__}: {e}"
                    config = {
                        "kind": "deep",
                        "method": cell.method,
                        "base": self.cfg.base(cell.method),
                        "fit": {"invalid": error},
                    }
            else:
                config = baseline_config(self.cfg, cell, self._data_cfg or {})
            digest = rec.config_hash(config)
            old = rec.read_record(path)
            if old is None:
                action = "run"
            elif old.get("status") == "ok":
                action = "skip" if old.get("config_hash") == digest else "rerun"
            else:
                action = "retry" if self.retry_failed else "skip"
            planned.append(PlannedCell(cell, config, digest, path, action, training, error))
        return planned

    # -- run ----------------------------------------------------------------------------------------
    def environment(self) -> dict:
        if self._env is None:
            self._env = {"versions": rec.versions(), "git": rec.git_commit()}
        return self._env

    def run(self, planned: list[PlannedCell] | None = None) -> SweepReport:
        """Run the planned cells that need it; returns the report (records are on disk)."""
        planned = self.plan() if planned is None else planned
        report = SweepReport(planned)
        todo = [p for p in planned if p.action != "skip"]
        report.skipped = [p.cell.id for p in planned if p.action == "skip"]
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(todo),
            desc=f"bench {self.cfg.name}",
            unit="cell",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        self._bar = bar if self.progress else None
        try:
            for p in todo:
                bar.set_description(f"{self.cfg.name} {p.cell.id}")
                bar.set_postfix_str("")
                record = self.run_cell(p)
                rec.write_record(p.path, record)
                report.ran.append(p.cell.id)
                if record["status"] != "ok":
                    report.failed.append(p.cell.id)
                line = _summary_line(record)
                if self.progress:
                    bar.write(line)
                else:
                    print(line, flush=True)
                bar.update(1)
        finally:
            bar.close()
            self._bar = None
            report.shared_data_cells = self.shared_data_cells
        return report

    def run_cell(self, p: PlannedCell) -> dict:
        """Run one cell; an ``Exception`` becomes a ``failed`` record.

        ``KeyboardInterrupt`` and ``SystemExit`` (Lightning turns Ctrl+C during training into
        ``SystemExit(1)``) are not caught: the sweep stops and the cell stays unrecorded.
        """
        base = {
            "record_version": rec.RECORD_VERSION,
            "benchmark": self.cfg.name,
            "dataset": self.cfg.name,
            "method": p.cell.method,
            "kind": p.cell.kind,
            "bits": p.cell.bits,
            "seed": p.cell.seed,
            "cell": p.cell.id,
            "config_hash": p.hash,
            "config": p.config,
            "bench": {
                "config": display_path(self.cfg.path),
                "profile": self.cfg.profile.name,
                "metrics": list(self.cfg.metrics),
                "index": dataclasses.asdict(self.cfg.index),
            },
            "versions": self.environment()["versions"],
            "git_commit": self.environment()["git"]["commit"],
            "git_dirty": self.environment()["git"]["dirty"],
            "started_at": rec.utc_now(),
        }
        memory = rec.PeakMemory()
        memory.reset()
        t0 = time.perf_counter()
        try:
            if p.error is not None:
                raise BenchConfigError(f"invalid configuration: {p.error}")
            if p.cell.kind == "deep":
                out, shared = run_deep(
                    self.cfg,
                    p.cell,
                    p.training_config,
                    run_dir(self.runs_dir, self.cfg, p.cell),
                    shared_datamodule=self._datamodule,
                    bar=self._bar,
                    keep_checkpoints=self.keep_checkpoints,
                )
                self.shared_data_cells += int(shared)
            else:
                out = run_baseline(self.cfg, p.cell, self.datamodule(), self._features)
            status, error, tb = "ok", None, None
        except Exception as e:  # noqa: BLE001 - a failed cell must not stop the sweep
            out = {}
            status = "failed"
            error = f"{type(e).__name__}: {e}"
            tb = traceback.format_exc()
        record = {
            **base,
            **out,
            "status": status,
            "error": error,
            "traceback": tb,
            "memory": memory.read(),
            "finished_at": rec.utc_now(),
        }
        record.setdefault("times", {})["total_s"] = time.perf_counter() - t0
        record.setdefault("device", rec.device_info(None))
        return record


def _summary_line(record: dict) -> str:
    t = record.get("times", {}).get("total_s", 0.0)
    if record["status"] != "ok":
        return f"  {record['cell']}: FAILED after {t:.1f} s: {record['error']}"
    metrics = record.get("metrics", {})
    key = map_key(metrics)
    value = f"{key} {metrics[key]:.4f}" if key else "no mAP"
    return f"  {record['cell']}: {value} ({t:.1f} s)"


# -- entry points -----------------------------------------------------------------------------------
def run_benchmark(
    config: str | os.PathLike,
    results: str | os.PathLike = "results",
    profile: str = "default",
    only: Sequence[str] | None = None,
    shard: tuple[int, int] | str | None = None,
    dry_run: bool = False,
    data_root: str | None = None,
    runs_dir: str | os.PathLike = "runs/bench",
    progress: bool = True,
    leaderboard: bool = True,
    figures: bool = True,
    keep_checkpoints: bool = False,
    retry_failed: bool = True,
    echo: Callable[[str], None] = print,
) -> SweepReport:
    """Run (or list, with ``dry_run``) a benchmark sweep and regenerate the leaderboard.

    Args:
        config: the benchmark YAML.
        results: results folder.
        profile: training profile of the YAML.
        only: ``--only`` tokens (method names, bit lengths, ``seed=<k>``).
        shard: ``(i, n)`` or ``"i/n"``.
        dry_run: list the cells and what would happen to each; run nothing, write nothing.
        data_root: replaces the data config's ``root``.
        runs_dir: where deep cells' logs and checkpoints go.
        progress: progress bars (cells, and Lightning's per-epoch bar).
        leaderboard: regenerate ``<results>/leaderboard.md`` / ``.csv`` after the sweep.
        figures: also the figures under ``<results>/figures``.
        keep_checkpoints: keep deep cells' checkpoint files.
        retry_failed: run cells recorded as failed again.
        echo: where messages go.

    Raises:
        BenchConfigError: a bad benchmark or cell configuration (nothing was run).
        DataMissingError: the dataset is not on disk (nothing was run).
    """
    if isinstance(shard, str):
        shard = parse_shard(shard)
    cfg = load_bench_config(config, profile, data_root)
    for note in cfg.skipped:
        echo(f"note: skipping {note}")
    sweep = Sweep(
        cfg,
        results,
        runs_dir,
        only,
        shard,
        progress and not dry_run,
        keep_checkpoints,
        retry_failed,
    )
    if dry_run:
        sweep.check_configs()
        planned = sweep.plan(load_data=False)
        echo(f"{cfg.path}: {len(planned)} cells (profile {cfg.profile.name}, results {results})")
        for p in planned:
            note = "" if p.error is None else f"  INVALID CONFIG: {p.error}"
            echo(f"  {p.action:<6} {p.cell.id:<32} {p.cell.kind:<8} config {p.hash}{note}")
        counts = {a: sum(p.action == a for p in planned) for a in ("run", "rerun", "retry", "skip")}
        echo("  " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        return SweepReport(planned)
    planned = sweep.plan()
    counts = {a: sum(p.action == a for p in planned) for a in ("run", "rerun", "retry", "skip")}
    echo(
        f"{cfg.name}: {len(planned)} cells, "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
        + f" (profile {cfg.profile.name})"
    )
    try:
        report = sweep.run(planned)
    except (KeyboardInterrupt, SystemExit):
        echo("\ninterrupted: finished cells are recorded; run the same command again to resume")
        raise
    if leaderboard:
        from hashbench.bench.leaderboard import write_leaderboard

        report.leaderboard = write_leaderboard(results, figures=figures)["markdown"]
        echo(f"leaderboard: {report.leaderboard}")
    if report.failed:
        echo(
            f"{len(report.failed)} cell(s) failed (recorded with their error; a rerun retries "
            f"them): {', '.join(report.failed)}"
        )
    return report
