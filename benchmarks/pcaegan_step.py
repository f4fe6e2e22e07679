"""Training cost of `pcaegan`, `pcwgan` and `dch` against `dsh`, side by side in one run.

    .venv/bin/python benchmarks/pcaegan_step.py                      # CPU setting, 12 batches each
    .venv/bin/python benchmarks/pcaegan_step.py --batches 20 --bits 32 --setting paper

Each method is built from its shipped config (``configs/methods/<key>.yaml``) on Fashion-MNIST
(``configs/data/fashion_mnist.yaml``: 5,000 training images, batch 128) through
:func:`hashbench.training.build`, and trained for ``--batches`` batches of one epoch by a Lightning
``Trainer`` (no validation, no logger; stage 1 of the GAN methods runs in ``on_fit_start``, before
the timed batches). The time of every training batch is taken between ``on_train_batch_start`` and
``on_train_batch_end``; the first batch is left out (warm-up). The table gives the median seconds per
batch, the epoch it extrapolates to (median x batches per epoch: the data loading of a full epoch is
included in the per-batch time) and the ratio to `dsh`. Medians, because the machine may be loaded:
quote the load average with the table.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import tempfile
import time
import warnings

import lightning as L

METHODS = ("dsh", "dch", "pcwgan", "pcaegan")


class BatchTimer(L.Callback):
    """Wall seconds of every training batch."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._t = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._t = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.seconds.append(time.perf_counter() - self._t)


def batch_seconds(method: str, batches: int, bits: int, setting: str | None) -> tuple[list, int]:
    """Per-batch seconds of ``batches`` training batches of ``method``, and batches per epoch."""
    from hashbench.training import build, resolve_config

    overrides = {"model.init_args.bits": bits, "seed_everything": 0}
    if setting and method in ("pcaegan", "pcwgan"):
        overrides["model.init_args.setting"] = setting
        overrides["model.init_args.samples_per_class"] = 0
    config = resolve_config(
        [f"configs/methods/{method}.yaml", "configs/data/fashion_mnist.yaml"], overrides
    )
    run = build(config)
    timer = BatchTimer()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(
            max_epochs=1,
            limit_train_batches=batches,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
            default_root_dir=tmp,
            callbacks=[timer],
        )
        trainer.fit(run.model, datamodule=run.datamodule)
        per_epoch = math.ceil(len(run.datamodule.split["train"]) / run.datamodule.batch_size)
    return timer.seconds, per_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--setting", choices=["cpu", "paper"], default=None)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # no validation: the checkpoint callback's missing key
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    rows = []
    for method in args.methods:
        seconds, per_epoch = batch_seconds(method, args.batches, args.bits, args.setting)
        med = statistics.median(seconds[1:] or seconds)
        rows.append((method, med, med * per_epoch, per_epoch, len(seconds)))
    base = next((r[2] for r in rows if r[0] == "dsh"), None)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\n{args.bits} bits, batch from configs/data/fashion_mnist.yaml, setting "
        f"{args.setting or 'as shipped'}, load average {load}\n"
    )
    print("| method | s / batch (median) | s / epoch (extrapolated) | x dsh | batches timed |")
    print("| --- | --- | --- | --- | --- |")
    for method, med, epoch, per_epoch, n in rows:
        ratio = f"{epoch / base:.1f}" if base else "-"
        print(f"| `{method}` | {med:.3f} | {epoch:.1f} ({per_epoch} batches) | {ratio} | {n - 1} |")


if __name__ == "__main__":
    main()
