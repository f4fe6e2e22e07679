"""PC-AEGAN (seed 003) with its ablations PC-WGAN and DCH: formulas against hand / loop references,
the alternating optimisation of eq. 17, non-finite losses, resuming, sample grids.

The shared GAN parts are tested in tests/models/test_gan.py (G, D, C, image grids) and
tests/losses/test_losses_adversarial.py (Wasserstein terms, gradient penalty)."""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path

import lightning as L
import pytest
import torch

import hashbench.methods.pcaegan as pm
import hashbench.methods.pcaegan_stage1 as stage1
from hashbench.losses.base import pairwise_similarity
from hashbench.methods.base import NonFiniteLossError
from hashbench.methods.pcaegan import DCH, PCAEGAN, PCWGAN, pair_bce
from hashbench.methods.pcaegan_stage1 import code_reconstruction_loss, learn_approximate_codes
from hashbench.models.gan import CodeDiscriminator, PairDiscriminator, UpsamplingGenerator

N, C, SIZE = 20, 4, 16


def _model(cls=PCAEGAN, **kw) -> PCAEGAN:
    torch.manual_seed(0)
    args = dict(
        bits=8,
        image_channels=1,
        image_size=SIZE,
        num_train=N,
        num_classes=C,
        generator_width=4,
        discriminator_width=4,
        code_width=8,
        noise_dim=4,
    )
    if cls is DCH:
        args = {"bits": 8}
    model = cls(**{**args, **kw})
    if cls is not DCH:
        with torch.no_grad():
            model.train_index.copy_(torch.arange(N) * 3)
            model.train_labels.copy_(torch.eye(C)[torch.arange(N) % C])
            model.code_logits.normal_()
    return model


def _attach_optimizers(model: PCAEGAN, sgd: bool = False) -> list:
    if sgd:
        opts = [torch.optim.SGD(ps, lr=0.1) for ps in model.group_parameters().values()]
    else:
        opts = model.configure_optimizers()
        opts = opts[0] if isinstance(opts, tuple) else opts
        opts = opts if isinstance(opts, list) else [opts]
    model.optimizers = lambda: opts  # no trainer: the phases call these two
    model.manual_backward = lambda loss: loss.backward()
    return opts


def _batch(n: int = 8, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    rows = torch.randperm(N, generator=g)[:n]
    images = torch.randint(0, 256, (n, 1, SIZE, SIZE), dtype=torch.uint8, generator=g)
    return {"image": images, "label": torch.eye(C)[rows % C], "index": rows * 3, "rows": rows}


def _snapshot(model) -> dict[str, list[torch.Tensor]]:
    return {k: [p.detach().clone() for p in ps] for k, ps in model.group_parameters().items()}


def _changed(model, before) -> set[str]:
    now = _snapshot(model)
    return {
        k
        for k in before
        if any(not torch.equal(a, b) for a, b in zip(before[k], now[k], strict=True))
    }


# -- formulas ---------------------------------------------------------------------------------------


def test_code_reconstruction_loss_matches_loops():
    g = torch.Generator().manual_seed(0)
    h = torch.rand(5, 6, generator=g, dtype=torch.float64)
    y = torch.eye(3, dtype=torch.float64)[torch.tensor([0, 1, 0, 2, 1])]
    s = pairwise_similarity(y)
    ref = sum(
        (float(s[i, j]) - sum(float(h[i, k] * h[j, k]) for k in range(6)) / 6) ** 2
        for i in range(5)
        for j in range(5)
    )
    assert code_reconstruction_loss(h, h, s).item() == pytest.approx(ref / 25, rel=1e-12)


def test_stage1_recovers_s_on_a_separable_case(monkeypatch):
    """Three classes, 8 bits: codes are equal exactly within a class and round(H H^T / q) = S."""
    y = torch.eye(3)[torch.arange(15) % 3]
    seen = []
    real = stage1.pairwise_similarity

    def spy(a, b=None):
        seen.append(a.shape[0])
        return real(a, b)

    monkeypatch.setattr(stage1, "pairwise_similarity", spy)
    u = learn_approximate_codes(y, 8, epochs=150, block=4, lr=0.1, seed=0)
    b = (u >= 0).float()
    s = real(y)
    assert max(seen) <= 4  # row blocks only, never the 15 x 15 matrix
    same = (b[:, None, :] == b[None, :, :]).all(-1).float()
    assert torch.equal(same, s)
    assert torch.equal((b @ b.T / 8 >= 0.5).float(), s)


def test_pair_bce_matches_loops():
    logits = torch.randn(3, 4, dtype=torch.float64)
    s = torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0], [1, 1, 0, 0]], dtype=torch.float64)
    ref = 0.0
    for i, j in itertools.product(range(3), range(4)):
        p = 1 / (1 + math.exp(-float(logits[i, j])))
        ref += -(float(s[i, j]) * math.log(p) + (1 - float(s[i, j])) * math.log(1 - p))
    assert pair_bce(logits, s).item() == pytest.approx(ref / 12, rel=1e-10)


