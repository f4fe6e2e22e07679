"""Scale budget of BASELINES.md / the brief (slow; run with ``-m slow``).

Unsupervised baselines fit 60,000 x 784 in under a minute each; KSH and SDH fit 5,000 labelled
points in under a minute. Synthetic pixel-like data, 64 bits.
"""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.baselines import BASELINES, SUPERVISED

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pixels() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 60000)
    protos = rng.random((10, 784), dtype=np.float32)
    X = protos[labels] * rng.random((60000, 1), dtype=np.float32)
    X += 0.3 * rng.random((60000, 784), dtype=np.float32)
    return np.clip(X, 0, 1), np.eye(10, dtype=np.float32)[labels]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BASELINES))
def test_fit_at_scale(name: str, pixels) -> None:
    """Every baseline fits the full 60,000 x 784 pixels (KSH/SDH-family: 5,000 rows, their papers'
    labelled subset) and encodes. Speed is measured by `make bench-baselines`, not asserted here."""
    X, Y = pixels
    n = 5000 if name in ("ksh", "sdh", "ws_ksh") else X.shape[0]
    h = BASELINES[name](bits=64)
    h.fit(X[:n], Y[:n] if name in SUPERVISED else None)
    assert h.encode(X[:100]).shape == (100, 8)
