"""``hashbench tune``: choose a method's arguments on held-out validation, never on the test set.

::

    hashbench tune --config configs/methods/drsch.yaml --data configs/data/fashion_mnist.yaml \\
        --grid margin=8,16,32 --bits 32 --seeds 0 --max_epochs 10 \\
        --out configs/tuned/fashion-mnist/drsch.yaml --report docs/tune/fashion-mnist/drsch

Each candidate (a point of the grid, or a row of ``--mode list``) is trained once per seed through
:mod:`hashbench.training` with the given trainer config (early stopping on ``val/mAP`` when it has
one) and scored by its best ``val/mAP`` - the held-out ``val_query`` against ``val_database``. No
``query`` item is ever encoded: the test pass is not run. Candidates are ranked by the mean over
seeds of that figure; the report folder gets ``tune.md`` / ``tune.csv`` (the ranking) and
``records/<hash>.json`` (one per candidate and seed: resuming skips those already there with the
same configuration), and ``--out`` gets the method config with the winning values.

A grid name is a method argument (``margin`` = ``model.init_args.margin``, ``optim.lr`` =
``model.init_args.optim.lr``) unless it starts with a config section (``trainer.max_epochs``,
``data.init_args.batch_size``), then it is used as given. Values are YAML:
``--grid 'pair_reduction=[sum, mean]'`` or ``--grid margin=8,16,32``.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hashbench.bench import records as rec
from hashbench.files import write_text_atomic

#: Top-level keys of a training config: a grid name starting with one is used as given.
CONFIG_SECTIONS = ("model", "data", "trainer", "seed_everything")


class TuneError(ValueError):
    """A bad tuning request (unknown argument, empty grid, unreadable config); says which and why."""


@dataclass(frozen=True)
class Candidate:
    """One point of the search: dotted keys -> values."""

    values: tuple[tuple[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)

    def label(self) -> str:
        return ", ".join(f"{k.removeprefix('model.init_args.')}={v!r}" for k, v in self.values)


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["margin=8,16", "optim.lr=[0.1, 0.01]"]`` -> ``{"model.init_args.margin": [8, 16], ...}``.

    Raises:
        TuneError: an item is not ``name=values`` or gives no value.
    """
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise TuneError(f"--grid {item!r}: expected name=value1,value2,...")
        text = text.strip()
        if text.startswith("["):
            values = yaml.safe_load(text)
        else:
            values = [yaml.safe_load(v) for v in text.split(",") if v.strip()]
        if not isinstance(values, list) or not values:
            raise TuneError(f"--grid {item!r}: no values")
        top = name.split(".")[0]
        key = name if top in CONFIG_SECTIONS else f"model.init_args.{name}"
        grid[key] = values
    return grid


def candidates(grid: dict[str, list[Any]], mode: str = "grid") -> list[Candidate]:
    """Every combination (``grid``) or the rows of equally long lists (``list``).

    Raises:
        TuneError: the grid is empty, or ``list`` mode lists of different lengths.
    """
    if not grid:
        raise TuneError("empty grid: give at least one --grid name=value1,value2")
    keys = list(grid)
    if mode == "list":
        lengths = {len(v) for v in grid.values()}
        if len(lengths) != 1:
            raise TuneError(f"--mode list needs lists of one length, got {sorted(lengths)}")
        rows = list(zip(*grid.values(), strict=True))
    else:
        rows = list(itertools.product(*grid.values()))
    return [Candidate(tuple(zip(keys, row, strict=True))) for row in rows]


def method_arguments(method_config: Path) -> tuple[str, list[str]]:
    """The class path of a method config and its constructor's argument names."""
    import importlib

    raw = yaml.safe_load(method_config.read_text(encoding="utf-8")) or {}
    class_path = (raw.get("model") or {}).get("class_path")
    if not class_path:
        raise TuneError(f"{method_config}: no model.class_path (is it a configs/methods/*.yaml?)")
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise TuneError(f"{method_config}: cannot import {class_path} ({e})") from None
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    return class_path, names


def check_grid(grid: dict[str, list[Any]], method_config: Path) -> None:
    """Every ``model.init_args.<name>`` of the grid is an argument of the method.

    Raises:
        TuneError: naming the unknown argument and listing the method's arguments.
    """
    class_path, names = method_arguments(method_config)
    for key in grid:
        if key.startswith("model.init_args."):
            top = key.removeprefix("model.init_args.").split(".")[0]
            if top not in names:
                raise TuneError(
                    f"{class_path} has no argument {top!r}; its arguments: {', '.join(names)}"
                )


# -- running ----------------------------------------------------------------------------------------
@dataclass
class TuneRequest:
    """What to tune: the config files, the grid, the training rule and where results go."""

    method_config: Path
    data_config: Path
    trainer_config: Path | None
    grid: dict[str, list[Any]]
    bits: int
    seeds: tuple[int, ...]
    fixed: dict[str, Any]
    report: Path
    out: Path | None
    mode: str = "grid"
    runs_dir: Path = Path("runs/tune")
    progress: bool = True


