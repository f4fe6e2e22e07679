"""Tag vocabulary, image-tag incidence and cleaning of WSDH's tag pipeline (steps 1-2).

:func:`normalise_tag` / :func:`build_vocabulary`: lower-cased tags, kept when at least
``min_count`` training images carry them; :func:`incidence_matrix` / :func:`row_normalise`: the
image-tag incidence ``A``; :func:`cleaning_scores` / :func:`clean_tags`: drop non-visual tags by the
*cohesion* and *separation* of each tag's images. See :mod:`hashbench.data.tags` for the pipeline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

# -- vocabulary and incidence -----------------------------------------------------------------------


def normalise_tag(tag: str) -> str:
    """A tag as compared everywhere: stripped and lower-cased (``"Sky "`` -> ``"sky"``)."""
    return tag.strip().lower()


def build_vocabulary(tag_lists: Sequence[Sequence[str]], min_count: int = 1) -> list[str]:
    """Tags carried by at least ``min_count`` images (each image counts a tag once), sorted.

    Args:
        tag_lists: one tag list per image.
        min_count: minimum number of images per kept tag.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    counts = Counter(t for tags in tag_lists for t in {normalise_tag(x) for x in tags} if t)
    return sorted(t for t, c in counts.items() if c >= min_count)


def incidence_matrix(
    tag_lists: Sequence[Sequence[str]], vocabulary: Sequence[str]
) -> sp.csr_matrix:
    """Binary image-tag incidence ``(n_images, n_tags)``: 1 when image ``i`` carries tag ``k``."""
    index = {t: k for k, t in enumerate(vocabulary)}
    rows, cols = [], []
    for i, tags in enumerate(tag_lists):
        for k in sorted({index[t] for t in map(normalise_tag, tags) if t in index}):
            rows.append(i)
            cols.append(k)
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(tag_lists), len(vocabulary)))


def row_normalise(incidence: sp.spmatrix) -> sp.csr_matrix:
    """``A`` with each row divided by its number of tags (rows without tags stay zero)."""
    a = sp.csr_matrix(incidence, dtype=np.float64)
    counts = np.asarray(a.sum(axis=1)).ravel()
    inv = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    return sp.csr_matrix(sp.diags(inv) @ a)


# -- cleaning -------------------------------------------------------------------------------------


def cleaning_scores(
    features: np.ndarray, incidence: sp.spmatrix
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cohesion, separation and score of every tag from its images' visual features.

    On centred, L2-normalised features ``x_i`` (``x - mean(x)``, then unit length), for tag ``k`` with image set ``I_k``
    (``n_k = |I_k|``) and ``S_k = sum_{i in I_k} x_i``:

    - cohesion ``c_k = 1/(n_k (n_k - 1)) sum_{i != j in I_k} x_i . x_j
      = (|S_k|^2 - n_k) / (n_k (n_k - 1))`` (0 when ``n_k < 2``);
    - separation ``p_k = || S_k / n_k - mu ||_2`` with ``mu`` the mean of all images' features;
    - score ``(c_k - c_all) + sqrt(max(p_k^2 - e_k, 0))``, with ``c_all`` the cohesion of all
      ``N`` images together and ``e_k = (N - n_k) / ((N - 1) n_k) * sigma^2`` the expected squared
      separation of a *random* set of ``n_k`` images (``sigma^2 = mean_i |x_i - mu|^2``).

    Interpretation (the paper names cohesion and separation but not how they combine): the score
    is the tag's cohesion above that of a random image set plus its separation beyond what chance
    gives a random set of the same size, so a non-visual tag (a random sample of images) scores
    about 0 whatever its size, and a visual one clearly above. The features are centred first so
    that the scale of the score does not depend on a common offset (ReLU backbone features are all
    positive, and all their cosines close to 1).

    Args:
        features: ``(n, d)`` visual features of the images (BoW, or backbone features).
        incidence: ``(n, t)`` binary image-tag incidence.

    Returns:
        ``(cohesion, separation, score)``, each ``(t,)``.
    """
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    if x.shape[0] != incidence.shape[0]:
        raise ValueError(f"{x.shape[0]} feature rows for {incidence.shape[0]} images")
    x = x - x.mean(axis=0)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    a = sp.csc_matrix(incidence, dtype=np.float64)
    n_k = np.asarray(a.sum(axis=0)).ravel()
    sums = np.asarray(a.T @ x)  # (t, d)
    sq = (sums**2).sum(axis=1)
    denom = n_k * (n_k - 1)
    cohesion = np.divide(sq - n_k, denom, out=np.zeros_like(sq), where=denom > 0)
    mu = x.mean(axis=0)
    n = len(x)
    c_all = (np.sum(x.sum(axis=0) ** 2) - n) / max(n * (n - 1), 1)
    centroids = np.divide(sums, n_k[:, None], out=np.zeros_like(sums), where=n_k[:, None] > 0)
    separation = np.linalg.norm(centroids - mu, axis=1)
    sigma2 = ((x - mu) ** 2).sum(axis=1).mean()
    chance = np.divide(
        (n - n_k) * sigma2, (n - 1) * n_k, out=np.zeros_like(n_k), where=(n_k > 0) & (n > 1)
    )
    excess = np.sqrt(np.maximum(separation**2 - chance, 0.0))
    return cohesion, separation, cohesion - c_all + excess


def clean_tags(
    features: np.ndarray, incidence: sp.spmatrix, threshold: float = 0.2, min_count: int = 2
) -> np.ndarray:
    """Mask ``(t,)`` of the tags kept: at least ``min_count`` images and score ``>= threshold``.

    See :func:`cleaning_scores` for the score.
    """
    n_k = np.asarray(sp.csc_matrix(incidence).sum(axis=0)).ravel()
    _, _, score = cleaning_scores(features, incidence)
    return (n_k >= min_count) & (score >= threshold)


__all__ = [
    "build_vocabulary",
    "clean_tags",
    "cleaning_scores",
    "incidence_matrix",
    "normalise_tag",
    "row_normalise",
]
