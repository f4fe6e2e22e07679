"""Training cost of the GAN methods (`pcaegan`, `pcwgan`, `knngan`, ...) against `dsh`, side by side.

    .venv/bin/python benchmarks/pcaegan_step.py                      # CPU setting, 12 batches each
    .venv/bin/python benchmarks/pcaegan_step.py --batches 20 --bits 32 --setting paper
    .venv/bin/python benchmarks/pcaegan_step.py --methods dsh knngan pcaegan --batches 20 --repeats 5

Each method is built from its shipped config (``configs/methods/<key>.yaml``) on Fashion-MNIST
(``configs/data/fashion_mnist.yaml``: 5,000 training images, batch 128, ``augment: none``) through
:func:`hashbench.training.build` with ``seed_everything 0``, and trained for ``--batches`` batches of
one epoch by a Lightning ``Trainer`` (no validation, no logger). Set-up costs are outside the timed
batches: stage 1 of `pcaegan`/`pcwgan` (``on_fit_start``), `knngan`'s ``M`` (``setup``; from the
feature cache) and its ``theta(I)`` cache, which is filled over the whole ``train`` split before the
first timed batch (``--no-theta-prefill`` leaves it to the batches), so the batches show the steady
state of every epoch after the first; the fill is reported separately (paid once per fit, in the
first epoch). The time of every training batch is taken between ``on_train_batch_start`` and
``on_train_batch_end``, as wall time and as this process's CPU time; the first batch of each run is
left out (warm-up).

``--repeats R`` runs the methods ``R`` times, interleaved (the order rotates each round), and pools
the batches: the table gives the medians, the epoch they extrapolate to (median x batches per epoch)
and the ratio to `dsh`'s median. On a shared machine the CPU-time column is the steadier one (wall
time also counts the time other processes hold the cores); quote the load average with the table.
Run with ``OMP_NUM_THREADS`` set (the torch thread count is printed).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import tempfile
import time
import warnings

import lightning as L

METHODS = ("dsh", "dch", "pcwgan", "pcaegan")


class BatchTimer(L.Callback):
    """Wall and CPU seconds of every training batch; optionally fills knngan's theta cache first."""

    def __init__(self, prefill: bool = True) -> None:
        self.seconds: list[float] = []
        self.cpu: list[float] = []
        self.prefill = prefill
        self.fill_seconds: float | None = None
        self._t = self._c = 0.0

    def on_train_start(self, trainer, module) -> None:
        if not (self.prefill and getattr(module, "_theta_cache_on", False)):
            return
        theta = module.perceptual
        t0 = time.perf_counter()
        for batch in trainer.datamodule.dataloader("train"):  # every item, in order
            real = batch["image"].float() / 255
            module.perceptual_target(theta, real, module.positions(batch["index"]))
        self.fill_seconds = time.perf_counter() - t0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._t, self._c = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.cpu.append(time.process_time() - self._c)
        self.seconds.append(time.perf_counter() - self._t)


def batch_seconds(
    method: str, batches: int, bits: int, setting: str | None, prefill: bool = True
) -> tuple[BatchTimer, int]:
    """The timer of ``batches`` training batches of ``method``, and batches per epoch."""
    from hashbench.training import build, resolve_config

    overrides = {"model.init_args.bits": bits, "seed_everything": 0}
    if method in ("pcaegan", "pcwgan"):
        overrides["model.init_args.samples_per_class"] = 0
        if setting:
            overrides["model.init_args.setting"] = setting
    if method.startswith("knngan"):
        overrides["model.init_args.grid_size"] = 0
    config = resolve_config(
        [f"configs/methods/{method}.yaml", "configs/data/fashion_mnist.yaml"], overrides
    )
    run = build(config)
    timer = BatchTimer(prefill)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(
            max_epochs=1,
            limit_train_batches=batches,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
            default_root_dir=tmp,
            callbacks=[timer],
        )
        trainer.fit(run.model, datamodule=run.datamodule)
        per_epoch = len(run.datamodule.train_dataloader())
    return timer, per_epoch


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "hashbench", "configs")
    return git("rev-parse", "--short", "HEAD") + (" + working tree" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--setting", choices=["cpu", "paper"], default=None)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds")
    parser.add_argument("--no-theta-prefill", dest="prefill", action="store_false")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # no validation: the checkpoint callback's missing key
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    import torch

    import hashbench

    load_before = os.getloadavg()
    pooled = {m: {"wall": [], "cpu": [], "fill": []} for m in args.methods}
    per_epoch: dict[str, int] = {}
    for r in range(args.repeats):
        k = r % len(args.methods)
        for method in args.methods[k:] + args.methods[:k]:
            timer, per_epoch[method] = batch_seconds(
                method, args.batches, args.bits, args.setting, args.prefill
            )
            pooled[method]["wall"] += timer.seconds[1:] or timer.seconds
            pooled[method]["cpu"] += timer.cpu[1:] or timer.cpu
            if timer.fill_seconds is not None:
                pooled[method]["fill"].append(timer.fill_seconds)
            print(
                f"round {r + 1} {method}: median {statistics.median(timer.seconds[1:]):.3f} s "
                f"wall, {statistics.median(timer.cpu[1:]):.3f} s CPU per batch",
                flush=True,
            )
    load_after = os.getloadavg()
    med = {
        m: (statistics.median(v["wall"]), statistics.median(v["cpu"])) for m, v in pooled.items()
    }
    base = med.get("dsh")
    print(
        f"\ncommit {_commit()} ({os.path.dirname(hashbench.__file__)}); {args.bits} bits, batch "
        f"from configs/data/fashion_mnist.yaml, setting {args.setting or 'as shipped'}; torch "
        f"threads {torch.get_num_threads()}; {args.repeats} interleaved round(s) of "
        f"{args.batches} batches per method; load average (1 min) {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after; {os.cpu_count()} CPUs\n"
    )
    print(
        "| method | s / batch, wall (median) | x dsh | s / batch, CPU (median) | x dsh | "
        "s / epoch, CPU (extrapolated) | batches timed | theta(I) cache fill (once) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for method, (wall, cpu) in med.items():
        rw = f"{wall / base[0]:.2f}" if base else "-"
        rc = f"{cpu / base[1]:.2f}" if base else "-"
        fills = pooled[method]["fill"]
        fill = f"{statistics.median(fills):.1f} s" if fills else "-"
        n = len(pooled[method]["cpu"])
        epoch = f"{cpu * per_epoch[method]:.1f} ({per_epoch[method]} batches)"
        print(f"| `{method}` | {wall:.3f} | {rw} | {cpu:.3f} | {rc} | {epoch} | {n} | {fill} |")


if __name__ == "__main__":
    main()
