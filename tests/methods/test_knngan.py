"""knngan (seed 000): M, the loss terms against loop references, the GAN training step, codes,
non-finite losses, reconstructions and secondary screening.

The shared GAN parts are tested in tests/models/test_gan.py (networks, image grids) and
tests/losses/test_losses_adversarial.py (Wasserstein terms, gradient penalty)."""

from __future__ import annotations

import itertools
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from hashbench.data.fashion_mnist import FashionMNISTDataModule
from hashbench.losses.base import binary_codes
from hashbench.losses.knn import knn_neighbourhood
from hashbench.methods.base import NonFiniteLossError
from hashbench.methods.knngan import KNNGAN
from hashbench.methods.knngan_terms import (
    FrozenSameConv,
    PerceptualFeatures,
    fold_efficientnet_batch_norms,
    perceptual_loss,
    pixel_mse,
    quantization_loss,
    straight_through,
)
from hashbench.models.gan import ConvCritic, TransposedConvGenerator
from hashbench.optim import RMSPropNesterov
from hashbench.retrieval.codes import pack_bits, unpack_bits

FAST = {"perceptual_backbone": "small_cnn", "perceptual_pretrained": False, "grid_size": 4}


def _dm(root: Path, batch_size: int = 32) -> FashionMNISTDataModule:
    dm = FashionMNISTDataModule(str(root), protocol="tiny", download=False, batch_size=batch_size)
    dm.setup("fit")
    return dm


def _dense_m(x: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """Eqs. 2-4 by brute force: cosine ranking, M1 (K1-NN), M2 (K2-NN) and the K1-NN of a K2-NN."""
    xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sims = xn @ xn.T
    n = len(x)
    rank = [
        sorted((j for j in range(n) if j != i), key=lambda j, i=i: -sims[i, j]) for i in range(n)
    ]
    m = -np.ones((n, n))
    for i in range(n):
        for j in range(n):
            m1 = j in rank[i][:k1]
            via_k2 = any(j in rank[p][:k1] for p in rank[i][:k2])
            if i == j or m1 or via_k2:
                m[i, j] = 1
    return m


def _l_n_reference(r: torch.Tensor, m: np.ndarray, rows: list[int]) -> float:
    """Eq. 9 on a batch, averaged over the ordered pairs i != j (the default reduction)."""
    q = r.shape[1]
    terms = []
    for a, b in itertools.permutations(range(len(rows)), 2):
        dot = sum(float(r[a, k]) * float(r[b, k]) for k in range(q))
        terms.append(0.5 * (dot / q - m[rows[a], rows[b]]) ** 2)
    return sum(terms) / len(terms)


# -- neighbourhood and L_N -------------------------------------------------------------------------
def test_neighbourhood_from_train_pixels_matches_brute_force(fashion_mnist_root: Path) -> None:
    dm = _dm(fashion_mnist_root)
    model = KNNGAN(bits=16, k1=4, k2=3, lambda1=0, lambda2=0)
    model.build_neighbourhood_from(dm)
    train = np.sort(dm.split["train"])
    x = dm.arrays.images[train].reshape(len(train), -1).astype(np.float64) / 255
    dense = _dense_m(x, 4, 3)
    sparse = model.knn_loss.neighbourhood
    got = -np.ones_like(dense)
    for i in range(len(train)):
        got[i, sparse.neighbours_of(i).numpy()] = 1
    np.fill_diagonal(got, 1)
    assert np.array_equal(got, dense)
    # "K1-NN of a K2-NN" adds pairs beyond M1 alone
    assert (dense == 1).sum() > len(train) * (4 + 1)
    # dataset indices of a batch map to M's rows
    rows = [5, 0, 17, 3]
    assert model.positions(torch.as_tensor(train[rows])).tolist() == rows


def test_l_n_matches_loop_reference() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 5))
    train = np.arange(100, 112) * 3  # dataset positions of the training items
    model = KNNGAN(bits=8, k1=3, k2=2, lambda1=0, lambda2=0, pair_reduction="mean").double()
    model.set_neighbourhood(knn_neighbourhood(x, 3, 2), train)
    rows = [2, 7, 0, 11, 4]
    r = torch.tanh(
        torch.randn(5, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    )
    terms = model.loss_terms(r, model.positions(torch.as_tensor(train[rows])))
    expected = _l_n_reference(r, _dense_m(x, 3, 2), rows)
    assert terms["neighbourhood"].item() == pytest.approx(expected, rel=1e-10)
    assert terms["loss"].item() == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="outside the train split"):
        model.positions(torch.tensor([1]))


