"""WSDH (hashbench/methods/wsdh.py): eq. 3 by hand and by loops, stage-1 reuse, the weak tag sources
(classifier predictions, hashbench/models/classifier_tags.py; label-derived synthetic tags)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from hashbench.cli import main
from hashbench.methods import load_method
from hashbench.methods.wsdh import WSDH, pretrain_loss
from tests.fixtures import REPO, fixture_data_args, quick_trainer_args


def test_eq3_by_hand_plain_norm_and_margin() -> None:
    f = torch.tensor([[0.0, 0.0], [0.6, 0.8], [0.3, 0.4]])
    similar = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]])
    valid = torch.ones(3, dtype=torch.bool)
    # ||f0-f1|| = 1 (similar), ||f0-f2|| = ||f1-f2|| = 0.5 (dissimilar: max(0, 1 - 0.5) = 0.5)
    assert float(pretrain_loss(f, similar, valid)) == pytest.approx((2 * 1.0 + 4 * 0.5) / 6)
    # margin 2: dissimilar pairs cost 1.5 each; a squared norm would give 1.75
    assert float(pretrain_loss(f, similar, valid, 2.0)) == pytest.approx((2 + 4 * 1.5) / 6)
    # image 2 has no tag: only the pair (0, 1) remains
    assert float(pretrain_loss(f, similar, torch.tensor([True, True, False]))) == 1.0
    assert float(pretrain_loss(f, similar, torch.zeros(3, dtype=torch.bool))) == 0.0


def test_eq3_matches_loops_and_has_finite_gradient_at_zero_distance() -> None:
    g = torch.Generator().manual_seed(0)
    f = torch.sigmoid(torch.randn(6, 5, generator=g, dtype=torch.float64))
    f[3] = f[1]  # a zero distance
    f.requires_grad_(True)
    similar = (torch.rand(6, 6, generator=g) > 0.5).to(torch.float64)
    valid = torch.tensor([True, True, False, True, True, True])
    vals = []
    for i in range(6):
        for j in range(6):
            if i == j or not (valid[i] and valid[j]):
                continue
            d = math.sqrt(float(((f[i] - f[j]) ** 2).sum()))
            s = float(similar[i, j])
            vals.append(s * d + (1 - s) * max(0.0, 0.7 - d))
    loss = pretrain_loss(f, similar, valid, 0.7)
    assert float(loss) == pytest.approx(sum(vals) / len(vals), rel=1e-10)
    loss.backward()
    assert torch.isfinite(f.grad).all()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="finetune"):
        WSDH(bits=16, finetune="ksh")
    with pytest.raises(ValueError, match="weak_tags"):
        WSDH(bits=16, weak_tags="labels")
    with pytest.raises(ValueError, match="classifier_top_k"):
        WSDH(bits=16, classifier_top_k=0)
    with pytest.raises(ValueError, match="stage1_epochs"):
        WSDH(bits=16, stage1_epochs=-1)
    with pytest.raises(FileNotFoundError, match="pretrained_stage1"):
        WSDH(bits=16, pretrained_stage1=str(tmp_path / "nope.pt"))
    with pytest.raises(ValueError):
        WSDH(bits=10)
    other = WSDH(bits=32)
    path = tmp_path / "s1.pt"
    torch.save(other.state_dict(), path)
    with pytest.raises((ValueError, RuntimeError)):
        WSDH(bits=16).load_stage1(path)


def _fit(key: str, root: Path, out: Path, cache: Path, weak_tags: str = "synthetic") -> Path:
    args = [
        "fit",
        "--config", str(REPO / f"configs/methods/{key}.yaml"),
        "--model.init_args.bits", "16",
        "--model.init_args.stage1_epochs", "1",
        "--model.init_args.skipgram_epochs", "1",
        "--model.init_args.stage1_cache", str(cache),
        "--model.init_args.weak_tags", weak_tags,
        *fixture_data_args(root),
        *quick_trainer_args(out),
    ]  # fmt: skip
    assert main(args) == 0
    return next(c for c in sorted(out.rglob("*.ckpt")) if c.name != "last.ckpt")


def test_stage1_is_cached_and_reused_across_variants(fashion_mnist_root: Path, tmp_path) -> None:
    cache = tmp_path / "stage1"
    ckpt = _fit("wsdh", fashion_mnist_root, tmp_path / "a", cache)
    files = list(cache.glob("*.pt"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    # no tags in the data; the synthetic source says it is label-derived
    assert saved["hyper_parameters"]["tag_source"].startswith("synthetic:label-derived:")
    rec = saved["wsdh"]
    assert rec["tag_stats"]["tags"] > 0 and rec["stage1_file"] == str(files[0])
    ckpt2 = _fit("wsdrsch", fashion_mnist_root, tmp_path / "b", cache)
    assert list(cache.glob("*.pt")) == files and files[0].stat().st_mtime_ns == stamp
    saved2 = torch.load(ckpt2, map_location="cpu", weights_only=False)
    assert saved2["hyper_parameters"]["finetune"] == "drsch"
    assert saved2["wsdh"]["stage1_file"] == str(files[0])
    restored = load_method(str(ckpt2))  # the recorded tag_source is a valid argument
    assert restored.hparams.tag_source.startswith("synthetic:label-derived:")
    assert restored.finetune == "drsch"
    facts = json.loads(files[0].with_suffix(".json").read_text())  # what ws_ksh looks up
    assert facts["bits"] == 16 and facts["backbone"] == "small_cnn" and facts["seed"] == 0
    assert facts["data"].startswith("fashion-mnist/tiny-seed0") and facts["tag_source"] == (
        restored.hparams.tag_source
    )
    # the stage-1 weights are what fine-tuning starts from
    model = WSDH(bits=16)
    before = model.hash_head.linear.weight.detach().clone()
    model.load_stage1(files[0])
    state = torch.load(files[0], weights_only=True)
    assert torch.equal(model.hash_head.linear.weight, state["hash_head.linear.weight"])
    assert not torch.equal(before, model.hash_head.linear.weight)


def test_default_tag_source_is_the_classifier_not_the_labels(
    fashion_mnist_root: Path, tmp_path, monkeypatch
) -> None:
    """Without user tags the default tags come from classifier predictions (stubbed here)."""
    import numpy as np

    from hashbench.data import get_datamodule_class
    from hashbench.models import classifier_tags as ct

    seen = []

    def fake_predict(dm, items, **kw):  # two fixed ImageNet classes per image, by image index
        seen.append(len(items))
        classes = np.tile(np.arange(10, dtype=np.int16), (len(items), 1))
        classes[:, 0] = np.asarray(items) % 2  # tench (0) or goldfish (1)
        probs = np.tile(np.linspace(0.5, 0.01, 10, dtype=np.float32), (len(items), 1))
        return classes, probs

    monkeypatch.setattr(ct, "predict_top", fake_predict)
    dm = get_datamodule_class("fashion-mnist")(
        str(fashion_mnist_root), protocol="tiny", download=False
    )
    model = WSDH(bits=16, clean_threshold=None, skipgram_epochs=1, min_tag_count=1)
    assert model.hparams.weak_tags == "classifier"
    items = np.asarray(dm.split["train"])
    lists, source = model._tag_lists(dm, items)
    assert source == "classifier:efficientnet_lite0-imagenet(k=3,p>=0.1)"
    names = ct.imagenet_classes()
    # p of ranks 0..2 = 0.5, 0.4456, 0.3911 (>= 0.1): words of the 3 top classes, in rank order
    for i, tags in zip(items[:6], lists[:6], strict=True):
        top = [names[int(i) % 2], names[1], names[2]]
        expected = list(dict.fromkeys(w for n in top for w in n.lower().split()))
        assert tags == expected
    path = ct.cache_path(dm)
    assert path == fashion_mnist_root / "tags/fashion-mnist" / path.name and path.is_file()
    try:
        ts = model.build_tag_similarity(dm)
        assert model.hparams.tag_source == source and ts.stats["tags"] > 0
        assert seen == [len(items)]  # predicted once, then read from the cache
    finally:
        path.unlink()  # the fixture is shared: leave no stubbed predictions behind
