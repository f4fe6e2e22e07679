"""Training time of a `knngan` epoch beside a `dsh` epoch, in one run on Fashion-MNIST (issue #18).

    .venv/bin/python benchmarks/knngan_step.py                 # 12 batches of 128, 32 bits, < 2 min
    .venv/bin/python benchmarks/knngan_step.py --batches 40 --threads 2

Each row trains the shipped config (`configs/methods/<key>.yaml` + `configs/data/fashion_mnist.yaml`,
through `hashbench.training`, the path `hashbench fit` and the bench use) for 2 epochs of
`--batches` training batches, without validation or checkpoints, and times each epoch. `M` is built
from the pixels (`knn_features: pixels`: the ImageNet features cost 5.5 min to extract once; the
step time does not depend on them). Rows:

- `dsh`: the reference step (one forward/backward of the encoder);
- `knngan_nogan`: the encoder on `L_N + lambda1 L_H`;
- `knngan, theta(I) every step`: `cache_perceptual: false`, the frozen perceptual net run on the
  real images at every step (the behaviour before issue #18);
- `knngan, theta(I) cached`: the default (`augment: none`): `theta(I)` once per training item.
  Before the timed epochs the cache is filled over the whole `train` split (a cost paid once per
  fit, shown in its own column), so both epochs show the steady state of a full run, where every
  epoch after the first finds every item cached.

Prints a Markdown table (seconds per batch, and the ratio to `dsh`'s 2nd epoch) with the commit,
the load average and the torch threads. On a shared machine the times vary with the load: compare
rows of one run only.

    .venv/bin/python benchmarks/knngan_step.py --validate --repeats 3   # epochs as a fit runs them

`--validate` times whole epochs as `hashbench fit` runs them with the shipped configs: every
training batch, then the validation pass that early stopping reads (`val_query` and
`val_database` encoded, `val/mAP`), with `M` from the configured features (the feature cache) and
the theta(I) cache filled before the first epoch. Rows `dsh`, `knngan_nogan`, `knngan`, run
`--repeats` times interleaved; the table gives the median wall and CPU seconds of an epoch (every
epoch after the first of each run), the training and validation parts, and the ratio to `dsh`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from hashbench import training
from hashbench.bench.records import git_commit

REPO = Path(__file__).resolve().parents[1]


def _commit() -> str:
    """``HEAD``'s short hash, with `` + uncommitted changes`` as the bench records say dirty."""
    git = git_commit(REPO)
    return git["commit"][:7] + (" + uncommitted changes" if git["dirty"] else "")


class EpochTimer(Callback):
    """Wall seconds of each training epoch; optionally fills knngan's theta cache first."""

    def __init__(self, prefill: bool = False) -> None:
        self.seconds: list[float] = []
        self.cpu: list[float] = []
        self.val_seconds: list[float] = []
        self.val_cpu: list[float] = []
        self.prefill = prefill
        self.prefill_seconds = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        if not self.prefill:
            return
        t0 = time.perf_counter()
        theta = pl_module.perceptual
        loader = trainer.datamodule.dataloader("train")  # every item (the train loader drops 8)
        for batch in loader:
            real = batch["image"].float() / 255
            pl_module.perceptual_target(theta, real, pl_module.positions(batch["index"]))
        self.prefill_seconds = time.perf_counter() - t0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t0, self._c0 = time.perf_counter(), time.process_time()
        self._v0 = self._vc0 = None

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._v0, self._vc0 = time.perf_counter(), time.process_time()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Lightning runs the epoch's validation before this hook: the epoch includes it
        t, c = time.perf_counter(), time.process_time()
        self.seconds.append(t - self._t0)
        self.cpu.append(c - self._c0)
        self.val_seconds.append(t - self._v0 if self._v0 is not None else 0.0)
        self.val_cpu.append(c - self._vc0 if self._vc0 is not None else 0.0)


def _train(key: str, bits: int, overrides: dict, prefill: bool) -> EpochTimer:
    """Fit the shipped config of ``key`` (no checkpoints, no logger) with ``overrides``; its timer."""
    config = training.resolve_config(
        [REPO / f"configs/methods/{key}.yaml", REPO / "configs/data/fashion_mnist.yaml"],
        {
            "model.init_args.bits": bits,
            "trainer.num_sanity_val_steps": 0,
            "trainer.enable_checkpointing": False,
            "trainer.enable_progress_bar": False,
            "trainer.enable_model_summary": False,
            "trainer.logger": False,
            "trainer.accelerator": "cpu",
            "trainer.default_root_dir": tempfile.mkdtemp(prefix="hashbench-knngan-step-"),
            "data.init_args.download": False,
            **overrides,
        },
    )
    timer = EpochTimer(prefill=prefill)
    run = training.build(config, callbacks=[timer])
    run.trainer.fit(run.model, datamodule=run.datamodule)
    return timer


