"""Is the default profile's epoch cap enough? Compare two profiles' records of the same cells.

The ``budget`` profile of ``benchmarks/fashion-mnist.yaml`` trains every deep method at 32 bits
seeds 0 and 1 and at 16 and 64 bits seed 0, with twice the default cap and twice the patience
(``configs/trainer/budget.yaml``);
the default profile's records of the same (method, bits, seed) cells are the other side. Per method
the table gives, as mean over the paired seeds:

- the best held-out ``val/mAP`` (the figure the checkpoint was chosen on) of each side, and the
  difference, long minus short;
- epochs run / best epoch of each side, and how many runs the early-stopping rule ended;
- the test figure of each side and the difference with its 95% bootstrap interval over queries and
  seeds (:func:`hashbench.bench.verdicts.bootstrap_interval`, the leaderboard's claims rule; the
  two sides' seeds are separate runs, so they are resampled independently, not paired).

Only current records are paired: a record whose configuration no longer matches what its profile
asks for (the bench calls it stale: the method's code or config changed since) is left out and
listed, so a half-recomputed profile never pairs old runs with new ones (``--all_records`` keeps
them).

Test figures are reported, never used to choose anything.

    .venv/bin/python scripts/budget_table.py                  # default vs budget, mAP@all
    .venv/bin/python scripts/budget_table.py --metric P@500 --long results/budget --long_profile budget
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from hashbench.bench.leaderboard import record_profile
from hashbench.bench.records import load_records
from hashbench.bench.tables import reached_cap
from hashbench.bench.verdicts import bootstrap_interval, difference


def _deep(records: list[dict], benchmark: str, profile: str) -> dict[tuple[str, int, int], dict]:
    """(method, bits, seed) -> the ok deep record of that profile."""
    return {
        (r["method"], int(r["bits"]), int(r["seed"])): r
        for r in records
        if r.get("status") == "ok"
        and r.get("training")
        and r.get("dataset") == benchmark
        and record_profile(r) == profile
    }


def current_cells(bench: str, profile: str, results: str) -> set[tuple[str, int, int]]:
    """The profile's deep cells whose record is current: the sweep's own plan would skip them."""
    from hashbench.bench.config import load_bench_config
    from hashbench.bench.sweep import Sweep

    sweep = Sweep(load_bench_config(bench, profile), results, progress=False)
    return {
        (p.cell.method, int(p.cell.bits), int(p.cell.seed))
        for p in sweep.plan(load_data=False)
        if p.cell.kind == "deep" and p.action == "skip"
    }


def drop_stale(
    records: dict[tuple[str, int, int], dict], current: set[tuple[str, int, int]]
) -> tuple[dict[tuple[str, int, int], dict], list[tuple[str, int, int]]]:
    """The records of ``current`` cells, and the others' keys (stale, or no longer in the
    profile's grid)."""
    keep = {k: r for k, r in records.items() if k in current}
    return keep, sorted(k for k in records if k not in keep)


def _best_val(record: dict) -> float:
    return max(float(v) for v in record["training"]["best_val"].values())


def rows(short: dict, long: dict, metric: str, n_resamples: int = 1000) -> list[list[str]]:
    """One row per method with cells on both sides (see the module docstring)."""
    out = []
    for method in sorted({k[0] for k in long}):
        keys = sorted(k for k in long if k[0] == method and k in short)
        if not keys:
            continue
        s = [short[k] for k in keys]
        lg = [long[k] for k in keys]
        runs = {
            "short": np.stack([np.asarray(r["per_query"][metric], dtype=np.float64) for r in s]),
            "long": np.stack([np.asarray(r["per_query"][metric], dtype=np.float64) for r in lg]),
        }
        low, high = bootstrap_interval(runs, ["long"], ["short"], n_resamples)
        vs, vl = statistics.mean(map(_best_val, s)), statistics.mean(map(_best_val, lg))
        caps = sorted({int(r["training"]["max_epochs"]) for r in s + lg})

        def epochs(group: list[dict]) -> str:
            run = "/".join(str(r["training"]["epochs_run"]) for r in group)
            best = "/".join(str(int(r["training"]["best_epoch"]) + 1) for r in group)
            stopped = sum(not reached_cap(r["training"]) for r in group)
            return f"{run} ({best}){' ' + str(stopped) + ' stopped' if stopped else ''}"

        out.append(
            [
                method,
                ", ".join(f"{b} bits s{sd}" for _, b, sd in keys),
                "/".join(str(c) for c in caps),
                f"{vs:.4f}",
                f"{vl:.4f}",
                f"{vl - vs:+.4f}",
                epochs(s),
                epochs(lg),
                f"{float(np.mean(runs['short'])):.4f}",
                f"{float(np.mean(runs['long'])):.4f}",
                f"{difference(runs, ['long'], ['short']):+.4f} [{low:+.4f}, {high:+.4f}]",
            ]
        )
    return out


HEADER = [
    "method",
    "cells",
    "caps",
    "val short",
    "val long",
    "val long - short",
    "epochs run (best) short",
    "epochs run (best) long",
    "test short",
    "test long",
    "test long - short [95% CI]",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", default="results", help="results folder of the default records")
    parser.add_argument("--short_profile", default="default")
    parser.add_argument("--long", default="results/budget", help="results folder of the long runs")
    parser.add_argument("--long_profile", default="budget")
    parser.add_argument("--benchmark", default="fashion-mnist")
    parser.add_argument("--metric", default="mAP@all", help="a per-query key of the records")
    parser.add_argument("--bench", default="benchmarks/fashion-mnist.yaml", help="the grid")
    parser.add_argument(
        "--all_records", action="store_true", help="pair stale records too (no freshness check)"
    )
    args = parser.parse_args(argv)
    for folder in (args.short, args.long):
        if not (Path(folder) / "raw").is_dir():
            parser.error(f"{folder}/raw: no records there (run the profile's bench first)")
    short = _deep(load_records(args.short), args.benchmark, args.short_profile)
    long = _deep(load_records(args.long), args.benchmark, args.long_profile)
    if not args.all_records:
        for name, side, folder, profile in (
            ("short", short, args.short, args.short_profile),
            ("long", long, args.long, args.long_profile),
        ):
            fresh, stale = drop_stale(side, current_cells(args.bench, profile, folder))
            side.clear()
            side.update(fresh)
            if stale:
                cells = ", ".join(f"{m} {b} bits s{sd}" for m, b, sd in stale)
                print(f"left out ({name}, {profile}: stale or not in the grid): {cells}")
    table = rows(short, long, args.metric)
    if not table:
        parser.error(
            f"no cell has records in both {args.short} ({args.short_profile}) and "
            f"{args.long} ({args.long_profile})"
        )
    print(
        f"Test metric: {args.metric}. Epochs counted from 1; best = the chosen checkpoint's epoch."
    )
    print()
    print("| " + " | ".join(HEADER) + " |")
    print("|" + " --- |" * len(HEADER))
    for row in table:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
