"""Spherical hashing (SpH).

Heo, Lee, He, Chang, Yoon, "Spherical Hashing", CVPR 2012. Training follows the paper's Sec. 3.3
and the MATLAB port of the authors' procedure (``SphericalHashing.m``, "Spherical Hashing method by
Jae-Pil Heo", in Deng Cai's MatlabFunc collection) for the details the paper leaves open.

Hash functions: ``b`` hyperspheres (pivot ``p_k``, radius ``t_k``); bit ``k`` =
``1[d(p_k, x) <= t_k]`` (inside the sphere); ``project`` returns ``t_k - ||x - p_k||``, so that
bit = ``1[value >= 0]``.

Training on a random subset ``S`` of ``m`` training points:

- pivots initialised as the means of 5 random points of ``S`` (MATLAB port);
- given pivots, each radius is the ``floor(m/2)``-th smallest distance to ``S`` so that
  ``o_k = |{s: h_k(s) = 1}| = m/2`` (balance);
- overlaps ``o_ij = |{s: h_i(s) = h_j(s) = 1}|``, target ``m/4`` (pairwise independence);
- force-based update, all pivots at once:
  ``f_{i<-j} = 1/2 (o_ij - m/4) / (m/4) (p_i - p_j)``, ``p_i <- p_i + (1/b) sum_j f_{i<-j}``;
- stop when ``mean_{i<j} |o_ij - m/4| <= eps_m m/4`` and ``std_{i<j}(o_ij) <= eps_s m/4`` with the
  paper's tolerances ``eps_m = 0.1``, ``eps_s = 0.15``.

Retrieval uses plain Hamming distance on the codes (BASELINES.md); the paper's spherical Hamming
distance ``|a xor b| / |a and b|`` is available as :func:`spherical_hamming_distances`.

Interpretation: the paper trains on a random subset of the training set without fixing its size for
every dataset; ``n_samples`` (default 20,000) caps it. The MATLAB loop has no iteration cap;
``max_iter`` (default 100) stops it with a ``UserWarning`` if the tolerances are not met. The
standard deviation is that of ``o_ij`` (population std), as in the MATLAB port.
"""

from __future__ import annotations

import warnings

import numpy as np

from hashbench.baselines.base import Hasher, sample_rows, sq_distances


def spherical_hamming_distances(query: np.ndarray, database: np.ndarray) -> np.ndarray:
    """Spherical Hamming distance ``|a xor b| / |a and b|`` between packed codes (Heo et al. 2012).

    Args:
        query: Packed codes ``uint8 (nq, b/8)``.
        database: Packed codes ``uint8 (nb, b/8)``.

    Returns:
        ``float32 (nq, nb)``; ``inf`` where two codes share no 1-bit (no common sphere).
    """
    query = np.ascontiguousarray(query)
    database = np.ascontiguousarray(database)
    if query.dtype != np.uint8 or database.dtype != np.uint8 or query.ndim != 2:
        raise ValueError("spherical_hamming_distances: codes must be 2-d packed uint8 arrays")
    if query.shape[1] != database.shape[1]:
        raise ValueError(
            f"query codes have {query.shape[1] * 8} bits but database codes have "
            f"{database.shape[1] * 8}"
        )
    xor = np.zeros((query.shape[0], database.shape[0]), dtype=np.int32)
    both = np.zeros_like(xor)
    for w in range(query.shape[1]):
        q, d = query[:, w, None], database[None, :, w]
        xor += np.bitwise_count(q ^ d)
        both += np.bitwise_count(q & d)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(both > 0, xor / np.maximum(both, 1), np.inf)
    return out.astype(np.float32)


