"""PC-AEGAN's losses (seed 003 eqs. 7, 8, 10, 11, 14 and the WGAN-GP penalties) against values
computed in this file: per-image network calls, Python loops over pairs, and gradient norms by
central finite differences (no ``torch.autograd``, none of the module's loss helpers). The penalty
weight is not zero. The prior-coded synthetic images (METHODS.md section 3) are checked to enter the
Wasserstein terms and nothing else; the two settings resolve to their documented values."""

from __future__ import annotations

import math

import pytest
import torch

from hashbench.methods.pcaegan import PCAEGAN, PCWGAN, SETTINGS

N, C, SIZE, BITS, LAM = 12, 3, 8, 8, 10.0
GAMMA, BETA, SP = 20.0, 0.1, 5.0


def _model(dtype=torch.float64, **kw) -> PCAEGAN:
    torch.manual_seed(0)
    args = dict(
        bits=BITS,
        image_channels=1,
        image_size=SIZE,
        num_train=N,
        num_classes=C,
        generator_width=2,
        discriminator_width=2,
        code_width=6,
        noise_dim=3,
        gp_weight=LAM,
        gamma=GAMMA,
        beta=BETA,
        pair_scale=SP,
        eta=1.0,
    )
    model = PCAEGAN(**{**args, **kw}).to(dtype)
    with torch.no_grad():
        model.train_index.copy_(torch.arange(N))
        model.train_labels.copy_(torch.eye(C)[torch.arange(N) % C])
        model.code_logits.normal_()
    model.eval()  # batch norm on running statistics: the same function for every call
    return model


def _sgd(model) -> None:
    opts = [torch.optim.SGD(ps, lr=0.0) for ps in model.group_parameters().values()]
    model.optimizers = lambda: opts
    model.manual_backward = lambda loss: loss.backward()


def _fd_grad_norm(f, x: torch.Tensor, eps: float = 1e-6) -> float:
    """``||grad f(x)||_2`` of a scalar function of one sample, by central differences."""
    flat = x.detach().reshape(-1).clone()
    total = 0.0
    for i in range(flat.numel()):
        up, down = flat.clone(), flat.clone()
        up[i] += eps
        down[i] -= eps
        g = (f(up.view_as(x)) - f(down.view_as(x))) / (2 * eps)
        total += g * g
    return math.sqrt(total)


