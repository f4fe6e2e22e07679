"""KNN-graph similarity (survey section 4.3.1-2; METHODS.md method 1, seed 000 eqs. 2-4 and 9).

The neighbourhood structure is computed once on the training set's features with Faiss and
kept sparse (a sorted key per +1 pair); a batch looks its pairs up. No ``n x n`` matrix is built.

Rule (with ``K1NN(i)``, ``K2NN(i)`` the ``K1``/``K2`` nearest neighbours of ``i`` by cosine
similarity, self excluded)::

    M[i, j] = +1  if  j in K1NN(i)  or  j in K1NN(p) for some p in K2NN(i)
    M[i, j] = -1  otherwise

Resolved: an item is not its own neighbour in the k-NN lists (Faiss returns it first; it is
dropped and one more neighbour taken), so self is never *listed*; but the lookup
:func:`neighbourhood_matrix` returns ``M[i, i] = +1`` for the same index on both sides (an item is
similar to itself), and the within-batch loss skips the ``i = i`` pairs anyway. ``M`` is not
symmetric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hashbench.losses.base import (
    PairwiseTerm,
    Reduction,
    check_codes,
    pair_mask,
)


@dataclass(frozen=True)
class KNNNeighbourhood:
    """Sparse KNN neighbourhood of ``num_items`` items.

    Attributes:
        num_items: ``n``.
        k1: ``K1``.
        k2: ``K2``.
        knn1: ``(n, k1)`` int64, the ``K1`` nearest neighbours of each item, nearest first, self
            excluded.
        knn2: ``(n, k2)`` int64, the ``K2`` nearest neighbours (the first ``k2`` of the same
            ranking).
        keys: sorted int64 ``i * n + j`` for every pair with ``M[i, j] = +1``, ``j != i``.
    """

    num_items: int
    k1: int
    k2: int
    knn1: Tensor
    knn2: Tensor
    keys: Tensor

    @property
    def nnz(self) -> int:
        """Number of ``+1`` pairs (off the diagonal)."""
        return int(self.keys.numel())

    @property
    def device(self) -> torch.device:
        return self.keys.device

    def to(self, device: torch.device | str) -> KNNNeighbourhood:
        """A copy whose tensors live on ``device``."""
        return KNNNeighbourhood(
            self.num_items,
            self.k1,
            self.k2,
            self.knn1.to(device),
            self.knn2.to(device),
            self.keys.to(device),
        )

    def neighbours_of(self, i: int) -> Tensor:
        """Sorted indices ``j != i`` with ``M[i, j] = +1``."""
        n = self.num_items
        bounds = torch.tensor([i * n, (i + 1) * n], dtype=torch.int64, device=self.keys.device)
        lo, hi = torch.searchsorted(self.keys, bounds).tolist()
        return self.keys[lo:hi] - i * n


def _as_float32(features: np.ndarray | Tensor) -> np.ndarray:
    if isinstance(features, Tensor):
        features = features.detach().cpu().numpy()
    x = np.asarray(features, dtype=np.float32)
    if x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"`features` must be a 2-d (items, dims) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("`features` contain NaN or inf; clean the feature cache before the k-NN")
    return x


def knn_lists(features: np.ndarray | Tensor, k: int) -> np.ndarray:
    """The ``k`` nearest neighbours of every item by cosine similarity, self excluded.

    Exact search (Faiss ``IndexFlatIP``) on L2-normalised features (all-zero rows stay zero).

    Args:
        features: ``(n, d)`` array or tensor.
        k: number of neighbours, ``1 <= k <= n - 1``.

    Returns:
        ``(n, k)`` int64 array, nearest first.
    """
    import faiss  # local import: only the KNN construction needs it

    x = _as_float32(features)
    n = x.shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"k={k} nearest neighbours need 1 <= k <= n - 1 = {n - 1} items")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    _, found = index.search(x, k + 1)
    found = found.astype(np.int64)
    # drop self wherever Faiss returned it (ties may put it anywhere), else the (k+1)-th hit
    is_self = found == np.arange(n)[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")
    return np.take_along_axis(found, order, axis=1)[:, :k]


def knn_neighbourhood(features: np.ndarray | Tensor, k1: int = 20, k2: int = 5) -> KNNNeighbourhood:
    """KNN neighbourhood of seed 000 (eqs. 2-4) / survey section 4.3.1-2, stored sparse.

    ``M[i, j] = +1`` iff ``j in K1NN(i)`` or ``j in K1NN(p)`` for some ``p in K2NN(i)``; neighbours
    by cosine similarity (Faiss exact inner product on L2-normalised features), self excluded from
    every list (see the module docstring for ``M[i, i]``). Peng, Wu, Zi, *Laser & Optoelectronics
    Progress* 55(10), 2018; He, thesis, UESTC 2018 (survey ref. [65]).

    Args:
        features: ``(n, d)`` features of the training set (array or tensor).
        k1: ``K1``, neighbours taken directly and from each ``K2``-neighbour.
        k2: ``K2``, neighbours whose ``K1``-lists are merged in (0 for ``M1`` alone).

    Returns:
        The neighbourhood, tensors on the CPU.
    """
    x = _as_float32(features)
    n = x.shape[0]
    if k1 < 1 or k2 < 0:
        raise ValueError(f"need k1 >= 1 and k2 >= 0, got k1={k1}, k2={k2}")
    if max(k1, k2) > n - 1:
        raise ValueError(f"k1={k1}, k2={k2} need at least {max(k1, k2) + 1} items, got {n}")
    ranked = knn_lists(x, max(k1, k2))
    knn1 = ranked[:, :k1]
    knn2 = ranked[:, :k2]
    rows = np.arange(n, dtype=np.int64)[:, None]
    cand = np.concatenate([knn1, knn1[knn2].reshape(n, k2 * k1)], axis=1)
    keys = rows * n + cand
    keys = np.unique(keys[cand != rows])
    return KNNNeighbourhood(
        num_items=n,
        k1=k1,
        k2=k2,
        knn1=torch.from_numpy(np.ascontiguousarray(knn1)),
        knn2=torch.from_numpy(np.ascontiguousarray(knn2)),
        keys=torch.from_numpy(keys),
    )


def _as_index(
    idx: Tensor | np.ndarray | list[int], n: int, name: str, device: torch.device
) -> Tensor:
    t = torch.as_tensor(idx, device=device)
    if t.ndim != 1 or t.is_floating_point() or t.dtype == torch.bool:
        raise ValueError(f"`{name}` must be a 1-d integer tensor of dataset indices")
    t = t.to(torch.int64)
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n):
        raise ValueError(f"`{name}` holds indices outside [0, {n}) of the neighbourhood's items")
    return t


def neighbourhood_matrix(
    neighbours: KNNNeighbourhood,
    idx_a: Tensor | np.ndarray | list[int],
    idx_b: Tensor | np.ndarray | list[int],
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``M[idx_a][:, idx_b]`` of a sparse neighbourhood, as a dense ``(len a, len b)`` +-1 tensor.

    ``M[i, i] = +1`` for equal indices. The result lives on ``idx_a``'s device (the neighbourhood is
    moved there if needed; keep it there with :meth:`KNNNeighbourhood.to`).

    Args:
        neighbours: output of :func:`knn_neighbourhood`.
        idx_a: dataset indices of the rows.
        idx_b: dataset indices of the columns.
        dtype: floating dtype of the result.
    """
    device = idx_a.device if isinstance(idx_a, Tensor) else neighbours.device
    n = neighbours.num_items
    a = _as_index(idx_a, n, "idx_a", device)
    b = _as_index(idx_b, n, "idx_b", device)
    keys = neighbours.keys.to(device)
    query = a[:, None] * n + b[None, :]
    if keys.numel():
        pos = torch.searchsorted(keys, query).clamp_max(keys.numel() - 1)
        found = keys[pos] == query
    else:
        found = torch.zeros_like(query, dtype=torch.bool)
    found |= a[:, None] == b[None, :]
    one = torch.ones((), dtype=dtype, device=device)
    return torch.where(found, one, -one)


