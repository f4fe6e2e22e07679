"""Print a Markdown table of mean +- std over seeds from the bench records (for method docs).

One row per method, one column per (metric, code length); each entry is the mean and the sample
standard deviation over the seeds recorded there, with the seed count. Metric names are the
records' ``metrics`` keys (``mAP@all``, ``mAP@H<=2``, ``P@H<=2``, ``R@H<=2``, ``P@500``, ...).

    .venv/bin/python scripts/record_table.py --methods knngan knngan_nogan dsh \\
        --metrics mAP@all P@H<=2 --bits 16 32 64 [--results results] [--benchmark fashion-mnist]
"""

from __future__ import annotations

import argparse
import statistics


def table(records: list[dict], methods: list[str], metrics: list[str], bits: list[int]) -> str:
    """The Markdown table (``-`` where a method has no record at a length)."""
    header = ["method", *(f"{m} {b}" for m in metrics for b in bits)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for method in methods:
        row = [method]
        for metric in metrics:
            for b in bits:
                vals = [
                    float(r["metrics"][metric])
                    for r in records
                    if r["method"] == method
                    and int(r["bits"]) == b
                    and metric in (r.get("metrics") or {})
                ]
                if not vals:
                    row.append("-")
                elif len(vals) == 1:
                    row.append(f"{vals[0]:.3f} (1)")
                else:
                    row.append(
                        f"{statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f} ({len(vals)})"
                    )
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from hashbench.bench.records import load_records

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default="results")
    p.add_argument("--benchmark", default="fashion-mnist")
    p.add_argument("--profile", default="default")
    p.add_argument("--methods", nargs="+", required=True)
    p.add_argument("--metrics", nargs="+", default=["mAP@all"])
    p.add_argument("--bits", nargs="+", type=int, default=[16, 32, 64])
    args = p.parse_args(argv)
    records = [
        r
        for r in load_records(args.results)
        if r.get("status") == "ok"
        and r.get("benchmark") == args.benchmark
        and (r.get("bench") or {}).get("profile", "default") == args.profile
    ]
    if not records:
        p.error(f"no ok records of {args.benchmark} ({args.profile}) under {args.results}/raw")
    print(table(records, args.methods, args.metrics, args.bits))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
