"""Kernel-based supervised hashing (KSH).

Liu, Wang, Ji, Jiang, Chang, "Supervised Hashing with Kernels", CVPR 2012. Follows the authors'
``KSH_demo.m`` and ``OptProjectionFast.m``.

Model: ``m`` anchors ``a_j`` sampled from the training set; kernel features
``k(x) = [exp(-||x - a_j||^2 / (2 sigma^2))]_j - kbar`` (``kbar`` = training mean of the kernel
features); hash function ``h_k(x) = sgn(k(x)^T a_k)``, bit ``1[k(x)^T a_k >= 0]``.

Training on ``l`` labelled samples with ``K_l`` (``l x m``) and ``S in {-1, +1}^{l x l}``
(``+1`` iff two samples share a label): minimise ``||H H^T - b S||_F^2`` greedily, bit by bit, on
the residue ``R_k = b S - sum_{t<k} h_t h_t^T`` (equivalently maximise ``h^T R_k h``):

1. spectral initialisation: top generalised eigenvector of ``K_l^T R_k K_l a = lambda K_l^T K_l a``,
   rescaled to ``a^T K_l^T K_l a = l``;
2. ``OptProjectionFast``: minimise the smoothed cost ``-phi(K_l a)^T R_k phi(K_l a)`` with
   ``phi(x) = 2 / (1 + exp(-x)) - 1`` by Nesterov-accelerated gradient descent with backtracking
   (step ``1/beta``, ``beta`` doubled until the quadratic upper bound holds, at most 50 doublings),
   stopped after ``max_opt_iter`` (500) iterations or when the cost changes by at most ``1e-2 * l``;
3. keep the optimised ``a`` only if its discrete objective ``h^T R_k h`` beats the spectral one;
4. ``R_{k+1} = R_k - h h^T``.

Recorded: ``objective_history_[k]`` = ``||H_k H_k^T - b S||_F^2`` after ``k + 1`` bits (equal to
``||R_{k+1}||_F^2``); ``bit_objectives_[k]`` = ``(h_spec^T R_k h_spec, h_opt^T R_k h_opt)`` (the
discrete objectives of the spectral start and of the optimised projection, larger is better);
``used_optimised_[k]``.

Resolved:

- ``sigma``: BASELINES.md's rule, ``sigma`` = mean Euclidean distance between training points and
  anchors, is the default (``sigma_rule="mean_distance"``). The authors' ``KSH_demo.m`` instead sets
  ``sigma^2`` to the mean *squared* distance (``sigma_rule="rms_distance"``), a slightly wider
  kernel.
- The generalised eigenproblem is solved with ``K_l^T K_l + 1e-8 tr(K_l^T K_l)/m I`` on the right
  (``eig(LM, RM)`` in MATLAB tolerates a singular ``RM``; the tiny ridge makes it positive
  definite),
  reduced to a standard symmetric one through the Cholesky factor of the right-hand side.
- The residue is applied as an operator (:class:`Residue`): for single-label data
  ``S = 2 Y Y^T - 1 1^T`` is low-rank, so no ``l x l`` matrix is formed; multi-label data keep
  a dense ``l x l`` ``S``. The numbers are those of the dense computation.
- Anchors and labelled samples are drawn uniformly without replacement (the demo loads fixed
  index files); both are capped at ``n``. ``kbar`` is the mean over all training points, as the
  demo.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.linalg import cholesky, eigh, solve_triangular

from hashbench.baselines.base import (
    CHUNK_ROWS,
    Hasher,
    blas_single_thread,
    sample_rows,
    sq_distances,
)


def _phi(z: np.ndarray) -> np.ndarray:
    """``2 / (1 + exp(-z)) - 1`` (= ``tanh(z / 2)``, computed stably)."""
    return np.tanh(0.5 * z)


class Residue:
    """The KSH residue ``R_k = b S - H_k H_k^T`` as a linear operator on ``R^l``.

    ``S = 2 [Y Y^T > 0] - 1 1^T``. For single-label rows (at most one label each)
    ``[Y Y^T > 0] = Y Y^T``, so ``R`` is applied in ``O(l (c + k))`` without forming it; otherwise
    ``S`` is kept dense (``l x l`` ``float32``). Both give the same numbers as the dense residue.

    Args:
        Y: Labels of the ``l`` labelled samples ``(l, c)`` (0/1).
        bits: ``b``.
    """

    def __init__(self, Y: np.ndarray, bits: int) -> None:
        self.l = Y.shape[0]
        self.b = float(bits)
        self.low_rank = bool(Y.sum(axis=1).max() <= 1)
        if self.low_rank:
            self.Y = Y.astype(np.float64)
            self.S = None
        else:
            self.Y = None
            self.S = np.where(Y @ Y.T > 0, np.float32(1.0), np.float32(-1.0))
        self.H = np.zeros((self.l, 0))

    def dense(self) -> np.ndarray:
        """``R`` as a dense ``float64`` ``(l, l)`` matrix (for tests and small problems)."""
        return self.matmat(np.eye(self.l))

    def matmat(self, V: np.ndarray) -> np.ndarray:
        """``R V`` for ``V`` ``(l, r)`` (or ``(l,)``)."""
        V = np.asarray(V, dtype=np.float64)
        if self.low_rank:
            SV = 2.0 * (self.Y @ (self.Y.T @ V)) - V.sum(axis=0, keepdims=V.ndim > 1)
        else:
            SV = (self.S @ V.astype(np.float32)).astype(np.float64)
        return self.b * SV - self.H @ (self.H.T @ V)

    __matmul__ = matmat

    def subtract(self, h: np.ndarray) -> None:
        """``R <- R - h h^T``."""
        self.H = np.column_stack([self.H, np.asarray(h, dtype=np.float64)])


def opt_projection_fast(
    K: np.ndarray, S: np.ndarray | Residue, a0: np.ndarray, max_iter: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """Port of ``OptProjectionFast.m``: accelerated gradient descent on the smoothed KSH cost.

    Minimises ``g(a) = -phi(K a)^T S phi(K a)``, gradient ``-K^T ((S y) * (1 - y^2))``,
    ``y = phi(K a)``, with Nesterov extrapolation and a backtracking step ``1 / beta``.

    Args:
        K: Kernel features of the labelled samples ``(l, m)``.
        S: Current residue ``(l, l)`` (symmetric), dense or a :class:`Residue`.
        a0: Initial projection ``(m,)``.
        max_iter: Maximum number of iterations.

    Returns:
        ``(a, cost)``: the optimised projection and the cost sequence ``g / l`` (the first two
        entries are the cost at ``a0``, as in the authors' code).
    """
    K = np.asarray(K, dtype=np.float64)
    n = K.shape[0]

    def cost(a: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        y = _phi(K @ a)
        Sy = S @ y
        return float(-y @ Sy), y, Sy

    a0 = np.asarray(a0, dtype=np.float64)
    c0, _, _ = cost(a0)
    costs = [c0, c0]
    a_prev, a_cur = a0.copy(), a0.copy()
    delta_prev, delta = 0.0, 1.0  # delta(t), delta(t+1) in the authors' indexing
    beta = 1.0
    for _ in range(max_iter):
        alpha = (delta_prev - 1.0) / delta
        v = a_cur + alpha * (a_cur - a_prev)  # probe point
        gv, y1, Sy = cost(v)
        grad = -K.T @ (Sy * (1.0 - y1**2))
        accepted = False
        for j in range(51):  # seek beta
            b = (2.0**j) * beta
            z = v - grad / b
            gz, _, _ = cost(z)
            dif = z - v
            if gz <= gv + grad @ dif + 0.5 * b * (dif @ dif):
                accepted = True
                beta = b
                a_prev, a_cur = a_cur, z
                costs.append(gz)
                break
        if not accepted:
            break
        delta_prev, delta = delta, (1.0 + np.sqrt(1.0 + 4.0 * delta**2)) / 2.0
        if abs(costs[-1] - costs[-2]) / n <= 1e-2:
            break
    return a_cur, np.asarray(costs) / n


def _signs(z: np.ndarray) -> np.ndarray:
    return np.where(z >= 0, 1.0, -1.0)


class KSH(Hasher):
    """Supervised hashing with kernels, greedy bit-by-bit optimisation.

    Args:
        bits: Code length (positive multiple of 8).
        n_anchors: Number of anchors ``m`` (300 as the paper).
        n_labeled: Number of labelled samples ``l`` used for ``S`` (2000 as the paper); the
            ``l x l`` matrix ``S`` is the only quadratic object.
        max_opt_iter: Iterations of ``OptProjectionFast`` per bit (500 as the authors).
        sigma: RBF width; ``None`` picks it with ``sigma_rule``.
        sigma_rule: ``"mean_distance"`` (BASELINES.md: mean anchor distance) or
            ``"rms_distance"`` (authors' demo: square root of the mean squared distance).
        random_state: Seed of the anchor and labelled-sample draws.

    Attributes:
        anchors_: ``(m, d)``.
        sigma_: RBF width used.
        kernel_mean_: Training mean of the kernel features ``(m,)``.
        projections_: ``A`` ``(m, bits)``.
        objective_history_: ``||H_k H_k^T - b S||_F^2`` after each bit ``(bits,)``.
        initial_objective_: ``||b S||_F^2 = b^2 l^2`` (no bits).
        bit_objectives_: ``(bits, 2)``: ``h^T R_k h`` of the spectral start and of the optimised
            projection.
        used_optimised_: ``(bits,)`` bool: the optimised projection was kept.
        opt_costs_: Per bit, the smoothed cost sequence of ``OptProjectionFast``.
    """

    supervised = True

    def __init__(
        self,
        bits: int = 32,
        n_anchors: int = 300,
        n_labeled: int = 2000,
        max_opt_iter: int = 500,
        sigma: float | None = None,
        sigma_rule: Literal["mean_distance", "rms_distance"] = "mean_distance",
        random_state: int | None = 0,
    ) -> None:
        super().__init__(bits=bits, random_state=random_state)
        if n_anchors < 2 or n_labeled < 2 or max_opt_iter < 0:
            raise ValueError("KSH: need n_anchors >= 2, n_labeled >= 2 and max_opt_iter >= 0")
        if sigma is not None and sigma <= 0:
            raise ValueError(f"KSH: sigma must be > 0 or None, got {sigma}")
        if sigma_rule not in ("mean_distance", "rms_distance"):
            raise ValueError(
                f"KSH: sigma_rule must be 'mean_distance' or 'rms_distance', got {sigma_rule!r}"
            )
        self.n_anchors = int(n_anchors)
        self.n_labeled = int(n_labeled)
        self.max_opt_iter = int(max_opt_iter)
        self.sigma = sigma
        self.sigma_rule = sigma_rule

    def _kernel(self, X: np.ndarray) -> np.ndarray:
        D2 = sq_distances(X, self.anchors_)
        return np.exp(D2 * np.float32(-0.5 / self.sigma_**2))

    def _fit(self, X: np.ndarray, Y: np.ndarray | None) -> None:
        assert Y is not None
        rng = self._rng()
        n = X.shape[0]
        self.anchors_ = X[sample_rows(rng, n, self.n_anchors)].copy()
        labeled = sample_rows(rng, n, self.n_labeled)
        m, l, b = self.anchors_.shape[0], labeled.shape[0], self.bits

        # sigma from the training-to-anchor distances (one pass), then the kernel mean (second pass)
        if self.sigma is None:
            total = 0.0
            for s in range(0, n, CHUNK_ROWS):
                D2 = sq_distances(X[s : s + CHUNK_ROWS], self.anchors_)
                if self.sigma_rule == "mean_distance":
                    total += float(np.sqrt(D2).sum(dtype=np.float64))
                else:
                    total += float(D2.sum(dtype=np.float64))
            mean = total / (n * m)
            sigma = mean if self.sigma_rule == "mean_distance" else np.sqrt(mean)
            self.sigma_ = float(sigma) if sigma > 0 else 1.0
        else:
            self.sigma_ = float(self.sigma)
        ksum = np.zeros(m, dtype=np.float64)
        for s in range(0, n, CHUNK_ROWS):
            ksum += self._kernel(X[s : s + CHUNK_ROWS]).sum(axis=0, dtype=np.float64)
        self.kernel_mean_ = (ksum / n).astype(np.float32)

        KK = (self._kernel(X[labeled]) - self.kernel_mean_).astype(np.float64)  # l x m
        R = Residue(Y[labeled], b)
        self.initial_objective_ = float(b) ** 2 * float(l) ** 2  # ||b S||_F^2
        with blas_single_thread():
            A, objectives, bit_obj, used, costs = self._greedy(KK, R)
        self.projections_ = A.astype(np.float32)
        self.objective_history_ = objectives
        self.bit_objectives_ = bit_obj
        self.used_optimised_ = used
        self.opt_costs_ = costs
        self.n_labeled_ = l

    def _greedy(
        self, KK: np.ndarray, R: Residue
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
        """The bit-by-bit optimisation on kernel features ``KK`` ``(l, m)`` and residue ``R``."""
        l, m = KK.shape
        b = self.bits
        RM = KK.T @ KK
        RM[np.diag_indices(m)] += 1e-8 * np.trace(RM) / m
        L = cholesky(RM, lower=True)  # generalised -> standard problem with RM = L L^T
        A = np.zeros((m, b), dtype=np.float64)
        objective = float(b) ** 2 * float(l) ** 2
        objectives = np.empty(b)
        bit_obj = np.empty((b, 2))
        used = np.zeros(b, dtype=bool)
        costs: list[np.ndarray] = []
        for k in range(b):
            # spectral start: top eigenvector of K^T R K a = lambda RM a, scaled to a^T RM a = l
            LM = KK.T @ (R @ KK)
            C = solve_triangular(L, solve_triangular(L, LM, lower=True).T, lower=True)
            _, U = eigh(0.5 * (C + C.T), subset_by_index=[m - 1, m - 1])
            a = solve_triangular(L, U[:, 0], lower=True, trans="T")
            a = a * np.sqrt(l / (a @ RM @ a))
            a_opt, cost = opt_projection_fast(KK, R, a, self.max_opt_iter)
            costs.append(cost)
            h_spec = _signs(KK @ a)
            h_opt = _signs(KK @ a_opt)
            o_spec = float(h_spec @ (R @ h_spec))
            o_opt = float(h_opt @ (R @ h_opt))
            bit_obj[k] = (o_spec, o_opt)
            if o_opt > o_spec:  # keep the better of the two (authors: y1'*S*y1 > y'*S*y)
                used[k] = True
                a, h, best = a_opt, h_opt, o_opt
            else:
                h, best = h_spec, o_spec
            A[:, k] = a
            R.subtract(h)
            # ||R - h h^T||^2 = ||R||^2 - 2 h^T R h + l^2 (exact: all entries are integers)
            objective = objective - 2.0 * round(best) + float(l) ** 2
            objectives[k] = objective
        return A, objectives, bit_obj, used, costs

    def _project(self, X: np.ndarray) -> np.ndarray:
        return (self._kernel(X) - self.kernel_mean_) @ self.projections_
