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
    patch_cell,
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
    action: str  # run (missing) | skip (recorded) | stale | retry (failed) | rerun (--rerun)
    training_config: dict | None = None  # a deep cell's full resolved config (what is built)
    error: str | None = None  # the configuration does not resolve: the cell is recorded as failed
    estimate_s: float | None = None  # expected wall time, from the records of the same method
    reason: str = ""  # why a cell is stale


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
        rerun: recompute the selected cells even when their record is current.
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
        rerun: bool = False,
    ) -> None:
        self.cfg = cfg
        self.rerun = rerun
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
    def plan(self, load_data: bool = True, progress: bool | None = None) -> list[PlannedCell]:
        """Resolve every selected cell's config and hash; decide run / skip / rerun / retry."""
        self.check_configs()
        self.datamodule(load=load_data)
        planned = []
        from tqdm.auto import tqdm

        show = self.progress if progress is None else progress
        templates: dict[str, dict] = {}
        for cell in tqdm(
            self.cells,
            desc="plan: configurations and records",
            unit="cell",
            disable=not show,
            leave=False,
            dynamic_ncols=True,
        ):
            path = rec.record_path(
                self.results,
                self.cfg.name,
                cell.method,
                cell.bits,
                cell.seed,
                self.cfg.profile.name,
            )
            training, error = None, None
            if cell.kind == "deep":
                root = run_dir(self.runs_dir, self.cfg, cell)
                try:
                    if cell.method in templates:  # same method: only bits, seed, folder differ
                        training = patch_cell(templates[cell.method], cell, root)
                    else:
                        training = resolve_deep(self.cfg, cell, root, self.progress)
                        templates[cell.method] = training
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
            reason = ""
            if old is None:
                action = "run"
            elif self.rerun:
                action = "rerun"
            elif old.get("status") == "ok":
                action = "skip" if old.get("config_hash") == digest else "stale"
                if action == "stale":
                    reason = stale_reason(old.get("config"), config)
            else:
                action = "retry" if self.retry_failed else "skip"
            planned.append(
                PlannedCell(cell, config, digest, path, action, training, error, reason=reason)
            )
        records = rec.load_records(self.results)
        if self.results.resolve() != Path(DEFAULT_RESULTS).resolve():  # e.g. the quick profile
            records += rec.load_records(DEFAULT_RESULTS)  # the committed records: per-epoch times
        estimate_times(planned, records)
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


def stale_reason(old: dict | None, new: dict) -> str:
    """Why a recorded cell's configuration differs from the grid's: the method's code (naming the
    changed modules) or the configuration (naming the first differing keys)."""
    from hashbench.bench.fingerprint import changed_modules

    old = old or {}
    if {k: v for k, v in old.items() if k != "code"} == {
        k: v for k, v in new.items() if k != "code"
    }:
        changed = changed_modules(old.get("code"), new.get("code") or {})
        return "code changed: " + (", ".join(changed) if changed else "fingerprint")
    keys = sorted(_diff_keys(old, new))
    shown = ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")
    return f"config changed: {shown}"


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k == "code" and not prefix:
                continue
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".") or "(root)"]


#: The results folder of the committed records (also read for estimates by other profiles).
DEFAULT_RESULTS = "results"
#: Seconds a cell is assumed to take when no record of its method exists (2 CPU cores, converged
#: default profile): deep methods by early stopping, baselines by their fit.
FALLBACK_ESTIMATE_S = {"deep": 300.0, "baseline": 20.0}


def estimate_times(planned: list[PlannedCell], records: list[dict]) -> None:
    """Set each planned cell's ``estimate_s``.

    In order: the mean wall time of the ok records of the same method and profile (any code
    length and seed); else, for a deep cell, the same method's records of another profile scaled
    to this cell's epoch cap (``total - train + train / epochs_run * max_epochs``: a ``quick``
    profile estimated from the committed ``default`` records); else the mean of its kind in this
    profile, else :data:`FALLBACK_ESTIMATE_S`.
    """
    by_method: dict[tuple[str, str], list[float]] = {}
    per_epoch: dict[str, list[tuple[float, float]]] = {}  # method -> (total - train, train/epoch)
    by_kind: dict[tuple[str, str], list[float]] = {}
    for r in records:
        times = r.get("times") or {}
        t = times.get("total_s")
        if r.get("status") != "ok" or not isinstance(t, int | float):
            continue
        method, profile = str(r.get("method")), (r.get("bench") or {}).get("profile", "default")
        by_method.setdefault((method, profile), []).append(float(t))
        by_kind.setdefault((str(r.get("kind")), profile), []).append(float(t))
        train, epochs = times.get("train_s"), (r.get("training") or {}).get("epochs_run")
        if isinstance(train, int | float) and isinstance(epochs, int) and epochs > 0:
            per_epoch.setdefault(method, []).append((float(t) - train, train / epochs))
    for p in planned:
        profile = p.path.parent.parent.name
        cap = ((p.training_config or {}).get("trainer") or {}).get("max_epochs")
        same = by_method.get((p.cell.method, profile))
        if not same and p.cell.kind == "deep" and isinstance(cap, int) and cap > 0:
            same = [rest + cap * each for rest, each in per_epoch.get(p.cell.method, [])]
        same = same or by_kind.get((p.cell.kind, profile))
        p.estimate_s = (
            sum(same) / len(same) if same else FALLBACK_ESTIMATE_S.get(p.cell.kind, 300.0)
        )


