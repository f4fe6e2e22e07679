"""``hashbench.data.tags`` re-exports the tag pipeline split over its modules.

The pipeline's tests live with the code: ``test_tag_vocabulary.py``, ``test_tag_vectors.py``,
``test_tag_similarity.py`` and ``test_tag_synthesis.py``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from hashbench.data import tags as T

#: Every public name ``hashbench.data.tags`` had as one module, and where it lives now.
HOMES = {
    "normalise_tag": "tag_vocabulary",
    "build_vocabulary": "tag_vocabulary",
    "incidence_matrix": "tag_vocabulary",
    "row_normalise": "tag_vocabulary",
    "cleaning_scores": "tag_vocabulary",
    "clean_tags": "tag_vocabulary",
    "train_skipgram": "tag_vectors",
    "GLOVE_HINT": "tag_vectors",
    "load_glove": "tag_vectors",
    "load_word2vec": "tag_vectors",
    "tanimoto": "tag_similarity",
    "image_similarity": "tag_similarity",
    "TagSimilarity": "tag_similarity",
    "CLASS_WORDS": "tag_synthesis",
    "NOISE_WORDS": "tag_synthesis",
    "class_vocabulary": "tag_synthesis",
    "synthetic_tags": "tag_synthesis",
}


@pytest.mark.parametrize("name", sorted(HOMES))
def test_every_public_name_is_reexported(name: str) -> None:
    module = importlib.import_module(f"hashbench.data.{HOMES[name]}")
    assert getattr(T, name) is getattr(module, name)
    assert name in T.__all__ and name in module.__all__


def test_all_lists_exactly_the_pipeline() -> None:
    assert sorted(T.__all__) == sorted(HOMES)


def test_wsdh_imports_still_resolve() -> None:
    from hashbench.data.tags import TagSimilarity, synthetic_tags

    assert TagSimilarity.__module__ == "hashbench.data.tag_similarity"
    assert callable(synthetic_tags)


def test_tag_modules_respect_the_data_layer() -> None:
    """``data/`` imports nothing from ``models/``, ``losses/``, ``methods/``, ``bench/``."""
    for mod in set(HOMES.values()):
        src = importlib.import_module(f"hashbench.data.{mod}").__file__
        text = Path(src).read_text(encoding="utf-8")
        for layer in ("models", "losses", "methods", "bench"):
            assert f"hashbench.{layer}" not in text, (mod, layer)