# -- content and adversarial terms ------------------------------------------------------------------
def test_l_h_mse_and_perceptual_match_loop_references() -> None:
    g = torch.Generator().manual_seed(2)
    r = torch.tanh(torch.randn(4, 8, generator=g, dtype=torch.float64))
    ref_h = sum(
        0.5 * sum(((1.0 if v >= 0 else -1.0) - float(v)) ** 2 for v in row) for row in r
    ) / len(r)
    assert quantization_loss(r).item() == pytest.approx(ref_h, rel=1e-12)

    real = torch.rand(3, 1, 5, 6, generator=g, dtype=torch.float64)
    fake = torch.rand(3, 1, 5, 6, generator=g, dtype=torch.float64)
    ref_mse = sum(
        (float(real[n, 0, i, j]) - float(fake[n, 0, i, j])) ** 2
        for n in range(3)
        for i in range(5)
        for j in range(6)
    ) / (3 * 5 * 6)
    assert pixel_mse(real, fake).item() == pytest.approx(ref_mse, rel=1e-12)

    theta = nn.Conv2d(1, 2, 3, bias=False).double()
    with torch.no_grad():
        tr, tf = theta(real), theta(fake)
    ref_per = float(((tr - tf) ** 2).sum()) / tr.numel()
    assert perceptual_loss(theta, real, fake).item() == pytest.approx(ref_per, rel=1e-12)


