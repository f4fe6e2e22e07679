"""The ``hashbench`` command: a light dispatcher in front of the subcommands.

Startup stays light: ``hashbench --help`` imports nothing heavy; each subcommand imports only what
it needs.

Errors a user can fix (a missing file or dataset, a bad flag or value, a bad code length, an
unknown id) are printed as one block, ``hashbench <subcommand>: error: <cause and fix>``, without a
traceback; ``--debug`` (anywhere on the command line) or ``HASHBENCH_DEBUG=1`` shows the traceback
instead. Exit codes: 0 ok, 1 a bench cell failed, 2 bad input (nothing useful was run), 130
interrupted (Ctrl+C). Other exceptions are bugs and keep their traceback.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from hashbench.bench.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, watch_interrupts

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
    "tune": "rank a grid of a method's arguments by held-out val/mAP; write the chosen config",
}
ENTRY_POINTS = {
    "encode": ("hashbench.commands", "encode_main"),
    "search": ("hashbench.commands", "search_main"),
    "baseline": ("hashbench.commands", "baseline_main"),
    "bench": ("hashbench.bench.cli", "bench_main"),
    "leaderboard": ("hashbench.bench.cli", "leaderboard_main"),
    "tune": ("hashbench.bench.tune", "tune_main"),
}

HELP = """usage: hashbench <subcommand> [options] [--debug]

Train and evaluate learning-to-hash methods for image retrieval.

subcommands:
{rows}

Errors are one short message; --debug (or HASHBENCH_DEBUG=1) shows the traceback instead.
Exit codes: 0 ok, 1 a bench cell failed, 2 bad input, 130 interrupted.

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


DEBUG_ENV = "HASHBENCH_DEBUG"
DEBUG_HINT = f"(--debug or {DEBUG_ENV}=1 shows the traceback)"
#: Exceptions that say what the user gave is wrong; anything else is a bug and keeps its traceback.
USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
#: User errors by class name, so that reporting them imports nothing (checked along the MRO).
USER_ERROR_NAMES = {
    "ArgumentError",
    "SplitMismatchError",
    "NonFiniteLossError",
    "ClassifierTagsUnavailable",  # wsdh weak tags: the EfficientNet extra is not installed
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hashbench`` console script; returns the exit code."""
    from_shell = argv is None
    argv = list(sys.argv[1:] if from_shell else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(_help())
        return 0
    if argv[0] == "--version":
        from hashbench import __version__

        print(f"hashbench {__version__}")
        return 0
    name = argv[0]
    with watch_interrupts() as interrupted:
        try:
            return _dispatch(argv, from_shell)
        except KeyboardInterrupt:
            if debug:
                raise
            print(f"\nhashbench {name}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except SystemExit as e:
            if interrupted:  # Lightning turns a Ctrl+C during training into exit(1)
                return EXIT_INTERRUPTED
            if isinstance(e.code, str):  # a message: bad input
                print(format_error(name, e.code), file=sys.stderr)
                return EXIT_BAD_INPUT
            raise
        except Exception as e:
            if debug or not is_user_error(e):
                raise
            print(format_error(name, error_message(e, name)), file=sys.stderr)
            return EXIT_BAD_INPUT


def _dispatch(argv: list[str], from_shell: bool) -> int:
    if argv[0] in LIGHTNING_SUBCOMMANDS:
        from hashbench.lightning_cli import HashbenchCLI

        if from_shell:  # LightningCLI reads sys.argv itself (and warns when given both)
            sys.argv = [sys.argv[0], *argv]
        HashbenchCLI(args=None if from_shell else argv)
        return 0
    if argv[0] in OTHER_SUBCOMMANDS:
        import importlib

        module, function = ENTRY_POINTS[argv[0]]
        return getattr(importlib.import_module(module), function)(argv[1:])
    print(f"hashbench: unknown subcommand {argv[0]!r}\n\n{_help()}", file=sys.stderr)
    return EXIT_BAD_INPUT


def is_user_error(e: BaseException) -> bool:
    """Whether ``e`` reports bad input (shown as one message) rather than a bug (traceback)."""
    return isinstance(e, USER_ERRORS) or any(
        c.__name__ in USER_ERROR_NAMES for c in type(e).__mro__
    )


def format_error(subcommand: str, message: str) -> str:
    """The one block a user error prints: ``hashbench <sub>: error: ...``, indented, a hint."""
    lines = [line.rstrip() for line in message.strip().splitlines() if line.strip()] or ["?"]
    body = "\n".join([lines[0], *("  " + line for line in lines[1:])])
    return f"hashbench {subcommand}: error: {body}\n  {DEBUG_HINT}"


def error_message(e: BaseException, subcommand: str = "<subcommand>") -> str:
    """The cause of ``e`` as a user should read it (jsonargparse's and DataLoader's wrapping cut)."""
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    if "Original Traceback" in text:  # re-raised from a DataLoader worker: keep the last line
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = re.sub(r"^[\w.]+(Error|Exception|Warning): ", "", last.strip())
    text = _union_errors(text)
    missing = re.search(r"File does not exist: '([^']+)'", text) or re.search(
        r"config file (\S+) not found", text
    )
    if missing:
        text = _missing_file(missing.group(1))
    elif type(e).__name__ == "ArgumentError":
        text += f"\nSee `hashbench {subcommand} --help` for the options."
    return text


def _union_errors(text: str) -> str:
    """jsonargparse's "Does not validate against any of the Union subtypes" report cut to the
    subtype errors that matter (not "Expected a <class 'NoneType'>")."""
    if "Does not validate against any of the Union subtypes" not in text:
        return text
    head = re.match(r'\s*Parser key "([^"]+)":', text)
    errors: list[str] = []
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == "Errors:":
            inside = True
        elif stripped.startswith(("Given value type:", "Given value:", "Subtypes:")):
            inside = False
        elif inside and stripped.startswith("- "):
            errors.append(stripped[2:])
        elif inside and errors and stripped:
            errors[-1] += " " + stripped
    errors = [
        re.sub(r"^Problem with given class_path '([^']+)':\s*", r"\1: ", err)
        for err in errors
        if not err.startswith("Expected a <class 'NoneType'>")
    ]
    if not errors:
        return text
    where = f"--{head.group(1)}: " if head else ""
    return where + "\n".join(errors)


def _missing_file(path: str) -> str:
    """A missing config file, with the files its folder does hold (e.g. the method names)."""
    folder = Path(path).parent
    text = f"config file {path} does not exist"
    if folder.is_dir():
        names = sorted(p.stem for p in folder.glob("*.yaml"))
        if names:
            text += f"; {folder} holds: {', '.join(names)}"
    return text


if __name__ == "__main__":
    sys.exit(main())
