"""The shallow-baseline estimator interface and the linear-algebra helpers the baselines share.

Every baseline is a :class:`Hasher`: ``fit(X, y=None) -> self``, ``project(X)`` (real values before
thresholding, ``(n, bits)`` ``float32``) and ``encode(X)`` (packed ``uint8`` codes,
``pack_bits(project(X) >= 0)``, see ``hashbench/retrieval/codes.py``). Constructor arguments are the
configuration; fitted state lives in trailing-underscore attributes; every random draw comes from
``numpy.random.default_rng(random_state)``.

Scale: inputs are ``float32``; large products are computed in row chunks (:data:`CHUNK_ROWS`) so
that no ``n x n`` matrix and no second full-size copy of ``X`` is ever made. Small matrices
(``d x d`` covariances, ``m x m`` kernels on anchors, ``bits x bits`` rotations) are decomposed in
``float64`` for numerical stability and the results cast back to ``float32``.
"""

from __future__ import annotations

import contextlib
from typing import ClassVar

import numpy as np

from hashbench.retrieval.codes import check_bits, pack_bits

#: Rows per block in chunked products (8192 x 4096 float32 = 128 MiB).
CHUNK_ROWS = 8192


class NotFittedError(RuntimeError):
    """A :class:`Hasher` was used (``project`` / ``encode``) before ``fit``."""


class Hasher:
    """Base class of the shallow hashing baselines (sklearn-style estimator).

    Subclasses implement ``_fit(X, Y)`` (``X`` validated ``float32 (n, d)``; ``Y`` validated
    ``float32 (n, c)`` multi-hot labels or ``None``) and ``_project(X)`` (``(n, bits)`` real
    values).

    Args:
        bits: Code length; a positive multiple of 8 (checked at construction).
        random_state: Seed of every random draw (``numpy.random.default_rng``); ``None`` draws fresh
            entropy (non-reproducible).

    Attributes:
        n_features_in_: Feature width seen by ``fit``; ``project`` rejects any other width.
    """

    #: Whether ``fit`` requires labels ``y``.
    supervised: ClassVar[bool] = False

    def __init__(self, bits: int = 32, random_state: int | None = 0) -> None:
        self.bits = check_bits(bits)
        if random_state is not None and (
            isinstance(random_state, bool) or not isinstance(random_state, int | np.integer)
        ):
            raise ValueError(
                f"{type(self).__name__}: random_state must be an int seed or None, "
                f"got {random_state!r}"
            )
        self.random_state = random_state

    # ------------------------------------------------------------------ public API
    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Hasher:
        """Learn the hash functions.

        Args:
            X: Training features ``(n, d)``; converted to ``float32``.
            y: Multi-hot labels ``(n, c)`` (single-label data one-hot). Required by supervised
                baselines, ignored by unsupervised ones.

        Returns:
            ``self``, fitted.
        """
        X = self._check_X(X, "fit")
        Y = None
        if self.supervised:
            Y = self._check_y(y, X.shape[0])
        self.n_features_in_ = int(X.shape[1])
        self._fit(X, Y)
        return self

    def project(self, X: np.ndarray) -> np.ndarray:
        """Real values before thresholding: ``float32 (n, bits)``; bit = ``1[value >= 0]``."""
        self._check_fitted()
        X = self._check_X(X, "project")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"{type(self).__name__}.project: X has {X.shape[1]} features but the hasher was "
                f"fitted on {self.n_features_in_}; pass features of the same width as in fit "
                f"(expected {self.n_features_in_}, got {X.shape[1]})."
            )
        out = np.empty((X.shape[0], self.bits), dtype=np.float32)
        for s in range(0, X.shape[0], CHUNK_ROWS):
            out[s : s + CHUNK_ROWS] = self._project(X[s : s + CHUNK_ROWS])
        return out

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Packed codes ``uint8 (n, bits / 8)``: ``pack_bits(project(X) >= 0)``."""
        return pack_bits(self.project(X) >= 0)

    def fit_encode(self, X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """``fit(X, y)`` then ``encode(X)``."""
        return self.fit(X, y).encode(X)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ to implement
    def _fit(self, X: np.ndarray, Y: np.ndarray | None) -> None:
        raise NotImplementedError

    def _project(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.random_state)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet: call fit(X"
                f"{', y' if self.supervised else ''}) before project() or encode()."
            )

    def _check_X(self, X: np.ndarray, where: str) -> np.ndarray:
        name = f"{type(self).__name__}.{where}"
        if hasattr(X, "detach"):  # torch.Tensor
            X = X.detach().cpu().numpy()
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(
                f"{name}: X must be a 2-d (samples, features) array, got shape {X.shape}; "
                "reshape single samples with X.reshape(1, -1)."
            )
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"{name}: X is empty (shape {X.shape}).")
        if not (
            np.issubdtype(X.dtype, np.floating)
            or np.issubdtype(X.dtype, np.integer)
            or X.dtype == bool
        ):
            raise ValueError(f"{name}: X must be numeric, got dtype {X.dtype}.")
        X = np.ascontiguousarray(X, dtype=np.float32)
        if not np.isfinite(X).all():
            raise ValueError(
                f"{name}: X contains NaN or infinite values; clean the features first."
            )
        return X

    def _check_y(self, y: np.ndarray | None, n: int) -> np.ndarray:
        name = f"{type(self).__name__}.fit"
        if y is None:
            raise ValueError(
                f"{name}: {type(self).__name__} is supervised and needs labels: call fit(X, y) "
                "with y a multi-hot (n, c) label matrix (one-hot for single-label data)."
            )
        if hasattr(y, "detach"):
            y = y.detach().cpu().numpy()
        y = np.asarray(y)
        if y.ndim != 2:
            raise ValueError(
                f"{name}: y must be a multi-hot (n, c) label matrix, got shape {y.shape}; "
                "one-hot encode class indices first, e.g. y = np.eye(num_classes)[labels]."
            )
        if y.shape[0] != n:
            raise ValueError(f"{name}: y has {y.shape[0]} rows but X has {n}; they must match.")
        Y = y.astype(np.float32)
        if not np.isin(Y, (0.0, 1.0)).all():
            raise ValueError(
                f"{name}: y must be multi-hot (entries 0/1 or bool), got values outside {{0, 1}}."
            )
        return np.ascontiguousarray(Y)


# ---------------------------------------------------------------------- shared helpers
def column_mean(X: np.ndarray) -> np.ndarray:
    """Per-feature mean of ``X`` accumulated in ``float64`` over row chunks; returns ``float32``."""
    total = np.zeros(X.shape[1], dtype=np.float64)
    for s in range(0, X.shape[0], CHUNK_ROWS):
        total += X[s : s + CHUNK_ROWS].sum(axis=0, dtype=np.float64)
    return (total / X.shape[0]).astype(np.float32)


def covariance(X: np.ndarray, mean: np.ndarray, ddof: int = 1) -> np.ndarray:
    """Covariance ``(X - mean)^T (X - mean) / (n - ddof)`` as ``float64 (d, d)``, in row chunks."""
    d = X.shape[1]
    C = np.zeros((d, d), dtype=np.float64)
    for s in range(0, X.shape[0], CHUNK_ROWS):
        Xc = X[s : s + CHUNK_ROWS] - mean
        C += Xc.T @ Xc  # float32 GEMM, accumulated in float64 across chunks
    return C / max(X.shape[0] - ddof, 1)


def fix_signs(V: np.ndarray) -> np.ndarray:
    """Flip each column so its largest-magnitude entry is positive (deterministic eigenvectors)."""
    idx = np.argmax(np.abs(V), axis=0)
    signs = np.sign(V[idx, np.arange(V.shape[1])])
    signs[signs == 0] = 1.0
    return V * signs


def top_eigh(C: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` eigenpairs of a symmetric matrix: ``(values desc (k,), vectors (d, k))``.

    Small or dense requests use LAPACK's full divide-and-conquer ``eigh``; for ``k << d`` (e.g. 64
    of 4096) Lanczos (ARPACK ``eigsh``, machine-precision tolerance, fixed start vector) is several
    times faster. Either way the eigenvector signs are fixed by :func:`fix_signs`.
    """
    from scipy.linalg import eigh
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    d = C.shape[0]
    if d >= 256 and k <= d // 8:
        v0 = np.random.default_rng(0).standard_normal(d)
        try:
            w, V = eigsh(C, k=k, which="LA", v0=v0, tol=0)
        except ArpackNoConvergence:  # pragma: no cover - fall back to the dense solver
            w, V = eigh(C, driver="evd")
    else:
        w, V = eigh(C, driver="evd")
    order = np.argsort(w)[::-1][:k]
    return w[order], fix_signs(V[:, order])


