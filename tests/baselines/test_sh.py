"""Spectral hashing: mode selection as trainSH.m, encoding as compressSH.m."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hashbench.baselines import SH
from hashbench.baselines.sh import sh_modes

# Ranges 6, 3.7, 2.3 and 8 bits, by hand (trainSH.m):
#   maxMode = ceil(9 * R / 6) = [9, 6, 4] -> frequencies j = 1..8, 1..5, 1..3
#   omega / pi = j / R_k:
#     dim 0: .167 .333 .500 .667 .833 1.0 1.17 1.33
#     dim 1: .270 .541 .811 1.08 1.35
#     dim 2: .435 .870 1.30
#   8 smallest: (0,1) .167, (1,1) .270, (0,2) .333, (2,1) .435, (0,3) .500, (1,2) .541,
#               (0,4) .667, (1,3) .811
HAND_MODES = [(0, 1), (1, 1), (0, 2), (2, 1), (0, 3), (1, 2), (0, 4), (1, 3)]


def expected_matrix(modes: list[tuple[int, int]], p: int) -> np.ndarray:
    M = np.zeros((len(modes), p), dtype=np.int64)
    for i, (k, j) in enumerate(modes):
        M[i, k] = j
    return M


def test_mode_selection_matches_a_hand_computed_case() -> None:
    modes = sh_modes(np.array([6.0, 3.7, 2.3]), 8)
    np.testing.assert_array_equal(modes, expected_matrix(HAND_MODES, 3))


def test_mode_selection_with_a_dominant_dimension() -> None:
    # one very wide dimension: the 8 modes are its first 8 harmonics (maxMode 9 there, 1 elsewhere)
    modes = sh_modes(np.array([10.0, 1.0, 0.5]), 8)
    np.testing.assert_array_equal(modes, expected_matrix([(0, j) for j in range(1, 9)], 3))


def test_fit_picks_the_hand_computed_modes() -> None:
    # full factorial grid, symmetric per axis: exactly diagonal covariance, so PCA keeps the axes
    # (in order of variance) and the projected ranges are exactly 6, 3.7, 2.3
    R = [6.0, 3.7, 2.3]
    levels = [np.linspace(-r / 2, r / 2, 5) for r in R]
    X = np.array(list(itertools.product(*levels)), dtype=np.float32) + np.float32(1.5)
    h = SH(bits=8).fit(X)
    np.testing.assert_allclose(np.abs(h.components_), np.eye(3), atol=1e-6)
    np.testing.assert_allclose(h.mx_ - h.mn_, R, rtol=1e-6)
    np.testing.assert_array_equal(h.modes_, expected_matrix(HAND_MODES, 3))
    np.testing.assert_allclose(
        h.omegas_[np.arange(8), [k for k, _ in HAND_MODES]],
        [j * np.pi / R[k] for k, j in HAND_MODES],
        rtol=1e-6,
    )


def test_projection_matches_compress_sh_product_form() -> None:
    """compressSH.m: u_i = prod_k sin(pi/2 + omega_ik (x_k - mn_k)), slow loops."""
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(300, 12)) * np.linspace(3, 0.5, 12)).astype(np.float32)
    h = SH(bits=16).fit(X)
    Z = (X.astype(np.float64) - h.mean_) @ h.components_.astype(np.float64)
    U = np.ones((40, 16))
    for n in range(40):
        for i in range(16):
            for k in range(Z.shape[1]):
                U[n, i] *= np.sin(np.pi / 2 + h.omegas_[i, k] * (Z[n, k] - h.mn_[k]))
    np.testing.assert_allclose(h.project(X[:40]), U, atol=1e-4)


def test_first_mode_splits_the_widest_direction_in_half() -> None:
    """Mode (0, 1) is sin(pi/2 + pi (x - mn)/R) >= 0  <=>  x below the middle of the range."""
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(2000, 2)).astype(np.float32) * [4.0, 1.0]
    h = SH(bits=8).fit(X)
    assert tuple(np.argwhere(h.modes_[0])[0]) == (0,) and h.modes_[0, 0] == 1
    z = (X - h.mean_) @ h.components_[:, 0]
    mid = (h.mn_[0] + h.mx_[0]) / 2
    bit0 = np.unpackbits(h.encode(X), axis=1)[:, 0].astype(bool)
    np.testing.assert_array_equal(bit0, z <= mid)
    assert bit0.mean() == pytest.approx(0.5, abs=0.05)
