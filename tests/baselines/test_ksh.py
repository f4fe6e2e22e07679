"""KSH: greedy objective decreases bit by bit, optimisation never worse than the spectral start."""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.baselines import KSH
from hashbench.baselines.ksh import Residue, _phi, opt_projection_fast

from .conftest import clustered, multilabel


@pytest.fixture(scope="module")
def fitted() -> tuple[KSH, np.ndarray, np.ndarray]:
    X, Y = clustered(seed=2, n=900)
    return KSH(bits=16, n_anchors=100, n_labeled=500).fit(X, Y), X, Y


def test_objective_decreases_as_bits_are_added(fitted) -> None:
    h, _, _ = fitted
    obj = h.objective_history_
    assert obj.shape == (16,)
    assert obj[0] < h.initial_objective_
    assert np.all(np.diff(obj) < 0), obj


def test_optimised_projection_no_worse_than_spectral_start(fitted) -> None:
    h, _, _ = fitted
    spectral, optimised = h.bit_objectives_.T
    kept = np.where(h.used_optimised_, optimised, spectral)
    assert np.all(kept >= spectral)
    np.testing.assert_array_equal(h.used_optimised_, optimised > spectral)
    # the gradient step pays off on most bits
    assert h.used_optimised_.mean() >= 0.5
    # per-bit gain recorded in the objective: ||R_{k+1}||^2 = ||R_k||^2 - 2 kept_k + l^2
    l = h.n_labeled_
    prev = np.concatenate([[h.initial_objective_], h.objective_history_[:-1]])
    np.testing.assert_allclose(h.objective_history_, prev - 2 * kept + l * l)


def test_objective_is_the_frobenius_residual_of_the_codes(fitted) -> None:
    """Recompute ||H H^T - b S||_F^2 from the codes of the labelled samples (dense, slow)."""
    h, X, Y = fitted
    rng = np.random.default_rng(0)  # same draws as fit: anchors, then labelled samples
    rng.choice(X.shape[0], size=100, replace=False)
    lab = np.sort(rng.choice(X.shape[0], size=500, replace=False))
    H = np.where(h.project(X[lab]) >= 0, 1.0, -1.0)
    S = np.where(Y[lab] @ Y[lab].T > 0, 1.0, -1.0)
    for k in (1, 8, 16):
        want = np.sum((H[:, :k] @ H[:, :k].T - 16 * S) ** 2)
        assert h.objective_history_[k - 1] == pytest.approx(want, rel=1e-12)


def test_residue_operator_matches_dense() -> None:
    rng = np.random.default_rng(0)
    for Y in (np.eye(4, dtype=np.float32)[rng.integers(0, 4, 30)], multilabel(n=30)[1]):
        R = Residue(Y, 8)
        assert R.low_rank == bool(Y.sum(1).max() <= 1)
        S = np.where(Y @ Y.T > 0, 1.0, -1.0)
        h = np.where(rng.normal(size=30) >= 0, 1.0, -1.0)
        R.subtract(h)
        dense = 8 * S - np.outer(h, h)
        np.testing.assert_allclose(R.dense(), dense)
        v = rng.normal(size=(30, 3))
        np.testing.assert_allclose(R @ v, dense @ v, rtol=1e-5, atol=1e-4)  # float32 dense S


def test_opt_projection_gradient_matches_finite_differences() -> None:
    """The gradient used in OptProjectionFast is that of g(a) = -phi(Ka)^T S phi(Ka)."""
    rng = np.random.default_rng(1)
    K = rng.normal(size=(20, 6))
    A = rng.normal(size=(20, 20))
    S = A + A.T
    a = rng.normal(size=6)

    def g(a):
        y = _phi(K @ a)
        return -y @ S @ y

    y = _phi(K @ a)
    grad = -K.T @ ((S @ y) * (1 - y**2))
    num = np.array([(g(a + e) - g(a - e)) / 2e-6 for e in np.eye(6) * 1e-6])
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-5)
    a_opt, cost = opt_projection_fast(K, S, a, 200)
    assert g(a_opt) / 20 == pytest.approx(cost[-1])
    assert cost[-1] < cost[0]


def test_phi_is_the_papers_sigmoid() -> None:
    x = np.linspace(-30, 30, 101)
    np.testing.assert_allclose(_phi(x), 2 / (1 + np.exp(-x)) - 1, atol=1e-12)


def test_sigma_rules() -> None:
    X, Y = clustered(seed=3, n=300)
    a = KSH(bits=8, n_anchors=30, n_labeled=100, max_opt_iter=5).fit(X, Y)
    b = KSH(bits=8, n_anchors=30, n_labeled=100, max_opt_iter=5, sigma_rule="rms_distance")
    b.fit(X, Y)
    D = np.linalg.norm(X[:, None, :].astype(np.float64) - a.anchors_[None], axis=2)
    assert a.sigma_ == pytest.approx(D.mean(), rel=1e-4)
    assert b.sigma_ == pytest.approx(np.sqrt((D**2).mean()), rel=1e-4)
    c = KSH(bits=8, n_anchors=30, n_labeled=100, max_opt_iter=5, sigma=2.5).fit(X, Y)
    assert c.sigma_ == 2.5
