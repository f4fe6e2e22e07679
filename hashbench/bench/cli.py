"""``hashbench bench``: run a benchmark sweep, list it, or regenerate the leaderboard.

::

    hashbench bench --config benchmarks/fashion-mnist.yaml            # the whole grid, resumable
    hashbench bench --config benchmarks/fashion-mnist.yaml --dry_run true
    hashbench bench --config benchmarks/cifar10.yaml --only dsh,itq --only 32 --shard 2/4
    hashbench bench --config benchmarks/fashion-mnist.yaml --profile paper --results results/paper
    hashbench bench --leaderboard_only true --results results        # tables + figures from records

Exit status (:data:`EXIT_OK` ...): 0 when every cell that ran succeeded, 1 when a cell failed (its
record says why; the sweep went on and the leaderboard was written), 2 for a bad configuration or
missing data (nothing was run or written), 130 when interrupted (Ctrl+C; the finished cells are
recorded and the same command resumes).

Only the standard library is imported until a sweep starts, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Exit codes of ``hashbench`` (all subcommands; ``docs/bench.md`` and README.md list them).
EXIT_OK = 0
EXIT_CELL_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a process stopped by Ctrl+C

DESCRIPTION = (
    "Run every (method, bits, seed) cell of a benchmark grid (benchmarks/<dataset>.yaml), one JSON "
    "record per cell under <results>/raw/, then write <results>/leaderboard.md, leaderboard.csv "
    "and figures/. Cells already recorded with the same configuration are skipped (resume)."
)


@contextmanager
def watch_interrupts() -> Iterator[list[bool]]:
    """Note a Ctrl+C (SIGINT) in the yielded list, even when a library turns it into another exit.

    Lightning catches the ``KeyboardInterrupt`` of a Ctrl+C during training and calls
    ``sys.exit(1)``, which would read as "a cell failed"; the list tells the caller it was an
    interrupt. The handler raises ``KeyboardInterrupt`` as Python's own does. Outside the main
    thread, or when SIGINT is ignored or not Python's default handler, nothing is installed.
    """
    seen: list[bool] = []
    previous = signal.getsignal(signal.SIGINT) if _main_thread() else None
    if previous is not signal.default_int_handler:
        yield seen
        return

    def handler(signum, frame) -> None:
        seen.append(True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _bool(text: str) -> bool:
    low = str(text).strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _flag(parser: argparse.ArgumentParser, name: str, default: bool, help: str) -> None:
    parser.add_argument(
        name, type=_bool, nargs="?", const=True, default=default, metavar="true|false", help=help
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hashbench bench``."""
    p = argparse.ArgumentParser(prog="hashbench bench", description=DESCRIPTION)
    p.add_argument("--config", help="the benchmark grid, e.g. benchmarks/fashion-mnist.yaml")
    p.add_argument(
        "--profile", default="default", help="training profile of the grid (default, paper)"
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TOKENS",
        help="keep only these cells: method names, bit lengths (32) or seed=<k>, comma-separated "
        "or repeated; methods, bits and seeds filter together",
    )
    p.add_argument("--shard", default=None, metavar="i/n", help="run every n-th cell from the i-th")
    _flag(p, "--dry_run", False, "list the cells and what would happen to each; run nothing")
    p.add_argument(
        "--results",
        default=None,
        help="results folder (records in <results>/raw; default: the profile's `results`, else "
        "results)",
    )
    p.add_argument("--data_root", default=None, help="replace the data config's root folder")
    p.add_argument("--runs_dir", default="runs/bench", help="deep cells' logs and checkpoints")
    _flag(p, "--progress", True, "progress bars (cells; Lightning's epoch bar)")
    _flag(p, "--leaderboard", True, "write the leaderboard after the sweep")
    _flag(p, "--figures", True, "draw the figures with the leaderboard")
    _flag(
        p,
        "--leaderboard_only",
        False,
        "only regenerate the leaderboard from <results>/raw (with --config: the profile's folder)",
    )
    _flag(p, "--rerun", False, "recompute the selected cells even when recorded and current")
    _flag(p, "--keep_checkpoints", False, "keep deep cells' checkpoint files")
    _flag(p, "--retry_failed", True, "run cells recorded as failed again")
    return p


def leaderboard_main(argv: list[str]) -> int:
    """``hashbench leaderboard [--results results] [--figures true]``: tables and figures from records."""
    p = argparse.ArgumentParser(
        prog="hashbench leaderboard",
        description="Write <results>/leaderboard.md, leaderboard.csv and figures/ from the "
        "records under <results>/raw.",
    )
    p.add_argument("--results", default="results")
    _flag(p, "--figures", True, "draw the figures")
    args = p.parse_args(argv)
    return _write_leaderboard(args.results, args.figures)


def _write_leaderboard(results: str, figures: bool) -> int:
    from hashbench.bench.leaderboard import write_leaderboard
    from hashbench.bench.records import raw_dir

    if not raw_dir(results).is_dir():
        print(
            f"hashbench bench: no records under {raw_dir(results)}; run a sweep first "
            "(hashbench bench --config benchmarks/<dataset>.yaml)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    out = write_leaderboard(results, figures=figures)
    print(f"wrote {out['markdown']} and {out['csv']}")
    if figures:
        print(f"wrote {len(out['figures'])} figure(s) under {out['markdown'].parent / 'figures'}")
    return EXIT_OK


def bench_main(argv: list[str]) -> int:
    """Entry point of ``hashbench bench`` (``argv`` without the subcommand); returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.leaderboard_only:
        from hashbench.bench.config import BenchConfigError, load_bench_config
        from hashbench.bench.sweep import DEFAULT_RESULTS, results_folder

        results = args.results or DEFAULT_RESULTS
        if args.results is None and args.config:  # the profile's own folder (quick, budget, ...)
            try:
                results = str(results_folder(load_bench_config(args.config, args.profile)))
            except BenchConfigError as e:
                print(f"hashbench bench: {e}", file=sys.stderr)
                return EXIT_BAD_INPUT
        return _write_leaderboard(results, args.figures)
    if not args.config:
        print(
            "hashbench bench: give the grid, e.g. --config benchmarks/fashion-mnist.yaml "
            "(or --leaderboard_only true)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    from hashbench.bench.config import BenchConfigError, DataMissingError
    from hashbench.bench.sweep import run_benchmark

    with watch_interrupts() as interrupted:
        try:
            report = run_benchmark(
                args.config,
                results=args.results,
                profile=args.profile,
                only=args.only,
                shard=args.shard,
                dry_run=args.dry_run,
                data_root=args.data_root,
                runs_dir=args.runs_dir,
                progress=args.progress,
                leaderboard=args.leaderboard,
                figures=args.figures,
                keep_checkpoints=args.keep_checkpoints,
                retry_failed=args.retry_failed,
                rerun=args.rerun,
            )
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except SystemExit:
            if interrupted:  # Lightning's exit(1) after a Ctrl+C during training
                return EXIT_INTERRUPTED
            raise
        except DataMissingError as e:
            print(str(e), file=sys.stderr)
            return EXIT_BAD_INPUT
        except BenchConfigError as e:
            print(f"hashbench bench: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
    return EXIT_CELL_FAILED if report.failed else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(bench_main(sys.argv[1:]))
