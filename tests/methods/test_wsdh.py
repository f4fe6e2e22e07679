"""WSDH (hashbench/methods/wsdh.py): eq. 3 by hand and by loops, stage-1 reuse, synthetic tags."""

from __future__ import annotations

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


def _fit(key: str, root: Path, out: Path, cache: Path) -> Path:
    args = [
        "fit",
        "--config", str(REPO / f"configs/methods/{key}.yaml"),
        "--model.init_args.bits", "16",
        "--model.init_args.stage1_epochs", "1",
        "--model.init_args.skipgram_epochs", "1",
        "--model.init_args.stage1_cache", str(cache),
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
    assert saved["hyper_parameters"]["tag_source"].startswith("synthetic:")  # no tags in the data
    rec = saved["wsdh"]
    assert rec["tag_stats"]["tags"] > 0 and rec["stage1_file"] == str(files[0])
    ckpt2 = _fit("wsdrsch", fashion_mnist_root, tmp_path / "b", cache)
    assert list(cache.glob("*.pt")) == files and files[0].stat().st_mtime_ns == stamp
    saved2 = torch.load(ckpt2, map_location="cpu", weights_only=False)
    assert saved2["hyper_parameters"]["finetune"] == "drsch"
    assert saved2["wsdh"]["stage1_file"] == str(files[0])
    restored = load_method(str(ckpt2))  # the recorded tag_source is a valid argument
    assert restored.hparams.tag_source.startswith("synthetic:") and restored.finetune == "drsch"
    # the stage-1 weights are what fine-tuning starts from
    model = WSDH(bits=16)
    before = model.hash_head.linear.weight.detach().clone()
    model.load_stage1(files[0])
    state = torch.load(files[0], weights_only=True)
    assert torch.equal(model.hash_head.linear.weight, state["hash_head.linear.weight"])
    assert not torch.equal(before, model.hash_head.linear.weight)
