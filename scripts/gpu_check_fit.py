"""Helper of ``scripts/gpu_check.sh``: environment facts, timed short fits, the paper-profile smoke's
benchmark file and the summary table.

    python scripts/gpu_check_fit.py env OUT/env.json
    python scripts/gpu_check_fit.py methods [--bench benchmarks/fashion-mnist.yaml] [--profile default]
    python scripts/gpu_check_fit.py fit --method dsh --profile default --epochs 2 --accelerator gpu \\
        --out OUT/fits/default-dsh.json --root_dir OUT/work/runs [--limit_train_batches 5]
    python scripts/gpu_check_fit.py bench-yaml --profile paper --epochs 1 --accelerator gpu \\
        --out OUT/work/paper-smoke.yaml
    python scripts/gpu_check_fit.py summary OUT

``fit`` trains one deep method of a benchmark grid as the bench would (the cell's config files and
typed overrides from :func:`hashbench.bench.cells.deep_sources`, built with
:func:`hashbench.training.build`), with the epoch cap, accelerator and batch limits replaced, and
writes one JSON file: the time before the first epoch (data, split, method set-up such as a stage 1
or a k-NN graph), each epoch's training time (data loading included, CUDA synchronised; the
validation pass inside the epoch is timed apart and taken out), the validation time and ``val/mAP``,
the peak CUDA memory, and what had to be changed for the fit to run on this machine
(``deviations``, e.g. a missing ImageNet weight file). A failure is recorded, not raised.

``bench-yaml`` writes a copy of a benchmark grid whose profile trains only ``--epochs`` epochs (its
method arguments, e.g. the paper's settings, unchanged), for a short real ``hashbench bench`` run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without `pip install -e .` (PYTHONPATH unset)
    sys.path.append(str(REPO))

from hashbench.bench.records import (  # noqa: E402 - after the path set-up
    PeakMemory,
    _version,
    device_info,
    load_records,
    versions,
)
from hashbench.files import write_text_atomic  # noqa: E402

DEFAULT_BENCH = "benchmarks/fashion-mnist.yaml"
#: The bits and seed of the cell a fit takes when the grid has it (else the grid's first cell).
PREFERRED_BITS, PREFERRED_SEED = 32, 0


# -- environment ------------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    """Python, library, CUDA and device facts (no GPU needed): :func:`~hashbench.bench.records.versions`
    and :func:`~hashbench.bench.records.device_info` (as a bench record has them), plus the CUDA
    build, every visible device and what Faiss sees."""
    import torch

    cuda = torch.cuda.is_available()
    facts: dict[str, Any] = {
        **versions(),
        **device_info("cuda:0" if cuda else None),
        **{name: _version(name) for name in ("torchvision", "torchmetrics", "jsonargparse")},
        "executable": sys.executable,
        "torch_cuda": torch.version.cuda,
        "cuda_available": cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "devices": [],
    }
    for i in range(torch.cuda.device_count() if cuda else 0):
        p = torch.cuda.get_device_properties(i)
        facts["devices"].append(
            {
                "index": i,
                "name": p.name,
                "capability": f"{p.major}.{p.minor}",
                "memory_gib": round(p.total_memory / 2**30, 1),
                "multiprocessors": p.multi_processor_count,
            }
        )
    try:
        import faiss

        facts["faiss_gpus"] = int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    except Exception:  # noqa: BLE001 - any import failure: Faiss sees no GPU
        facts["faiss_gpus"] = None
    return facts


# -- the cells of a grid ----------------------------------------------------------------------------
def deep_methods(bench: str, profile: str, with_method_args: bool = False) -> list[str]:
    """The deep methods of ``bench``'s ``profile`` grid, in the sweep's order.

    Args:
        bench: the benchmark YAML.
        profile: its profile.
        with_method_args: only the methods the profile gives arguments of their own
            (``profiles.<profile>.method_args``, e.g. the paper settings of pcaegan and pcwgan).
    """
    from hashbench.bench.cells import expand_cells
    from hashbench.bench.config import load_bench_config

    cfg = load_bench_config(bench, profile)
    seen: list[str] = []
    for cell in expand_cells(cfg):
        if cell.kind == "deep" and cell.method not in seen:
            if not with_method_args or cell.method in cfg.profile.method_args:
                seen.append(cell.method)
    return seen


def pick_cell(cfg, method: str):
    """The grid's cell of ``method`` at :data:`PREFERRED_BITS` / :data:`PREFERRED_SEED` if it has
    one, else its first cell."""
    from hashbench.bench.cells import expand_cells

    cells = [c for c in expand_cells(cfg) if c.method == method and c.kind == "deep"]
    if not cells:
        raise ValueError(
            f"{method!r} is not a deep method of {cfg.path} (profile {cfg.profile.name})"
        )
    for c in cells:
        if c.bits == PREFERRED_BITS and c.seed == PREFERRED_SEED:
            return c
    return cells[0]


def trainer_overrides(
    epochs: int,
    accelerator: str,
    limit_train_batches: float | None,
    limit_val_batches: float | None,
) -> dict[str, Any]:
    """The trainer keys a short check replaces (a cap of ``epochs``, a minimum of 1, one device)."""
    out: dict[str, Any] = {
        "trainer.max_epochs": epochs,
        "trainer.min_epochs": 1,
        "trainer.accelerator": accelerator,
        "trainer.devices": 1,
    }
    if limit_train_batches is not None:
        out["trainer.limit_train_batches"] = limit_train_batches
    if limit_val_batches is not None:
        out["trainer.limit_val_batches"] = limit_val_batches
    return out


def _number(text: str | None) -> float | int | None:
    """A batch limit as Lightning takes it: an int is a count, a float a fraction."""
    if text in (None, ""):
        return None
    value = float(text)
    return int(value) if value.is_integer() and value > 1 else value


# -- what this machine lacks ------------------------------------------------------------------------
def imagenet_weights_found(backbone: str) -> bool:
    """Whether ``backbone``'s ImageNet weight file is on this machine (nothing is downloaded)."""
    from hashbench.models.backbones import find_weights

    try:
        find_weights(backbone)
    except (FileNotFoundError, ValueError):
        return False
    return True


