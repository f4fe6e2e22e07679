"""PCAH and ITQ: principal subspace, quantisation loss monotone, orthogonal rotation."""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.baselines import ITQ, PCAH
from hashbench.baselines.itq import itq_rotation


def anisotropic(seed: int = 0, n: int = 3000, d: int = 20) -> np.ndarray:
    """Gaussian data with well separated variances along random directions, non-zero mean."""
    rng = np.random.default_rng(seed)
    scales = np.linspace(5.0, 0.5, d)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (rng.normal(size=(n, d)) * scales @ Q.T + 3.0).astype(np.float32)


def reference_pca(X: np.ndarray, k: int) -> np.ndarray:
    """Obviously-correct reference: eigenvectors of the float64 sample covariance."""
    Xd = X.astype(np.float64)
    w, V = np.linalg.eigh(np.cov(Xd, rowvar=False))
    return V[:, np.argsort(w)[::-1][:k]]


def projector(W: np.ndarray) -> np.ndarray:
    Q, _ = np.linalg.qr(W.astype(np.float64))
    return Q @ Q.T


def test_pcah_projects_on_the_principal_directions() -> None:
    X = anisotropic()
    h = PCAH(bits=8).fit(X)
    ref = reference_pca(X, 8)
    # same directions up to sign, in order of decreasing variance
    cos = np.abs(np.sum(ref * h.components_, axis=0))
    np.testing.assert_allclose(cos, 1.0, atol=1e-4)
    np.testing.assert_allclose(h.mean_, X.astype(np.float64).mean(axis=0), rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(h.explained_variance_) < 0)
    expected = (X.astype(np.float64) - X.mean(axis=0)) @ h.components_.astype(np.float64)
    np.testing.assert_allclose(h.project(X), expected, rtol=1e-4, atol=1e-3)


def test_itq_stays_in_the_principal_subspace() -> None:
    X = anisotropic()
    h = ITQ(bits=8).fit(X)
    ref = reference_pca(X, 8)
    np.testing.assert_allclose(projector(h.components_), projector(ref), atol=1e-4)
    # orthonormal columns: the rotation does not rescale
    np.testing.assert_allclose(h.components_.T @ h.components_, np.eye(8), atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_itq_quantisation_loss_never_increases_and_rotation_is_orthogonal(seed: int) -> None:
    X = anisotropic(seed)
    h = ITQ(bits=16, random_state=seed).fit(X)
    loss = h.loss_history_
    assert loss.shape == (50,)
    assert np.all(np.diff(loss) <= 1e-6 * loss[0]), np.diff(loss).max()
    assert loss[-1] < loss[0]
    R = h.rotation_.astype(np.float64)
    np.testing.assert_allclose(R @ R.T, np.eye(16), atol=1e-5)
    np.testing.assert_allclose(R.T @ R, np.eye(16), atol=1e-5)


def test_itq_loss_matches_a_slow_reference() -> None:
    """Replay the iterations with plain loops and compare the recorded losses."""
    rng = np.random.default_rng(5)
    V = rng.normal(size=(60, 8)).astype(np.float32)
    R, losses = itq_rotation(V, 5, np.random.default_rng(7))
    # reference: same init, explicit loops
    R_ref = np.linalg.svd(np.random.default_rng(7).standard_normal((8, 8)))[0]
    for t in range(5):
        Z = V.astype(np.float64) @ R_ref
        B = np.array([[1.0 if z >= 0 else -1.0 for z in row] for row in Z])
        loss = sum((B[i, j] - Z[i, j]) ** 2 for i in range(60) for j in range(8))
        assert losses[t] == pytest.approx(loss, rel=1e-5)
        U, _, Vt = np.linalg.svd(B.T @ V.astype(np.float64))
        R_ref = Vt.T @ U.T
    np.testing.assert_allclose(R, R_ref, atol=1e-5)


def test_itq_improves_quantisation_over_pcah() -> None:
    """ITQ's rotated embedding sits closer to the hypercube vertices than the raw PCA one."""
    X = anisotropic(3)
    itq = ITQ(bits=16).fit(X)
    V = itq.project(X).astype(np.float64)
    V0 = (X - itq.mean_).astype(np.float64) @ itq.pca_components_.astype(np.float64)
    q_itq = np.sum((np.where(V >= 0, 1, -1) - V) ** 2)
    q_pca = np.sum((np.where(V0 >= 0, 1, -1) - V0) ** 2)
    assert q_itq < q_pca
    assert q_itq == pytest.approx(itq.loss_history_[-1], rel=0.05)


@pytest.mark.parametrize("d,k", [(40, 8), (600, 32)])  # dense LAPACK and Lanczos branches
def test_top_eigh_matches_dense_reference(d: int, k: int) -> None:
    from hashbench.baselines.base import top_eigh

    A = np.random.default_rng(d).normal(size=(3 * d, d))
    C = A.T @ A / (3 * d)
    w, V = top_eigh(C, k)
    w_ref, V_ref = np.linalg.eigh(C)
    order = np.argsort(w_ref)[::-1][:k]
    np.testing.assert_allclose(w, w_ref[order], rtol=1e-10)
    np.testing.assert_allclose(np.abs(np.sum(V * V_ref[:, order], axis=0)), 1.0, atol=1e-8)
    # signs fixed: the largest-magnitude entry of each eigenvector is positive
    assert np.all(V[np.argmax(np.abs(V), axis=0), np.arange(k)] > 0)
