"""WS-KSH (hashbench/baselines/ws_ksh.py): KSH on the WSDH stage-1 network's features."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hashbench.baselines import BASELINES, SUPERVISED
from hashbench.baselines.ksh import KSH
from hashbench.baselines.ws_ksh import WSKSH, Stage1NotFoundError, find_stage1
from hashbench.data import get_datamodule_class

FAST = {"n_anchors": 40, "n_labeled": 200, "max_opt_iter": 30}


def _write_stage1(folder: Path, name: str, facts: dict, bits: int = 16, seed: int = 0) -> Path:
    """A stage-1 file as WSDH writes it: its backbone.* / hash_head.* weights and the facts."""
    from hashbench.methods.wsdh import WSDH

    torch.manual_seed(seed)
    model = WSDH(bits=bits)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.pt"
    torch.save({k: v.detach() for k, v in model._stage1_state().items()}, path)
    path.with_suffix(".json").write_text(json.dumps(facts))
    return path


def test_registered_supervised_and_the_stage1_lookup(tmp_path) -> None:
    assert BASELINES["ws_ksh"] is WSKSH and "ws_ksh" in SUPERVISED
    facts = {"data": "d/p-seed0-split2", "bits": 16, "backbone": "small_cnn", "seed": 0}
    old = _write_stage1(tmp_path, "a", facts)
    new = _write_stage1(tmp_path, "b", facts)
    os.utime(old, ns=(1, 1))  # older
    _write_stage1(tmp_path, "c", {**facts, "seed": 1})
    _write_stage1(tmp_path, "d", {**facts, "bits": 32}, bits=32)
    assert find_stage1(tmp_path, "d/p-seed0-split2", 16, "small_cnn", 0) == new
    assert find_stage1(tmp_path, "d/p-seed0-split2", 16, "small_cnn", 1).name == "c.pt"
    with pytest.raises(Stage1NotFoundError) as err:
        find_stage1(tmp_path, "d/p-seed0-split2", 64, "small_cnn", 0)
    msg = str(err.value)
    assert str(tmp_path) in msg and "64 bits" in msg and "configs/methods/wsdh.yaml" in msg
    with pytest.raises(FileNotFoundError, match="stage1 file"):
        WSKSH(stage1=str(tmp_path / "nope.pt"))


def test_auto_takes_only_the_stage1_of_its_tag_kind_and_length(tmp_path) -> None:
    """A quick run's stage 1 (synthetic tags, 1 epoch) never stands in for the grid's (classifier,
    10 epochs), even when it is the newest file; user tags (NUS-WIDE) match either kind."""
    facts = {"data": "d", "bits": 16, "backbone": "small_cnn", "seed": 0}
    grid = _write_stage1(
        tmp_path, "grid", {**facts, "tag_source": "classifier:top5>0.1", "stage1_epochs": 10}
    )
    os.utime(grid, ns=(1, 1))  # older than the quick one
    quick = _write_stage1(
        tmp_path, "quick", {**facts, "tag_source": "synthetic:label-derived:x", "stage1_epochs": 1}
    )
    assert find_stage1(tmp_path, "d", 16, "small_cnn", 0) == quick  # no filter: the newest
    assert find_stage1(tmp_path, "d", 16, "small_cnn", 0, "classifier", 10) == grid
    assert find_stage1(tmp_path, "d", 16, "small_cnn", 0, "synthetic", 1) == quick
    with pytest.raises(Stage1NotFoundError, match="stage1_epochs 3"):
        find_stage1(tmp_path, "d", 16, "small_cnn", 0, "classifier", 3)
    with pytest.raises(Stage1NotFoundError, match="weak_tags synthetic"):
        find_stage1(tmp_path, "d", 16, "small_cnn", 0, "synthetic", 10)
    user = tmp_path / "user"
    path = _write_stage1(user, "u", {**facts, "tag_source": "user", "stage1_epochs": 10})
    assert find_stage1(user, "d", 16, "small_cnn", 0, "classifier", 10) == path
    assert find_stage1(user, "d", 16, "small_cnn", 0, "synthetic", 10) == path
    with pytest.raises(ValueError, match="weak_tags"):
        WSKSH(weak_tags="labels")


def test_codes_are_ksh_on_the_stage1_backbone_features(
    fashion_mnist_root: Path, tmp_path, monkeypatch
) -> None:
    """fit_and_evaluate('ws_ksh') = KSH fitted on features computed here with WSDH itself."""
    from hashbench.methods.wsdh import WSDH

    dm = get_datamodule_class("fashion-mnist")(
        str(fashion_mnist_root), protocol="tiny", download=False
    )
    facts = {"data": dm.key, "bits": 16, "backbone": "small_cnn", "seed": 0, "stage1_epochs": 10}
    path = _write_stage1(tmp_path / "stage1", "s1", facts, seed=5)
    # independent features: the WSDH network with the stage-1 weights, eval mode
    torch.manual_seed(123)  # a different initialisation: only the loaded weights count
    model = WSDH(bits=16, stage1_cache=None).eval()
    model.load_stage1(path)
    feats = {}
    with torch.no_grad():
        for split in ("train", "query", "database"):
            images = torch.stack(
                [torch.from_numpy(dm.dataset(split).image(int(i))) for i in dm.split[split]]
            )
            feats[split] = model.features(images).flatten(1).numpy()
    hasher = WSKSH(bits=16, stage1_dir=str(tmp_path / "stage1"), **FAST)
    got = hasher.input_features(dm)
    assert hasher.stage1_file_ == str(path)
    for split in feats:
        np.testing.assert_allclose(got[split], feats[split], rtol=1e-4, atol=1e-5)
    # KSH's optimisation amplifies float rounding (thread count changes ~10% of the bits), so
    # the codes are compared on the same features: WS-KSH is exactly KSH on them
    expected = KSH(bits=16, random_state=0, **FAST).fit(got["train"], dm.labels("train"))
    hasher.fit(got["train"], dm.labels("train"))
    db = expected.encode(got["database"])
    assert (hasher.encode(got["database"]) == db).all()

    # through the bench's path: the hook replaces the given (pixel) features
    import hashbench.baselines.evaluate as ev

    def fast(name, bits, random_state=0, params=None):
        assert name == "ws_ksh"
        return WSKSH(
            bits, stage1=str(path), random_state=random_state, **{**FAST, **(params or {})}
        )

    monkeypatch.setattr(ev, "make_baseline", fast)
    pixels = {s: np.zeros((len(dm.split[s]), 3), np.float32) for s in feats}
    res = ev.fit_and_evaluate("ws_ksh", 16, dm, split_features=pixels)
    assert res["hasher"].n_features_in_ == feats["train"].shape[1] == 512
    assert (res["database_codes"] == db).mean() > 0.99