def portable_overrides(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Overrides that let a resolved fit config run on this machine, and why each was needed.

    - ``knngan``: the k-NN graph's ``efficientnet_lite0`` ImageNet features come from the feature
      cache (``<root>/features``) or the weight file; without both, ``pixels`` (the quick profile's
      choice). The frozen perceptual net without its weight file: random weights (same compute).
    - ``wsdh`` / ``wsdrsch``: stage 1 is always retrained (``stage1_cache: null``: it is part of what
      is timed, and nothing is written under the data folder); the classifier tags come from the
      tag cache (``<root>/tags``) or the weight file, else the label-derived synthetic tags.

    Args:
        config: a resolved ``hashbench fit`` config (:func:`hashbench.training.resolve_config`).
    """
    model = config["model"]
    init = model.get("init_args") or {}
    cls = str(model.get("class_path", "")).rsplit(".", 1)[-1]
    # what the cache paths read of a DataModule, without building one
    data = SimpleNamespace(
        root=Path(config["data"]["init_args"]["root"]), name=_dataset_name(config)
    )
    out: dict[str, Any] = {}
    why: list[str] = []
    if cls == "KNNGAN":
        knn = init.get("knn_features", "pixels")
        if knn != "pixels" and init.get("knn_pretrained") is True:
            from hashbench.models.features import FeatureCache

            cache = FeatureCache(data, knn, pretrained=True).path  # the path only: no I/O
            if not cache.is_file() and not imagenet_weights_found(knn):
                out["model.init_args.knn_features"] = "pixels"
                out["model.init_args.knn_pretrained"] = False
                why.append(f"knn_features pixels (no {cache} and no {knn} weights)")
        perceptual = init.get("perceptual_backbone")
        if (
            init.get("gan", True)
            and init.get("perceptual_pretrained") is True
            and perceptual
            and not imagenet_weights_found(perceptual)
        ):
            out["model.init_args.perceptual_pretrained"] = False
            why.append(f"perceptual net {perceptual} with random weights (no weight file)")
    if cls == "WSDH":
        if init.get("stage1_cache", "auto") is not None:
            out["model.init_args.stage1_cache"] = None
            why.append("stage1_cache null (stage 1 retrained and timed)")
        if init.get("weak_tags") == "classifier":
            from hashbench.models.classifier_tags import MODEL, cache_path

            cache = cache_path(data)
            if not cache.is_file() and not imagenet_weights_found(MODEL):
                out["model.init_args.weak_tags"] = "synthetic"
                why.append(f"weak_tags synthetic (no {cache} and no {MODEL} weights)")
    return out, why


def _dataset_name(config: dict[str, Any]) -> str:
    import importlib

    module, _, name = str(config["data"]["class_path"]).rpartition(".")
    return str(getattr(importlib.import_module(module), name).name)


# -- timing -----------------------------------------------------------------------------------------
def make_epoch_timer():
    """A Lightning callback timing the fit's phases (CUDA synchronised at each mark).

    ``marks["fit_start"]`` / ``marks["first_epoch"]``; ``epochs``: one dict per training epoch with
    ``train_s`` (its wall time less the validation run inside it), ``train_batches``, ``val_s`` and
    the ``val/*`` values.
    """
    import torch
    from lightning.pytorch.callbacks import Callback

    def now(pl_module) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    class EpochTimer(Callback):
        def __init__(self) -> None:
            self.marks: dict[str, float] = {}
            self.epochs: list[dict[str, Any]] = []
            self._epoch_t0 = 0.0
            self._val_t0 = 0.0
            self._val_s = 0.0
            self._batches = 0
            self._pending_val: dict[str, Any] = {}
            self.device = None

        def on_fit_start(self, trainer, pl_module) -> None:
            self.marks["fit_start"] = now(pl_module)

        def on_train_start(self, trainer, pl_module) -> None:
            # read here: after fit, Lightning's teardown moves the module back to the CPU
            self.device = pl_module.device

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            t = now(pl_module)
            self.marks.setdefault("first_epoch", t)
            self._epoch_t0, self._val_s, self._batches = t, 0.0, 0
            self._pending_val = {}

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self._batches += 1

        def on_validation_start(self, trainer, pl_module) -> None:
            self._val_t0 = now(pl_module)

        def on_validation_end(self, trainer, pl_module) -> None:
            seconds = now(pl_module) - self._val_t0
            self._val_s += seconds
            values = {
                k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")
            }
            self._pending_val = {"val_s": seconds, **values}

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            total = now(pl_module) - self._epoch_t0
            self.epochs.append(
                {
                    "epoch": int(trainer.current_epoch),
                    "train_s": total - self._val_s,
                    "train_batches": self._batches,
                    **self._pending_val,
                }
            )

    return EpochTimer()


def run_fit(args: argparse.Namespace) -> dict[str, Any]:
    """One short fit of ``args.method`` (see the module docstring); the record to write."""
    t_start = time.perf_counter()
    record: dict[str, Any] = {
        "method": args.method,
        "profile": args.profile,
        "bench": args.bench,
        "epochs_asked": args.epochs,
        "accelerator": args.accelerator,
        "limit_train_batches": args.limit_train_batches,
        "limit_val_batches": args.limit_val_batches,
        "status": "failed",
    }
    try:
        import torch

        from hashbench import training
        from hashbench.bench.cells import deep_sources
        from hashbench.bench.config import load_bench_config

        record["torch_threads"] = torch.get_num_threads()
        cfg = load_bench_config(args.bench, args.profile)
        cell = pick_cell(cfg, args.method)
        record.update(bits=cell.bits, seed=cell.seed)
        files, overrides = deep_sources(cfg, cell, Path(args.root_dir), progress=False)
        overrides.update(
            trainer_overrides(
                args.epochs,
                args.accelerator,
                _number(args.limit_train_batches),
                _number(args.limit_val_batches),
            )
        )
        config = training.resolve_config(files, overrides)
        extra, deviations = portable_overrides(config)
        if extra:
            overrides.update(extra)
            config = training.resolve_config(files, overrides)
        record["deviations"] = deviations
        record["overrides"] = {k: v for k, v in overrides.items() if not k.startswith("trainer.")}
        timer = make_epoch_timer()
        t_build = time.perf_counter()
        run = training.build(config, callbacks=[timer])
        record["build_s"] = time.perf_counter() - t_build
        peak = PeakMemory()
        peak.reset()
        t_fit = time.perf_counter()
        run.trainer.fit(run.model, datamodule=run.datamodule)
        record["fit_s"] = time.perf_counter() - t_fit
        device = timer.device or run.model.device  # the device the training ran on
        record["device"] = str(device)
        if device.type == "cuda":
            record["device_name"] = torch.cuda.get_device_name(device)
        marks = timer.marks
        if "fit_start" in marks:
            record["before_fit_start_s"] = marks["fit_start"] - t_fit
        if "first_epoch" in marks and "fit_start" in marks:
            record["before_first_epoch_s"] = marks["first_epoch"] - marks["fit_start"]
        record["epochs"] = timer.epochs
        record["peak_cuda_mb"] = peak.read()["cuda_peak_mb"]
        done = len(timer.epochs)
        record["status"] = "ok" if done == args.epochs else "failed"
        if done != args.epochs:
            record["error"] = f"{done} of {args.epochs} epochs ran"
    except BaseException as e:  # noqa: BLE001 - recorded, then the exit status says it failed
        record["error"] = f"{type(e).__name__}: {e}"
        record["traceback"] = traceback.format_exc(limit=12)
        traceback.print_exc()
    record["total_s"] = time.perf_counter() - t_start
    return record


def fit_line(record: dict[str, Any]) -> str:
    """The one line a fit prints (``gpu_check.sh`` takes it as the step's note)."""
    parts = [f"gpu_check fit {record['profile']}/{record['method']}: {record['status']}"]
    device = record.get("device_name") or record.get("device")
    if device:
        parts[0] += f" on {device}"
    epochs = record.get("epochs") or []
    parts.append(f"epoch train s {[round(e['train_s'], 2) for e in epochs]}")
    parts.append(f"total {record['total_s']:.1f} s")
    if record.get("error"):
        parts.append(str(record["error"]).splitlines()[0])
    return "; ".join(parts)


# -- the paper-profile smoke ------------------------------------------------------------------------
def short_bench_yaml(
    bench: str,
    profile: str,
    epochs: int,
    accelerator: str,
    limit_train_batches: str | None,
    limit_val_batches: str | None,
) -> str:
    """``bench``'s YAML with ``profile``'s training cut to ``epochs`` epochs on ``accelerator``.

    Everything else (data, the profile's trainer config, method arguments) is the grid's own; paths
    stay as written (the bench resolves them against the working directory first).
    """
    import yaml

    data = yaml.safe_load(Path(bench).read_text(encoding="utf-8"))
    profiles = data.get("profiles") or {}
    if profile not in profiles:
        raise ValueError(f"{bench} has no profile {profile!r} (it has {', '.join(profiles)})")
    prof = dict(profiles[profile] or {})
    prof["args"] = {
        **(prof.get("args") or {}),
        **trainer_overrides(
            epochs, accelerator, _number(limit_train_batches), _number(limit_val_batches)
        ),
    }
    prof.pop("results", None)  # the smoke's --results decides where records go
    data["profiles"] = {profile: prof}
    note = (
        f"# {bench}, profile {profile!r} cut to {epochs} epoch(s) on {accelerator} by "
        "scripts/gpu_check_fit.py bench-yaml (a smoke test, not a benchmark).\n"
    )
    return note + yaml.safe_dump(data, sort_keys=False)


# -- summary ----------------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fit_rows(records: list[dict[str, Any]]) -> list[str]:
    """Markdown table of fit records: one row per fit."""
    lines = [
        "| profile | method | bits | status | device | before epoch 1 s | epoch train s "
        "| batches | ms/batch (last) | val s (last) | val/mAP (last) | peak CUDA MiB | fit s "
        "| notes |",
        "|" + " --- |" * 14,
    ]
    for r in records:
        epochs = r.get("epochs") or []
        last = epochs[-1] if epochs else {}
        per_batch = (
            1000 * last["train_s"] / last["train_batches"] if last.get("train_batches") else None
        )
        before = None
        if "before_fit_start_s" in r or "before_first_epoch_s" in r:
            before = r.get("before_fit_start_s", 0.0) + r.get("before_first_epoch_s", 0.0)
        notes = list(r.get("deviations") or [])
        if r.get("error"):
            notes.append(str(r["error"]).splitlines()[0][:160])
        device = r.get("device_name") or r.get("device") or "-"
        lines.append(
            "| "
            + " | ".join(
                [
                    str(r.get("profile", "-")),
                    str(r.get("method", "-")),
                    _fmt(r.get("bits")),
                    str(r.get("status", "-")),
                    device,
                    _fmt(before),
                    " / ".join(_fmt(e.get("train_s"), 2) for e in epochs) or "-",
                    _fmt(last.get("train_batches")),
                    _fmt(per_batch),
                    _fmt(last.get("val_s"), 2),
                    _fmt(last.get("val/mAP"), 4),
                    _fmt(r.get("peak_cuda_mb"), 0),
                    _fmt(r.get("fit_s")),
                    "; ".join(notes).replace("|", "/") or "",
                ]
            )
            + " |"
        )
    return lines


def record_rows(records: list[dict[str, Any]]) -> list[str]:
    """Markdown table of bench records: one row per cell (device, times, memory, test mAP)."""
    lines = [
        "| cell | status | device | epochs | train s | test s | encode / s | peak CUDA MiB "
        "| peak RSS MiB | mAP | error |",
        "|" + " --- |" * 11,
    ]
    for r in records:
        times = r.get("times") or {}
        memory = r.get("memory") or {}
        metrics = r.get("metrics") or {}
        device = r.get("device") or {}
        name = device.get("name") or device.get("device") if isinstance(device, dict) else device
        map_value = next(
            (v for k, v in metrics.items() if k.startswith("mAP") and "@H" not in k), None
        )
        error = str(r.get("error") or "").splitlines()[0][:160] if r.get("error") else ""
        lines.append(
            "| "
            + " | ".join(
                [
                    str(r.get("cell", "-")),
                    str(r.get("status", "-")),
                    str(name or "-"),
                    _fmt(times.get("epochs")),
                    _fmt(times.get("train_s")),
                    _fmt(times.get("test_s")),
                    _fmt(times.get("encode_per_s"), 0),
                    _fmt(memory.get("cuda_peak_mb"), 0),
                    _fmt(memory.get("peak_rss_mb"), 0),
                    _fmt(map_value, 4),
                    error.replace("|", "/"),
                ]
            )
            + " |"
        )
    return lines


def step_rows(steps_tsv: Path) -> tuple[list[str], dict[str, int]]:
    """Markdown table of ``steps.tsv`` (step, status, seconds, note) and the count per status."""
    lines = ["| step | status | wall s | note |", "| --- | --- | --- | --- |"]
    counts: Counter[str] = Counter()
    if steps_tsv.is_file():
        for raw in steps_tsv.read_text(encoding="utf-8").splitlines():
            parts = (raw.split("\t") + ["", "", "", ""])[:4]
            if not parts[0]:
                continue
            counts[parts[1]] += 1
            lines.append("| " + " | ".join(p.replace("|", "/") for p in parts) + " |")
    return lines, counts


def summary(out: Path) -> str:
    """``summary.md`` of a ``gpu_check.sh`` output folder."""
    env_path = out / "env.json"
    env = json.loads(env_path.read_text()) if env_path.is_file() else {}
    devices = ", ".join(
        f"{d['name']} ({d['memory_gib']} GiB, cc {d['capability']})" for d in env.get("devices", [])
    )
    steps, counts = step_rows(out / "steps.tsv")
    records = [
        json.loads(p.read_text())
        for p in sorted((out / "fits").glob("*.json"), key=lambda p: p.stat().st_mtime)
    ]
    lines = [
        "# hashbench GPU check",
        "",
        f"- torch {env.get('torch', '?')} (CUDA {env.get('torch_cuda')}), cuda available: "
        f"{env.get('cuda_available')}; devices: {devices or 'none'}",
        f"- python {env.get('python', '?')}, {env.get('cpu_count', '?')} CPUs, torch threads "
        f"{env.get('torch_threads', '?')}; lightning {env.get('lightning', '?')}, faiss "
        f"{env.get('faiss', '?')} (GPUs seen by faiss: {env.get('faiss_gpus')})",
        "- steps: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
        "",
        "## Steps",
        "",
        *steps,
        "",
        "## Fits",
        "",
        "Epoch train s: each epoch's training wall time (data loading included, CUDA synchronised, "
        "the validation inside the epoch taken out); the first epoch includes warm-up. Before "
        "epoch 1: data, split and method set-up (stage 1, k-NN graph, caches). ms/batch: last "
        "epoch.",
        "",
        *(fit_rows(records) if records else ["(no fit records)"]),
        "",
    ]
    bench = load_records(out / "work" / "paper-results")
    if bench:
        lines += [
            "## Paper-profile bench cells (cut short)",
            "",
            *record_rows(bench),
            "",
        ]
    return "\n".join(lines)


# -- command line -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_env = sub.add_parser("env", help="write torch / CUDA / device facts as JSON")
    p_env.add_argument("out")
    p_methods = sub.add_parser("methods", help="print the grid's deep methods, one a line")
    p_methods.add_argument("--bench", default=DEFAULT_BENCH)
    p_methods.add_argument("--profile", default="default")
    p_methods.add_argument(
        "--with_method_args", action="store_true", help="only those the profile gives arguments"
    )
    p_fit = sub.add_parser("fit", help="one timed short fit; writes a JSON record")
    p_yaml = sub.add_parser("bench-yaml", help="a grid file whose profile runs --epochs epochs")
    for p in (p_fit, p_yaml):
        p.add_argument("--bench", default=DEFAULT_BENCH)
        p.add_argument("--profile", default="default")
        p.add_argument("--epochs", type=int, default=2)
        p.add_argument("--accelerator", default="gpu")
        p.add_argument("--limit_train_batches", default=None)
        p.add_argument("--limit_val_batches", default=None)
        p.add_argument("--out", required=True)
    p_fit.add_argument("--method", required=True)
    p_fit.add_argument("--root_dir", default="runs/gpu_check")
    p_sum = sub.add_parser("summary", help="write <out>/summary.md from a gpu_check.sh folder")
    p_sum.add_argument("out")
    args = parser.parse_args(argv)

    if args.command == "env":
        facts = environment()
        write_text_atomic(args.out, json.dumps(facts, indent=1) + "\n")
        print(json.dumps(facts, indent=1))
        return 0
    if args.command == "methods":
        print("\n".join(deep_methods(args.bench, args.profile, args.with_method_args)))
        return 0
    if args.command == "fit":
        record = run_fit(args)
        write_text_atomic(args.out, json.dumps(record, indent=1, default=str) + "\n")
        print(fit_line(record), flush=True)
        return 0 if record["status"] == "ok" else 1
    if args.command == "bench-yaml":
        text = short_bench_yaml(
            args.bench,
            args.profile,
            args.epochs,
            args.accelerator,
            args.limit_train_batches,
            args.limit_val_batches,
        )
        write_text_atomic(args.out, text)
        return 0
    text = summary(Path(args.out))
    write_text_atomic(Path(args.out) / "summary.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
