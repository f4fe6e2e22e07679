"""``torchmetrics.Metric`` wrapper around :func:`hashbench.retrieval.metrics.evaluate`.

Accumulates packed codes and multi-hot labels of queries and database items over batches (list
states, ``dist_reduce_fx="cat"``, so it works under DDP) and evaluates them on ``compute()``.

Ordering under DDP: with ``ties="index"`` the database order decides ties (through the seeded
shuffle of :func:`~hashbench.retrieval.metrics.tie_order`), and gathering across processes changes
that order (and ``DistributedSampler`` pads with repeated items). Pass the items' dataset
``indices`` to :meth:`HashRetrievalMetric.update`: the gathered items are then sorted by index and
duplicates are dropped, so the result is the same for every world size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from hashbench.retrieval.metrics import (
    METRIC_GROUPS,
    P_AT_N,
    Normalize,
    Ties,
    evaluate,
)

Role = Literal["query", "database"]
_ROLES = ("query", "database")


class HashRetrievalMetric(Metric):
    """Exact Hamming-ranking retrieval metrics of accumulated query and database codes.

    Example::

        metric = HashRetrievalMetric(k=None, metrics=("mAP", "P@N"))
        for codes, labels in query_batches:
            metric.update(codes, labels, role="query")
        for codes, labels in database_batches:
            metric.update(codes, labels, role="database")
        metric.compute()  # {"mAP@all": tensor(...), "P@1": tensor(...), ...}

    Args:
        k: depth of ``mAP@k`` / ``NDCG@k`` (``None`` = the whole database).
        metrics: metric groups, see :data:`hashbench.retrieval.metrics.METRIC_GROUPS`.
        ties: ``"index"`` or ``"expected"`` (see :mod:`hashbench.retrieval.metrics`).
        normalize: AP normaliser, ``"retrieved"`` or ``"relevant"``.
        seed: the protocol's seed for the tie order.
        radius: Hamming radius of the ``hamming_radius`` group.
        p_at_n: the ``N`` of ``P@N`` / ``R@N``.
        chunk_size: queries per chunk (``None`` = automatic).
        per_query: :meth:`compute_full` also returns ``per_query/<key>`` arrays (one value per
            query, in dataset-index order when indices were given) for the paired bootstrap.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        k: int | None = None,
        metrics: Sequence[str] = ("mAP", "P@N"),
        ties: Ties = "index",
        normalize: Normalize = "retrieved",
        seed: int = 0,
        radius: int = 2,
        p_at_n: Sequence[int] = P_AT_N,
        chunk_size: int | None = None,
        per_query: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(metrics, str):
            metrics = (metrics,)
        unknown = [m for m in metrics if m not in METRIC_GROUPS]
        if unknown:
            raise ValueError(
                f"HashRetrievalMetric: unknown metric group(s) {unknown}; "
                f"choose from {METRIC_GROUPS}."
            )
        if ties not in ("index", "expected"):
            raise ValueError(f"HashRetrievalMetric: ties={ties!r} is not 'index' or 'expected'.")
        if normalize not in ("retrieved", "relevant"):
            raise ValueError(
                f"HashRetrievalMetric: normalize={normalize!r} is not 'retrieved' or 'relevant'."
            )
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"HashRetrievalMetric: k={k!r} must be a positive integer or None.")
        self.k = k
        self.metrics = tuple(metrics)
        self.ties = ties
        self.normalize = normalize
        self.seed = seed
        self.radius = radius
        self.p_at_n = tuple(p_at_n)
        self.chunk_size = chunk_size
        self.per_query = per_query
        for role in _ROLES:
            for part in ("codes", "labels", "indices"):
                self.add_state(f"{role}_{part}", default=[], dist_reduce_fx="cat")
        self._full: dict | None = None

    def update(
        self,
        codes: torch.Tensor,
        labels: torch.Tensor,
        role: Role,
        indices: torch.Tensor | None = None,
    ) -> None:
        """Add a batch of items.

        Args:
            codes: packed codes, ``uint8 (n, b/8)``.
            labels: multi-hot labels ``(n, c)`` (any dtype; non-zero = has the label).
            role: ``"query"`` or ``"database"``.
            indices: optional dataset indices ``(n,)`` of the items; give them for every batch of
                a role or for none. With indices the items of that role are sorted by index and
                repeated indices dropped before evaluation (deterministic under DDP).
        """
        if role not in _ROLES:
            raise ValueError(f"HashRetrievalMetric.update: role={role!r} must be one of {_ROLES}.")
        codes, labels = torch.as_tensor(codes), torch.as_tensor(labels)
        if codes.dtype != torch.uint8 or codes.ndim != 2:
            raise ValueError(
                "HashRetrievalMetric.update: codes must be packed uint8 (n, bits/8), got "
                f"{codes.dtype} {tuple(codes.shape)}; "
                "pack with hashbench.retrieval.codes.pack_bits."
            )
        if labels.ndim != 2 or labels.shape[0] != codes.shape[0]:
            raise ValueError(
                "HashRetrievalMetric.update: labels must be multi-hot (n, classes) with one row "
                f"per code, got {tuple(labels.shape)} for {codes.shape[0]} codes."
            )
        if indices is None:
            idx = torch.full((codes.shape[0],), -1, dtype=torch.int64, device=codes.device)
        else:
            idx = torch.as_tensor(indices).reshape(-1).to(device=codes.device, dtype=torch.int64)
            if idx.shape[0] != codes.shape[0] or (idx < 0).any():
                raise ValueError(
                    "HashRetrievalMetric.update: indices must be (n,) non-negative integers, one "
                    f"per code; got shape {tuple(idx.shape)} for {codes.shape[0]} codes."
                )
        getattr(self, f"{role}_codes").append(codes.detach())
        getattr(self, f"{role}_labels").append((labels.detach() != 0).to(torch.uint8))
        getattr(self, f"{role}_indices").append(idx)

    def codes(self, role: str) -> np.ndarray:
        """The packed codes added for ``role`` so far, in the order they were added (this process)."""
        chunks = getattr(self, f"{role}_codes")
        if isinstance(chunks, torch.Tensor):
            return chunks.cpu().numpy()
        if not chunks:
            return np.zeros((0, 0), np.uint8)
        return torch.cat([c.cpu() for c in chunks]).numpy()

    def _gather(self, role: str) -> tuple[np.ndarray, np.ndarray]:
        codes = getattr(self, f"{role}_codes")
        empty = len(codes) == 0 if isinstance(codes, list) else codes.numel() == 0
        if empty:
            raise RuntimeError(
                f"HashRetrievalMetric.compute: no {role} items were added; call "
                f"update(codes, labels, role={role!r}) before compute()."
            )
        codes = dim_zero_cat(codes).cpu().numpy()
        labels = dim_zero_cat(getattr(self, f"{role}_labels")).cpu().numpy()
        idx = dim_zero_cat(getattr(self, f"{role}_indices")).cpu().numpy()
        given = idx >= 0
        if given.all():
            _, keep = np.unique(idx, return_index=True)  # sorted by index, first occurrence
            codes, labels = codes[keep], labels[keep]
        elif given.any():
            raise RuntimeError(
                f"HashRetrievalMetric.compute: indices were given for some {role} batches but not "
                "others; pass indices to every update of a role or to none."
            )
        return codes, labels

    def _evaluate(self) -> dict:
        qc, ql = self._gather("query")
        dc, dl = self._gather("database")
        return evaluate(
            qc,
            dc,
            ql,
            dl,
            k=self.k,
            metrics=self.metrics,
            ties=self.ties,
            normalize=self.normalize,
            seed=self.seed,
            radius=self.radius,
            p_at_n=self.p_at_n,
            chunk_size=self.chunk_size,
            per_query=self.per_query,
        )

    def compute(self) -> dict[str, torch.Tensor]:
        """The scalar entries of :func:`~hashbench.retrieval.metrics.evaluate`, float64 tensors."""
        self._full = self._evaluate()
        return {
            key: torch.tensor(value, dtype=torch.float64, device=self.device)
            for key, value in self._full.items()
            if not isinstance(value, np.ndarray)
        }

    def compute_full(self) -> dict[str, Any]:
        """The whole :func:`~hashbench.retrieval.metrics.evaluate` dict, curves included (numpy)."""
        self.compute()  # goes through torchmetrics' wrapper: DDP sync and caching
        if self._full is None:  # compute() result was cached from before a state change
            self._full = self._evaluate()
        return dict(self._full)

    def reset(self) -> None:
        super().reset()
        self._full = None

    def forward(self, *args: Any, **kwargs: Any) -> None:
        """Same as :meth:`update`: a per-batch value is meaningless here (it needs both roles)."""
        self.update(*args, **kwargs)
