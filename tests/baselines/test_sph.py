"""Spherical hashing: balance and overlap tolerances, force update, spherical Hamming distance."""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.baselines import SpH, spherical_hamming_distances
from hashbench.retrieval.codes import pack_bits


@pytest.fixture(scope="module")
def fitted() -> tuple[SpH, np.ndarray]:
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(3000, 16)) * np.linspace(2, 0.5, 16)).astype(np.float32)
    return SpH(bits=32, n_samples=2000).fit(X), X


def test_meets_the_papers_tolerances(fitted) -> None:
    h, X = fitted
    assert h.converged_
    assert h.overlap_mean_error_ <= 0.1 and h.overlap_std_error_ <= 0.15
    assert h.n_iter_ >= 1
    # every sphere holds half of the training subset
    np.testing.assert_allclose(h.balance_, 0.5, atol=1e-3)


def test_statistics_recomputed_from_the_codes(fitted) -> None:
    """Overlaps of the codes on the training subset reproduce the recorded statistics."""
    h, X = fitted
    rng = np.random.default_rng(0)  # same draws as fit
    idx = np.sort(rng.choice(X.shape[0], size=2000, replace=False))
    inside = np.unpackbits(h.encode(X[idx]), axis=1).astype(np.float64)
    m = inside.shape[0]
    O = inside.T @ inside
    iu = np.triu_indices(32, 1)
    assert np.mean(np.abs(O[iu] - m / 4)) / (m / 4) == pytest.approx(
        h.overlap_mean_error_, abs=2e-3
    )
    assert np.std(O[iu]) / (m / 4) == pytest.approx(h.overlap_std_error_, abs=2e-3)
    # and on unseen data from the same distribution the bits stay roughly balanced
    Xn = np.random.default_rng(9).normal(size=(3000, 16)) * np.linspace(2, 0.5, 16)
    bits = np.unpackbits(h.encode(Xn.astype(np.float32)), axis=1)
    np.testing.assert_allclose(bits.mean(axis=0), 0.5, atol=0.06)


def test_bit_means_inside_the_sphere(fitted) -> None:
    h, X = fitted
    d = np.linalg.norm(X[:50, None, :].astype(np.float64) - h.pivots_[None], axis=2)
    inside = d <= h.radii_[None, :]
    bits = np.unpackbits(h.encode(X[:50]), axis=1).astype(bool)
    # allow disagreement only for points within float rounding of a sphere's surface
    disagree = inside != bits
    assert np.all(np.abs(d - h.radii_)[disagree] < 1e-4)


def test_force_update_reduces_overlap_error() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1500, 32)).astype(np.float32)
    start = SpH(bits=16, max_iter=0, epsilon_mean=1e-9, epsilon_std=1e-9)
    with pytest.warns(UserWarning, match="tolerances not met"):
        start.fit(X)
    end = SpH(bits=16).fit(X)
    assert end.overlap_mean_error_ < start.overlap_mean_error_
    assert end.overlap_mean_error_ <= 0.1


def test_spherical_hamming_distance_matches_loops() -> None:
    rng = np.random.default_rng(2)
    a = rng.random((7, 16)) < 0.5
    b = rng.random((9, 16)) < 0.5
    b[0] = False  # no common 1-bit with anything -> inf
    got = spherical_hamming_distances(pack_bits(a), pack_bits(b))
    for i in range(7):
        for j in range(9):
            xor = sum(a[i, k] != b[j, k] for k in range(16))
            both = sum(a[i, k] and b[j, k] for k in range(16))
            want = np.inf if both == 0 else xor / both
            assert got[i, j] == pytest.approx(want)