def time_method(key: str, batches: int, bits: int, overrides: dict) -> EpochTimer:
    """2 epochs of ``batches`` training batches each, no validation."""
    fixed = {
        "trainer.max_epochs": 2,
        "trainer.limit_train_batches": batches,
        "trainer.limit_val_batches": 0,
    }
    prefill = overrides.get("model.init_args.cache_perceptual") is True
    return _train(key, bits, {**fixed, **overrides}, prefill)


def fit_epochs(key: str, epochs: int, bits: int) -> EpochTimer:
    """``epochs`` whole epochs (training + validation) of the shipped config of ``key``."""
    overrides = {"seed_everything": 0, "trainer.max_epochs": epochs}
    return _train(key, bits, overrides, prefill=key == "knngan")


def validate_table(epochs: int, bits: int, repeats: int) -> list[str]:
    """Markdown rows: median epoch / training / validation seconds (wall, CPU), x dsh."""
    keys = ["dsh", "knngan_nogan", "knngan"]
    timers: dict[str, list[EpochTimer]] = {k: [] for k in keys}
    for round_ in range(repeats):
        for key in keys[round_ % 3 :] + keys[: round_ % 3]:  # rotate the order each round
            timers[key].append(fit_epochs(key, epochs, bits))

    def median(key: str, field: str) -> float:
        return statistics.median(v for t in timers[key] for v in getattr(t, field)[1:])

    rows = [
        "| method | epoch, wall s | epoch, CPU s | training, CPU s | validation, CPU s | "
        "x dsh (wall) | x dsh (CPU) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    ref_wall, ref_cpu = median("dsh", "seconds"), median("dsh", "cpu")
    for key in keys:
        wall, cpu, val = median(key, "seconds"), median(key, "cpu"), median(key, "val_cpu")
        rows.append(
            f"| {key} | {wall:.2f} | {cpu:.2f} | {cpu - val:.2f} | {val:.2f} | "
            f"{wall / ref_wall:.2f} | {cpu / ref_cpu:.2f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=12, help="training batches per epoch")
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--validate", action="store_true", help="whole epochs as a fit runs them")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (--validate)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (--validate)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.validate:
        load_before = os.getloadavg()
        rows = validate_table(args.epochs, args.bits, args.repeats)
        print(
            f"commit {_commit()}; {args.bits} bits, {args.epochs} epochs x {args.repeats} rounds "
            f"(medians over epochs 2-{args.epochs}), torch threads {args.threads}; load average "
            f"{load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after (1 min)\n"
        )
        print("\n".join(rows))
        return
    pixels = {"model.init_args.knn_features": "pixels", "model.init_args.knn_pretrained": False}
    rows = [
        ("dsh", "dsh", {}),
        ("knngan_nogan", "knngan_nogan", pixels),
        (
            "knngan, theta(I) every step",
            "knngan",
            {**pixels, "model.init_args.cache_perceptual": False, "model.init_args.grid_size": 0},
        ),
        (
            "knngan, theta(I) cached (default)",
            "knngan",
            {**pixels, "model.init_args.cache_perceptual": True, "model.init_args.grid_size": 0},
        ),
    ]
    load_before = os.getloadavg()
    results = []
    for label, key, overrides in rows:
        timer = time_method(key, args.batches, args.bits, overrides)
        results.append((label, timer))
    load_after = os.getloadavg()
    ref = results[0][1].seconds[-1] / args.batches
    print(
        f"commit {_commit()}; {args.batches} batches of 128 "
        f"per epoch, {args.bits} bits, torch threads {args.threads}; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min)\n"
    )
    print(
        "| method | epoch 1 s/batch | epoch 2 s/batch | x dsh (epoch 2) | theta cache fill (once) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for label, timer in results:
        e1, e2 = (s / args.batches for s in timer.seconds)
        fill = f"{timer.prefill_seconds:.1f} s" if timer.prefill else "-"
        print(f"| {label} | {e1:.3f} | {e2:.3f} | {e2 / ref:.1f} | {fill} |")


if __name__ == "__main__":
    main()
