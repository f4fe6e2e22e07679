"""Tag vocabulary, incidence and cleaning (hashbench/data/tag_vocabulary.py) against loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hashbench.data import tag_vocabulary as V


def test_vocabulary_min_count_and_normalisation() -> None:
    lists = [["Sky", "sea "], ["sky", "sky"], ["dog"]]
    assert V.build_vocabulary(lists, 1) == ["dog", "sea", "sky"]
    assert V.build_vocabulary(lists, 2) == ["sky"]  # "sky" twice in one image counts once there
    a = V.incidence_matrix(lists, ["sea", "sky"]).toarray()
    assert a.tolist() == [[1, 1], [0, 1], [0, 0]]
    with pytest.raises(ValueError, match="min_count"):
        V.build_vocabulary(lists, 0)


def test_cleaning_scores_against_loops_and_drops_planted_nonvisual_tag() -> None:
    rng = np.random.default_rng(2)
    n_per, d = 40, 16
    centres = rng.normal(size=(3, d)) * 3
    feats = np.concatenate([centres[c] + rng.normal(size=(n_per, d)) for c in range(3)])
    cls = np.repeat(np.arange(3), n_per)
    lists = [[f"class{c}"] for c in cls]
    for i in rng.choice(len(cls), size=45, replace=False):  # non-visual: random images
        lists[i].append("nikon")
    vocab = V.build_vocabulary(lists)
    inc = V.incidence_matrix(lists, vocab)
    coh, sep, score = V.cleaning_scores(feats, inc)
    x = feats - feats.mean(0)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    mu = x.mean(0)
    for k in range(len(vocab)):
        members = np.flatnonzero(inc.toarray()[:, k])
        pair = [x[i] @ x[j] for i in members for j in members if i != j]
        assert coh[k] == pytest.approx(np.mean(pair), rel=1e-9)
        assert sep[k] == pytest.approx(np.linalg.norm(x[members].mean(0) - mu), rel=1e-9)
        n, m = len(x), len(members)
        c_all = np.mean([x[i] @ x[j] for i in range(n) for j in range(n) if i != j])
        sigma2 = np.mean([np.sum((x[i] - mu) ** 2) for i in range(n)])
        chance = (n - m) / ((n - 1) * m) * sigma2
        ref = coh[k] - c_all + math.sqrt(max(sep[k] ** 2 - chance, 0.0))
        assert score[k] == pytest.approx(ref, rel=1e-9, abs=1e-12)
    keep = V.clean_tags(feats, inc, threshold=0.05, min_count=2)
    kept = {v for v, k in zip(vocab, keep, strict=True) if k}
    assert kept == {"class0", "class1", "class2"}, dict(zip(vocab, score, strict=True))
