"""Supervised discrete hashing (SDH).

Shen, Shen, Liu, Shen, "Supervised Discrete Hashing", CVPR 2015. Follows the authors' ``SDH.m`` and
demo (``demo_SDH.m``).

Features: ``m`` anchors ``a_j`` sampled from the training set,
``phi(x) = [exp(-||x - a_1||^2 / (2 sigma^2)), ..., exp(-||x - a_m||^2 / (2 sigma^2)), 1]``
(RBF plus a bias, ``sigma = 0.4`` on L2-normalised data as the demo). Labels ``Y`` ``(n, c)``
multi-hot, regressed directly.

Objective (rows are samples; ``B in {-1, +1}^{n x b}``, ``W`` ``(b, c)``, ``P`` ``(m + 1, b)``):

``O(B, W, P) = ||Y - B W||^2 + lambda ||W||^2 + nu (||B - Phi P||^2 + lambda_F ||P||^2)``

alternated for ``n_iter`` (5) outer iterations, starting from ``B = sign(randn)`` with an initial
G-step and F-step:

- B-step (DCC): with ``Q = Y W^T + nu Phi P``, for each bit ``k`` in turn
  ``b_k = sgn(q_k - B_{-k} W_{-k} w_k)`` (``w_k`` the ``k``-th row of ``W``), up to ``dcc_sweeps``
  (10) sweeps or until ``B`` stops changing (``||B - B_0|| < 1e-6 ||B_0||``);
- G-step: ``W = (B^T B + lambda I)^{-1} B^T Y``;
- F-step: ``P = (Phi^T Phi + lambda_F I)^{-1} Phi^T B``;
- stop early when ``||B - Phi P|| < tol ||B||`` or ``||P - P_0|| < tol ||P_0||`` (``tol = 1e-5``).

Codes of new data: ``1[phi(x)^T P >= 0]``. ``objective_history_[t]`` is ``O`` after outer
iteration ``t`` (after its F-step); ``initial_objective_`` after the initial G- and F-steps.

Resolved / interpretations:

- ``lambda_F = 1e-2`` (``f_lambda``) is the ridge the authors' code puts on the F-step (the paper's
  F-step is plain least squares); it is counted in ``O`` so every step exactly minimises ``O`` over
  its block.
- DCC warm-starts from the current ``B`` (``SDH.m`` restarts it from zeros each outer iteration).
  With the warm start each bit update is an exact coordinate minimiser, so ``O`` never increases
  across outer iterations; ``sgn(0)`` is ``+1`` (the suite's ``1[x >= 0]``).
- ``normalize=True`` L2-normalises every feature vector (training and query) before the kernel:
  the demo's ``sigma = 0.4`` is stated "for normalized data". Set ``normalize=False`` and a suitable
  ``sigma`` (or ``sigma=None``: mean distance to the anchors) for other scalings.
- Anchors are drawn uniformly without replacement (capped at ``n``).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from hashbench.baselines.base import (
    CHUNK_ROWS,
    Hasher,
    blas_single_thread,
    sample_rows,
    sq_distances,
)
from hashbench.retrieval.codes import pack_bits


def dcc(B: np.ndarray, W: np.ndarray, Q: np.ndarray, sweeps: int = 10) -> tuple[np.ndarray, int]:
    """Discrete cyclic coordinate descent for ``min_B ||B W||^2 - 2 tr(B^T Q)``, ``B in {-1, 1}``.

    This is the SDH B-step (``||Y - B W||^2 + nu ||B - F||^2`` up to constants,
    ``Q = Y W^T + nu F``).

    Args:
        B: Starting codes ``(n, b)`` of ``+-1`` (``float64``); not modified.
        W: ``(b, c)``.
        Q: ``(n, b)``.
        sweeps: Maximum number of passes over the bits.

    Returns:
        ``(B, sweeps_done)``.
    """
    B = B.copy()
    BW = B @ W  # n x c, kept up to date
    done = 0
    for _ in range(sweeps):
        B0 = B.copy()
        for k in range(B.shape[1]):
            w = W[k]
            # B_{-k} W_{-k} w_k = (B W - b_k w_k^T) w_k
            r = Q[:, k] - BW @ w + B[:, k] * (w @ w)
            new = np.where(r >= 0, 1.0, -1.0)
            changed = new != B[:, k]
            if changed.any():
                BW[changed] += np.outer(new[changed] - B[changed, k], w)
                B[:, k] = new
        done += 1
        if np.linalg.norm(B - B0) < 1e-6 * np.linalg.norm(B0):
            break
    return B, done


class SDH(Hasher):
    """Supervised discrete hashing with RBF anchor features and DCC.

    Args:
        bits: Code length (positive multiple of 8).
        n_anchors: Number of anchors ``m`` (1000 as the demo).
        sigma: RBF width (0.4 as the demo for L2-normalised data); ``None``: mean Euclidean
            distance between training points and anchors.
        normalize: L2-normalise feature vectors before the kernel (see the module notes).
        lam: ``lambda``, ridge of the G-step (1 as the demo).
        nu: ``nu``, weight of the ``||B - F(X)||^2`` term (``1e-5`` as the demo).
        f_lambda: ``lambda_F``, ridge of the F-step (``1e-2`` as the demo).
        n_iter: Outer iterations (5 as the demo).
        dcc_sweeps: Maximum DCC passes per B-step (10 as ``SDH.m``).
        tol: Early-stopping tolerance (``1e-5`` as ``SDH.m``).
        random_state: Seed of the anchors and the initial ``B``.

    Attributes:
        anchors_: ``(m, d)`` (normalised if ``normalize``).
        sigma_: RBF width used.
        projection_: ``P`` ``(m + 1, bits)`` (last row multiplies the bias feature).
        classifier_: ``W`` ``(bits, c)``.
        objective_history_: ``O`` after each outer iteration.
        initial_objective_: ``O`` after the initial G- and F-steps.
        n_iter_: Outer iterations run.
        train_codes_: The learned training codes ``B`` packed ``uint8 (n, bits / 8)`` (the demo's
            ``AsymDist`` option uses them instead of ``1[phi(x)^T P >= 0]`` for the database).
    """

    supervised = True

    def __init__(
        self,
        bits: int = 32,
        n_anchors: int = 1000,
        sigma: float | None = 0.4,
        normalize: bool = True,
        lam: float = 1.0,
        nu: float = 1e-5,
        f_lambda: float = 1e-2,
        n_iter: int = 5,
        dcc_sweeps: int = 10,
        tol: float = 1e-5,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(bits=bits, random_state=random_state)
        if n_anchors < 1 or n_iter < 1 or dcc_sweeps < 1:
            raise ValueError("SDH: n_anchors, n_iter and dcc_sweeps must be >= 1")
        if sigma is not None and sigma <= 0:
            raise ValueError(f"SDH: sigma must be > 0 or None, got {sigma}")
        if lam < 0 or nu < 0 or f_lambda < 0 or tol < 0:
            raise ValueError("SDH: lam, nu, f_lambda and tol must be >= 0")
        self.n_anchors = int(n_anchors)
        self.sigma = sigma
        self.normalize = bool(normalize)
        self.lam = float(lam)
        self.nu = float(nu)
        self.f_lambda = float(f_lambda)
        self.n_iter = int(n_iter)
        self.dcc_sweeps = int(dcc_sweeps)
        self.tol = float(tol)

    def _prep(self, X: np.ndarray) -> np.ndarray:
        if not self.normalize:
            return X
        norms = np.sqrt(np.einsum("ij,ij->i", X, X))
        return X / np.maximum(norms, np.float32(1e-12))[:, None]

    def _features(self, X: np.ndarray) -> np.ndarray:
        """``phi(x)``: ``(n, m + 1)`` float32, RBF on the anchors plus a constant 1."""
        D2 = sq_distances(self._prep(X), self.anchors_)
        out = np.empty((X.shape[0], D2.shape[1] + 1), dtype=np.float32)
        np.exp(D2 * np.float32(-0.5 / self.sigma_**2), out=out[:, :-1])
        out[:, -1] = 1.0
        return out

    def _objective(
        self, Y: np.ndarray, B: np.ndarray, W: np.ndarray, FX: np.ndarray, P: np.ndarray
    ) -> float:
        """``||Y - B W||^2 + lambda ||W||^2 + nu (||B - Phi P||^2 + lambda_F ||P||^2)``."""
        return float(
            np.sum((Y - B @ W) ** 2)
            + self.lam * np.sum(W**2)
            + self.nu * (np.sum((B - FX) ** 2) + self.f_lambda * np.sum(P**2))
        )

    def _fit(self, X: np.ndarray, Y: np.ndarray | None) -> None:
        assert Y is not None
        rng = self._rng()
        n = X.shape[0]
        self.anchors_ = self._prep(X[sample_rows(rng, n, self.n_anchors)]).copy()
        if self.sigma is None:
            total = 0.0
            for s in range(0, n, CHUNK_ROWS):
                D2 = sq_distances(self._prep(X[s : s + CHUNK_ROWS]), self.anchors_)
                total += float(np.sqrt(D2).sum(dtype=np.float64))
            self.sigma_ = total / (n * self.anchors_.shape[0]) or 1.0
        else:
            self.sigma_ = float(self.sigma)
        Phi = np.empty((n, self.anchors_.shape[0] + 1), dtype=np.float32)
        for s in range(0, n, CHUNK_ROWS):
            Phi[s : s + CHUNK_ROWS] = self._features(X[s : s + CHUNK_ROWS])
        p = Phi.shape[1]
        # F-step system, fixed across iterations: (Phi^T Phi + lambda_F I)
        G = (Phi.T @ Phi).astype(np.float64)
        G[np.diag_indices(p)] += self.f_lambda
        G_factor = cho_factor(G)
        Yd = Y.astype(np.float64)
        b = self.bits
        eye_b = np.eye(b)

        def g_step(B: np.ndarray) -> np.ndarray:
            return np.linalg.solve(B.T @ B + self.lam * eye_b, B.T @ Yd)

        def f_step(B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            P = cho_solve(G_factor, (Phi.T @ B.astype(np.float32)).astype(np.float64))
            FX = (Phi @ P.astype(np.float32)).astype(np.float64)
            return P, FX

        B = np.where(rng.standard_normal((n, b)) >= 0, 1.0, -1.0)
        W = g_step(B)
        P, FX = f_step(B)
        self.initial_objective_ = self._objective(Yd, B, W, FX, P)
        history = []
        for _ in range(self.n_iter):
            Q = Yd @ W.T + self.nu * FX
            with blas_single_thread():
                B, _ = dcc(B, W, Q, self.dcc_sweeps)
            W = g_step(B)
            P0 = P
            P, FX = f_step(B)
            history.append(self._objective(Yd, B, W, FX, P))
            if np.linalg.norm(B - FX) < self.tol * np.linalg.norm(B):
                break
            if np.linalg.norm(P - P0) < self.tol * np.linalg.norm(P0):
                break
        self.projection_ = P.astype(np.float32)
        self.classifier_ = W.astype(np.float32)
        self.objective_history_ = np.asarray(history)
        self.n_iter_ = len(history)
        self.train_codes_ = pack_bits(B > 0)

    def _project(self, X: np.ndarray) -> np.ndarray:
        return self._features(X) @ self.projection_