@pytest.mark.parametrize("size", [32, 28, 64, 17])
def test_folded_perceptual_network_is_the_same_function(size: int) -> None:
    """theta with its batch norms folded (and zero-only kernel taps dropped, NHWC) equals the
    package's network in float64, outputs and input gradients; random BN statistics and affine
    parameters so that the fold is not trivial."""
    import copy

    pytest.importorskip("efficientnet_lite_pytorch")
    torch.manual_seed(0)
    plain = PerceptualFeatures("efficientnet_lite0", False, size, fold_batch_norm=False).double()
    for m in plain.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    folded = copy.deepcopy(plain)
    fold_efficientnet_batch_norms(folded.net)
    folded.folded = True
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, FrozenSameConv) for m in folded.modules()) > 40
    assert not list(folded.parameters())  # frozen: buffers only
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    outs = []
    for net in (plain, folded):
        xi = x.clone().requires_grad_(True)
        y = net(xi)
        (g,) = torch.autograd.grad((y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum(), xi)
        outs.append((y.detach(), g))
    (y0, g0), (y1, g1) = outs
    torch.testing.assert_close(y1, y0, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g1, g0, rtol=1e-6, atol=1e-9)  # input cast to float32 by the adapter


def test_frozen_same_conv_drops_only_zero_taps() -> None:
    """The kernel crop, zero taps and padding plan equal zero "same" padding + the full kernel,
    for dense and depthwise convolutions, NCHW and NHWC inputs."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(1)
    for size, k, s, groups in itertools.product((1, 2, 3, 5, 8), (1, 3, 5), (1, 2), (1, 4)):
        conv = nn.Conv2d(4, 4, k, s, groups=groups, bias=groups == 1).double()
        bn = nn.BatchNorm2d(4).double().eval()
        with torch.no_grad():
            bn.running_mean.normal_(generator=g)
            bn.running_var.uniform_(0.5, 2.0, generator=g)
            bn.weight.uniform_(0.5, 1.5, generator=g)
        x = torch.randn(2, 4, size, size, generator=g, dtype=torch.float64)
        out = -(-size // s)
        pad = max((out - 1) * s + k - size, 0)
        ref = bn(conv(F.pad(x, [pad // 2, pad - pad // 2] * 2)))
        folded = FrozenSameConv(conv, bn)
        torch.testing.assert_close(folded(x), ref, rtol=1e-12, atol=1e-12)
        x_nhwc = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(folded(x_nhwc), ref, rtol=1e-12, atol=1e-12)


def test_eq_8_gives_the_critic_no_gradient_and_the_others_the_same() -> None:
    """The critic is frozen while eq. 8 is built (it is not updated on it): its parameters get no
    gradient and stay trainable; every other gradient equals the one with the critic unfrozen."""
    import hashbench.methods.knngan as km

    model = KNNGAN(bits=8, k1=2, k2=1, lambda2=0.5, image_shape=(1, 8, 8), **FAST).double()
    model.set_neighbourhood(
        knn_neighbourhood(np.random.default_rng(0).random((6, 4)), 2, 1), range(6)
    )
    images = torch.rand(6, 1, 8, 8, dtype=torch.float64)
    grads = []
    for frozen in (True, False):
        torch.manual_seed(0)
        model.zero_grad(set_to_none=True)
        if not frozen:
            saved, km._frozen = km._frozen, lambda m: __import__("contextlib").nullcontext()
        try:
            model.loss_terms(model(images), torch.arange(6), images)["loss"].backward()
        finally:
            if not frozen:
                km._frozen = saved
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert all(p.requires_grad for p in model.critic.parameters())
    for name, g in grads[0].items():
        if name.startswith("critic."):
            assert g is None and grads[1][name] is not None
        else:
            torch.testing.assert_close(g, grads[1][name], rtol=1e-12, atol=0, msg=name)


def test_l_c_in_the_total_loss() -> None:
    model = KNNGAN(bits=8, k1=2, k2=1, lambda1=0.3, lambda2=0.0, image_shape=(1, 8, 8), **FAST)
    model.set_neighbourhood(
        knn_neighbourhood(np.random.default_rng(0).random((6, 4)), 2, 1), range(6)
    )
    torch.manual_seed(0)
    r = torch.tanh(torch.randn(6, 8))
    real = torch.rand(6, 1, 8, 8)
    t = model.loss_terms(r, torch.arange(6), real)
    content = t["mse"] + t["perceptual"] + t["quantization"]
    assert t["loss"].item() == pytest.approx((t["neighbourhood"] + 0.3 * content).item(), rel=1e-6)
    assert t["mse"].item() == pytest.approx(pixel_mse(real, t["fake"]).item(), rel=1e-6)


def test_l_h_is_the_shared_quantization_term_exactly() -> None:
    """L_H uses QuantizationLoss and binary_codes: bit-identical to 1/2 mean_i ||b_i - R_i||^2."""
    r = torch.tanh(torch.randn(9, 16, generator=torch.Generator().manual_seed(4)))
    b = torch.where(r >= 0, 1.0, -1.0)
    assert torch.equal(binary_codes(r), b)
    assert torch.equal(quantization_loss(r), 0.5 * (b - r).pow(2).sum(1).mean())


def test_rerank_codes_are_the_shared_packing() -> None:
    """pack_bits(R >= 0) = the MSB-first packing of HashingMethod.encode."""
    model = KNNGAN(bits=24, lambda1=0, lambda2=0).eval()
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        r = model(images)
    assert torch.equal(torch.from_numpy(pack_bits(r >= 0)), model.encode(images))


def test_gan_nets_are_the_shared_networks() -> None:
    model = KNNGAN(bits=8, gan_width=4, noise_dim=6, image_shape=(1, 12, 16), **FAST)
    assert isinstance(model.generator, TransposedConvGenerator)
    assert isinstance(model.critic, ConvCritic)
    assert model.generator.shape == (1, 12, 16) and model.generator.width == 4
    assert model.generator.fc[0].in_features == 8 + 6


def test_straight_through_gives_binary_forward_and_identity_gradient() -> None:
    r = torch.tensor([[-0.3, 0.0, 0.7]], requires_grad=True)
    b = straight_through(r)
    assert b.tolist() == [[-1.0, 1.0, 1.0]]
    (b * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert r.grad.tolist() == [[1.0, 2.0, 3.0]]


# -- training ----------------------------------------------------------------------------------------
def _trainer(tmp_path: Path, **kw) -> L.Trainer:
    args = dict(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        num_sanity_val_steps=0,
    )
    args.update(kw)
    return L.Trainer(**args)


def test_one_manual_step_changes_encoder_generator_and_critic(
    fashion_mnist_root: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = KNNGAN(bits=16, k1=4, k2=2, image_shape=(1, 28, 28), **FAST)
    dm = _dm(fashion_mnist_root)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _trainer(tmp_path, limit_val_batches=0).fit(model, datamodule=dm)
    after = dict(model.named_parameters())
    for prefix in ("backbone.", "hash_head.", "generator.", "critic."):
        names = [n for n in before if n.startswith(prefix)]
        assert names, prefix
        assert any(not torch.equal(before[n], after[n]) for n in names), prefix
    assert model.automatic_optimization is False
    opts = model.configure_optimizers()[0]
    assert isinstance(opts[1], RMSPropNesterov) and isinstance(opts[2], RMSPropNesterov)
    assert not any(p.requires_grad for p in model.perceptual.parameters())


def test_one_reconstruction_per_step_serves_critic_and_eq_8(
    fashion_mnist_root: Path, tmp_path: Path
) -> None:
    """The generator runs once per training step; the critic's fake batch is eq. 8's ``I^R``."""
    torch.manual_seed(0)
    model = KNNGAN(bits=16, k1=4, k2=2, image_shape=(1, 28, 28), **FAST)
    generated, criticised = [], []
    model.generator.register_forward_hook(lambda m, i, out: generated.append(out.detach()))
    model.critic.register_forward_hook(lambda m, i, out: criticised.append(i[0].detach()))
    _trainer(tmp_path, limit_val_batches=0, limit_train_batches=2).fit(
        model, datamodule=_dm(fashion_mnist_root)
    )
    assert len(generated) == 2  # two steps
    # per step: critic(real), critic(fake) [+ the penalty's interpolates], then critic(I^R) for L_A
    fakes = [
        x for x in criticised if any(x.shape == g.shape and torch.equal(x, g) for g in generated)
    ]
    assert len(fakes) == 4  # each step's I^R: once in the critic update, once in L_A


def test_nogan_builds_no_gan_and_trains_the_encoder(
    fashion_mnist_root: Path, tmp_path: Path
) -> None:
    model = KNNGAN(bits=16, k1=4, k2=2, lambda1=0, lambda2=0)
    before = model.hash_head.linear.weight.detach().clone()
    _trainer(tmp_path, limit_val_batches=0).fit(model, datamodule=_dm(fashion_mnist_root))
    assert model.generator is None and model.critic is None and model.perceptual is None
    assert not torch.equal(before, model.hash_head.linear.weight)


def test_codes_are_binary_and_follow_r() -> None:
    model = KNNGAN(bits=24, lambda1=0, lambda2=0).eval()
    images = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8)
    r = model(images)
    assert r.abs().max() < 1
    codes = model.encode(images)
    assert codes.dtype == torch.uint8 and codes.shape == (10, 3)
    bits = unpack_bits(codes.numpy())
    assert set(np.unique(bits)) <= {0, 1}
    np.testing.assert_array_equal(bits, (r.detach().numpy() >= 0).astype(np.uint8))


def test_eps_controls_smoothness_and_anneals(fashion_mnist_root: Path, tmp_path: Path) -> None:
    model = KNNGAN(bits=8, eps=0.5, eps_anneal=2.0, lambda1=0, lambda2=0).eval()
    images = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    eta = model.hash_head.pre_activation(model.features(images))
    torch.testing.assert_close(model(images), torch.tanh(0.5 * eta))
    _trainer(tmp_path, max_epochs=3, limit_val_batches=0).fit(
        model, datamodule=_dm(fashion_mnist_root)
    )
    assert model.eps_current.item() == pytest.approx(0.5 * 2.0**2)


def test_non_finite_loss_stops_the_run_without_checkpoint(
    fashion_mnist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = KNNGAN(bits=16, k1=4, k2=2, lambda1=0, lambda2=0)
    with torch.no_grad():
        model.hash_head.linear.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="knngan: the training loss became nan"):
        _trainer(tmp_path).fit(model, datamodule=_dm(fashion_mnist_root))
    assert not list(tmp_path.rglob("*.ckpt"))


def test_base_hook_also_fires_under_manual_backward(
    fashion_mnist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # without knngan's own check, HashingMethod.on_before_backward still stops the run
    model = KNNGAN(bits=16, k1=4, k2=2, lambda1=0, lambda2=0)
    monkeypatch.setattr(model, "_check_finite", lambda name, loss: None)
    with torch.no_grad():
        model.hash_head.linear.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="Lower the learning rate"):
        _trainer(tmp_path).fit(model, datamodule=_dm(fashion_mnist_root))
    assert not list(tmp_path.rglob("*.ckpt"))


def test_reconstruction_grid_saved_per_validation_epoch(
    fashion_mnist_root: Path, tmp_path: Path
) -> None:
    from PIL import Image

    model = KNNGAN(bits=8, k1=4, k2=2, **FAST)
    _trainer(tmp_path, max_epochs=2).fit(model, datamodule=_dm(fashion_mnist_root))
    grids = sorted((tmp_path / "reconstructions").glob("epoch*.png"))
    assert [g.name for g in grids] == ["epoch000.png", "epoch001.png"]
    with Image.open(grids[0]) as im:  # 2 rows (originals, reconstructions) of 4 images
        assert im.size == (4 * 30 + 2, 2 * 30 + 2)


def test_secondary_screening_is_logged_at_test(fashion_mnist_root: Path, tmp_path: Path) -> None:
    from hashbench.retrieval.metrics import mean_average_precision
    from hashbench.retrieval.rerank import reranked_map

    model = KNNGAN(bits=16, k1=4, k2=2, lambda1=0, lambda2=0, rerank=10)
    dm = _dm(fashion_mnist_root)
    trainer = _trainer(tmp_path, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    out = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert 0 <= out["test/rerank_mAP@all"] <= 1
    model.eval()
    images = {
        s: torch.as_tensor(dm.arrays.images[np.sort(dm.split[s])]) for s in ("query", "database")
    }
    labels = {s: dm.arrays.labels[np.sort(dm.split[s])] for s in ("query", "database")}
    with torch.no_grad():
        r = {s: model(x) for s, x in images.items()}
    q, d = (model.encode(images[s]).numpy() for s in ("query", "database"))
    plain = mean_average_precision(q, d, labels["query"], labels["database"])
    assert out["test/mAP@all"] == pytest.approx(plain, abs=1e-6)
    expected = reranked_map(
        q, d, r["query"].numpy(), r["database"].numpy(), labels["query"], labels["database"], 10
    )
    assert out["test/rerank_mAP@all"] == pytest.approx(expected, abs=1e-6)
    assert model.test_results["rerank_mAP@all"] == pytest.approx(expected, abs=1e-9)


# -- configuration -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw,match",
    [
        ({"bits": 12}, "multiple of 8"),
        ({"eps": 0.0}, "eps"),
        ({"lambda1": -1.0}, "lambda1"),
        ({"lambda2": -1.0}, "lambda2"),
        ({"k1": 2, "k2": 3}, "k2"),
        ({"rerank": -5}, "rerank"),
        ({"nesterov_beta": 1.0}, "nesterov_beta"),
        ({"k1": 0}, "k1"),
        ({"image_shape": (2, 28, 28)}, "image_shape"),
        ({"knn_features": "vgg99"}, "knn_features"),
        ({"perceptual_backbone": "vgg99"}, "perceptual_backbone"),
    ],
)
def test_bad_configuration_is_a_clear_error(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        KNNGAN(**kw)


def test_weight_clipping_option_bounds_the_critic(fashion_mnist_root: Path, tmp_path: Path) -> None:
    model = KNNGAN(bits=8, k1=4, k2=2, lipschitz="clip", clip_value=0.02, gan_optim="adam", **FAST)
    _trainer(tmp_path, limit_val_batches=0).fit(model, datamodule=_dm(fashion_mnist_root))
    assert all(p.abs().max() <= 0.02 for p in model.critic.parameters())
    assert isinstance(model.configure_optimizers()[0][1], torch.optim.Adam)


def test_sum_reduction_is_eq_9_literally() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 4))
    model = KNNGAN(bits=8, k1=2, k2=2, lambda1=0, lambda2=0, pair_reduction="sum").double()
    model.set_neighbourhood(knn_neighbourhood(x, 2, 2), range(8))
    r = torch.tanh(torch.randn(6, 8, dtype=torch.float64))
    rows = [0, 3, 5, 1, 7, 2]
    got = model.loss_terms(r, torch.as_tensor(rows))["neighbourhood"].item()
    expected = _l_n_reference(r, _dense_m(x, 2, 2), rows) * 6 * 5
    assert got == pytest.approx(expected, rel=1e-10)