def pca(X: np.ndarray, k: int, who: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Principal components: ``(mean (d,) f32, components (d, k) f32, variances (k,) f64)``.

    The covariance is the sample covariance (``n - 1``, as MATLAB's ``cov`` in the authors' code).
    """
    if k > X.shape[1]:
        raise ValueError(
            f"{who}: bits={k} needs at least {k} feature dimensions for {k} principal directions, "
            f"but X has {X.shape[1]}; use fewer bits or a wider feature."
        )
    mean = column_mean(X)
    w, V = top_eigh(covariance(X, mean), k)
    return mean, V.astype(np.float32), w


def sq_distances(X: np.ndarray, A: np.ndarray, A_sq: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances ``(n, m)`` between rows of ``X`` and of ``A`` (clipped >= 0)."""
    if A_sq is None:
        A_sq = np.einsum("ij,ij->i", A, A)
    X_sq = np.einsum("ij,ij->i", X, X)
    D = X @ A.T
    D *= -2.0
    D += X_sq[:, None]
    D += A_sq[None, :]
    np.maximum(D, 0.0, out=D)
    return D


def blas_single_thread() -> contextlib.AbstractContextManager:
    """Limit BLAS to one thread inside loops of many small products.

    Multi-threaded OpenBLAS spends more time synchronising than computing on ``2000 x 300``
    mat-vecs, and degrades badly when the cores are shared; the big products stay outside such
    blocks. Uses ``threadpoolctl`` when installed (it comes with scikit-learn), else does nothing.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def sample_rows(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """Sorted indices of ``min(m, n)`` distinct rows drawn uniformly from ``n``."""
    return np.sort(rng.choice(n, size=min(m, n), replace=False))