def _overrides(req: TuneRequest, cand: Candidate, seed: int, root: Path) -> dict[str, Any]:
    return {
        **req.fixed,
        **cand.as_dict(),
        "model.init_args.bits": req.bits,
        "seed_everything": seed,
        "trainer.default_root_dir": str(root),
        "trainer.enable_progress_bar": False,
        "trainer.enable_model_summary": False,
    }


def run_candidate(req: TuneRequest, cand: Candidate, seed: int, config: dict, digest: str) -> dict:
    """Train one candidate with one seed; its ``val/*`` history and best epoch (no test pass)."""
    from hashbench.bench.executors import training_summary
    from hashbench.training import build, validation_history

    history = validation_history()
    run = build(config, callbacks=[history])
    t0 = time.perf_counter()
    run.trainer.fit(run.model, datamodule=run.datamodule)
    summary = training_summary(run.trainer, history)
    for ckpt in Path(config["trainer"]["default_root_dir"]).rglob("*.ckpt"):
        ckpt.unlink()
    best = summary["best_val"] or {}
    return {
        "record_version": rec.RECORD_VERSION,
        "kind": "tune",
        "status": "ok",
        "candidate": cand.as_dict(),
        "seed": seed,
        "bits": req.bits,
        "config_hash": digest,
        "config": config,
        "val_mAP": best.get("val/mAP"),
        "training": summary,
        "train_s": time.perf_counter() - t0,
        "data_key": run.datamodule.key,
        "git_commit": rec.git_commit()["commit"],
        "finished_at": rec.utc_now(),
    }


def tune(req: TuneRequest, echo=print) -> list[dict]:
    """Train every candidate x seed not yet recorded; write the ranking and the chosen config.

    Returns the ranking rows (best first).
    """
    from tqdm.auto import tqdm

    from hashbench.bench.cells import hashable_config
    from hashbench.training import resolve_config

    check_grid(req.grid, req.method_config)
    cands = candidates(req.grid, req.mode)
    files = [req.method_config, req.data_config]
    if req.trainer_config is not None:
        files.append(req.trainer_config)
    records_dir = req.report / "records"
    jobs = []
    for cand in cands:
        for seed in req.seeds:
            root = req.runs_dir / req.report.name / f"{len(jobs):03d}"
            config = resolve_config(files, _overrides(req, cand, seed, root))
            digest = rec.config_hash(hashable_config(config))
            jobs.append((cand, seed, config, digest, records_dir / f"{digest}.json"))
    todo = [j for j in jobs if (rec.read_record(j[4]) or {}).get("status") != "ok"]
    echo(
        f"tune {req.method_config.name}: {len(cands)} candidates x {len(req.seeds)} seeds, "
        f"{len(jobs) - len(todo)} recorded, {len(todo)} to train"
    )
    for cand, seed, config, digest, path in tqdm(
        todo, desc="tune", unit="run", disable=not req.progress
    ):
        rec.write_record(path, run_candidate(req, cand, seed, config, digest))
    results = [rec.read_record(j[4]) for j in jobs]
    rows = rank(cands, results)
    commits = sorted({str(r.get("git_commit"))[:10] for r in results if r})
    write_report(req, rows, commits)
    if req.out is not None:
        write_chosen_config(req, rows[0])
    return rows


def rank(cands: list[Candidate], results: list[dict]) -> list[dict]:
    """Per candidate: mean and std of the best ``val/mAP`` over seeds, best epochs; best first."""
    rows = []
    for cand in cands:
        mine = [r for r in results if r and r.get("candidate") == cand.as_dict()]
        scores = [r["val_mAP"] for r in mine if r.get("val_mAP") is not None]
        rows.append(
            {
                "candidate": cand,
                "mean": statistics.fmean(scores) if scores else float("nan"),
                "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                "seeds": len(scores),
                "best_epochs": [r["training"]["best_epoch"] for r in mine],
                "epochs_run": [r["training"]["epochs_run"] for r in mine],
                "train_s": sum(r["train_s"] for r in mine),
            }
        )
    return sorted(rows, key=lambda r: -r["mean"] if r["seeds"] else float("inf"))


