"""LSH: centred Gaussian random projections, near-balanced bits."""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.baselines import LSH


def test_projection_is_centred_gaussian_random_projection() -> None:
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(500, 64)) + 5.0).astype(np.float32)
    h = LSH(bits=64, random_state=11).fit(X)
    np.testing.assert_allclose(h.mean_, X.mean(axis=0), atol=1e-4)
    W = h.components_
    assert W.shape == (64, 64) and W.dtype == np.float32
    assert abs(W.mean()) < 0.05 and W.std() == pytest.approx(1.0, abs=0.05)
    expected = (X.astype(np.float64) - h.mean_) @ W.astype(np.float64)
    np.testing.assert_allclose(h.project(X), expected, rtol=1e-4, atol=1e-3)


def test_bits_near_balanced_on_centred_data() -> None:
    rng = np.random.default_rng(1)
    X = (rng.normal(size=(4000, 32)) * np.linspace(4, 0.2, 32) + 10.0).astype(np.float32)
    h = LSH(bits=64).fit(X)
    bits = np.unpackbits(h.encode(X), axis=1)
    # each bit: a Binomial(4000, ~1/2) mean -> std ~0.008
    np.testing.assert_allclose(bits.mean(axis=0), 0.5, atol=0.05)


def test_angles_preserved_in_expectation() -> None:
    """Charikar: P[bit differs] = angle / pi for centred vectors."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(2, 16)).astype(np.float32)
    h = LSH(bits=4096 // 8 * 8, random_state=3).fit(np.vstack([X, -X]))  # mean exactly 0
    b = np.unpackbits(h.encode(X), axis=1)
    cos = X[0] @ X[1] / np.linalg.norm(X[0]) / np.linalg.norm(X[1])
    assert np.mean(b[0] != b[1]) == pytest.approx(np.arccos(cos) / np.pi, abs=0.04)
