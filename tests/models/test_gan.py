"""GAN networks of knngan and pcaegan (hashbench.models.gan): shapes, ranges, the layer layout
(state-dict keys of existing checkpoints) and the atomic image-grid writer."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import torch

from hashbench.models.gan import (
    CodeDiscriminator,
    ConvCritic,
    PairDiscriminator,
    TransposedConvGenerator,
    UpsamplingGenerator,
    save_image_grid,
    upsampled_conv3x3,
)


def _layout(module: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


# -- pcaegan's networks ------------------------------------------------------------------------------
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (1, 16)])
def test_pcaegan_networks_shapes(channels, size):
    g = UpsamplingGenerator(16, 8, channels, size, 4)
    x = g(torch.rand(5, 16), torch.randn(5, 8))
    assert x.shape == (5, channels, size, size) and x.abs().max() <= 1
    score, emb = PairDiscriminator(channels, 4, 16)(x)
    assert score.shape == (5,) and emb.shape == (5, 16)
    assert CodeDiscriminator(16, 8)(torch.rand(5, 16)).shape == (5,)
    convs = [
        m for m in PairDiscriminator(channels, 4, 16).modules() if isinstance(m, torch.nn.Conv2d)
    ]
    assert len(convs) == 5 and all(m.kernel_size == (4, 4) for m in convs)
    assert [m.stride for m in convs] == [(2, 2)] * 3 + [(1, 1)] * 2


@pytest.mark.parametrize("size", [1, 3, 7])
def test_upsampled_conv3x3_is_upsample_then_conv(size):
    """The sub-pixel transposed convolution equals nearest x2 + conv 3x3 (padding 1), values and
    gradients (input, weight, bias), in float64."""
    g = torch.Generator().manual_seed(size)
    x = torch.randn(2, 5, size, size, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(4, 5, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, generator=g, requires_grad=True)
    up = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    ref = torch.nn.functional.conv2d(up, w, b, padding=1)
    out = upsampled_conv3x3(x, w, b)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    probe = torch.randn(ref.shape, dtype=torch.float64, generator=g)
    g_ref = torch.autograd.grad((ref * probe).sum(), (x, w, b))
    g_out = torch.autograd.grad((out * probe).sum(), (x, w, b))
    for a, e in zip(g_out, g_ref, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)


def test_upsampling_generator_forward_is_its_layers_in_order():
    """The forward (NHWC, sub-pixel blocks) equals running project and body layer by layer, in
    float64, in training mode (batch statistics) and eval mode (running statistics)."""
    torch.manual_seed(0)
    gen = UpsamplingGenerator(6, 3, 1, 16, 4).double()
    codes, noise = torch.rand(5, 6, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    for train in (True, False):
        gen.train(train)
        ref_gen = __import__("copy").deepcopy(gen)
        x = ref_gen.project(torch.cat([codes, noise], 1)).view(-1, 16, 4, 4)
        torch.testing.assert_close(gen(codes, noise), ref_gen.body(x), rtol=1e-12, atol=1e-12)
        for name, buf in gen.named_buffers():  # the same running statistics afterwards
            torch.testing.assert_close(buf, dict(ref_gen.named_buffers())[name], msg=name)


def test_pair_discriminator_score_is_the_first_output():
    d = PairDiscriminator(1, 4, 6)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    assert torch.equal(d.score(x), d(x)[0])


def test_upsampling_generator_rejects_a_side_not_divisible_by_4():
    with pytest.raises(ValueError, match="divisible by 4"):
        UpsamplingGenerator(8, 4, 1, 30, 4)


def test_pcaegan_network_layouts():
    """Parameter names and shapes as in pcaegan checkpoints (generator., discriminator., ...)."""
    g = UpsamplingGenerator(8, 4, 1, 16, 4)
    assert _layout(g) == [
        ("project.0.weight", (256, 12)),
        ("project.1.weight", (256,)),
        ("project.1.bias", (256,)),
        ("project.1.running_mean", (256,)),
        ("project.1.running_var", (256,)),
        ("project.1.num_batches_tracked", ()),
        ("body.0.1.weight", (8, 16, 3, 3)),
        ("body.0.2.weight", (8,)),
        ("body.0.2.bias", (8,)),
        ("body.0.2.running_mean", (8,)),
        ("body.0.2.running_var", (8,)),
        ("body.0.2.num_batches_tracked", ()),
        ("body.1.1.weight", (4, 8, 3, 3)),
        ("body.1.2.weight", (4,)),
        ("body.1.2.bias", (4,)),
        ("body.1.2.running_mean", (4,)),
        ("body.1.2.running_var", (4,)),
        ("body.1.2.num_batches_tracked", ()),
        ("body.2.weight", (1, 4, 3, 3)),
        ("body.2.bias", (1,)),
    ]
    d = PairDiscriminator(1, 4, 8)
    assert [k for k, _ in _layout(d)] == [
        f"trunk.{i}.{p}" for i in (0, 2, 3, 5, 6, 9, 10, 13) for p in ("weight", "bias")
    ]
    assert _layout(CodeDiscriminator(8, 16)) == [
        ("net.0.weight", (16, 8)),
        ("net.0.bias", (16,)),
        ("net.2.weight", (16, 16)),
        ("net.2.bias", (16,)),
        ("net.3.weight", (16,)),
        ("net.3.bias", (16,)),
        ("net.5.weight", (1, 16)),
        ("net.5.bias", (1,)),
    ]


# -- knngan's networks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 10, 13)])
def test_knngan_networks_shapes_and_ranges(shape):
    g = TransposedConvGenerator(16, 8, shape, width=4)
    b = torch.where(torch.randn(5, 16) >= 0, 1.0, -1.0)
    z = torch.where(torch.randn(5, 8) >= 0, 1.0, -1.0)
    x = g(b, z)
    assert x.shape == (5, *shape) and x.min() >= 0 and x.max() <= 1  # cropped, in [0, 1]
    f = ConvCritic(shape, width=4)(x)
    assert f.shape == (5,)


def test_conv_critic_maps_images_to_minus_one_one():
    critic = ConvCritic((1, 8, 8), width=2)
    x = torch.rand(3, 1, 8, 8)
    expected = critic.out(critic.net(2 * x - 1)).squeeze(1)
    torch.testing.assert_close(critic(x), expected)


def test_knngan_network_layouts():
    """Parameter names and shapes as in knngan checkpoints (generator.fc, generator.net, ...)."""
    g = TransposedConvGenerator(8, 4, (1, 28, 28), width=2)
    assert [
        k for k, _ in _layout(g) if not k.endswith(("running_mean", "running_var", "tracked"))
    ] == [
        "fc.0.weight",
        "fc.0.bias",
        "fc.1.weight",
        "fc.1.bias",
        "net.0.weight",
        "net.0.bias",
        "net.1.weight",
        "net.1.bias",
        "net.3.weight",
        "net.3.bias",
    ]
    assert dict(_layout(g))["fc.0.weight"] == (4 * 7 * 7, 12)
    assert _layout(ConvCritic((1, 28, 28), width=2)) == [
        ("net.0.weight", (2, 1, 4, 4)),
        ("net.0.bias", (2,)),
        ("net.2.weight", (4, 2, 4, 4)),
        ("net.2.bias", (4,)),
        ("out.weight", (1, 4 * 7 * 7)),
        ("out.bias", (1,)),
    ]


def test_construction_draws_the_global_stream_in_layer_order():
    """Same seed -> same weights; the critic's shape probe draws no random numbers."""
    torch.manual_seed(5)
    a = ConvCritic((1, 12, 12), width=3)
    after = torch.rand(1)
    torch.manual_seed(5)
    conv0 = torch.nn.Conv2d(1, 3, 4, 2, 1)
    conv1 = torch.nn.Conv2d(3, 6, 4, 2, 1)
    out = torch.nn.Linear(6 * 3 * 3, 1)
    assert torch.equal(a.net[0].weight, conv0.weight) and torch.equal(a.net[2].weight, conv1.weight)
    assert torch.equal(a.out.weight, out.weight)
    assert torch.equal(torch.rand(1), after)


# -- image grids ---------------------------------------------------------------------------------------
def test_save_image_grid_writes_a_png_atomically(tmp_path: Path):
    from PIL import Image

    images = torch.rand(6, 1, 5, 7)
    path = tmp_path / "a" / "b" / "grid.png"
    grid = save_image_grid(images, path, nrow=3)
    assert grid.shape == (3, 2 * 5 + 3 * 2, 3 * 7 + 4 * 2)  # 2 rows x 3, padding 2
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (3 * 7 + 4 * 2, 2 * 5 + 3 * 2)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]  # no temporary file left


def test_save_image_grid_leaves_the_destination_untouched_on_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import torchvision.utils

    def broken(grid, fp, **kw):  # a writer killed half-way
        Path(fp).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torchvision.utils, "save_image", broken)
    path = tmp_path / "grid.png"
    path.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"):
        save_image_grid(torch.rand(2, 1, 4, 4), path, nrow=2)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # the temporary file is gone
