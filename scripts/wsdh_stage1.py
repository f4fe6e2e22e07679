"""Train (or find) the WSDH stage-1 networks that a grid's ``ws_ksh`` cells read.

``ws_ksh`` fits KSH on the features of the stage-1 network that the grid's ``wsdh`` cell of the
same length and seed cached under ``<data root>/stage1`` (hashbench/baselines/ws_ksh.py). When the
``wsdh`` records came from elsewhere (a clone of the committed records, another machine), the bench
skips those cells and no stage-1 file exists, so ``ws_ksh`` fails with "no WSDH stage-1 network".
This script runs only stage 1 of each such ``wsdh`` cell - the cell's own resolved configuration,
seed included, with the fine-tuning cut to zero epochs - so the cache key (a hash of every stage-1
setting and the seed) is the one the cell itself used. Then ``hashbench bench`` retries ``ws_ksh``.

    .venv/bin/python scripts/wsdh_stage1.py [--config benchmarks/fashion-mnist.yaml]
        [--profile default] [--bits 16 32] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from hashbench.bench.cells import Cell, resolve_deep
    from hashbench.bench.config import load_bench_config
    from hashbench.training import build

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="benchmarks/fashion-mnist.yaml")
    p.add_argument("--profile", default="default")
    p.add_argument("--method", default="wsdh", help="the deep method whose stage 1 is cached")
    p.add_argument("--bits", type=int, nargs="*", help="default: every length of the grid")
    p.add_argument("--seeds", type=int, nargs="*", help="default: every seed of the grid")
    args = p.parse_args(argv)

    cfg = load_bench_config(args.config, args.profile)
    cells = [
        (b, s)
        for b, s in cfg.grid()
        if (not args.bits or b in args.bits) and (not args.seeds or s in args.seeds)
    ]
    if not cells:
        p.error(f"no cell of {args.config} ({args.profile}) matches --bits/--seeds")
    for bits, seed in cells:
        with tempfile.TemporaryDirectory(prefix="hb-stage1-") as tmp:
            cell = Cell(1, args.method, bits, seed, "deep")
            config = resolve_deep(cfg, cell, Path(tmp), progress=False)
            config["trainer"]["max_epochs"] = 0  # stage 1 runs in on_fit_start; no fine-tuning
            config["trainer"]["min_epochs"] = 0
            config["trainer"]["logger"] = False
            run = build(config)
            run.trainer.fit(run.model, datamodule=run.datamodule)
            path = run.model.record.get("stage1_file")
            print(f"{args.method} {bits} bits seed {seed}: stage 1 at {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
