"""Training time per epoch of `dhih` against the number of training images (it is unary: linear).

    .venv/bin/python benchmarks/dhih_epoch_time.py                  # 5k, 10k, 20k Fashion-MNIST images
    .venv/bin/python benchmarks/dhih_epoch_time.py --sizes 5000 10000 20000 40000 --bits 32

One full training epoch (data loading, small_cnn forward, DHIH loss, backward, Adam step) per size,
on the first ``n`` training-side images; prints a markdown table with seconds per epoch and per
1,000 images. If the loss were pairwise over the training set the last column would grow with ``n``.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader

from hashbench.data.base import HashDataset
from hashbench.data.fashion_mnist import FashionMNISTDataModule
from hashbench.methods.dhih import DHIH


def epoch_seconds(dm: FashionMNISTDataModule, n: int, bits: int, batch_size: int) -> float:
    torch.manual_seed(0)
    model = DHIH(bits=bits, num_classes=dm.num_classes, multi_label=False)
    model.train()
    optimizer = model.make_optimizer(model.parameter_groups())
    train_side = (dm.arrays.source == "train").nonzero()[0][:n]
    loader = DataLoader(HashDataset(dm.arrays, train_side), batch_size=batch_size, shuffle=True)
    t0 = time.perf_counter()
    for batch in loader:
        loss = model.loss(model(batch["image"]), batch["label"])["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data/fashion-mnist")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000])
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=128)
    args = parser.parse_args()
    dm = FashionMNISTDataModule(args.root)
    print(
        f"# dhih, {args.bits} bits, small_cnn, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads\n"
    )
    print("| training images | s / epoch | s / 1,000 images |\n| --- | --- | --- |")
    for n in args.sizes:
        s = epoch_seconds(dm, n, args.bits, args.batch_size)
        print(f"| {n:,} | {s:.1f} | {1000 * s / n:.2f} |", flush=True)


if __name__ == "__main__":
    main()