def _sigmoid(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


def _cos(a, b) -> float:
    a, b = a.tolist(), b.tolist()
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _share(la, lb) -> float:
    return float(any(x > 0 and y > 0 for x, y in zip(la.tolist(), lb.tolist(), strict=True)))


def _score(model, x) -> float:
    with torch.no_grad():
        return float(model.discriminator(x[None])[0][0])


def _emb(model, x):
    with torch.no_grad():
        return model.discriminator(x[None])[1][0]


def _pair_bce_loop(model, fakes, reals, lf, lr) -> float:
    """``mean_ij -[S log D(f_i, r_j) + (1 - S) log(1 - D(f_i, r_j))]``, ``D = sigmoid(s_p cos)``."""
    total, count = 0.0, 0
    for i in range(len(fakes)):
        for j in range(len(reals)):
            p = _sigmoid(SP * _cos(_emb(model, fakes[i]), _emb(model, reals[j])))
            s = _share(lf[i], lr[j])
            total += -(s * math.log(p) + (1 - s) * math.log(1 - p))
            count += 1
    return total / count


def _data(b: int = 4, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(b, 1, SIZE, SIZE, generator=g, dtype=torch.float64) * 2 - 1
    fake = torch.rand(b, 1, SIZE, SIZE, generator=g, dtype=torch.float64) * 2 - 1
    labels = torch.eye(C, dtype=torch.float64)[torch.tensor([0, 1, 0, 2, 1, 2][:b])]
    return real, fake, labels


# -- eqs. 7, 8 and the penalty of D ---------------------------------------------------------------


def test_l_d_matches_a_hand_computation_with_the_penalty_on():
    """L_D = mean D(fake) - mean D(real) + lambda mean_i (||grad D(x^_i)|| - 1)^2 + L_DC (eqs. 7-9),
    the last of the 4 synthetic images prior-coded (eq. 7 only), gradients by finite differences."""
    model = _model()
    real, fake, labels = _data()
    k = 3
    sim = (labels[:k] @ labels.T > 0).double()
    torch.manual_seed(7)
    out = model.discriminator_loss(real, fake, sim)
    torch.manual_seed(7)
    alpha = torch.rand(4, dtype=torch.float64)  # the draw of the penalty's mixing weights

    wd = sum(_score(model, f) for f in fake) / 4 - sum(_score(model, r) for r in real) / 4
    gp = 0.0
    for i in range(4):
        x_hat = alpha[i] * real[i] + (1 - alpha[i]) * fake[i]
        gp += (_fd_grad_norm(lambda x: _score(model, x), x_hat) - 1) ** 2
    gp /= 4
    dc = _pair_bce_loop(model, fake[:k], real, labels[:k], labels)
    assert LAM * gp > 1e-2  # the penalty matters at this scale
    assert out["GP_D"].item() == pytest.approx(gp, rel=1e-6)
    assert out["L_DC"].item() == pytest.approx(dc, rel=1e-9)
    assert out["L_D"].item() == pytest.approx(wd + LAM * gp + dc, rel=1e-6)


# -- eq. 11 and the penalty of C -------------------------------------------------------------------


def test_l_c_matches_a_hand_computation_with_the_penalty_on():
    """L_C = mean C(H) - mean C(Z_r) + lambda mean_i (||grad C(x^_i)|| - 1)^2, x^ = a Z + (1 - a) H."""
    model = _model()
    g = torch.Generator().manual_seed(3)
    codes = torch.rand(5, BITS, generator=g, dtype=torch.float64)
    prior = torch.randint(0, 2, (5, BITS), generator=g).double()
    torch.manual_seed(11)
    out = model.code_critic_loss(codes, prior)
    torch.manual_seed(11)
    alpha = torch.rand(5, dtype=torch.float64)

    def c(x):
        with torch.no_grad():
            return float(model.code_discriminator(x[None])[0])

    wd = sum(c(h) for h in codes) / 5 - sum(c(z) for z in prior) / 5
    gp = sum(
        (_fd_grad_norm(c, alpha[i] * prior[i] + (1 - alpha[i]) * codes[i]) - 1) ** 2
        for i in range(5)
    )
    gp /= 5
    assert LAM * gp > 1e-2
    assert out["GP_C"].item() == pytest.approx(gp, rel=1e-6)
    assert out["L_C"].item() == pytest.approx(wd + LAM * gp, rel=1e-6)


# -- eqs. 10 and 14 in the generator phase ---------------------------------------------------------


def _generator_case(prior_rows: int = 2):
    model = _model()
    _sgd(model)
    real, _, _ = _data(6, seed=2)
    rows = torch.tensor([0, 1, 2, 3, 4, 5])
    labels = model.train_labels[rows]
    g = torch.Generator().manual_seed(5)
    noise = torch.randn(6, 3, generator=g, dtype=torch.float64)
    prior = torch.randint(0, 2, (prior_rows, BITS), generator=g).double() if prior_rows else None
    return model, real, rows, labels, noise, prior


def test_l_g_eq_10_matches_a_loop():
    """L_G = -mean_i D(I_f_i) over all 6 synthetic images + mean BCE over the 4 data-coded ones."""
    model, real, rows, labels, noise, prior = _generator_case()
    k = 4
    with torch.no_grad():
        codes = torch.sigmoid(model.code_logits[rows])
        fake = model.generator(torch.cat([codes[:k], prior]), noise)
    adv = -sum(_score(model, f) for f in fake) / 6
    pair = _pair_bce_loop(model, fake[:k], real, labels[:k], labels)
    out = model.generator_phase(real, labels, rows, noise, prior)
    assert out["L_G"].item() == pytest.approx(adv + pair, rel=1e-9)


def test_l_f_eq_14_matches_a_loop_over_real_and_data_coded_images():
    """L_F = L_Fc + beta L_Fq (eqs. 1, 4, 13, 14-16) over the 6 real and 4 data-coded synthetic
    images: the 2 prior-coded ones have no labels and stay out."""
    model, real, rows, labels, noise, prior = _generator_case()
    k = 4
    with torch.no_grad():
        codes = torch.sigmoid(model.code_logits[rows])
        fake = model.generator(torch.cat([codes[:k], prior]), noise)
        h = model(torch.cat([(real + 1) / 2, (fake[:k] + 1) / 2]))
    y = torch.cat([labels, labels[:k]])
    n = len(h)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    n_pos = sum(_share(y[i], y[j]) for i, j in pairs)
    n_neg = len(pairs) - n_pos
    fc = 0.0
    for i, j in pairs:
        s = _share(y[i], y[j])
        d = BITS / 2 * (1 - _cos(h[i], h[j])) + 1e-6  # eq. 13 (+ eps)
        sigma = GAMMA / (GAMMA + d)  # eq. 1
        w = len(pairs) / n_pos if s else len(pairs) / n_neg  # eq. 4
        fc += w * -(s * math.log(sigma) + (1 - s) * math.log(1 - sigma))
    fc /= len(pairs)
    ones = torch.ones(BITS, dtype=torch.float64)
    fq = sum(math.log(1 + BITS / 2 * (1 - _cos(hi.abs(), ones)) / GAMMA) for hi in h) / n
    out = model.generator_phase(real, labels, rows, noise, prior)
    assert out["L_Fc"].item() == pytest.approx(fc, rel=1e-7)
    assert out["L_Fq"].item() == pytest.approx(fq, rel=1e-7)
    assert out["L_F"].item() == pytest.approx(fc + BETA * fq, rel=1e-7)


# -- prior codes in a training step ----------------------------------------------------------------


def test_training_step_conditions_g_on_batch_codes_and_prior_codes():
    model = _model(torch.float32, prior_fraction=0.5, n_critic=1)
    model.train()
    _sgd(model)
    model.log_dict = lambda *a, **k: None
    conds = []
    forward = model.generator.forward
    model.generator.forward = lambda c, z: (conds.append(c.detach().clone()), forward(c, z))[1]
    rows = torch.tensor([3, 0, 7, 5, 1, 9, 2, 11])
    images = torch.randint(0, 256, (8, 1, SIZE, SIZE), dtype=torch.uint8)
    batch = {"image": images, "label": model.train_labels[rows].float(), "index": rows}
    expected_codes = torch.sigmoid(model.code_logits[rows[:4]]).detach()
    model.training_step(batch, 0)
    assert len(conds) == 1  # one forward: the critic phase's images (detached) and the generator's
    for cond in conds:
        assert cond.shape == (8, BITS)
        torch.testing.assert_close(cond[:4], expected_codes)
        assert set(cond[4:].unique().tolist()) <= {0.0, 1.0}


def test_prior_fraction_bounds_and_class_defaults():
    assert _model().prior_fraction == 0.5
    assert PCWGAN().prior_fraction == 0.0
    m = _model(prior_fraction=0.9)
    assert [m.prior_count(b) for b in (1, 2, 10, 64)] == [0, 1, 9, 58]
    assert _model(prior_fraction=0.0).prior_count(64) == 0
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="prior_fraction"):
            PCAEGAN(prior_fraction=bad)


# -- the two settings ------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["paper", "cpu"])
def test_settings_resolve_to_their_documented_values(setting):
    model = PCAEGAN(
        bits=8, setting=setting, image_channels=1, image_size=8, num_train=4, num_classes=2
    )
    want = {
        "paper": dict(n_critic=5, noise=100, g=64, d=64, c=750),
        "cpu": dict(n_critic=1, noise=32, g=16, d=16, c=128),
    }[setting]
    assert model.n_critic == want["n_critic"] and model.noise_dim == want["noise"]
    assert model.generator.width == want["g"]
    assert model.discriminator.trunk[0].out_channels == want["d"]
    assert model.code_discriminator.net[0].out_features == want["c"]
    assert model.hparams["setting"] == setting
    assert SETTINGS[setting]["n_critic"] == want["n_critic"]
    # an explicit argument wins over the setting
    assert PCAEGAN(setting=setting, n_critic=3).n_critic == 3
    with pytest.raises(ValueError, match="setting"):
        PCAEGAN(setting="gpu")


# -- one generator forward per batch (a speed-up that must not change the step) ---------------------


def _old_training_step(model, batch, batch_idx):
    """The training step before the single-forward speed-up: a no-grad forward of G for the critic
    phase and a second, identical one (with the graph) inside the generator phase."""
    from hashbench.losses.base import pairwise_similarity
    from hashbench.methods.pcaegan import to_gan_range

    labels = batch["label"].float()
    real = to_gan_range(batch["image"])
    rows = model.batch_rows(batch["index"])
    m = model.prior_count(len(real))
    k = len(real) - m
    sim = pairwise_similarity(labels[:k], labels)
    noise = torch.randn(len(real), model.noise_dim)
    prior = model.sample_prior(m) if m else None
    codes = torch.sigmoid(model.code_logits[rows]).detach()
    cond = codes if prior is None else torch.cat([codes[:k], prior])
    with torch.no_grad():
        fake = model.generator(cond, noise)
    model.critic_phase(real, fake, codes, sim)
    if batch_idx % model.n_critic == 0:
        model.generator_phase(real, labels, rows, noise, prior)
    else:
        both = torch.cat([(real + 1) / 2, (fake[:k] + 1) / 2])
        model.encoder_phase(both, torch.cat([labels, labels[:k]]))


@pytest.mark.parametrize("batch_idx", [0, 1])
def test_one_generator_forward_gives_the_two_forward_step(batch_idx):
    """Parameters, G's batch-norm running statistics and their counters after a training step
    (train mode, SGD, n_critic 2: batch 0 a generator step, batch 1 not) equal those of the
    two-forward step (float32: the same kernels; SGD, so round-off is not amplified)."""
    import copy

    ref = _model(torch.float32, n_critic=2, prior_fraction=0.25)
    ref.train()
    new = copy.deepcopy(ref)
    for model in (ref, new):
        opts = [torch.optim.SGD(ps, lr=0.1) for ps in model.group_parameters().values()]
        model.optimizers = lambda opts=opts: opts
        model.manual_backward = lambda loss: loss.backward()
        model.log_dict = lambda *a, **k: None
    rows = torch.tensor([3, 0, 7, 5, 1, 9, 2, 11])
    gen = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (8, 1, SIZE, SIZE), dtype=torch.uint8, generator=gen)
    batch = {"image": images, "label": ref.train_labels[rows].float(), "index": rows}
    torch.manual_seed(7)
    _old_training_step(ref, batch, batch_idx)
    torch.manual_seed(7)
    new.training_step(batch, batch_idx)
    state_ref, state_new = ref.state_dict(), new.state_dict()
    assert state_ref.keys() == state_new.keys()
    moved = 0
    for key, value in state_ref.items():
        torch.testing.assert_close(state_new[key], value, rtol=1e-5, atol=1e-6, msg=key)
        moved += not torch.equal(value, _model(torch.float32).state_dict()[key])
    assert moved > 10  # the step did change the model
    bn = ref.generator.project[1]
    assert int(bn.num_batches_tracked) == int(new.generator.project[1].num_batches_tracked)
    assert int(bn.num_batches_tracked) == (2 if batch_idx == 0 else 1)
