"""PCA hashing (PCAH).

Wang, Kumar, Chang, "Semi-Supervised Hashing for Large-Scale Search", TPAMI 2012 (the PCAH baseline
form): centre, project on the top-``b`` principal directions, threshold at zero.

Formula: ``mu`` = training mean, ``W`` = top-``b`` eigenvectors of the sample covariance
``(X - mu)^T (X - mu) / (n - 1)``, bit ``k`` = ``1[(x - mu) W_k >= 0]``.

Resolved: eigenvector signs are fixed (largest-magnitude entry positive) so the codes are
reproducible; any sign choice gives the same retrieval (a flipped bit in every code).
"""

from __future__ import annotations

import numpy as np

from hashbench.baselines.base import Hasher, pca


class PCAH(Hasher):
    """Thresholded principal-component projections.

    Args:
        bits: Code length (positive multiple of 8); needs ``bits <= d``.
        random_state: Unused (PCAH is deterministic); kept for the common interface.

    Attributes:
        mean_: Training mean ``(d,)``.
        components_: Top-``bits`` principal directions ``(d, bits)``, orthonormal columns, in order
            of decreasing variance.
        explained_variance_: Their variances ``(bits,)``.
    """

    def __init__(self, bits: int = 32, random_state: int | None = 0) -> None:
        super().__init__(bits=bits, random_state=random_state)

    def _fit(self, X: np.ndarray, Y: np.ndarray | None) -> None:
        self.mean_, self.components_, self.explained_variance_ = pca(X, self.bits, "PCAH.fit")

    def _project(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) @ self.components_
