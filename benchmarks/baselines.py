"""Shallow baselines side by side: fit time, encode throughput and test mAP per code length.

    .venv/bin/python benchmarks/baselines.py                      # Fashion-MNIST pixels, 16/32/64 bits
    .venv/bin/python benchmarks/baselines.py --bits 32 --features small_cnn --baselines itq ksh

Prints a markdown table (``make bench-baselines``). Timings are wall-clock on this machine; the
database encode throughput counts the projection and packing, not feature extraction.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from hashbench.baselines import BASELINES, SUPERVISED
from hashbench.baselines.evaluate import fit_and_evaluate, make_baseline
from hashbench.data.fashion_mnist import FashionMNISTDataModule
from hashbench.retrieval.evaluation import map_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data/fashion-mnist")
    parser.add_argument("--protocol", default="fashion-mnist-69k")
    parser.add_argument("--bits", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--baselines", nargs="+", default=list(BASELINES))
    parser.add_argument("--features", default="pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scale",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the unsupervised fits on every training-side image",
    )
    args = parser.parse_args()

    dm = FashionMNISTDataModule(args.root, protocol=args.protocol)
    dm.setup()
    n = {s: len(dm.split[s]) for s in ("train", "query", "database")}
    print(
        f"# Shallow baselines on {dm.key}, {args.features} features "
        f"({n['train']} train / {n['query']} query / {n['database']} database)"
    )
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}\n"
    )
    header = (
        "| baseline | "
        + " | ".join(f"{b} bits fit s | {b} bits encode/s | {b} bits mAP@all" for b in args.bits)
        + " |"
    )
    print(header)
    print("|" + " --- |" * (1 + 3 * len(args.bits)))
    for name in args.baselines:
        cells = []
        for bits in args.bits:
            r = fit_and_evaluate(
                name, bits, dm, args.features, random_state=args.seed, metrics=("mAP",)
            )
            key = map_key(r)
            cells += [f"{r['fit_s']:.2f}", f"{r['encode_per_s']:,.0f}", f"{r[key]:.3f}"]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    if args.scale:
        scale_table(
            dm, [b for b in args.baselines if b not in SUPERVISED], max(args.bits), args.seed
        )


def scale_table(dm: FashionMNISTDataModule, names: list[str], bits: int, seed: int) -> None:
    """Fit time of the unsupervised baselines on every training-side image (60,000 x 784)."""
    import numpy as np

    side = np.flatnonzero(dm.arrays.source == "train")
    x = dm.arrays.images[side].reshape(len(side), -1).astype(np.float32) / 255.0
    print(
        f"\n# Fit on all {x.shape[0]:,} x {x.shape[1]} training-side pixel vectors, {bits} bits\n"
    )
    print("| baseline | fit s |\n| --- | --- |")
    for name in names:
        hasher = make_baseline(name, bits, seed)
        t0 = time.perf_counter()
        hasher.fit(x)
        print(f"| {name} | {time.perf_counter() - t0:.2f} |", flush=True)


if __name__ == "__main__":
    main()
