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
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from hashbench import training

REPO = Path(__file__).resolve().parents[1]


class EpochTimer(Callback):
    """Wall seconds of each training epoch; optionally fills knngan's theta cache first."""

    def __init__(self, prefill: bool = False) -> None:
        self.seconds: list[float] = []
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
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds.append(time.perf_counter() - self._t0)


def time_method(key: str, batches: int, bits: int, overrides: dict) -> EpochTimer:
    config = training.resolve_config(
        [REPO / f"configs/methods/{key}.yaml", REPO / "configs/data/fashion_mnist.yaml"],
        {
            "model.init_args.bits": bits,
            "trainer.max_epochs": 2,
            "trainer.limit_train_batches": batches,
            "trainer.limit_val_batches": 0,
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
    timer = EpochTimer(prefill=overrides.get("model.init_args.cache_perceptual") is True)
    run = training.build(config, callbacks=[timer])
    run.trainer.fit(run.model, datamodule=run.datamodule)
    return timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=12, help="training batches per epoch")
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "hashbench", "configs"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    ref = results[0][1].seconds[-1] / args.batches
    print(
        f"commit {commit}{' + uncommitted changes' if dirty else ''}; {args.batches} batches of 128 "
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
