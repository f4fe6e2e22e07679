"""The ``hashbench`` command: a light dispatcher in front of the subcommands.

Startup stays light: ``hashbench --help`` imports nothing heavy; each subcommand imports only what
it needs.
"""

from __future__ import annotations

import sys

LIGHTNING_SUBCOMMANDS = {
    "fit": "train a method (with validation and checkpoint selection on val/mAP)",
    "validate": "run validation (val_query against val_database) on a checkpoint",
    "test": "evaluate a checkpoint on query against database with every protocol metric",
    "predict": "compute the packed binary codes of the query and database sets",
}
OTHER_SUBCOMMANDS = {
    "encode": "encode a dataset split with a checkpoint: packed codes + a Faiss index on disk",
    "search": "query an index with image files or dataset ids (top-k or --radius)",
    "baseline": "fit a shallow baseline (lsh, pcah, sh, itq, sph, itq_cca, ksh, sdh) and evaluate it",
    "bench": "sweep methods x bits x seeds from benchmarks/<dataset>.yaml into results/",
    "leaderboard": "regenerate results/leaderboard.md, .csv and figures from the records",
}
ENTRY_POINTS = {
    "encode": ("hashbench.commands", "encode_main"),
    "search": ("hashbench.commands", "search_main"),
    "baseline": ("hashbench.commands", "baseline_main"),
    "bench": ("hashbench.bench.cli", "bench_main"),
    "leaderboard": ("hashbench.bench.cli", "leaderboard_main"),
}

HELP = """usage: hashbench <subcommand> [options]

Train and evaluate learning-to-hash methods for image retrieval.

subcommands:
{rows}

Run `hashbench <subcommand> --help` for a subcommand's options. Examples:
  hashbench fit --config configs/methods/dsh.yaml --config configs/data/fashion_mnist.yaml
  hashbench fit --config configs/methods/dsh.yaml --config configs/data/fashion_mnist.yaml --print_config
  hashbench test --config configs/methods/dsh.yaml --config configs/data/fashion_mnist.yaml \\
      --ckpt_path runs/lightning_logs/version_0/checkpoints/last.ckpt
  hashbench encode --ckpt best.ckpt --config configs/data/fashion_mnist.yaml --split database --out codes
  hashbench search --ckpt best.ckpt --index codes/database.faissb --image '[query.png]' --k 10
  hashbench baseline --baseline ksh --bits 32 --config configs/data/fashion_mnist.yaml
  hashbench bench --config benchmarks/fashion-mnist.yaml --dry_run true
"""


def _help() -> str:
    subcommands = {**LIGHTNING_SUBCOMMANDS, **OTHER_SUBCOMMANDS}
    rows = "\n".join(f"  {name:<10} {text}" for name, text in subcommands.items())
    return HELP.format(rows=rows)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hashbench`` console script."""
    from_shell = argv is None
    argv = list(sys.argv[1:] if from_shell else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_help())
        return 0
    if argv[0] == "--version":
        from hashbench import __version__

        print(f"hashbench {__version__}")
        return 0
    if argv[0] in LIGHTNING_SUBCOMMANDS:
        from hashbench.lightning_cli import HashbenchCLI

        HashbenchCLI(args=None if from_shell else argv)  # LightningCLI reads sys.argv itself
        return 0
    if argv[0] in OTHER_SUBCOMMANDS:
        import importlib

        module, function = ENTRY_POINTS[argv[0]]
        return getattr(importlib.import_module(module), function)(argv[1:])
    print(f"hashbench: unknown subcommand {argv[0]!r}\n\n{_help()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
