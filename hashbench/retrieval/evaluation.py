"""The evaluation contract: which metrics a test computes, what their keys are, which tie rule and
seed rank the database, and how a split is encoded - one place for the CLI, the methods, the
baselines and the bench.

- Metric groups (:func:`metric_groups`): every test computes :data:`TEST_METRICS` (the groups of
  :func:`hashbench.retrieval.metrics.evaluate`), NDCG/ACG only on multi-label datasets; validation
  computes :data:`VAL_METRICS` (mAP at the protocol's depth) and logs it as ``val/mAP``.
- Keys: the protocol's mAP is ``mAP@<k>`` (``mAP@all`` for the whole database); :func:`map_key`
  finds it in a metrics dict (and never returns ``mAP@H<=2``, the Hamming-ball figure).
- Ties: :data:`TieRule` (``index``: rank by (distance, position in the database shuffled with the
  protocol's seed); ``expected``: the closed-form expectation over random orders within a distance
  bucket). :data:`DEFAULT_TIES` is the default of every method and baseline; a record states the
  rule of the model or estimator that produced it (:func:`protocol_facts`).
- Encoding: :func:`encode_split` runs a model's ``encode`` over one split's loader.

Imports nothing heavy at module level (torch only inside :func:`encode_split`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

#: The tie rules of PROTOCOL.md ("Ranking and ties").
TieRule = Literal["index", "expected"]
TIE_RULES: tuple[str, ...] = ("index", "expected")
DEFAULT_TIES: TieRule = "index"

#: Metric groups of a test pass (see :func:`hashbench.retrieval.metrics.evaluate`).
TEST_METRICS: tuple[str, ...] = ("mAP", "P@N", "hamming_radius", "pr_curve", "ndcg", "auc")
#: Metric groups of a validation pass.
VAL_METRICS: tuple[str, ...] = ("mAP",)
#: The logged name of the validation figure checkpoints are selected on.
VAL_MONITOR = "val/mAP"


def metric_groups(multi_label: bool) -> tuple[str, ...]:
    """The metric groups of a test pass: :data:`TEST_METRICS`, ``ndcg`` only when multi-label."""
    return tuple(m for m in TEST_METRICS if m != "ndcg" or multi_label)


def map_key(metrics: Mapping[str, Any]) -> str | None:
    """The key of the protocol's mAP (``mAP@<k>`` / ``mAP@all``) in ``metrics``; ``None`` if absent.

    Keys are scanned in sorted order; ``mAP@H<=2`` (the Hamming-ball figure) is never returned.
    """
    return next((k for k in sorted(metrics) if k.startswith("mAP@") and "H<=" not in k), None)


def check_ties(ties: str) -> TieRule:
    """``ties`` if it names a tie rule, else a ``ValueError`` listing them."""
    if ties not in TIE_RULES:
        raise ValueError(f"unknown tie rule {ties!r}; one of {', '.join(TIE_RULES)}")
    return ties  # type: ignore[return-value]


def protocol_facts(datamodule: Any, ties: str) -> dict[str, Any]:
    """The protocol facts a record states, from the DataModule and the tie rule that produced them."""
    split = datamodule.split
    return {
        "name": datamodule.protocol.name,
        "k": datamodule.metric_k,
        "split_seed": datamodule.seed,
        "data_key": datamodule.key,
        "ties": check_ties(ties),
        "multi_label": bool(datamodule.multi_label),
        **{f"n_{s}": int(len(split[s])) for s in split},
    }


def split_metrics(result: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, list]]:
    """Scalar metrics and curves (lists) of a metrics dict; other entries (``per_query/*`` arrays
    included) are dropped."""
    scalars, curves = {}, {}
    for key, value in result.items():
        if isinstance(value, str | bytes) or value is None or str(key).startswith("per_query/"):
            continue
        try:
            arr = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        except Exception:  # noqa: BLE001 - not numeric (e.g. a fitted object)
            continue
        if arr.dtype == object:
            continue
        if arr.ndim == 0:
            scalars[key] = float(arr)
        else:
            curves[key] = arr.tolist()
    return scalars, curves


@dataclass
class EncodedSplit:
    """The packed codes of one split, the dataset ids of its items and the encoding wall time."""

    codes: np.ndarray
    ids: np.ndarray
    seconds: float


def encode_split(
    model: Any,
    datamodule: Any,
    split: str,
    device: Any = "cpu",
    progress: bool = False,
) -> EncodedSplit:
    """Encode every item of ``split`` with ``model.encode`` on ``device`` (eval mode, no grad).

    The loader is the DataModule's evaluation loader of that split (its ``eval_batch_size``); the
    wall time covers the loop (CUDA synchronised).
    """
    import torch
    from tqdm.auto import tqdm

    device = torch.device(device)
    model = model.to(device).eval()
    codes, ids = [], []
    with torch.no_grad():
        t0 = time.perf_counter()
        for batch in tqdm(
            datamodule.dataloader(split), desc=f"encode {split}", disable=not progress
        ):
            codes.append(model.encode(batch["image"].to(device)).cpu())
            ids.append(batch["index"].cpu())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
    if not codes:
        return EncodedSplit(
            np.zeros((0, model.bits // 8), np.uint8), np.zeros(0, np.int64), seconds
        )
    return EncodedSplit(torch.cat(codes).numpy(), torch.cat(ids).numpy(), seconds)
