"""HashingMethod contract, parametrised over the method registry, and DSH's loss."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hashbench.methods import METHODS, method_class
from hashbench.methods.base import HashingMethod, NonFiniteLossError
from hashbench.methods.dsh import DSH
from hashbench.retrieval.codes import unpack_bits

REPO = Path(__file__).resolve().parents[2]


def _batch(n: int = 12, channels: int = 1, size: int = 28, classes: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    labels = torch.eye(classes)[torch.randint(0, classes, (n,), generator=g)]
    return {"image": images, "label": labels, "index": torch.arange(n)}


@pytest.mark.parametrize("key", sorted(METHODS))
def test_registry_entry_has_config_and_subclasses_base(key: str) -> None:
    cls = method_class(key)
    assert issubclass(cls, HashingMethod)
    config = REPO / "configs" / "methods" / f"{key}.yaml"
    assert config.is_file(), f"registered method {key} has no {config}"
    model = yaml.safe_load(config.read_text())["model"]
    assert model["class_path"] == METHODS.path(key)
    assert METHODS[key] is cls


def test_unknown_method_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="registered"):
        method_class("nope")


@pytest.mark.parametrize("key", sorted(METHODS))
@pytest.mark.parametrize("bits", [8, 48])
def test_encode_gives_packed_codes(key: str, bits: int) -> None:
    model = method_class(key)(bits=bits).eval()
    codes = model.encode(_batch()["image"])
    assert codes.dtype == torch.uint8 and codes.shape == (12, bits // 8)
    # packing agrees with the 1[h >= threshold] rule bit for bit
    h = model(_batch()["image"]).detach().numpy()
    np.testing.assert_array_equal(
        unpack_bits(codes.numpy()), (h >= model.threshold).astype(np.uint8)
    )


@pytest.mark.parametrize("bits", [0, 12, 33, -8])
def test_bad_bit_length_is_rejected_at_construction(bits: int) -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        DSH(bits=bits)


def _dsh_reference(h: torch.Tensor, labels: torch.Tensor, margin: float, alpha: float) -> float:
    """DSH's loss written out with loops: mean over ordered pairs i != j, regulariser per image."""
    n = len(h)
    pair_terms = []
    for i, j in itertools.permutations(range(n), 2):
        s = float((labels[i] * labels[j]).sum() > 0)
        d2 = float(((h[i] - h[j]) ** 2).sum())
        pair_terms.append(0.5 * s * d2 + 0.5 * (1 - s) * max(margin - d2, 0.0))
    reg = np.mean([float((h[i].abs() - 1).abs().sum()) for i in range(n)])
    return float(np.mean(pair_terms)) + alpha * reg


def test_dsh_loss_matches_reference() -> None:
    torch.manual_seed(0)
    h = torch.randn(9, 16) * 3
    labels = torch.eye(4)[torch.randint(0, 4, (9,))]
    model = DSH(bits=16, alpha=0.05)
    got = model.loss(h, labels)["loss"].item()
    assert got == pytest.approx(_dsh_reference(h, labels, 32.0, 0.05), rel=1e-5)
    got = DSH(bits=16, margin=5.0).loss(h, labels)["loss"].item()
    assert got == pytest.approx(_dsh_reference(h, labels, 5.0, 0.01), rel=1e-5)


def test_dsh_training_step_changes_parameters() -> None:
    torch.manual_seed(0)
    model = DSH(bits=16)
    before = [p.detach().clone() for p in model.parameters()]
    opt = model.make_optimizer(model.parameter_groups())
    batch = _batch()
    loss = model.loss(model(batch["image"]), batch["label"])["loss"]
    opt.zero_grad()
    loss.backward()
    opt.step()
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert all(changed)


def test_non_finite_loss_stops_with_clear_message() -> None:
    model = DSH(bits=16)
    with pytest.raises(NonFiniteLossError, match="lower the learning rate|Lower the learning rate"):
        model.on_before_backward(torch.tensor(float("nan")))
    model.on_before_backward(torch.tensor(1.0))  # finite: nothing happens


def test_optimiser_groups_scale_backbone_lr() -> None:
    from hashbench.methods.base import Optim

    model = DSH(bits=16, optim=Optim(lr=0.01, backbone_lr_mult=0.1, name="sgd"))
    opt = model.make_optimizer(model.parameter_groups())
    lrs = sorted(g["lr"] for g in opt.param_groups)
    assert lrs == pytest.approx([0.001, 0.01])
    n_params = sum(len(g["params"]) for g in opt.param_groups)
    assert n_params == len(list(model.parameters()))
