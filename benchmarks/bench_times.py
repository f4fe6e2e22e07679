"""Run time of a sweep, per method, from its records (``results/raw/<benchmark>/``).

    .venv/bin/python benchmarks/bench_times.py [--results results] [--benchmark fashion-mnist]

Prints a Markdown table (cells, epochs, median train / test / cell seconds, summed cell time per
method), the summed time by kind and the span from the first cell's start to the last one's end.
Nothing is timed here: every figure is read from the records' ``times`` and timestamps.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from datetime import datetime

from hashbench.bench.leaderboard import compute_summary
from hashbench.bench.records import UTC_FORMAT, load_records


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}" if values else "-"


def _stamp(text: str) -> datetime:
    return datetime.strptime(text, UTC_FORMAT)


def run_time_table(records: list[dict]) -> list[str]:
    """Markdown lines: one row per method (baselines first), then the totals."""
    by_method: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_method[r["method"]].append(r)
    order = sorted(by_method, key=lambda m: (by_method[m][0].get("kind") != "baseline", m))
    lines = [
        "| method | kind | cells | epochs | train s (median) | test s (median) "
        "| cell s (median) | cells' sum |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in order:
        rs = by_method[m]
        times = [r.get("times") or {} for r in rs]
        total = sum(float(t.get("total_s") or 0.0) for t in times)
        kind = str(rs[0].get("kind", "?"))
        epochs = sorted({str(t["epochs"]) for t in times if t.get("epochs") is not None}) or ["-"]
        lines.append(
            f"| `{m}` | {kind} | {len(rs)} | {'/'.join(epochs)} "
            f"| {_median([t['train_s'] for t in times if t.get('train_s') is not None])} "
            f"| {_median([t['test_s'] for t in times if t.get('test_s') is not None])} "
            f"| {_median([t['total_s'] for t in times if t.get('total_s') is not None])} "
            f"| {total / 60:.1f} min |"
        )
    lines.append("")
    lines.append(f"Cells' summed wall time: {compute_summary(records)}.")
    starts = [_stamp(r["started_at"]) for r in records if r.get("started_at")]
    ends = [_stamp(r["finished_at"]) for r in records if r.get("finished_at")]
    if starts and ends:
        span = (max(ends) - min(starts)).total_seconds()
        lines.append(
            f"First cell started {min(starts):%Y-%m-%d %H:%M:%S} UTC, last finished "
            f"{max(ends):%H:%M:%S} UTC: {span / 60:.1f} min."
        )
    failed = [r["cell"] for r in records if r.get("status") != "ok"]
    lines.append(
        f"Cells: {len(records)}, failed: {len(failed)}{' (' + ', '.join(failed) + ')' if failed else ''}."
    )
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results", help="results folder (records in raw/)")
    ap.add_argument("--benchmark", default=None, help="only this benchmark's records")
    ap.add_argument("--profile", default="default", help="only this profile's records")
    args = ap.parse_args(argv)
    records = [
        r
        for r in load_records(args.results)
        if (args.benchmark is None or r.get("benchmark") == args.benchmark)
        and (r.get("bench") or {}).get("profile", "default") == args.profile
    ]
    if not records:
        raise SystemExit(f"no records under {args.results}/raw/ - run `make bench` first")
    print("\n".join(run_time_table(records)))


if __name__ == "__main__":
    main()
