"""Synthetic noisy tags (hashbench/data/tag_synthesis.py): the documented rule and marking."""

from __future__ import annotations

import numpy as np

from hashbench.data.tag_synthesis import NOISE_WORDS, class_vocabulary, synthetic_tags


def test_synthetic_tags_rule_and_marking() -> None:
    labels = np.eye(3, dtype=np.uint8)[np.arange(300) % 3]
    names = ["Sandal", "Sneaker", "Weird class"]
    lists, source = synthetic_tags(labels, names, tags_per_image=4, noise_rate=0.25, seed=0)
    assert source.startswith("synthetic:") and "rate=0.25" in source
    vocab = class_vocabulary(names)
    assert vocab[2][0] == "weird_class"
    noise = set(NOISE_WORDS)
    slots = sum(len(x) for x in lists)
    noisy = sum(t in noise for x in lists for t in x)
    assert 0.15 < noisy / slots < 0.35
    for c, x in zip(np.arange(300) % 3, lists, strict=True):
        assert all(t in noise or t in vocab[c] for t in x) and 1 <= len(x) <= 4
    again, _ = synthetic_tags(labels, names, tags_per_image=4, noise_rate=0.25, seed=0)
    assert again == lists
