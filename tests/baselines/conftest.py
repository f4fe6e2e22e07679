"""Shared seeded data for the baseline tests."""

from __future__ import annotations

import numpy as np
import pytest


def clustered(
    seed: int = 0,
    n: int = 1600,
    classes: int = 6,
    d_signal: int = 6,
    d_noise: int = 26,
    sep: float = 1.5,
    noise: float = 2.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Classes separated in a low-variance subspace hidden under high-variance noise, rotated.

    Unsupervised methods chase the noisy high-variance directions; the labels reveal the signal.
    Returns ``X float32 (n, d_signal + d_noise)`` and one-hot ``Y float32 (n, classes)``.
    """
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(classes, d_signal)) * sep
    labels = rng.integers(0, classes, n)
    signal = means[labels] + rng.normal(size=(n, d_signal))
    X = np.hstack([signal, rng.normal(size=(n, d_noise)) * noise])
    Q, _ = np.linalg.qr(rng.normal(size=(X.shape[1], X.shape[1])))
    return (X @ Q).astype(np.float32), np.eye(classes, dtype=np.float32)[labels]


def multilabel(
    seed: int = 0, n: int = 600, d: int = 24, c: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Features with multi-hot labels (some rows with 2-3 labels, none empty)."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, c)) < 0.3).astype(np.float32)
    Y[np.arange(n), rng.integers(0, c, n)] = 1.0
    centres = rng.normal(size=(c, d)) * 2.0
    X = Y @ centres / Y.sum(axis=1, keepdims=True) + rng.normal(size=(n, d))
    return X.astype(np.float32), Y


def mean_average_precision(
    query_codes: np.ndarray, db_codes: np.ndarray, query_y: np.ndarray, db_y: np.ndarray
) -> float:
    """mAP over the full Hamming ranking (ties in database order); relevant = shares a label."""
    q = np.unpackbits(query_codes, axis=1).astype(np.int64)
    d = np.unpackbits(db_codes, axis=1).astype(np.int64)
    dist = q.sum(1)[:, None] + d.sum(1)[None, :] - 2 * q @ d.T
    aps = []
    for i in range(q.shape[0]):
        order = np.argsort(dist[i], kind="stable")
        rel = (db_y[order] @ query_y[i]) > 0
        if not rel.any():
            continue
        hits = np.cumsum(rel)
        ranks = np.nonzero(rel)[0] + 1
        aps.append(np.mean(hits[rel] / ranks))
    return float(np.mean(aps))


@pytest.fixture(scope="session")
def clustered_data() -> tuple[np.ndarray, np.ndarray]:
    return clustered()


@pytest.fixture(scope="session")
def small_data() -> tuple[np.ndarray, np.ndarray]:
    """400 x 24 features, 4 one-hot classes: quick fits for the contract tests."""
    return clustered(seed=1, n=400, classes=4, d_signal=4, d_noise=20, sep=3.0, noise=1.5)
