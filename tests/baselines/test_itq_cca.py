"""ITQ-CCA: CCA directions equal the authors' cca.m formulation; ITQ on top stays monotone."""

from __future__ import annotations

import numpy as np
from scipy.linalg import cholesky

from hashbench.baselines import ITQCCA
from hashbench.baselines.itq_cca import cca_directions

from .conftest import clustered, multilabel


def reference_cca(X: np.ndarray, Y: np.ndarray, reg: float) -> tuple[np.ndarray, np.ndarray]:
    """cca.m verbatim in numpy: eig of the d x d matrix Rx^-T Cxy Cyy^-1 Cyx Rx^-1."""
    C = np.cov(np.hstack([X, Y]).astype(np.float64), rowvar=False)
    sx = X.shape[1]
    Cxx = C[:sx, :sx] + reg * np.eye(sx)
    Cxy = C[:sx, sx:]
    Cyy = C[sx:, sx:] + reg * np.eye(Y.shape[1])
    Rx = cholesky(Cxx)
    iRx = np.linalg.inv(Rx)
    Z = iRx.T @ Cxy @ np.linalg.solve(Cyy, Cxy.T) @ iRx
    Z = 0.5 * (Z + Z.T)
    r, Wz = np.linalg.eigh(Z)
    order = np.argsort(r)[::-1]
    return iRx @ Wz[:, order], np.sqrt(np.maximum(r[order], 0))


def test_cca_directions_match_cca_m() -> None:
    for X, Y in (clustered(seed=7, n=500, classes=6), multilabel(n=400)):
        k = min(Y.shape[1], 8)
        _, W, r = cca_directions(X, Y, 8, reg=1e-4)
        W_ref, r_ref = reference_cca(X, Y, 1e-4)
        q = Y.shape[1] - 1 if Y.sum(1).max() == 1 else k  # non-trivial correlations
        np.testing.assert_allclose(r[:q], r_ref[:q], rtol=1e-6, atol=1e-8)
        cos = np.abs(np.sum(W[:, :q] * W_ref[:, :q], axis=0)) / (
            np.linalg.norm(W[:, :q], axis=0) * np.linalg.norm(W_ref[:, :q], axis=0)
        )
        np.testing.assert_allclose(cos, 1.0, atol=1e-6)
        assert np.all(np.diff(r) <= 1e-12)


def test_embedding_is_scaled_by_correlations_and_itq_is_monotone() -> None:
    X, Y = clustered(seed=8, n=800, classes=10)
    h = ITQCCA(bits=16).fit(X, Y)
    r = h.correlations_
    assert np.all(r[:9] > 0.1) and np.all(r[9:] < 1e-3)  # 10 classes: 9 canonical pairs
    # columns of the scaled embedding: unit Cxx-norm times r
    V = (X - h.mean_).astype(np.float64) @ h.cca_components_.astype(np.float64)
    np.testing.assert_allclose(V.std(axis=0, ddof=1), r, rtol=1e-3, atol=1e-4)
    assert np.all(np.diff(h.loss_history_) <= 1e-6 * h.loss_history_[0])
    R = h.rotation_.astype(np.float64)
    np.testing.assert_allclose(R @ R.T, np.eye(16), atol=1e-5)
