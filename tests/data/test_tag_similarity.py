"""Tanimoto, image similarity and TagSimilarity (hashbench/data/tag_similarity.py) against loops."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hashbench.data.tag_similarity import TagSimilarity, image_similarity, tanimoto
from hashbench.data.tag_vocabulary import incidence_matrix, row_normalise


def _loop_tanimoto(x: np.ndarray, y: np.ndarray) -> float:
    dot = sum(a * b for a, b in zip(x, y, strict=True))
    return dot / (sum(a * a for a in x) + sum(b * b for b in y) - dot)


def test_tanimoto_matches_eq2() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(6, 4))
    t = tanimoto(v)
    for k in range(6):
        for m in range(6):
            assert t[k, m] == pytest.approx(_loop_tanimoto(v[k], v[m]), rel=1e-9)
    assert np.allclose(np.diag(t), 1.0)
    assert tanimoto(np.zeros((2, 3)))[0, 1] == 0.0


def test_image_similarity_is_the_double_sum_of_eq1() -> None:
    rng = np.random.default_rng(1)
    vocab = [f"w{k}" for k in range(7)]
    vectors = rng.normal(size=(7, 5))
    tag_lists = [list(rng.choice(vocab, size=rng.integers(1, 5), replace=False)) for _ in range(9)]
    tag_lists[3] = []  # an image without tags: zero row
    a = row_normalise(incidence_matrix(tag_lists, vocab))
    s = image_similarity(a, tanimoto(vectors))
    index = {w: k for k, w in enumerate(vocab)}
    for i in range(9):
        for j in range(9):
            ti, tj = tag_lists[i], tag_lists[j]
            if not ti or not tj:
                assert s[i, j] == 0.0
                continue
            ref = sum(
                _loop_tanimoto(vectors[index[p]], vectors[index[q]]) for p in ti for q in tj
            ) / (len(ti) * len(tj))
            assert s[i, j] == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_tag_similarity_batch_and_mask() -> None:
    lists = [["sun", "sea"], ["sun"], [], ["snow", "ice"], ["snow"]] * 4
    items = np.arange(100, 120)
    ts = TagSimilarity.build(lists, items, 200, min_count=2, features=None, skipgram_epochs=2)
    s, has = ts.batch(torch.tensor([100, 102, 103]))
    assert has.tolist() == [True, False, True]
    a = row_normalise(incidence_matrix(lists, ts.vocabulary))
    ref = image_similarity(a, ts.t.astype(np.float64))
    assert np.allclose(s.numpy(), ref[np.ix_([0, 2, 3], [0, 2, 3])], atol=1e-5)
    assert ts.stats["images_without_tags"] == 4
    with pytest.raises(KeyError, match="not in the tagged"):
        ts.batch(torch.tensor([5]))
    assert isinstance(ts.incidence, sp.csr_matrix)
