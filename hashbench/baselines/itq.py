"""Iterative quantization (ITQ) on PCA-projected data.

Gong, Lazebnik, "Iterative Quantization: A Procrustean Approach to Learning Binary Codes",
CVPR 2011; Gong, Lazebnik, Gordo, Perronnin, "Iterative Quantization: A Procrustean Approach to
Learning Binary Codes for Large-Scale Image Retrieval", TPAMI 2013. Follows the authors' ``ITQ.m``.

Formula: centre; ``V = (X - mu) W_pca`` (``n x b``); ``R`` a random orthogonal ``b x b`` matrix
(left singular vectors of a Gaussian matrix); repeat ``n_iter`` (50) times:
``B = sign(V R)`` (``+1`` where ``V R >= 0``), SVD ``B^T V = S Omega S_hat^T``, ``R = S_hat S^T``.
The quantisation loss ``Q(B, R) = ||B - V R||_F^2`` never increases: each step minimises ``Q`` over
one block with the other fixed. Bits ``1[(x - mu) W_pca R >= 0]``.

Resolved: ``ITQ.m`` loops ``iter = 0 .. n_iter`` (``n_iter + 1`` updates); here exactly ``n_iter``
updates (the brief's "50 iterations"). ``loss_history_[t]`` is ``Q(B_t, R_t)`` measured right after
the ``t``-th B-step, before the ``t``-th rotation update.
"""

from __future__ import annotations

import numpy as np

from hashbench.baselines.base import CHUNK_ROWS, Hasher, blas_single_thread, pca


def random_rotation(rng: np.random.Generator, b: int) -> np.ndarray:
    """Random orthogonal ``b x b`` matrix: left singular vectors of an i.i.d. Gaussian matrix."""
    U, _, _ = np.linalg.svd(rng.standard_normal((b, b)))
    return U


def itq_rotation(
    V: np.ndarray, n_iter: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Learn the ITQ rotation of an embedding.

    Args:
        V: Centred embedding ``(n, b)`` ``float32``.
        n_iter: Number of (B-step, R-step) alternations.
        rng: Source of the random orthogonal initialisation.

    Returns:
        ``(R, loss_history)``: orthogonal ``R`` ``(b, b)`` ``float64`` after ``n_iter`` updates, and
        ``Q(B_t, R_t) = ||B_t - V R_t||_F^2`` for ``t = 0 .. n_iter - 1`` (non-increasing).
    """
    b = V.shape[1]
    R = random_rotation(rng, b)
    losses = np.empty(n_iter, dtype=np.float64)
    with blas_single_thread():  # thin (n x b) products: threads cost more than they save
        for t in range(n_iter):
            Z = V @ R.astype(np.float32)
            B = np.where(Z >= 0, np.float32(1.0), np.float32(-1.0))
            losses[t] = np.sum((B - Z).astype(np.float64) ** 2)
            C = (B.T @ V).astype(np.float64)  # b x b
            U, _, Vt = np.linalg.svd(C)  # C = U diag(s) Vt  ->  S = U, S_hat = Vt^T
            R = Vt.T @ U.T
    return R, losses


class ITQ(Hasher):
    """PCA followed by the ITQ rotation minimising the quantisation loss.

    Args:
        bits: Code length (positive multiple of 8); needs ``bits <= d``.
        n_iter: Number of ITQ alternations (the paper and ``ITQ.m`` use 50).
        random_state: Seed of the random orthogonal initialisation.

    Attributes:
        mean_: Training mean ``(d,)``.
        pca_components_: Top-``bits`` principal directions ``(d, bits)``.
        rotation_: Learned orthogonal ``R`` ``(bits, bits)``.
        components_: ``pca_components_ @ rotation_`` ``(d, bits)`` (orthonormal columns spanning
            the principal subspace).
        loss_history_: Quantisation loss per iteration ``(n_iter,)``, non-increasing.
    """

    def __init__(self, bits: int = 32, n_iter: int = 50, random_state: int | None = 0) -> None:
        super().__init__(bits=bits, random_state=random_state)
        if n_iter < 1:
            raise ValueError(f"ITQ: n_iter must be >= 1, got {n_iter}")
        self.n_iter = int(n_iter)

    def _fit(self, X: np.ndarray, Y: np.ndarray | None) -> None:
        self.mean_, self.pca_components_, _ = pca(X, self.bits, f"{type(self).__name__}.fit")
        V = np.empty((X.shape[0], self.bits), dtype=np.float32)
        for s in range(0, X.shape[0], CHUNK_ROWS):
            V[s : s + CHUNK_ROWS] = (X[s : s + CHUNK_ROWS] - self.mean_) @ self.pca_components_
        R, self.loss_history_ = itq_rotation(V, self.n_iter, self._rng())
        self.rotation_ = R.astype(np.float32)
        self.components_ = (self.pca_components_.astype(np.float64) @ R).astype(np.float32)

    def _project(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) @ self.components_
