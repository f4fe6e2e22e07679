"""Locality-sensitive hashing with sign random projections.

Gionis, Indyk, Motwani, "Similarity Search in High Dimensions via Hashing", VLDB 1999;
Charikar, "Similarity Estimation Techniques from Rounding Algorithms", STOC 2002 (the
sign-of-random-projection family for angular similarity).

Formula (BASELINES.md): ``mu`` = training mean, ``W in R^{d x b}`` with i.i.d. ``N(0, 1)`` entries,
bit ``k`` = ``1[(x - mu) W_k >= 0]``.

Interpretation: centring on the training mean is the benchmark's choice (BASELINES.md); Charikar's
hyperplanes pass through the origin, which on non-negative features (pixels) would give nearly
constant bits.
"""

from __future__ import annotations

import numpy as np

from hashbench.baselines.base import Hasher, column_mean


class LSH(Hasher):
    """Sign random projections of centred features.

    Args:
        bits: Code length (positive multiple of 8).
        random_state: Seed of the Gaussian projection matrix.

    Attributes:
        mean_: Training mean ``(d,)``.
        components_: Projection matrix ``W`` ``(d, bits)``, i.i.d. ``N(0, 1)``.
    """

    def __init__(self, bits: int = 32, random_state: int | None = 0) -> None:
        super().__init__(bits=bits, random_state=random_state)

    def _fit(self, X: np.ndarray, Y: np.ndarray | None) -> None:
        self.mean_ = column_mean(X)
        rng = self._rng()
        self.components_ = rng.standard_normal((X.shape[1], self.bits), dtype=np.float32)

    def _project(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) @ self.components_
