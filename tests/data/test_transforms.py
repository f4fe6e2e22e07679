"""Tests for hashbench.data.transforms: InputSpec, InputAdapter, train_augmentation."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn.functional as F

from hashbench.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    InputAdapter,
    InputSpec,
    TrainAugmentation,
    train_augmentation,
)


def _images(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)


def _reference(x: torch.Tensor, mean, std) -> torch.Tensor:
    """Slow, obvious normalisation: per channel, per pixel, in float64."""
    out = torch.empty(x.shape, dtype=torch.float64)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[n, c] = (x[n, c].double() / 255.0 - mean[c]) / std[c]
    return out


# ---------------------------------------------------------------------------------------- InputSpec


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(size=0, channels=3, mean=(0.5,) * 3, std=(0.5,) * 3),
        dict(size=224, channels=2, mean=(0.5,) * 2, std=(0.5,) * 2),
        dict(size=224, channels=3, mean=(0.5,), std=(0.5,) * 3),
        dict(size=224, channels=1, mean=(0.5,), std=(0.0,)),
    ],
)
def test_input_spec_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="InputSpec"):
        InputSpec(**kwargs)


def test_input_spec_is_frozen_and_hashable():
    spec = InputSpec(224, 3, IMAGENET_MEAN, IMAGENET_STD)
    with pytest.raises(AttributeError):
        spec.size = 32  # type: ignore[misc]
    assert spec == InputSpec(224, 3, IMAGENET_MEAN, IMAGENET_STD)
    assert hash(spec) == hash(InputSpec(224, 3, IMAGENET_MEAN, IMAGENET_STD))


# ------------------------------------------------------------------------------------- InputAdapter


def test_normalisation_values_exact():
    spec = InputSpec(None, 3, IMAGENET_MEAN, IMAGENET_STD)
    x = _images((2, 3, 5, 7))
    out = InputAdapter(spec)(x)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 5, 7)
    torch.testing.assert_close(
        out.double(), _reference(x, IMAGENET_MEAN, IMAGENET_STD), rtol=1e-6, atol=1e-6
    )
    # the float32 formula, bit for bit
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.equal(out, (x.float() / 255 - mean) / std)


def test_normalisation_extremes():
    spec = InputSpec(None, 3, IMAGENET_MEAN, IMAGENET_STD)
    adapter = InputAdapter(spec)
    white = adapter(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8))
    black = adapter(torch.zeros((1, 3, 2, 2), dtype=torch.uint8))
    for c in range(3):
        assert white[0, c].allclose(torch.tensor((1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]))
        assert black[0, c].allclose(torch.tensor(-IMAGENET_MEAN[c] / IMAGENET_STD[c]))


def test_grey_to_rgb_repeats_the_channel():
    spec = InputSpec(None, 3, IMAGENET_MEAN, IMAGENET_STD)
    x = _images((3, 1, 28, 28))
    out = InputAdapter(spec)(x)
    assert out.shape == (3, 3, 28, 28)
    torch.testing.assert_close(
        out.double(),
        _reference(x.expand(-1, 3, -1, -1), IMAGENET_MEAN, IMAGENET_STD),
        rtol=1e-6,
        atol=1e-6,
    )


def test_rgb_to_grey_averages_the_channels():
    spec = InputSpec(None, 1, (0.5,), (0.25,))
    x = _images((2, 3, 6, 6))
    out = InputAdapter(spec)(x)
    assert out.shape == (2, 1, 6, 6)
    expected = torch.empty(2, 1, 6, 6, dtype=torch.float64)
    for n in range(2):
        for i in range(6):
            for j in range(6):
                grey = sum(int(x[n, c, i, j]) for c in range(3)) / 3 / 255
                expected[n, 0, i, j] = (grey - 0.5) / 0.25
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)


def test_same_channels_pass_through():
    spec = InputSpec(None, 1, (0.0,), (1.0,))
    x = _images((2, 1, 4, 4))
    assert torch.equal(InputAdapter(spec)(x), x.float() / 255)


@pytest.mark.parametrize(
    "in_shape, size", [((2, 3, 32, 32), 16), ((2, 1, 28, 28), 224), ((1, 3, 40, 30), 24)]
)
def test_resize_matches_bilinear_antialias(in_shape, size):
    spec = InputSpec(size, 3, (0.0,) * 3, (1.0,) * 3)
    x = _images(in_shape)
    out = InputAdapter(spec)(x)
    assert out.shape == (in_shape[0], 3, size, size)
    ref = F.interpolate(
        x.float() / 255, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    ).expand(-1, 3, -1, -1)
    torch.testing.assert_close(out, ref)


def test_resize_keeps_constant_images_constant_and_normalises_after():
    spec = InputSpec(64, 3, IMAGENET_MEAN, IMAGENET_STD)
    out = InputAdapter(spec)(torch.full((1, 1, 28, 28), 255, dtype=torch.uint8))
    for c in range(3):
        torch.testing.assert_close(
            out[0, c], torch.full((64, 64), (1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c])
        )


def test_no_resize_when_size_matches():
    spec = InputSpec(8, 3, (0.0,) * 3, (1.0,) * 3)
    x = _images((2, 3, 8, 8))
    assert torch.equal(InputAdapter(spec)(x), x.float() / 255)


def test_float_input_in_unit_range_and_gradients():
    spec = InputSpec(16, 3, IMAGENET_MEAN, IMAGENET_STD)
    adapter = InputAdapter(spec)
    x = _images((2, 1, 28, 28))
    xf = (x.float() / 255).requires_grad_(True)
    out = adapter(xf)
    torch.testing.assert_close(out, adapter(x))
    out.sum().backward()
    assert xf.grad is not None and xf.grad.abs().sum() > 0


def test_buffers_follow_the_module_but_stay_out_of_checkpoints():
    adapter = InputAdapter(InputSpec(None, 3, IMAGENET_MEAN, IMAGENET_STD))
    assert adapter.state_dict() == {}
    assert {n for n, _ in adapter.named_buffers()} == {"mean", "std"}
    assert adapter.to(torch.float64).mean.dtype == torch.float64  # moves like any buffer
    assert "size=None" in repr(adapter)


def test_bad_inputs():
    adapter = InputAdapter(InputSpec(None, 3, IMAGENET_MEAN, IMAGENET_STD))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        adapter(_images((3, 8, 8)))
    with pytest.raises(ValueError, match="C = 1 or 3"):
        adapter(_images((1, 2, 8, 8)))
    with pytest.raises(TypeError, match="uint8"):
        adapter(torch.zeros((1, 3, 8, 8), dtype=torch.int64))
    with pytest.raises(TypeError, match="InputSpec"):
        InputAdapter((224, 3))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ train_augmentation


@pytest.mark.parametrize("kind", ["none", "crop", "flip_crop"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 20, 24)])
def test_augmentation_keeps_shape_and_dtype(kind, shape):
    aug = train_augmentation(kind)
    x = _images(shape)
    torch.manual_seed(0)
    for _ in range(5):
        y = aug(x)
        assert y.shape == x.shape and y.dtype == torch.uint8


def test_none_is_identity():
    x = _images((1, 28, 28))
    assert train_augmentation("none")(x) is x
    assert torch.equal(train_augmentation("crop", padding=0)(x), x)


@pytest.mark.parametrize("kind", ["crop", "flip_crop"])
def test_augmentation_is_seeded_deterministic(kind):
    aug = train_augmentation(kind, padding=4)
    xs = [_images((3, 32, 32), seed=s) for s in range(8)]
    torch.manual_seed(123)
    a = [aug(x) for x in xs]
    torch.manual_seed(123)
    b = [aug(x) for x in xs]
    torch.manual_seed(7)
    c = [aug(x) for x in xs]
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not all(torch.equal(u, v) for u, v in zip(a, c, strict=True))


def _windows(x: torch.Tensor, padding: int) -> list[torch.Tensor]:
    """Every H x W window of ``x`` zero-padded by ``padding`` (the possible random crops)."""
    _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    return [
        padded[:, i : i + h, j : j + w]
        for i in range(2 * padding + 1)
        for j in range(2 * padding + 1)
    ]


def test_crop_is_a_window_of_the_padded_image_and_never_flips():
    x = _images((1, 12, 12))
    windows = _windows(x, 2)
    aug = train_augmentation("crop", padding=2)
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        y = aug(x)
        idx = [k for k, w in enumerate(windows) if torch.equal(y, w)]
        assert idx, "a crop must equal one window of the zero-padded image"
        seen.add(idx[0])
    assert len(seen) > 5  # the offset is random


def test_flip_crop_flips_sometimes():
    x = _images((3, 10, 10))
    windows = _windows(x, 1)
    flipped = [w.flip(-1) for w in windows]
    aug = train_augmentation("flip_crop", padding=1)
    torch.manual_seed(0)
    n_flipped = 0
    for _ in range(40):
        y = aug(x)
        plain = any(torch.equal(y, w) for w in windows)
        mirrored = any(torch.equal(y, w) for w in flipped)
        assert plain or mirrored
        n_flipped += mirrored and not plain
    assert 5 < n_flipped < 35


def test_augmentation_pickles_after_use():
    aug = train_augmentation("flip_crop")
    aug(_images((1, 28, 28)))
    clone = pickle.loads(pickle.dumps(aug))
    assert isinstance(clone, TrainAugmentation) and clone.kind == "flip_crop"
    torch.manual_seed(1)
    a = aug(_images((1, 28, 28)))
    torch.manual_seed(1)
    assert torch.equal(clone(_images((1, 28, 28))), a)


def test_augmentation_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        train_augmentation("flip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="padding"):
        train_augmentation("crop", padding=-1)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        train_augmentation("crop")(_images((2, 1, 28, 28)))
