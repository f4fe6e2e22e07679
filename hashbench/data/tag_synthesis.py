"""Synthetic noisy user tags for datasets without tags (Fashion-MNIST, CIFAR-10; METHODS.md
section 2).

:func:`synthetic_tags` draws a documented synthetic noisy tag list per image; its ``tag_source``
string starts with ``synthetic:label-derived:`` and is recorded in the method's hyper-parameters
(and so in every record and table). These tags are drawn from the class labels, so a stage 1 on them
is close to label supervision; the default source, which does not read the labels, is the
classifier tags of ``models/classifier_tags.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

#: Related words per class name (shared words link visually related classes).
CLASS_WORDS: dict[str, list[str]] = {
    # Fashion-MNIST
    "t-shirt/top": ["tshirt", "top", "cotton", "casual", "shortsleeve"],
    "trouser": ["trousers", "pants", "jeans", "legs", "denim"],
    "pullover": ["pullover", "sweater", "knit", "top", "wool"],
    "dress": ["dress", "gown", "skirt", "elegant", "party"],
    "coat": ["coat", "jacket", "winter", "wool", "outerwear"],
    "sandal": ["sandal", "shoe", "summer", "beach", "strap"],
    "shirt": ["shirt", "top", "collar", "button", "formal"],
    "sneaker": ["sneaker", "shoe", "sport", "running", "trainer"],
    "bag": ["bag", "handbag", "leather", "purse", "strap"],
    "ankle boot": ["boot", "shoe", "ankle", "leather", "winter"],
    # CIFAR-10
    "airplane": ["airplane", "plane", "sky", "flight", "jet"],
    "automobile": ["car", "automobile", "road", "wheel", "vehicle"],
    "bird": ["bird", "wings", "feather", "sky", "animal"],
    "cat": ["cat", "kitten", "pet", "fur", "animal"],
    "deer": ["deer", "forest", "wildlife", "antlers", "animal"],
    "dog": ["dog", "puppy", "pet", "fur", "animal"],
    "frog": ["frog", "pond", "green", "amphibian", "animal"],
    "horse": ["horse", "pony", "farm", "riding", "animal"],
    "ship": ["ship", "boat", "sea", "harbour", "vehicle"],
    "truck": ["truck", "lorry", "road", "wheel", "vehicle"],
}

#: Non-visual noise tags shared by all classes (typical Flickr user tags).
NOISE_WORDS: list[str] = [
    "photo", "nikon", "canon", "2008", "2009", "me", "friends", "family", "holiday", "flickr",
    "explore", "nice", "cool", "favorite", "vacation", "trip", "love", "art", "life", "home",
]  # fmt: skip


def class_vocabulary(class_names: Sequence[str]) -> list[list[str]]:
    """Related words of each class: :data:`CLASS_WORDS` when known, else the class name's tokens
    plus ``<name>_1..4`` (unrelated to other classes)."""
    out = []
    for name in class_names:
        key = name.strip().lower()
        if key in CLASS_WORDS:
            out.append(list(CLASS_WORDS[key]))
        else:
            base = re.sub(r"[^a-z0-9]+", "_", key).strip("_") or "class"
            out.append([base, *(f"{base}_{i}" for i in range(1, 5))])
    return out


def synthetic_tags(
    labels: np.ndarray,
    class_names: Sequence[str],
    tags_per_image: int = 4,
    noise_rate: float = 0.3,
    seed: int = 0,
) -> tuple[list[list[str]], str]:
    """Synthetic noisy user tags for a dataset without tags (METHODS.md section 2).

    Rule: each image draws ``tags_per_image`` distinct tag slots; each slot is, with probability
    ``1 - noise_rate``, a word from the related-word list of one of the image's classes
    (:func:`class_vocabulary`; related classes share words, e.g. ``shoe``), and with probability
    ``noise_rate`` a word from the shared non-visual pool :data:`NOISE_WORDS`. Duplicates collapse,
    so an image has between 1 and ``tags_per_image`` tags.

    Returns:
        ``(tag_lists, tag_source)`` with ``tag_source =
        "synthetic:label-derived:class-words+noise(k=<k>,rate=<rate>,seed=<seed>)"``: the tags are
        drawn from the labels, and the string says so in every record.
    """
    if tags_per_image < 1:
        raise ValueError(f"tags_per_image must be >= 1, got {tags_per_image}")
    if not 0.0 <= noise_rate <= 1.0:
        raise ValueError(f"noise_rate must be in [0, 1], got {noise_rate}")
    labels = np.asarray(labels)
    words = class_vocabulary(class_names)
    if labels.shape[1] != len(words):
        raise ValueError(f"{labels.shape[1]} label columns for {len(words)} class names")
    rng = np.random.default_rng(seed)
    out: list[list[str]] = []
    for row in labels:
        classes = np.flatnonzero(row)
        tags: list[str] = []
        for _ in range(tags_per_image):
            if len(classes) == 0 or rng.random() < noise_rate:
                tags.append(NOISE_WORDS[rng.integers(len(NOISE_WORDS))])
            else:
                vocab = words[classes[rng.integers(len(classes))]]
                tags.append(vocab[rng.integers(len(vocab))])
        out.append(list(dict.fromkeys(tags)))
    source = f"synthetic:label-derived:class-words+noise(k={tags_per_image},rate={noise_rate},seed={seed})"
    return out, source


__all__ = ["CLASS_WORDS", "NOISE_WORDS", "class_vocabulary", "synthetic_tags"]