def test_gan_nets_are_the_shared_networks():
    model = _model()
    assert isinstance(model.generator, UpsamplingGenerator) and model.generator.width == 4
    assert isinstance(model.discriminator, PairDiscriminator)
    assert isinstance(model.code_discriminator, CodeDiscriminator)
    x = model.generator(torch.rand(3, 8), torch.randn(3, 4))
    assert x.shape == (3, 1, SIZE, SIZE)
    score, emb = model.discriminator(x)
    assert score.shape == (3,) and emb.shape == (3, 8)  # embed_dim = bits


def test_gradient_penalties_of_d_and_c_are_the_shared_wgan_gp(monkeypatch):
    """L_D and L_C add gp_weight x hashbench.losses.adversarial.gradient_penalty of D.score / C."""
    model = _model(gp_weight=3.0)
    calls = []
    real_gp = pm.gradient_penalty

    def spy(critic, real, fake, alpha=None, **kw):
        calls.append(critic)
        return real_gp(critic, real, fake, torch.full((len(real),), 0.5))

    monkeypatch.setattr(pm, "gradient_penalty", spy)
    real = torch.rand(4, 1, SIZE, SIZE) * 2 - 1
    fake = torch.rand(4, 1, SIZE, SIZE) * 2 - 1
    s = pairwise_similarity(torch.eye(C)[torch.tensor([0, 1, 0, 2])])
    out = model.discriminator_loss(real, fake, s)
    gp = real_gp(model.discriminator.score, real, fake, torch.full((4,), 0.5))
    torch.testing.assert_close(out["GP_D"], gp)
    torch.testing.assert_close(out["L_D"], out["L_DS_wd"] + 3.0 * gp + out["L_DC"])
    codes, prior = torch.rand(4, 8), model.sample_prior(4)
    c = model.code_critic_loss(codes, prior)
    gp_c = real_gp(model.code_discriminator, prior, codes, torch.full((4,), 0.5))
    torch.testing.assert_close(c["GP_C"], gp_c)
    torch.testing.assert_close(c["L_C"], c["L_C_wd"] + 3.0 * gp_c)
    assert calls[1] is model.code_discriminator


# -- eq. 17: the alternating optimisation -------------------------------------------------------


def test_each_phase_updates_only_its_groups():
    model = _model(prior_fraction=0.0)
    _attach_optimizers(model)
    b = _batch()
    real = pm.to_gan_range(b["image"])
    codes = torch.sigmoid(model.code_logits[b["rows"]]).detach()
    noise = torch.randn(8, 4)
    fake = model.generator(codes, noise).detach()
    sim = pairwise_similarity(b["label"])
    before = _snapshot(model)
    model.critic_phase(real, fake, codes, sim)
    assert _changed(model, before) == {"D", "C"}
    before = _snapshot(model)
    y2 = torch.cat([b["label"], b["label"]])
    model.encoder_phase(torch.cat([b["image"].float() / 255, (fake + 1) / 2]), y2)
    assert _changed(model, before) == {"F"}
    before = _snapshot(model)
    model.generator_phase(real, b["label"], b["rows"], noise)
    assert _changed(model, before) == {"G", "H", "F"}  # F on the same backward pass
    # only the rows of H in the batch move
    moved = (before["H"][0] != model.code_logits.detach()).any(1)
    assert set(torch.nonzero(moved).flatten().tolist()) == set(b["rows"].tolist())


def test_generator_phase_follows_eq_17_gradients():
    """G, H and F take a step on grad(L_F + eta (L_G + L_H - E[C(H)])), written out by hand, with
    G conditioned on 5 batch codes and 3 prior codes (the pair term and L_F on the first 5)."""
    model = _model(eta=0.7)
    model.eval()  # batch statistics aside, the same function twice
    opts = _attach_optimizers(model, sgd=True)
    b = _batch()
    real = pm.to_gan_range(b["image"])
    noise = torch.randn(8, 4)
    y = b["label"]
    sim = pairwise_similarity(y)
    prior = torch.randint(0, 2, (3, 8)).float()
    codes = torch.sigmoid(model.code_logits[b["rows"]])
    fake = model.generator(torch.cat([codes[:5], prior]), noise)
    sf, ef = model.discriminator(fake)
    _, er = model.discriminator(real)
    l_g = -sf.mean() + pair_bce(5.0 * pm.cosine_matrix(ef[:5], er.detach()), sim[:5])
    l_h = code_reconstruction_loss(codes, codes, sim)
    h = model(torch.cat([(real + 1) / 2, (fake[:5] + 1) / 2]))
    l_f = model.hash_objective(h, torch.cat([y, y[:5]]))["L_F"]
    total = l_f + 0.7 * (l_g + l_h - model.code_discriminator(codes).mean())
    params = model.group_parameters()["G"] + [model.code_logits] + model.group_parameters()["F"]
    grads = torch.autograd.grad(total, params, allow_unused=True)
    expected = [
        p.detach() - 0.1 * (g if g is not None else 0) for p, g in zip(params, grads, strict=True)
    ]
    model.generator_phase(real, y, b["rows"], noise, prior)
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)
    assert len(opts) == 5