def _statistics(S: np.ndarray, pivots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radii (median rule), inside-indicator ``(m, b)`` and overlap matrix ``(b, b)``."""
    m = S.shape[0]
    D = np.sqrt(sq_distances(S, pivots))
    kth = max(m // 2 - 1, 0)  # MATLAB sort_dist(:, floor(N/2)), 1-based
    radii = np.partition(D, kth, axis=0)[kth]
    inside = (D <= radii[None, :]).astype(np.float32)
    return radii, inside, inside.T @ inside


class SpH(Hasher):
    """Hypersphere hash functions balanced by the force-based pivot updates of Heo et al.

    Args:
        bits: Code length (positive multiple of 8).
        n_samples: Size of the random training subset ``S`` (``None``: all training points).
        epsilon_mean: Tolerance on ``mean |o_ij - m/4|`` as a fraction of ``m/4`` (paper: 0.1).
        epsilon_std: Tolerance on ``std(o_ij)`` as a fraction of ``m/4`` (paper: 0.15).
        max_iter: Maximum number of force updates.
        init_points: Number of random points averaged to initialise each pivot (MATLAB port: 5).
        random_state: Seed of the subset and pivot initialisation.

    Attributes:
        pivots_: Sphere centres ``(bits, d)``.
        radii_: Sphere radii ``(bits,)``.
        n_iter_: Number of force updates made.
        converged_: Whether both tolerances were met.
        overlap_mean_error_: ``mean_{i<j} |o_ij - m/4| / (m/4)`` at the end.
        overlap_std_error_: ``std_{i<j}(o_ij) / (m/4)`` at the end.
        balance_: ``o_k / m`` per sphere ``(bits,)`` (0.5 up to ties).
    """

    def __init__(
        self,
        bits: int = 32,
        n_samples: int | None = 20000,
        epsilon_mean: float = 0.1,
        epsilon_std: float = 0.15,
        max_iter: int = 100,
        init_points: int = 5,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(bits=bits, random_state=random_state)
        if n_samples is not None and n_samples < 4:
            raise ValueError(f"SpH: n_samples must be >= 4 or None, got {n_samples}")
        if epsilon_mean <= 0 or epsilon_std <= 0:
            raise ValueError("SpH: epsilon_mean and epsilon_std must be > 0")
        if max_iter < 0 or init_points < 1:
            raise ValueError("SpH: max_iter must be >= 0 and init_points >= 1")
        self.n_samples = n_samples
        self.epsilon_mean = float(epsilon_mean)
        self.epsilon_std = float(epsilon_std)
        self.max_iter = int(max_iter)
        self.init_points = int(init_points)

    def _fit(self, X: np.ndarray, Y: np.ndarray | None) -> None:
        rng = self._rng()
        n = X.shape[0]
        S = X[sample_rows(rng, n, n if self.n_samples is None else self.n_samples)]
        m, b = S.shape[0], self.bits
        k = min(self.init_points, m)
        pivots = np.stack([S[rng.choice(m, size=k, replace=False)].mean(axis=0) for _ in range(b)])
        pivots = pivots.astype(np.float64)
        target = m / 4.0
        iu = np.triu_indices(b, k=1)
        it = 0
        while True:
            radii, inside, O = _statistics(S, pivots.astype(np.float32))
            o = O[iu].astype(np.float64)
            mean_err = np.mean(np.abs(o - target)) / target
            std_err = np.std(o) / target
            converged = mean_err <= self.epsilon_mean and std_err <= self.epsilon_std
            if converged or it >= self.max_iter:
                break
            A = 0.5 * (O.astype(np.float64) - target) / target
            np.fill_diagonal(A, 0.0)
            # f_i = (1/b) sum_j A_ij (p_i - p_j)
            pivots = pivots + (A.sum(axis=1)[:, None] * pivots - A @ pivots) / b
            it += 1
        if not converged:
            warnings.warn(
                f"SpH: overlap tolerances not met after {it} iterations (mean error "
                f"{mean_err:.3f} > {self.epsilon_mean} or std error {std_err:.3f} > "
                f"{self.epsilon_std}); raise max_iter.",
                UserWarning,
                stacklevel=3,
            )
        self.pivots_ = pivots.astype(np.float32)
        self.radii_ = radii.astype(np.float32)
        self.n_iter_ = it
        self.converged_ = bool(converged)
        self.overlap_mean_error_ = float(mean_err)
        self.overlap_std_error_ = float(std_err)
        self.balance_ = np.diag(O).astype(np.float64) / m

    def _project(self, X: np.ndarray) -> np.ndarray:
        return self.radii_[None, :] - np.sqrt(sq_distances(X, self.pivots_))
