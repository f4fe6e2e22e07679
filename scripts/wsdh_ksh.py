"""WS-KSH and its references for docs/methods/wsdh.md (seed 002, METHODS.md section 2).

WS-KSH = KSH (Liu et al., CVPR 2012; :class:`hashbench.baselines.ksh.KSH`) fitted on the backbone
features of the WSDH stage-1 network (the weakly-supervised pretraining, eq. 3). Its plain
counterparts: KSH on the same network's features *without* stage 1 (the random initialisation the
WSDH run starts from, ``seed_everything 0``) and KSH on raw pixels (the bench's baseline features);
LSH on pixels as the unsupervised reference. All four go through
:func:`hashbench.baselines.evaluate.fit_and_evaluate` with precomputed split features.

The bench runs WS-KSH itself as the baseline ``ws_ksh`` (:class:`hashbench.baselines.ws_ksh.WSKSH`,
which finds the stage-1 file of the ``wsdh`` cell); the ``ws-ksh`` row here computes its features
with the same code (:meth:`WSKSH.input_features`) from the file given by ``--stage1``. The script
remains for the two reference rows the bench does not have (``ksh-cnn``: the same network without
stage 1).

Usage (after a ``hashbench fit`` of ``wsdh`` at the same bit length wrote the stage-1 cache)::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/wsdh_ksh.py --bits 64 \
        --stage1 data/fashion-mnist/stage1/fashion-mnist-64b-<key>.pt --out /tmp/wsksh-64.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from hashbench.baselines.evaluate import fit_and_evaluate, scalar_metrics
from hashbench.models.features import FeatureCache

SPLITS = ("train", "query", "database")
KEEP = ("mAP@all", "mAP@H<=2", "P@100", "P@200", "P@400", "P@500", "P@1000")


def datamodule_from_config(path: str):
    """The DataModule a ``configs/data/*.yaml`` file describes."""
    cfg = yaml.safe_load(Path(path).read_text())["data"]
    module, _, name = cfg["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name)(**cfg.get("init_args", {}))


@torch.no_grad()
def network_features(dm, bits: int, stage1: str | None, seed: int = 0) -> dict[str, np.ndarray]:
    """Backbone features of the three splits: WSDH's network with (or without) stage-1 weights."""
    from hashbench.methods.wsdh import WSDH

    torch.manual_seed(seed)
    model = WSDH(bits=bits, stage1_cache=None).eval()
    if stage1 is not None:
        model.load_stage1(stage1)
    out = {}
    for split in SPLITS:
        feats = []
        for batch in dm.dataloader(split):
            feats.append(model.features(batch["image"]).flatten(1).numpy())
        out[split] = np.concatenate(feats).astype(np.float32)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bits", type=int, required=True)
    ap.add_argument("--stage1", required=True, help="stage-1 weights file (WSDH cache)")
    ap.add_argument("--data-config", default="configs/data/fashion_mnist.yaml")
    ap.add_argument("--rows", default="ws-ksh,ksh-cnn,ksh,lsh")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    dm = datamodule_from_config(args.data_config)
    dm.eval_batch_size = 1024
    dm.setup("fit")
    results = {}
    pixels = None
    for row in args.rows.split(","):
        t0 = time.perf_counter()
        if row == "ws-ksh":
            from hashbench.baselines.ws_ksh import WSKSH

            feats, name = WSKSH(args.bits, stage1=args.stage1).input_features(dm), "ksh"
        elif row == "ksh-cnn":
            feats, name = network_features(dm, args.bits, None), "ksh"
        else:
            if pixels is None:
                cache = FeatureCache(dm, "pixels")
                pixels = {s: cache.split(s) for s in SPLITS}
            feats, name = pixels, row
        res = fit_and_evaluate(name, args.bits, dm, split_features=feats)
        scal = scalar_metrics(res)
        results[row] = {k: scal[k] for k in KEEP if k in scal}
        results[row]["wall_s"] = round(time.perf_counter() - t0, 1)
        print(row, args.bits, results[row], flush=True)
    Path(args.out).write_text(json.dumps({"bits": args.bits, "rows": results}, indent=1))


if __name__ == "__main__":
    main()