def test_training_step_respects_n_critic():
    model = _model(n_critic=2)
    _attach_optimizers(model)
    model.log_dict = lambda *a, **k: None
    b = _batch()
    before = _snapshot(model)
    model.training_step(b, 0)
    assert _changed(model, before) == {"F", "D", "G", "H", "C"}
    before = _snapshot(model)
    model.training_step(b, 1)  # not a generator step
    assert _changed(model, before) == {"F", "D", "C"}


def test_pcwgan_and_dch_groups():
    pc = _model(PCWGAN)
    assert pc.code_discriminator is None and pc.hash_loss == "cosine"
    assert list(pc.group_parameters()) == ["F", "D", "G", "H"]
    dch = _model(DCH)
    assert dch.generator is None and list(dch.group_parameters()) == ["F"]
    _attach_optimizers(dch)
    dch.log_dict = lambda *a, **k: None
    before = _snapshot(dch)
    dch.training_step(_batch(), 0)
    assert _changed(dch, before) == {"F"}
    # the hash encoder's parameter groups hold no GAN parameter
    full = _model()
    ids = {id(p) for g in full.parameter_groups() for p in g["params"]}
    assert not ids & {id(p) for p in full.generator.parameters()}


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="hash_loss"):
        PCAEGAN(hash_loss="l2")
    with pytest.raises(ValueError, match="gamma"):
        PCAEGAN(gamma=0)
    with pytest.raises(ValueError, match="n_critic"):
        PCAEGAN(n_critic=0)
    with pytest.raises(ValueError, match="gan_betas"):
        PCAEGAN(gan_betas=(0.9, 1.5))
    with pytest.raises(ValueError, match="multiple of 8"):
        DCH(bits=12)
    with pytest.raises(ValueError, match="divisible by 4"):
        _model(image_size=30)
    with pytest.raises(ValueError, match="HashDataModule"):
        PCAEGAN().setup("fit")
    model = _model()
    with pytest.raises(ValueError, match="outside the training split"):
        model.batch_rows(torch.tensor([1, 3]))


# -- through a Trainer on the tiny Fashion-MNIST fixture -------------------------------------------


def _dm(root: Path):
    from hashbench.data.fashion_mnist import FashionMNISTDataModule

    return FashionMNISTDataModule(str(root), protocol="tiny", download=False, batch_size=32)


def _trainer(tmp: Path, epochs: int, callbacks=(), batches: int = 2) -> L.Trainer:
    return L.Trainer(
        max_epochs=epochs,
        limit_train_batches=batches,
        accelerator="cpu",
        default_root_dir=str(tmp),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=list(callbacks),
    )


def _small(cls=PCAEGAN, **kw):
    args = dict(
        bits=8, generator_width=4, discriminator_width=4, code_width=8, noise_dim=4,
        stage1_epochs=2, samples_per_class=3,
    )  # fmt: skip
    return cls(**{**args, **kw})


def test_non_finite_loss_stops_manual_optimisation(fashion_mnist_root, tmp_path):
    """on_before_backward fires under manual_backward: the run stops with NonFiniteLossError."""

    class Poison(L.Callback):
        def on_train_start(self, trainer, module):
            with torch.no_grad():
                module.hash_head.linear.weight.fill_(float("nan"))

    for cls in (PCAEGAN, DCH):
        model = _small() if cls is PCAEGAN else DCH(bits=8)
        with pytest.raises(NonFiniteLossError, match="Lower the learning rate"):
            _trainer(tmp_path / cls.__name__, 1, [Poison()]).fit(model, _dm(fashion_mnist_root))


def test_resume_restores_all_five_groups_and_grids(fashion_mnist_root, tmp_path):
    model = _small()
    _trainer(tmp_path, 1).fit(model, _dm(fashion_mnist_root))
    grid = tmp_path / "samples" / "epoch000.png"
    assert grid.is_file()
    from PIL import Image

    width, height = Image.open(grid).size
    assert (width, height) == (3 * 28 + 4 * 2, 10 * 28 + 11 * 2)  # 10 classes x 3, padding 2
    last = tmp_path / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    assert len(ckpt["optimizer_states"]) == 5
    assert ckpt["state_dict"]["stage1_done"].item() is True
    seen = {}

    class Check(L.Callback):
        def on_train_start(self, trainer, module):
            seen["state"] = {k: v.clone() for k, v in module.state_dict().items()}
            seen["opts"] = [copy.deepcopy(o.state_dict()) for o in trainer.optimizers]

    resumed = _small(seed=123)  # a different stage-1 seed: restored state must win
    _trainer(tmp_path, 2, [Check()]).fit(resumed, _dm(fashion_mnist_root), ckpt_path=last)
    for k, v in ckpt["state_dict"].items():
        assert torch.equal(seen["state"][k], v), k
    assert len(seen["opts"]) == 5
    for got, want in zip(seen["opts"], ckpt["optimizer_states"], strict=True):
        assert got["param_groups"] == want["param_groups"]
        assert got["state"].keys() == want["state"].keys()
        for i in want["state"]:
            for name, t in want["state"][i].items():
                assert torch.equal(got["state"][i][name], t)
    assert (tmp_path / "samples" / "epoch001.png").is_file()
