"""Fit a shallow baseline on a DataModule's ``train`` features and evaluate it like a deep method.

The features come from the shared :class:`~hashbench.models.features.FeatureCache` (raw pixels or a
backbone's features), so deep and shallow methods see the same data; the codes go through the same
metrics (:func:`hashbench.retrieval.metrics.evaluate`) with the protocol's depth and tie seed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from hashbench.baselines import SUPERVISED, get_baseline
from hashbench.baselines.base import Hasher
from hashbench.data.base import HashDataModule
from hashbench.models.features import FeatureCache
from hashbench.retrieval.evaluation import DEFAULT_TIES, TieRule, metric_groups

#: The metric groups of a single-label dataset's test (:func:`metric_groups`; kept for callers).
DEFAULT_METRICS = metric_groups(multi_label=False)


def make_baseline(
    name: str, bits: int, random_state: int = 0, params: Mapping[str, Any] | None = None
) -> Hasher:
    """The baseline ``name`` with its default hyper-parameters, updated by ``params``."""
    return get_baseline(name)(**{**dict(params or {}), "bits": bits, "random_state": random_state})


def fit_and_evaluate(
    name: str,
    bits: int,
    datamodule: HashDataModule,
    features: str = "pixels",
    pretrained: bool | str = False,
    random_state: int = 0,
    metrics: tuple[str, ...] | None = None,
    ties: TieRule = DEFAULT_TIES,
    split_features: Mapping[str, np.ndarray] | None = None,
    per_query: bool = False,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit baseline ``name`` on ``train``, encode ``query`` and ``database``, evaluate.

    Args:
        metrics: metric groups; ``None``: the dataset's, as a deep method's test computes them
            (:func:`hashbench.retrieval.evaluation.metric_groups`).
        ties: tie rule (:data:`hashbench.retrieval.evaluation.TieRule`).
        split_features: precomputed ``train`` / ``query`` / ``database`` features (a sweep computes
            them once for every cell); ``None`` reads them from the :class:`FeatureCache`. A
            baseline with an ``input_features(datamodule)`` method (``ws_ksh``: the WSDH stage-1
            network's features) computes its own instead, and both are ignored.
        per_query: also return the ``per_query/<key>`` arrays of
            :func:`~hashbench.retrieval.metrics.evaluate` (queries in ``query`` split order).
        params: constructor arguments other than ``bits`` and ``random_state`` (a bench grid's
            ``method_args`` of a baseline).

    Returns the metrics of :func:`~hashbench.retrieval.metrics.evaluate` plus ``fit_s`` (fit wall
    time), ``encode_s`` / ``encode_per_s`` (database encoding), ``query_encode_s``, the codes
    (``query_codes``, ``database_codes``) and the fitted ``hasher``.
    """
    from hashbench.retrieval.metrics import evaluate

    hasher = make_baseline(name, bits, random_state, params)
    own_features = getattr(hasher, "input_features", None)
    if own_features is not None:  # a baseline that computes its inputs from the data (ws_ksh)
        split_features = own_features(datamodule)
    elif split_features is None:
        cache = FeatureCache(datamodule, features, pretrained)
        split_features = {s: cache.split(s) for s in ("train", "query", "database")}
    y_train = datamodule.labels("train") if name in SUPERVISED else None
    t0 = time.perf_counter()
    hasher.fit(split_features["train"], y_train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    db_codes = hasher.encode(split_features["database"])
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    q_codes = hasher.encode(split_features["query"])
    query_encode_s = time.perf_counter() - t0
    if metrics is None:
        metrics = metric_groups(datamodule.multi_label)
    result = evaluate(
        q_codes,
        db_codes,
        datamodule.labels("query"),
        datamodule.labels("database"),
        k=datamodule.metric_k,
        metrics=metrics,
        ties=ties,
        seed=datamodule.seed,
        per_query=per_query,
    )
    result.update(
        fit_s=fit_s,
        encode_s=encode_s,
        encode_per_s=len(db_codes) / max(encode_s, 1e-9),
        query_encode_s=query_encode_s,
        query_codes=q_codes,
        database_codes=db_codes,
        hasher=hasher,
    )
    return result


RESULT_EXTRAS = (
    "fit_s",
    "encode_s",
    "encode_per_s",
    "query_encode_s",
    "query_codes",
    "database_codes",
    "hasher",
)


def scalar_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The scalar entries of a result (no curves, codes or fitted object)."""
    return {k: float(v) for k, v in result.items() if np.ndim(v) == 0 and k != "hasher"}