class KNNGraphLoss(PairwiseTerm):
    """KNN-graph similarity preservation (survey section 4.3.1-2; seed 000 eq. 9).

    ``L_N = 1/2 sum_{i,j in batch} ((1/q) h_i^T h_j - M_ij)^2`` with ``M`` the +-1 KNN
    neighbourhood of :func:`knn_neighbourhood` (Peng, Wu, Zi, *Laser & Optoelectronics Progress*
    55(10), 2018; survey ref. [64]). ``index`` holds the batch items' dataset indices; ``M`` is
    looked up for the batch's pairs, never built for the training set.

    Call :meth:`build` with the training set's features (or :meth:`set_neighbourhood`) before the
    first forward; the neighbourhood is not part of the ``state_dict`` (rebuild it in ``setup``).

    Resolved: the ``i = j`` pairs of the batch are skipped (``M_ii`` carries no neighbourhood
    information); against a second set (``h_other``, ``index_other``, e.g. a memory bank) all
    ``n x m`` pairs count, same-index pairs with ``M = +1``.

    Reduction: ``1/2 (.)^2`` averaged over the ordered pairs ``i != j`` of the batch (default), or
    summed (``reduction="sum"``: seed 000's eq. 9 on the batch).

    Args:
        k1: ``K1`` used by :meth:`build`.
        k2: ``K2`` used by :meth:`build`.
        reduction: ``"mean"`` or ``"sum"`` over pairs.
    """

    inputs = ("h", "index")
    optional_inputs = ("h_other", "index_other")
    equation = "KNN"

    def __init__(self, k1: int = 20, k2: int = 5, reduction: Reduction = "mean") -> None:
        if k1 < 1 or k2 < 0:
            raise ValueError(f"need k1 >= 1 and k2 >= 0, got k1={k1}, k2={k2}")
        k1, k2 = int(k1), int(k2)
        super().__init__(reduction)
        self.k1 = k1
        self.k2 = k2
        self.neighbourhood: KNNNeighbourhood | None = None

    def build(self, features: np.ndarray | Tensor) -> KNNGraphLoss:
        """Compute the neighbourhood of the training set's ``(n, d)`` features; returns ``self``."""
        self.neighbourhood = knn_neighbourhood(features, self.k1, self.k2)
        return self

    def set_neighbourhood(self, neighbourhood: KNNNeighbourhood) -> KNNGraphLoss:
        """Use a precomputed neighbourhood; returns ``self``."""
        self.neighbourhood = neighbourhood
        return self

    def forward(
        self,
        h: Tensor,
        index: Tensor,
        h_other: Tensor | None = None,
        index_other: Tensor | None = None,
    ) -> Tensor:
        check_codes(h)
        if self.neighbourhood is None:
            raise RuntimeError(
                "KNNGraphLoss has no neighbourhood: call .build(train_features) (or "
                ".set_neighbourhood(knn_neighbourhood(...))) before training"
            )
        if self.neighbourhood.device != h.device:
            self.neighbourhood = self.neighbourhood.to(h.device)
        if index.shape[0] != h.shape[0]:
            raise ValueError(f"`index` must hold one dataset index per row of `h` ({h.shape[0]})")
        if h_other is None:
            h_b, index_b, same = h, index, True
        else:
            if index_other is None:
                raise ValueError("with `h_other`, pass `index_other` (its dataset indices)")
            check_codes(h_other, "h_other")
            if index_other.shape[0] != h_other.shape[0]:
                raise ValueError("`index_other` must hold one dataset index per row of `h_other`")
            h_b, index_b, same = h_other, index_other, False
        m = neighbourhood_matrix(
            self.neighbourhood, index.to(h.device), index_b.to(h.device), h.dtype
        )
        return self.pair_loss(h, h_b, m, pair_mask(h.shape[0], h_b.shape[0], same, h.device))

    def pair_values(self, h: Tensor, h_b: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        """``1/2 ((1/q) h_i^T h_j - M_ij)^2`` with ``sim`` the +-1 neighbourhood ``M``."""
        return 0.5 * ((h @ h_b.T) / h.shape[1] - sim).pow(2)


__all__ = [
    "KNNGraphLoss",
    "KNNNeighbourhood",
    "knn_lists",
    "knn_neighbourhood",
    "neighbourhood_matrix",
]
