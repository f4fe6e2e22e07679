"""The backbone feature cache: extracted once, reused, shared by every split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hashbench.models.features as F
from hashbench.data.fashion_mnist import FashionMNISTDataModule


@pytest.fixture()
def dm(fashion_mnist_root: Path) -> FashionMNISTDataModule:
    d = FashionMNISTDataModule(str(fashion_mnist_root), protocol="tiny", download=False)
    d.setup()
    return d


def test_pixels_are_flattened_images(dm) -> None:
    x = F.FeatureCache(dm, "pixels").split("query")
    assert x.shape == (len(dm.split["query"]), 28 * 28) and x.dtype == np.float32
    want = dm.arrays.images[dm.split["query"]].reshape(len(x), -1) / 255.0
    np.testing.assert_allclose(x, want, atol=1e-6)


def test_backbone_features_are_cached_and_reused(dm, tmp_path, monkeypatch) -> None:
    cache = F.FeatureCache(dm, "small_cnn", cache_dir=tmp_path, seed=3)
    first = cache.split("train")
    assert first.shape == (len(dm.split["train"]), 512)
    assert cache.path.is_file() and cache.path.parent.parent == tmp_path
    assert not list(tmp_path.rglob("*.tmp")), "temporary file left behind"

    def no_extraction(*args, **kwargs):
        raise AssertionError("cached features must be reused")

    monkeypatch.setattr(F, "compute_features", no_extraction)
    again = F.FeatureCache(dm, "small_cnn", cache_dir=tmp_path, seed=3)
    np.testing.assert_array_equal(again.split("train"), first)
    # every split was extracted on the first call, so another split needs no extraction either
    assert again.split("database").shape == (len(dm.split["database"]), 512)


def test_cached_features_equal_a_fresh_extraction(dm, tmp_path) -> None:
    idx = dm.split["query"][:7]
    cached = F.FeatureCache(dm, "small_cnn", cache_dir=tmp_path, seed=0).get(idx)
    fresh = F.compute_features(dm, idx, "small_cnn", seed=0, progress=False)
    np.testing.assert_allclose(cached, fresh, rtol=1e-5, atol=1e-5)


def test_cache_key_separates_weights(dm, tmp_path) -> None:
    a = F.FeatureCache(dm, "small_cnn", cache_dir=tmp_path, seed=0)
    b = F.FeatureCache(dm, "small_cnn", cache_dir=tmp_path, seed=1)
    assert a.path != b.path
    assert F.weights_tag(True, 0) == "imagenet"


def test_corrupt_cache_is_a_clear_error(dm, tmp_path) -> None:
    cache = F.FeatureCache(dm, "small_cnn", cache_dir=tmp_path)
    cache.path.parent.mkdir(parents=True)
    cache.path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        cache.get(dm.split["query"][:2])
