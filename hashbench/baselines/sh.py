"""Spectral hashing (SH).

Weiss, Torralba, Fergus, "Spectral Hashing", NIPS 2008. Follows the authors' ``trainSH.m`` /
``compressSH.m``.

Training (``trainSH.m``):

1. PCA to ``p = min(b, d)`` dimensions (training mean removed; the authors skip the centring because
   only ``x_k - mn_k`` is used below, so it makes no difference).
2. Per PCA dimension the bounding range ``[mn_k, mx_k]`` (``min - eps``, ``max + eps``),
   ``R_k = mx_k - mn_k``.
3. Candidate modes: the constant mode plus, for each dimension ``k``, the single-dimension
   frequencies ``j = 1 .. maxMode_k - 1`` with ``maxMode_k = ceil((b + 1) R_k / max_k R_k)``;
   mode ``(k, j)`` has ``omega = j pi / R_k`` and eigenvalue ``-omega^2``.
4. Sort by ``omega^2`` ascending (stable, ties in enumeration order: dimension-major, then ``j``)
   and keep the ``b`` modes after the constant one.

Encoding (``compressSH.m``): ``u_i(x) = prod_k sin(pi/2 + omega_{i,k} (x_k - mn_k))``, which for a
single-dimension mode is ``sin(pi/2 + omega (x_k - mn_k))``; bit ``i`` = ``1[u_i >= 0]``.

Resolved: the authors threshold with ``u > 0``; this suite's convention is ``>= 0`` (they differ
only on a measure-zero set). PCA eigenvector signs are fixed for reproducibility.
"""

from __future__ import annotations

import numpy as np

from hashbench.baselines.base import CHUNK_ROWS, Hasher, column_mean, covariance, top_eigh


def sh_modes(ranges: np.ndarray, bits: int) -> np.ndarray:
    """The ``trainSH.m`` mode selection: an integer ``(bits, p)`` matrix of frequencies.

    Args:
        ranges: ``R_k = mx_k - mn_k`` per PCA dimension, shape ``(p,)``.
        bits: Number of modes to keep.

    Returns:
        ``modes[i, k]`` = multiple ``j`` of ``pi / R_k`` of mode ``i`` along dimension ``k``
        (exactly one non-zero entry per row); rows ordered by increasing ``omega^2``.
    """
    ranges = np.asarray(ranges, dtype=np.float64)
    p = ranges.shape[0]
    max_mode = np.ceil((bits + 1) * ranges / ranges.max()).astype(np.int64)
    n_modes = int(max_mode.sum() - p + 1)
    modes = np.zeros((n_modes, p), dtype=np.int64)  # row 0: the constant mode
    m = 1
    for k in range(p):
        count = int(max_mode[k]) - 1
        modes[m : m + count, k] = np.arange(1, count + 1)
        m += count
    omegas = modes * (np.pi / ranges)[None, :]
    eig = np.sum(omegas**2, axis=1)
    order = np.argsort(eig, kind="stable")
    if n_modes - 1 < bits:  # cannot happen: the widest dimension alone offers `bits` modes
        raise RuntimeError(f"SH: only {n_modes - 1} modes for {bits} bits")
    return modes[order[1 : bits + 1]]


class SH(Hasher):
    """Spectral hashing with the analytical eigenfunctions of a uniform distribution on a box.

    Args:
        bits: Code length (positive multiple of 8). Works for any feature width ``d`` (PCA to
            ``min(bits, d)`` dimensions; several modes may share one dimension).
        random_state: Unused (SH is deterministic); kept for the common interface.

    Attributes:
        mean_: Training mean ``(d,)``.
        components_: PCA directions ``(d, p)``, ``p = min(bits, d)``.
        mn_: Lower box corner per PCA dimension ``(p,)`` (``min - eps``).
        mx_: Upper box corner ``(p,)`` (``max + eps``).
        modes_: Integer modes ``(bits, p)`` from :func:`sh_modes`.
        omegas_: Angular frequencies ``modes_ * pi / (mx_ - mn_)`` ``(bits, p)``.
    """

    def __init__(self, bits: int = 32, random_state: int | None = 0) -> None:
        super().__init__(bits=bits, random_state=random_state)

    def _fit(self, X: np.ndarray, Y: np.ndarray | None) -> None:
        p = min(self.bits, X.shape[1])
        self.mean_ = column_mean(X)
        _, V = top_eigh(covariance(X, self.mean_), p)
        self.components_ = V.astype(np.float32)
        lo = np.full(p, np.inf)
        hi = np.full(p, -np.inf)
        for s in range(0, X.shape[0], CHUNK_ROWS):
            Z = (X[s : s + CHUNK_ROWS] - self.mean_) @ self.components_
            lo = np.minimum(lo, Z.min(axis=0))
            hi = np.maximum(hi, Z.max(axis=0))
        eps = np.finfo(np.float64).eps
        self.mn_ = lo - eps
        self.mx_ = hi + eps
        ranges = self.mx_ - self.mn_
        self.modes_ = sh_modes(ranges, self.bits)
        self.omegas_ = self.modes_ * (np.pi / ranges)[None, :]

    def _project(self, X: np.ndarray) -> np.ndarray:
        # every mode lives on one PCA dimension, so the product over dimensions in compressSH.m
        # reduces to one sine per bit (the other factors are sin(pi/2) = 1)
        dims = np.argmax(self.modes_ > 0, axis=1)
        omega = self.omegas_[np.arange(self.bits), dims]
        Z = ((X - self.mean_) @ self.components_).astype(np.float64)
        return np.sin(np.pi / 2 + (Z[:, dims] - self.mn_[dims]) * omega).astype(np.float32)