def write_report(req: TuneRequest, rows: list[dict], commits: Sequence[str] = ()) -> None:
    """``<report>/tune.md`` and ``tune.csv``: the ranking by held-out ``val/mAP``."""
    keys = list(req.grid)
    short = [k.removeprefix("model.init_args.") for k in keys]
    head = ["rank", *short, "val/mAP (mean)", "std", "seeds", "best epoch", "epochs run", "train s"]
    # epochs are shown counted from 1 (records keep Lightning's 0-based index)
    table = []
    for i, row in enumerate(rows, 1):
        values = row["candidate"].as_dict()
        table.append(
            [
                str(i),
                *(
                    yaml.safe_dump(values[k], default_flow_style=True)
                    .strip()
                    .removesuffix("...")
                    .strip()
                    for k in keys
                ),
                f"{row['mean']:.4f}",
                f"{row['std']:.4f}",
                str(row["seeds"]),
                "/".join(str(e + 1) for e in row["best_epochs"] if e is not None),
                "/".join(map(str, row["epochs_run"])),
                f"{row['train_s']:.0f}",
            ]
        )
    files = [req.method_config, req.data_config, req.trainer_config]
    lines = [
        f"# hashbench tune: {req.method_config.stem}",
        "",
        "Ranked by the best held-out `val/mAP` (`val_query` against `val_database`) of each run, "
        "averaged over seeds; no `query` item was encoded. Generated by `hashbench tune` from the "
        "records in `records/`.",
        "",
        f"- configs: {', '.join(f'`{p}`' for p in files if p is not None)}",
        f"- bits: {req.bits}; seeds: {', '.join(map(str, req.seeds))}; fixed: "
        + (", ".join(f"`{k}={v}`" for k, v in req.fixed.items()) or "none"),
        f"- trained at commit(s): {', '.join(commits) or 'unknown'}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(" --- " for _ in head) + "|",
        *("| " + " | ".join(r) + " |" for r in table),
        "",
    ]
    write_text_atomic(req.report / "tune.md", "\n".join(lines))
    csv_lines = [",".join(head)] + [",".join(f'"{c}"' if "," in c else c for c in r) for r in table]
    write_text_atomic(req.report / "tune.csv", "\n".join(csv_lines) + "\n")


def write_chosen_config(req: TuneRequest, best: dict) -> None:
    """The method config with the winning values, for ``hashbench fit --config``."""
    raw = yaml.safe_load(req.method_config.read_text(encoding="utf-8")) or {}
    for key, value in best["candidate"].as_dict().items():
        *parents, last = key.split(".")
        node = raw
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    header = (
        f"# Chosen by `hashbench tune` on held-out val/mAP ({best['mean']:.4f}, "
        f"{best['seeds']} seed(s)) from {req.method_config}; ranking: {req.report / 'tune.md'}\n"
    )
    write_text_atomic(req.out, header + yaml.safe_dump(raw, sort_keys=False))


# -- command line -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hashbench tune",
        description="Train each candidate of a grid of a method's arguments and rank them by the "
        "held-out val/mAP (never a query metric); write the ranking and the chosen config.",
    )
    p.add_argument("--config", required=True, help="method config, e.g. configs/methods/dsh.yaml")
    p.add_argument(
        "--data", required=True, help="data config, e.g. configs/data/fashion_mnist.yaml"
    )
    p.add_argument(
        "--trainer",
        default="configs/trainer/default.yaml",
        help="trainer config (default: early stopping on val/mAP); 'none' for the CLI defaults",
    )
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2", help="repeatable")
    p.add_argument("--mode", choices=("grid", "list"), default="grid")
    p.add_argument("--bits", type=int, default=32)
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--max_epochs", type=int, default=None, help="the budget per run (a cap)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="fixed overrides"
    )
    p.add_argument("--report", required=True, help="folder for tune.md, tune.csv and records/")
    p.add_argument("--out", default=None, help="where the chosen config goes (YAML)")
    p.add_argument("--runs_dir", default="runs/tune")
    p.add_argument("--progress", default="true", choices=("true", "false"))
    return p


def tune_main(argv: list[str]) -> int:
    """``hashbench tune``: exit 0 on success, 2 on a bad request."""
    from hashbench.training import TrainingConfigError

    args = build_parser().parse_args(argv)
    try:
        fixed = {}
        for item in args.set:
            key, sep, text = item.partition("=")
            if not sep:
                raise TuneError(f"--set {item!r}: expected key=value")
            fixed[key.strip()] = yaml.safe_load(text)
        if args.max_epochs is not None:
            fixed["trainer.max_epochs"] = args.max_epochs
        for path in (args.config, args.data):
            if not Path(path).is_file():
                raise TuneError(f"config file {path} not found")
        req = TuneRequest(
            method_config=Path(args.config),
            data_config=Path(args.data),
            trainer_config=None if args.trainer == "none" else Path(args.trainer),
            grid=parse_grid(args.grid),
            bits=args.bits,
            seeds=tuple(int(s) for s in str(args.seeds).split(",") if s.strip()),
            fixed=fixed,
            report=Path(args.report),
            out=Path(args.out) if args.out else None,
            mode=args.mode,
            runs_dir=Path(args.runs_dir),
            progress=args.progress == "true",
        )
        rows = tune(req)
    except (TuneError, TrainingConfigError) as e:
        print(f"hashbench tune: {e}", file=sys.stderr)
        return 2
    best = rows[0]
    print(
        f"best: {best['candidate'].label()} (val/mAP {best['mean']:.4f}); table: {req.report}/tune.md"
    )
    if req.out is not None:
        print(f"chosen config: {req.out}")
    return 0
