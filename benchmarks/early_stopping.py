"""Does early stopping on held-out val/mAP work? DSH and dhih at 32 bits on Fashion-MNIST.

One run per method trains ``--max_epochs`` epochs with the default trainer profile's settings but
without the stopper, keeping every epoch's checkpoint and its held-out ``val/mAP``. Because the
learning-rate schedule depends only on ``max_epochs``, the early-stopped run (patience, min_delta and
min_epochs of ``configs/trainer/default.yaml``) is exactly this run's prefix: its stop epoch and its
selected checkpoint (the best ``val/mAP`` up to the stop) follow from the history. Every epoch's
checkpoint is then tested (``query`` against ``database``) for the report only - nothing here is
chosen on those figures.

    python benchmarks/early_stopping.py --out docs/early_stopping      # ~15 min on 2 cores

Writes ``<out>/<method>.json`` (histories), ``<out>/early_stopping.md`` (table) and
``<out>/early_stopping.png`` (curves).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def stopping_rule() -> dict:
    """patience, min_delta, min_epochs, max_epochs of the default trainer profile."""
    cfg = yaml.safe_load((REPO / "configs/trainer/default.yaml").read_text())["trainer"]
    stopper = next(c for c in cfg["callbacks"] if c["class_path"].endswith("EarlyStopping"))
    return {
        **stopper["init_args"],
        "min_epochs": cfg["min_epochs"],
        "max_epochs": cfg["max_epochs"],
    }


def stop_epoch(values: list[float], patience: int, min_delta: float, min_epochs: int) -> int:
    """The epoch (0-based) after which Lightning's EarlyStopping (mode max) ends training.

    An epoch improves when its value exceeds the best so far by more than ``min_delta``; after
    ``patience`` epochs without improvement the run stops, but not before ``min_epochs`` epochs.
    """
    best, wait = float("-inf"), 0
    for e, v in enumerate(values):
        if v > best + min_delta:
            best, wait = v, 0
        else:
            wait += 1
        if wait >= patience and e + 1 >= min_epochs:
            return e
    return len(values) - 1


def run(method: str, bits: int, max_epochs: int, root: Path) -> dict:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from hashbench.retrieval.evaluation import map_key
    from hashbench.training import build, resolve_config, validation_history

    config = resolve_config(
        [REPO / f"configs/methods/{method}.yaml", REPO / "configs/data/fashion_mnist.yaml"],
        {
            "model.init_args.bits": bits,
            "seed_everything": 0,
            "trainer.max_epochs": max_epochs,
            "trainer.default_root_dir": str(root / method),
            "trainer.enable_progress_bar": False,
            "trainer.num_sanity_val_steps": 0,
        },
    )
    history = validation_history()
    every = ModelCheckpoint(
        dirpath=root / method / "every", filename="e{epoch:03d}", save_top_k=-1,
        auto_insert_metric_name=False,
    )  # fmt: skip
    runner = build(config, callbacks=[history, every])
    runner.model.configure_callbacks = lambda: []  # keep `every` (not the best-only default)
    t0 = time.perf_counter()
    runner.trainer.fit(runner.model, datamodule=runner.datamodule)
    train_s = time.perf_counter() - t0
    tests = []
    for e in range(len(history.history)):
        runner.trainer.test(
            runner.model, datamodule=runner.datamodule, verbose=False,
            ckpt_path=str(root / method / "every" / f"e{e:03d}.ckpt"),
        )  # fmt: skip
        result = runner.model.test_results
        tests.append(float(result[map_key(result)]))
    return {
        "method": method,
        "bits": bits,
        "max_epochs": max_epochs,
        "train_s": train_s,
        "val_mAP": [h["val/mAP"] for h in history.history],
        "test_mAP": tests,
        "test_key": map_key(runner.model.test_results),
    }


def summarise(res: dict, rule: dict) -> dict:
    val, test = res["val_mAP"], res["test_mAP"]
    stop = stop_epoch(val, rule["patience"], rule["min_delta"], rule["min_epochs"])
    chosen = max(range(stop + 1), key=lambda e: (val[e], -e))
    best_all = max(range(len(val)), key=lambda e: (val[e], -e))
    return {
        "stop": stop,
        "chosen": chosen,
        "test_chosen": test[chosen],
        "best_all": best_all,
        "test_best_all": test[best_all],
        "test_last": test[-1],
        "cost": (stop + 1) / len(val),
    }


def report(results: list[dict], rule: dict, out: Path, commit: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [
        "# Early stopping on held-out val/mAP (measured)",
        "",
        f"Fashion-MNIST `fashion-mnist-69k`, 32 bits, seed 0, `small_cnn`; commit `{commit}`, "
        f"{platform.processor() or platform.machine()}, 2 CPU cores. Rule (`configs/trainer/"
        f"default.yaml`): patience {rule['patience']}, min_delta {rule['min_delta']}, min_epochs "
        f"{rule['min_epochs']}; the long run is {results[0]['max_epochs']} epochs. Test mAP "
        "(`query` vs `database`) is reported, never used to choose.",
        "",
        "| method | stopped after epoch | checkpoint chosen (epoch) | test mAP of it | best val epoch of the long run | test mAP of it | test mAP after the long run | cost of the stopped run |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6))
    for ax, res in zip(list(axes) if len(results) > 1 else [axes], results, strict=True):
        s = summarise(res, rule)
        lines.append(
            f"| {res['method']} | {s['stop'] + 1} | {s['chosen'] + 1} | {s['test_chosen']:.4f} | "
            f"{s['best_all'] + 1} | {s['test_best_all']:.4f} | {res['test_mAP'][-1]:.4f} | "
            f"{100 * s['cost']:.0f}% of the epochs |"
        )
        epochs = range(1, len(res["val_mAP"]) + 1)
        ax.plot(epochs, res["val_mAP"], label="val/mAP (held out)")
        ax.plot(epochs, res["test_mAP"], label=f"test {res['test_key']}", linestyle="--")
        ax.axvline(s["stop"] + 1, color="grey", linestyle=":", label="early stop")
        ax.scatter([s["chosen"] + 1], [res["test_mAP"][s["chosen"]]], color="black", zorder=3)
        ax.set_title(f"{res['method']}, 32 bits")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mAP")
        ax.legend(fontsize=8)
    lines += [
        "",
        "Epochs are counted from 1. Per-epoch values: `<method>.json`. Figure: `early_stopping.png`.",
        "",
    ]
    fig.tight_layout()
    fig.savefig(out / "early_stopping.png", dpi=110)
    (out / "early_stopping.md").write_text("\n".join(lines))


def main() -> int:
    from hashbench.bench.records import git_commit

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", default="dsh,dhih")
    p.add_argument("--bits", type=int, default=32)
    p.add_argument("--max_epochs", type=int, default=30)
    p.add_argument("--out", default="docs/early_stopping")
    p.add_argument("--runs", default="runs/early_stopping")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rule = stopping_rule()
    results = []
    for method in args.methods.split(","):
        path = out / f"{method}.json"
        if path.is_file():
            res = json.loads(path.read_text())
        else:
            res = run(method, args.bits, args.max_epochs, Path(args.runs))
            path.write_text(json.dumps(res, indent=1) + "\n")
        results.append(res)
    report(results, rule, out, git_commit()["commit"][:10])
    print((out / "early_stopping.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
