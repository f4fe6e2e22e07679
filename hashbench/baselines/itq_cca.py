"""ITQ on CCA directions (CCA-ITQ), the supervised variant of iterative quantization.

Gong, Lazebnik, "Iterative Quantization: A Procrustean Approach to Learning Binary Codes", CVPR 2011
(Sec. 4, CCA-ITQ); Gong, Lazebnik, Gordo, Perronnin, TPAMI 2013. Follows the authors' ``cca.m`` and
their usage ``W = W(:, 1:b) * diag(r(1:b))`` ("this performs a scaling using eigenvalues").

Formula: with ``X`` the centred features and ``Y`` the multi-hot label matrix,
``Cxx = cov(X) + reg I``, ``Cyy = cov(Y) + reg I``, ``Cxy = cov(X, Y)`` (``reg = 1e-4`` as the
authors); the CCA directions ``w`` solve ``Cxx^{-1} Cxy Cyy^{-1} Cyx w = r^2 w`` with
``w^T Cxx w = 1``, ``r`` the canonical correlations in decreasing order. Embedding
``V = X [w_1 r_1, ..., w_b r_b]``; then the ITQ rotation (50 iterations) as in :mod:`.itq`;
bits ``1[(x - mu) W R >= 0]``.

Resolved: ``cca.m`` takes the eigendecomposition of the ``d x d`` matrix
``Z = Rx^{-T} Cxy Cyy^{-1} Cyx Rx^{-1}`` (``Cxx = Rx^T Rx``, Cholesky). ``Z = (M G)(M G)^T`` with
``M = Rx^{-T} Cxy`` and ``G = Cyy^{-1/2}``, so its non-zero eigenpairs come from the thin SVD of the
``d x c`` matrix ``M G`` (same directions, far cheaper for ``d = 4096``). ``Z`` has rank at most
``c``; when ``b`` exceeds that rank the remaining directions have ``r = 0`` and, scaled by ``r``,
contribute zero columns (``cca.m`` gives arbitrary null-space vectors scaled by ``~1e-8``, i.e. the
same up to rounding). The "eigenvalues" used for scaling are ``r = sqrt(lambda)``, as in ``cca.m``.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cholesky, solve_triangular

from hashbench.baselines.base import CHUNK_ROWS, Hasher, column_mean, covariance
from hashbench.baselines.itq import itq_rotation


def cca_directions(
    X: np.ndarray, Y: np.ndarray, k: int, reg: float = 1e-4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``k`` CCA directions of ``X`` against ``Y``.

    Args:
        X: Features ``(n, d)`` ``float32`` (not necessarily centred).
        Y: Label matrix ``(n, c)``.
        k: Number of directions.
        reg: Ridge added to both covariance matrices.

    Returns:
        ``(mean_x (d,), W (d, k), r (k,))``: directions normalised to ``w^T Cxx w = 1``
        (``float64``)
        and canonical correlations in decreasing order (zero-padded beyond the rank).
    """
    n, d = X.shape
    mx = column_mean(X)
    Yd = Y.astype(np.float64)
    my = Yd.mean(axis=0)
    Cxx = covariance(X, mx)
    Cxx[np.diag_indices(d)] += reg
    Cxy = np.zeros((d, Y.shape[1]), dtype=np.float64)
    for s in range(0, n, CHUNK_ROWS):
        Yc = (Yd[s : s + CHUNK_ROWS] - my).astype(np.float32)
        Cxy += (X[s : s + CHUNK_ROWS] - mx).T @ Yc  # float32 GEMM, float64 accumulation
    Cxy /= max(n - 1, 1)
    Yc = Yd - my
    Cyy = Yc.T @ Yc / max(n - 1, 1)
    Cyy[np.diag_indices(Cyy.shape[0])] += reg
    ev, Q = np.linalg.eigh(Cyy)
    G = (Q / np.sqrt(ev)) @ Q.T  # Cyy^{-1/2}
    Rx = cholesky(Cxx, lower=False)  # Cxx = Rx^T Rx
    M = solve_triangular(Rx, Cxy, trans="T", lower=False)  # Rx^{-T} Cxy
    U, s, _ = np.linalg.svd(M @ G, full_matrices=False)
    W = np.zeros((d, k), dtype=np.float64)
    r = np.zeros(k, dtype=np.float64)
    q = min(k, s.shape[0])
    W[:, :q] = solve_triangular(Rx, U[:, :q], lower=False)  # Rx^{-1} U
    r[:q] = s[:q]
    W = W * np.where(r > 0, 1.0, 0.0)  # directions beyond the rank are undefined: zero them
    return mx, W, r


class ITQCCA(Hasher):
    """CCA embedding (directions scaled by their canonical correlations) followed by ITQ.

    Args:
        bits: Code length (positive multiple of 8).
        n_iter: ITQ iterations (50 as the authors).
        reg: Ridge on ``Cxx`` and ``Cyy`` (``1e-4`` as the authors' ``cca.m`` usage).
        random_state: Seed of ITQ's random orthogonal initialisation.

    Attributes:
        mean_: Training feature mean ``(d,)``.
        cca_components_: CCA directions scaled by ``r`` ``(d, bits)``.
        correlations_: Canonical correlations ``r`` ``(bits,)`` (zero beyond the rank).
        rotation_: ITQ rotation ``(bits, bits)``.
        components_: ``cca_components_ @ rotation_`` ``(d, bits)``.
        loss_history_: ITQ quantisation loss per iteration ``(n_iter,)``.
    """

    supervised = True

    def __init__(
        self, bits: int = 32, n_iter: int = 50, reg: float = 1e-4, random_state: int | None = 0
    ) -> None:
        super().__init__(bits=bits, random_state=random_state)
        if n_iter < 1:
            raise ValueError(f"ITQCCA: n_iter must be >= 1, got {n_iter}")
        if reg <= 0:
            raise ValueError(f"ITQCCA: reg must be > 0, got {reg}")
        self.n_iter = int(n_iter)
        self.reg = float(reg)

    def _fit(self, X: np.ndarray, Y: np.ndarray | None) -> None:
        assert Y is not None
        self.mean_, W, self.correlations_ = cca_directions(X, Y, self.bits, self.reg)
        W = W * self.correlations_[None, :]
        self.cca_components_ = W.astype(np.float32)
        V = np.empty((X.shape[0], self.bits), dtype=np.float32)
        for s in range(0, X.shape[0], CHUNK_ROWS):
            V[s : s + CHUNK_ROWS] = (X[s : s + CHUNK_ROWS] - self.mean_) @ self.cca_components_
        R, self.loss_history_ = itq_rotation(V, self.n_iter, self._rng())
        self.rotation_ = R.astype(np.float32)
        self.components_ = (W @ R).astype(np.float32)

    def _project(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) @ self.components_
