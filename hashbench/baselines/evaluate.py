"""Fit a shallow baseline on a DataModule's ``train`` features and evaluate it like a deep method.

The features come from the shared :class:`~hashbench.data.features.FeatureCache` (raw pixels or a
backbone's features), so deep and shallow methods see the same data; the codes go through the same
metrics (:func:`hashbench.retrieval.metrics.evaluate`) with the protocol's depth and tie seed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from hashbench.baselines import SUPERVISED, get_baseline
from hashbench.baselines.base import Hasher
from hashbench.data.base import HashDataModule
from hashbench.data.features import FeatureCache

DEFAULT_METRICS = ("mAP", "P@N", "hamming_radius", "pr_curve", "auc")


def make_baseline(name: str, bits: int, random_state: int = 0) -> Hasher:
    """The baseline ``name`` with its default hyper-parameters."""
    return get_baseline(name)(bits=bits, random_state=random_state)


def fit_and_evaluate(
    name: str,
    bits: int,
    datamodule: HashDataModule,
    features: str = "pixels",
    pretrained: bool | str = False,
    random_state: int = 0,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    ties: str = "index",
) -> dict[str, Any]:
    """Fit baseline ``name`` on ``train``, encode ``query`` and ``database``, evaluate.

    Returns the metrics of :func:`~hashbench.retrieval.metrics.evaluate` plus ``fit_s`` (fit wall
    time), ``encode_per_s`` (database items encoded per second) and the fitted ``hasher``.
    """
    from hashbench.retrieval.metrics import evaluate

    cache = FeatureCache(datamodule, features, pretrained)
    x_train, x_query, x_db = (cache.split(s) for s in ("train", "query", "database"))
    hasher = make_baseline(name, bits, random_state)
    y_train = datamodule.labels("train") if name in SUPERVISED else None
    t0 = time.perf_counter()
    hasher.fit(x_train, y_train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    db_codes = hasher.encode(x_db)
    encode_s = time.perf_counter() - t0
    result = evaluate(
        hasher.encode(x_query),
        db_codes,
        datamodule.labels("query"),
        datamodule.labels("database"),
        k=datamodule.metric_k,
        metrics=metrics,
        ties=ties,
        seed=datamodule.seed,
    )
    result.update(fit_s=fit_s, encode_per_s=len(x_db) / max(encode_s, 1e-9), hasher=hasher)
    return result


def scalar_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The scalar entries of a result (no curves, no fitted object)."""
    return {k: float(v) for k, v in result.items() if np.ndim(v) == 0 and k != "hasher"}
