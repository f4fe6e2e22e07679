"""Tag-based image similarity of WSDH's tag pipeline (steps 4-6) and its stateful wrapper.

:func:`tanimoto` (eq. 2), :func:`image_similarity` (eq. 1, exactly ``s = A_i T A_j^T``) and
:class:`TagSimilarity`, which chains the whole pipeline of :mod:`hashbench.data.tags` on the
training split and looks the similarity up per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from hashbench.data.tag_vectors import load_glove, load_word2vec, train_skipgram
from hashbench.data.tag_vocabulary import (
    build_vocabulary,
    clean_tags,
    incidence_matrix,
    row_normalise,
)


def tanimoto(vectors: np.ndarray, other: np.ndarray | None = None) -> np.ndarray:
    """Tanimoto (extended Jaccard) similarity, WSDH eq. (2): ``x.y / (|x|^2 + |y|^2 - x.y)``.

    Args:
        vectors: ``(t, d)`` tag vectors.
        other: ``(u, d)`` second set; ``None`` = ``vectors``.

    Returns:
        ``(t, u)``; a pair of zero vectors has similarity 0.
    """
    x = np.asarray(vectors, dtype=np.float64)
    y = x if other is None else np.asarray(other, dtype=np.float64)
    dot = x @ y.T
    denom = (x**2).sum(1)[:, None] + (y**2).sum(1)[None, :] - dot
    return np.divide(dot, denom, out=np.zeros_like(dot), where=np.abs(denom) > 1e-12)


def image_similarity(
    a_i: sp.spmatrix | np.ndarray, t: np.ndarray, a_j: sp.spmatrix | np.ndarray | None = None
) -> np.ndarray:
    """Tag-based image similarity, WSDH eq. (1), exactly: ``s = A_i T A_j^T``.

    ``s(i, j) = 1/(m n) sum_{k=1..m} sum_{l=1..n} sim(v_ik, v_jl)`` over image ``i``'s ``m`` tags and
    image ``j``'s ``n`` tags equals ``(A T A^T)[i, j]`` when ``A`` is the row-normalised image-tag
    incidence (:func:`row_normalise`). Rows of images without tags are zero.

    Args:
        a_i: ``(n_i, t)`` row-normalised incidence.
        t: ``(t, t)`` tag-tag similarity (:func:`tanimoto`).
        a_j: ``(n_j, t)``; ``None`` = ``a_i``.
    """
    a_j = a_i if a_j is None else a_j
    left = a_i @ t  # (n_i, t) dense
    out = a_j @ np.asarray(left).T
    return np.asarray(out).T


# -- the stateful wrapper -------------------------------------------------------------------------


@dataclass
class TagSimilarity:
    """Tag similarity of a fixed image set (the training split), looked up per batch.

    Build with :meth:`build`. ``incidence`` is the row-normalised ``A`` over the kept tags, ``t``
    the Tanimoto matrix ``T``; ``position[i]`` is the row of dataset item ``i`` (-1 if not in the
    set). :meth:`batch` returns ``s = A_b T A_b^T`` and the mask of images with at least one tag.
    """

    vocabulary: list[str]
    incidence: sp.csr_matrix
    t: np.ndarray
    position: np.ndarray
    threshold: float = 0.4
    stats: dict = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        tag_lists: Sequence[Sequence[str]],
        items: np.ndarray,
        dataset_size: int,
        vectors: str = "skipgram",
        min_count: int = 2,
        features: np.ndarray | None = None,
        clean_threshold: float | None = 0.2,
        threshold: float = 0.4,
        skipgram_dim: int = 50,
        skipgram_epochs: int = 10,
        seed: int = 0,
    ) -> TagSimilarity:
        """Run the pipeline on the tag lists of dataset items ``items``.

        Args:
            tag_lists: tag list of each item of ``items`` (same order).
            items: dataset indices of the images.
            dataset_size: number of items of the whole dataset (size of :attr:`position`).
            vectors: ``skipgram``, ``glove`` or a word2vec file path.
            min_count: minimum images per tag.
            features: ``(len(items), d)`` visual features for cleaning; ``None`` skips cleaning.
            clean_threshold: cleaning score threshold (``None`` skips cleaning).
            threshold: similar when ``s > threshold``.
            skipgram_dim: Skip-gram vector size.
            skipgram_epochs: Skip-gram passes.
            seed: Skip-gram seed.
        """
        vocab = build_vocabulary(tag_lists, min_count)
        stats: dict = {"tags_min_count": len(vocab)}
        if features is not None and clean_threshold is not None and vocab:
            keep = clean_tags(features, incidence_matrix(tag_lists, vocab), clean_threshold, 1)
            vocab = [t for t, k in zip(vocab, keep, strict=True) if k]
        stats["tags_after_cleaning"] = len(vocab)
        if vectors == "skipgram":
            vec = train_skipgram(tag_lists, vocab, skipgram_dim, epochs=skipgram_epochs, seed=seed)
            found = np.ones(len(vocab), dtype=bool)
        elif vectors == "glove":
            vec, found = load_glove(vocab)
        else:
            vec, found = load_word2vec(vectors, vocab)
        stats["tags_without_vector"] = int((~found).sum())
        vocab = [t for t, f in zip(vocab, found, strict=True) if f]
        vec = vec[found]
        if not vocab:
            raise ValueError(
                "no tag survived (min_count, cleaning, vectors): lower min_count / "
                "clean_threshold, or check the tag source"
            )
        a = row_normalise(incidence_matrix(tag_lists, vocab)).astype(np.float32)
        position = np.full(dataset_size, -1, dtype=np.int64)
        position[np.asarray(items, dtype=np.int64)] = np.arange(len(items))
        t = tanimoto(vec).astype(np.float32)
        has = np.asarray(a.getnnz(axis=1)) > 0
        stats.update(tags=len(vocab), images=len(items), images_without_tags=int((~has).sum()))
        return cls(vocab, sp.csr_matrix(a), t, position, threshold, stats)

    def batch(self, indices: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(s (B, B) float32, has_tags (B,) bool)`` for dataset items ``indices``.

        Raises:
            KeyError: an item is not in the set the similarity was built on.
        """
        idx = np.asarray(torch.as_tensor(indices).cpu(), dtype=np.int64)
        rows = self.position[idx]
        if (rows < 0).any():
            raise KeyError(f"items {idx[rows < 0][:5].tolist()} are not in the tagged training set")
        a_b = self.incidence[rows]
        s = image_similarity(a_b, self.t)
        has = np.asarray(a_b.getnnz(axis=1)) > 0
        return torch.from_numpy(s.astype(np.float32)), torch.from_numpy(has)

    def similar_fraction(self, sample: int = 2000, seed: int = 0) -> float:
        """Fraction of similar pairs (``s > threshold``) among tagged images (a seeded sample)."""
        has = np.flatnonzero(np.asarray(self.incidence.getnnz(axis=1)) > 0)
        rng = np.random.default_rng(seed)
        pick = rng.choice(has, size=min(sample, len(has)), replace=False)
        s = image_similarity(self.incidence[pick], self.t)
        off = ~np.eye(len(pick), dtype=bool)
        return float((s[off] > self.threshold).mean()) if off.any() else 0.0


__all__ = ["TagSimilarity", "image_similarity", "tanimoto"]