def format_duration(seconds: float) -> str:
    """``2 h 05 min`` / ``14 min`` / ``40 s``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def plan_summary(cfg: BenchConfig, planned: list[PlannedCell], results: Path) -> list[str]:
    """What a sweep is about to do, for the first lines of its output: how many cells are
    recorded, missing, stale, failed (and why stale), and the estimated time of the rest."""
    counts = {a: sum(p.action == a for p in planned) for a in ACTIONS}
    todo = [p for p in planned if p.action != "skip"]
    eta = sum(p.estimate_s or 0.0 for p in todo)
    lines = [
        f"{cfg.name} ({cfg.profile.name} profile, records in {results / 'raw'}): "
        f"{len(planned)} cells - {counts['skip']} recorded, {counts['run']} missing, "
        f"{counts['stale']} stale, {counts['retry']} failed before"
        + (f", {counts['rerun']} to recompute (--rerun)" if counts["rerun"] else "")
    ]
    reasons: dict[str, list[str]] = {}
    for p in planned:
        if p.action == "stale":
            reasons.setdefault(p.reason, []).append(p.cell.method)
    for reason, methods in sorted(reasons.items()):
        names = sorted(set(methods))
        lines.append(
            f"  stale ({len(methods)} cells of {', '.join(names[:6])}"
            + (" ..." if len(names) > 6 else "")
            + f"): {reason}"
        )
    if todo:
        lines.append(
            f"  to compute: {len(todo)} cells, estimated {format_duration(eta)} "
            "(from the recorded wall times of the same methods on the machine that made them, "
            "scaled to this profile's epoch cap where only another profile recorded them)"
        )
    else:
        lines.append("  nothing to compute: every cell is recorded with the current configuration")
    return lines


#: What the plan may do with a cell.
ACTIONS = ("run", "skip", "stale", "retry", "rerun")


def _summary_line(record: dict) -> str:
    t = record.get("times", {}).get("total_s", 0.0)
    if record["status"] != "ok":
        return f"  {record['cell']}: FAILED after {t:.1f} s: {record['error']}"
    metrics = record.get("metrics", {})
    key = map_key(metrics)
    value = f"{key} {metrics[key]:.4f}" if key else "no mAP"
    return f"  {record['cell']}: {value} ({t:.1f} s)"


# -- entry points -----------------------------------------------------------------------------------
def results_folder(cfg: BenchConfig, results: str | os.PathLike | None = None) -> Path:
    """Where a sweep's records go: ``results`` when given, else the profile's own folder
    (``profiles.<name>.results``), else :data:`DEFAULT_RESULTS`."""
    return Path(results if results is not None else cfg.profile.results or DEFAULT_RESULTS)


def run_benchmark(
    config: str | os.PathLike,
    results: str | os.PathLike | None = None,
    profile: str = "default",
    only: Sequence[str] | None = None,
    shard: tuple[int, int] | str | None = None,
    dry_run: bool = False,
    rerun: bool = False,
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
        results: results folder (``None``: the profile's ``results``, else ``results``).
        profile: training profile of the YAML.
        only: ``--only`` tokens (method names, bit lengths, ``seed=<k>``).
        shard: ``(i, n)`` or ``"i/n"``.
        dry_run: list the cells and what would happen to each; run nothing, write nothing.
        rerun: recompute the selected cells even when recorded and current.
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
    results = results_folder(cfg, results)
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
        rerun,
    )
    if dry_run:
        sweep.check_configs()
        planned = sweep.plan(load_data=False, progress=progress)
        for p in planned:
            note = "" if p.error is None else f"  INVALID CONFIG: {p.error}"
            note += f"  ({p.reason})" if p.reason else ""
            echo(f"  {p.action:<6} {p.cell.id:<32} {p.cell.kind:<8} config {p.hash}{note}")
        for line in plan_summary(cfg, planned, results):
            echo(line)
        return SweepReport(planned)
    echo(
        f"{cfg.name}: {len(sweep.cells)} cells; checking their configurations against the "
        f"records under {results / 'raw'} ..."
    )
    planned = sweep.plan()
    for line in plan_summary(cfg, planned, results):
        echo(line)
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
