"""PC-AEGAN: pair-conditional auto-encoding GAN with a code discriminator and Cauchy losses (seed 003).

Qiang Yan, He Long, Zhang Limin, Wang Jizong, Lyu Jun, Shi Guohua, Chen Qi, "Deep Adversarial Hashing
Method Based on Auto-encoder for Frozen Power Line Image Retrieval" (基于自编码器的深度对抗哈希方法在
覆冰电网图像检索中的应用), *Journal of Taiyuan University of Technology* 51(4): 485-494, 2020,
DOI 10.16355/j.cnki.issn1007-9432tyut.2020.04.001 (``shared/seeds/003_590ff5e428ad5bf9.txt``;
METHODS.md section 3). Builds on HashGAN / PC-WGAN (Cao, Liu, Long, Wang, CVPR 2018), alpha-GAN
(Rosca et al., 2017) and Deep Cauchy Hashing (Cao, Long, Liu, Wang, CVPR 2018).

Three stages (networks in :mod:`hashbench.models.gan`, adversarial losses in
:mod:`hashbench.losses.adversarial`):

1. **Approximate codes** (eq. 6): ``min_H ||S - (1/q) H H^T||_F^2`` with ``S_ij = 1`` when training
   images i and j share a label. Resolved (METHODS.md): ``H = sigmoid(U)``, minimised by Adam over
   row blocks ``I`` against all rows, ``S[I, :]`` computed on the fly from the labels (never an
   ``n x n`` matrix), binarised at 0.5
   (:func:`~hashbench.methods.pcaegan_stage1.learn_approximate_codes`). Runs in
   :meth:`PCAEGAN.on_fit_start` on the DataModule's ``train`` labels (skipped on a resumed run).
2. **Synthesis**: generator ``G(c, z)`` (:class:`~hashbench.models.gan.UpsamplingGenerator`),
   discriminator ``D`` with a critic and a pair-similarity head
   (:class:`~hashbench.models.gan.PairDiscriminator`), code discriminator ``C``
   (:class:`~hashbench.models.gan.CodeDiscriminator`):

       L_D = E[D(I_f)] - E[D(I_r)] + lambda GP_D + L_DC                        (eqs. 7-9)
       L_DC = mean_ij BCE(D(I_f_i, I_r_j), S_ij)                               (eq. 8)
       L_G = -E[D(I_f)] + mean_ij BCE(D(I_f_i, I_r_j), S_ij)                   (eq. 10)
       L_C = E[C(H)] - E[C(Z_r)] + lambda GP_C                                 (eq. 11)
       GP = E_x^[(||grad_x^ critic(x^)||_2 - 1)^2],  x^ = a x_real + (1 - a) x_fake, a ~ U(0, 1)

3. **Hash encoder** ``F`` (the base class's backbone + ``tanh`` hash layer) on real and synthetic
   images: ``L_F = L_Fc + beta L_Fq`` (eq. 14) with the Cauchy cross-entropy and quantisation of
   :mod:`hashbench.losses.cauchy` (eqs. 1, 4, 13, 15, 16).

Joint training (eq. 17), manual optimisation, five optimisers ``[F, D, G, H, C]``, per batch of
``B`` real images: ``G`` makes ``B`` synthetic images, ``k = B - m`` conditioned on the batch's codes
``H_i`` (the first ``k`` rows) and ``m = round(prior_fraction B)`` on prior codes ``Z_r`` (the
last ``m``), then

- critic phase: ``D`` minimises ``eta L_D`` (``L_F`` does not depend on ``D``); ``C`` minimises
  ``eta L_C`` on the batch's codes ``H_B`` (detached) and prior samples ``Z_r``;
- generator phase (every ``n_critic``-th batch): ``G`` and ``H`` minimise
  ``L_F + eta (L_G + L_H - E[C(H_B)])``, and ``F`` steps on the same backward pass (``L_F`` is the
  only term of the sum that reaches ``F``, so its gradient is exactly that of the encoder phase);
- encoder phase (the other batches): ``F`` minimises ``L_F``.

Two named settings (argument ``setting``; the resolved config records which ran):

- ``paper`` (the method's reference, the class default): ``n_critic`` 5 (HashGAN, METHODS.md),
  DCGAN-size nets: ``G`` ``4w, 2w, w`` = 256, 128, 64 channels, ``D`` 64, 128, 256, 256 channels
  (Radford et al. 2016, ngf = ndf = 64), ``C`` 750 units a layer (alpha-GAN's code discriminator,
  Rosca et al. 2017), noise 100 (DCGAN); with the class defaults for the rest: Adam 2e-4, betas
  (0.9, 0.999) for all five nets, no schedule. Batch 64 is the DataModule's ``batch_size``.
- ``cpu`` (a documented deviation, ``configs/methods/pcaegan.yaml``): ``n_critic`` 1, ``G``/``D``
  width 16, ``C`` 128 units, noise 32 (the config also sets ``F``'s Adam to 1e-3 with a cosine
  schedule). See docs/methods/pcaegan.md for why.

An argument given explicitly (not ``None``) overrides its setting's value.

Interpretation (marked in the docs too):

- eq. 17 puts ``C`` with ``G, H``; ``C`` is a critic and takes its steps in the critic phase
  (``n_critic`` per generator step, as ``D``), minimising its own objective eq. 11; the relaxed codes
  ``H`` take the adversarial side ``-E[C(H)]`` (METHODS.md: "its adversarial signal flows into the
  relaxed H"), not ``+E[C(H)]`` which would push ``H`` away from the prior;
- the prior ``Z_r``: independent fair bits in ``{0, 1}^q`` ("balanced, independent bits");
- ``G`` is conditioned on the relaxed codes ``H_i = sigmoid(U_i)`` of the batch's images (so ``L_F``
  and ``L_G`` reach ``H``); a synthetic image inherits the labels of the image whose code
  conditioned it; the binarised stage-1 codes condition the per-class sample grids
  (:mod:`hashbench.methods.pcaegan_samples`);
- Resolved (prior codes): METHODS.md section 3 conditions ``G`` on a training image's code *or a
  code sampled from the prior* ``Z_r``, and the seed's eq. 10 text has ``G`` fool ``D`` "with
  synthetic images generated from the similarity codes and random vectors"; alpha-GAN (which
  PC-AEGAN builds on) decodes prior samples as well as encoded ones. A prior-coded image has no
  label and no row in ``S`` (eqs. 2, 8, 10 sum over ``S_ij in S``, pairs of training images), so it
  enters only the Wasserstein terms: ``E[D(I_f)]`` of eq. 7 (and its gradient penalty) and
  ``-E[D(I_f)]`` of eq. 10; the pair terms of eqs. 8 and 10 and the hash loss ``L_F`` (eq. 14,
  training pairs ``(I_i, I_j, S_ij)``) use only the ``k`` data-coded synthetic images. ``k >= 1``
  (``m <= B - 1``). ``pcwgan`` defaults to ``prior_fraction`` 0: without ``C`` nothing ties the
  prior to the codes ``G`` learns from (the reason alpha-GAN adds ``C``);
- ``G`` starts with a linear projection to a ``(4 w, s/4, s/4)`` map (BatchNorm + ReLU), then two
  ``nearest x2 -> conv 3x3 -> BN -> ReLU`` blocks and a last ``conv 3x3 -> tanh``;
- ``D``'s normalisation is a per-sample layer norm (``GroupNorm(1, ch)``; BatchNorm is not valid
  with the gradient penalty); the conv strides are 2, 2, 2, 1, 1 (size-keeping zero padding 1 / 2 for the last two)
  and the fifth conv gives ``1 + q`` channels, averaged over space: the critic score and a pair
  embedding ``e``; ``D(I_a, I_b) = sigmoid(s_p cos(e_a, e_b))`` (the paper does not give the pair
  head's form);
- ``C``: ``FC -> LeakyReLU -> FC -> LayerNorm -> LeakyReLU -> FC`` (normalisation after every FC but
  the first and last, as in ``D``);
- pairs for eq. 8 / 10 are all (data-coded synthetic, real) pairs of the batch, averaged (the
  paper sums);
  ``L_H`` on a batch is the mean of ``(S_ij - H_i H_j^T / q)^2`` over its ``B x B`` block;
- ``L_F`` over all ordered pairs of the concatenated real + data-coded synthetic batch.

Ablations (registry keys): ``pcwgan`` (:class:`PCWGAN`: no code discriminator, HashGAN's cosine
losses) and ``dch`` (:class:`DCH`: stage 3 alone, on real images, no GAN).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashbench.losses.adversarial import (
    gradient_penalty,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from hashbench.losses.base import pairwise_similarity
from hashbench.losses.cauchy import (
    CauchyCrossEntropyLoss,
    CauchyQuantizationLoss,
    CosineCrossEntropyLoss,
    CosineQuantizationLoss,
    cosine_matrix,
)
from hashbench.methods.base import HashingMethod, Optim
from hashbench.methods.pcaegan_samples import SampleGrids
from hashbench.methods.pcaegan_stage1 import code_reconstruction_loss, learn_approximate_codes
from hashbench.models.gan import CodeDiscriminator, PairDiscriminator, UpsamplingGenerator
from hashbench.retrieval.evaluation import DEFAULT_TIES, TieRule

HashLoss = Literal["cauchy", "cosine"]
#: optimiser order of :meth:`PCAEGAN.configure_optimizers` (``C`` only with the code discriminator).
GROUPS: tuple[str, ...] = ("F", "D", "G", "H", "C")
Setting = Literal["paper", "cpu"]
#: the values of the setting-controlled arguments (module docstring): the paper's (HashGAN's
#: ``n_critic``, DCGAN-size ``G``/``D``, alpha-GAN's ``C``) and the CPU deviation.
SETTINGS: dict[str, dict[str, int]] = {
    "paper": {
        "n_critic": 5,
        "noise_dim": 100,
        "generator_width": 64,
        "discriminator_width": 64,
        "code_width": 750,
    },
    "cpu": {
        "n_critic": 1,
        "noise_dim": 32,
        "generator_width": 16,
        "discriminator_width": 16,
        "code_width": 128,
    },
}


# ------------------------------------------------------------------------------------------------
# pure functions
# ------------------------------------------------------------------------------------------------


def pair_bce(logits: Tensor, sim: Tensor) -> Tensor:
    """``mean_ij BCE(sigmoid(logits_ij), S_ij)`` (seed 003 eqs. 8, 10, averaged)."""
    return F.binary_cross_entropy_with_logits(logits, sim)


def to_gan_range(images: Tensor) -> Tensor:
    """``uint8`` (or ``[0, 1]`` float) images -> float in ``[-1, 1]`` (the generator's range)."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    return x * 2.0 - 1.0


def _check_image_shape(channels: int, size: int) -> None:
    if channels not in (1, 3) or size < 8 or size % 4:
        raise ValueError(
            f"the GAN needs 1 or 3 channels and a square side divisible by 4 (>= 8), got "
            f"{channels} channels and side {size}; resize the data (image_size) or use `dch`"
        )


# ------------------------------------------------------------------------------------------------
# the method
# ------------------------------------------------------------------------------------------------


class PCAEGAN(SampleGrids, HashingMethod):
    """PC-AEGAN (Qiang et al., J. Taiyuan Univ. Technol. 2020): see the module docstring.

    Args:
        bits: code length ``K = q``.
        backbone: backbone of the hash encoder ``F``.
        pretrained: backbone weights (see :class:`HashingMethod`).
        setting: ``paper`` (the reference) or ``cpu`` (a deviation): the values of ``n_critic``,
            ``noise_dim``, ``generator_width``, ``discriminator_width`` and ``code_width`` left
            ``None`` (:data:`SETTINGS`).
        hash_loss: ``cauchy`` (DCH's terms, eqs. 15-16) or ``cosine`` (HashGAN's); ``None`` = the
            class default (``cauchy``; ``cosine`` for :class:`PCWGAN`).
        gamma: Cauchy scale ``gamma`` (eq. 1).
        alpha: slope of HashGAN's cosine sigmoid (``hash_loss: cosine``).
        beta: quantisation weight ``beta`` (eq. 14).
        eta: weight ``eta`` of the GAN terms (eq. 17).
        gp_weight: gradient-penalty weight ``lambda`` (eqs. 7, 11).
        n_critic: critic (``D``, ``C``) steps per generator (``G``, ``H``) step; ``None``: the
            setting's.
        noise_dim: dimension of the generator's noise ``z``; ``None``: the setting's.
        generator_width: ``G``'s base width ``w``; ``None``: the setting's.
        discriminator_width: ``D``'s base width ``w``; ``None``: the setting's.
        code_width: hidden units of ``C``; ``None``: the setting's.
        prior_fraction: fraction ``m / B`` of each batch's synthetic images conditioned on prior
            codes ``Z_r`` rather than on the batch's codes ``H`` (``0 <= f < 1``; at most ``B - 1``
            images); ``None``: the class default (0.5; 0 for :class:`PCWGAN`).
        pair_scale: ``s_p`` of the pair head ``sigmoid(s_p cos(e_a, e_b))``.
        gan_lr: Adam learning rate of ``D``, ``G``, ``C`` and ``H`` (eq. 17).
        gan_betas: Adam betas of ``D``, ``G``, ``C`` and ``H``.
        stage1_epochs: passes of stage 1 over the training rows.
        stage1_block: rows per stage-1 step.
        stage1_lr: Adam learning rate of stage 1.
        samples_per_class: columns of the per-class sample grid saved each validation epoch
            (0: none).
        image_channels: image channels; ``None`` = from the DataModule.
        image_size: image side; ``None`` = from the DataModule.
        num_train: number of training images (rows of ``H``); ``None`` = from the DataModule.
        num_classes: number of classes; ``None`` = from the DataModule.
        seed: seed of stage 1 and of the sample grid's noise.
        optim: optimiser of the hash encoder ``F`` (Adam 2e-4 in the paper).
        ties: tie rule of the reported metrics.
    """

    use_gan: ClassVar[bool] = True
    use_code_discriminator: ClassVar[bool] = True
    default_hash_loss: ClassVar[HashLoss] = "cauchy"
    default_prior_fraction: ClassVar[float] = 0.5
    activation = "tanh"

    def __init__(
        self,
        bits: int = 32,
        backbone: str = "small_cnn",
        pretrained: bool | str = False,
        setting: Setting = "paper",
        hash_loss: HashLoss | None = None,
        gamma: float = 20.0,
        alpha: float = 10.0,
        beta: float = 0.1,
        eta: float = 1.0,
        gp_weight: float = 10.0,
        n_critic: int | None = None,
        noise_dim: int | None = None,
        generator_width: int | None = None,
        discriminator_width: int | None = None,
        code_width: int | None = None,
        prior_fraction: float | None = None,
        pair_scale: float = 5.0,
        gan_lr: float = 2e-4,
        gan_betas: tuple[float, float] = (0.9, 0.999),
        stage1_epochs: int = 30,
        stage1_block: int = 512,
        stage1_lr: float = 0.1,
        samples_per_class: int = 8,
        image_channels: int | None = None,
        image_size: int | None = None,
        num_train: int | None = None,
        num_classes: int | None = None,
        seed: int = 0,
        optim: Optim = Optim(lr=2e-4, weight_decay=0.0, schedule="none"),
        ties: TieRule = DEFAULT_TIES,
    ) -> None:
        name = type(self).__name__
        if setting not in SETTINGS:
            raise ValueError(f"{name}: setting must be one of {sorted(SETTINGS)}, got {setting!r}")
        chosen = SETTINGS[setting]
        n_critic = chosen["n_critic"] if n_critic is None else n_critic
        noise_dim = chosen["noise_dim"] if noise_dim is None else noise_dim
        generator_width = chosen["generator_width"] if generator_width is None else generator_width
        discriminator_width = (
            chosen["discriminator_width"] if discriminator_width is None else discriminator_width
        )
        code_width = chosen["code_width"] if code_width is None else code_width
        if prior_fraction is None:
            prior_fraction = self.default_prior_fraction
        if not 0 <= prior_fraction < 1:
            raise ValueError(f"{name}: prior_fraction must be in [0, 1), got {prior_fraction}")
        hash_loss = hash_loss or self.default_hash_loss
        if hash_loss not in ("cauchy", "cosine"):
            raise ValueError(f"{name}: hash_loss must be 'cauchy' or 'cosine', got {hash_loss!r}")
        for arg, v in (("gamma", gamma), ("alpha", alpha), ("pair_scale", pair_scale)):
            if not v > 0:
                raise ValueError(f"{name}: {arg} must be > 0, got {v}")
        for arg, v in (("beta", beta), ("eta", eta), ("gp_weight", gp_weight)):
            if not v >= 0:
                raise ValueError(f"{name}: {arg} must be >= 0, got {v}")
        for arg, v in (
            ("n_critic", n_critic),
            ("noise_dim", noise_dim),
            ("generator_width", generator_width),
            ("discriminator_width", discriminator_width),
            ("code_width", code_width),
            ("stage1_block", stage1_block),
        ):
            if int(v) < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {v}")
        if stage1_epochs < 0 or samples_per_class < 0:
            raise ValueError(f"{name}: stage1_epochs and samples_per_class must be >= 0")
        if not gan_lr > 0 or len(gan_betas) != 2 or not all(0 <= b < 1 for b in gan_betas):
            raise ValueError(
                f"{name}: gan_lr must be > 0 and gan_betas two numbers in [0, 1), got "
                f"{gan_lr}, {gan_betas}"
            )
        super().__init__(bits, backbone, pretrained, optim, ties)
        self.automatic_optimization = False
        self.hash_loss = hash_loss
        if hash_loss == "cauchy":
            self.pair_loss: nn.Module = CauchyCrossEntropyLoss(gamma=gamma)
            self.quant_loss: nn.Module = CauchyQuantizationLoss(gamma=gamma)
        else:
            self.pair_loss = CosineCrossEntropyLoss(alpha=alpha)
            self.quant_loss = CosineQuantizationLoss()
        self.beta, self.eta, self.gp_weight = float(beta), float(eta), float(gp_weight)
        self.n_critic, self.noise_dim = int(n_critic), int(noise_dim)
        self.widths = (int(generator_width), int(discriminator_width), int(code_width))
        self.pair_scale = float(pair_scale)
        self.setting, self.prior_fraction = setting, float(prior_fraction)
        self.gan_lr, self.gan_betas = float(gan_lr), tuple(float(b) for b in gan_betas)
        self.stage1 = (int(stage1_epochs), int(stage1_block), float(stage1_lr))
        self.samples_per_class, self.seed = int(samples_per_class), int(seed)
        self.generator: UpsamplingGenerator | None = None
        self.discriminator: PairDiscriminator | None = None
        self.code_discriminator: CodeDiscriminator | None = None
        self.code_logits: nn.Parameter | None = None
        shape = (image_channels, image_size, num_train, num_classes)
        if self.use_gan and all(v is not None for v in shape):
            self._build(*shape)  # restoring from hyper-parameters

    # -- construction --------------------------------------------------------------------------
    def _build(self, channels: int, size: int, n: int, classes: int) -> None:
        """Create ``G``, ``D``, ``C``, the code logits ``U`` and the training-set buffers."""
        _check_image_shape(channels, size)
        gw, dw, cw = self.widths
        self.generator = UpsamplingGenerator(self.bits, self.noise_dim, channels, size, gw)
        self.discriminator = PairDiscriminator(channels, dw, self.bits)
        if self.use_code_discriminator:
            self.code_discriminator = CodeDiscriminator(self.bits, cw)
        self.code_logits = nn.Parameter(torch.zeros(n, self.bits))
        self.register_buffer("train_index", torch.zeros(n, dtype=torch.long))
        self.register_buffer("train_labels", torch.zeros(n, classes))
        self.register_buffer("approx_codes", torch.zeros(n, self.bits, dtype=torch.uint8))
        self.register_buffer("stage1_done", torch.tensor(False))
        self.hparams.update(
            image_channels=channels, image_size=size, num_train=n, num_classes=classes
        )
        self.to(self.device)

    def setup(self, stage: str) -> None:
        """Build the GAN from the DataModule (image shape, training rows and labels)."""
        if not self.use_gan:
            return
        dm = self._datamodule()
        if dm is None or not hasattr(dm, "split"):
            if self.generator is None:
                raise ValueError(
                    f"{type(self).__name__} needs a HashDataModule (its training labels and image "
                    "shape) or image_channels, image_size, num_train and num_classes"
                )
            return
        image = dm.dataset("train")[0]["image"]
        if image.ndim != 3 or image.shape[1] != image.shape[2]:
            raise ValueError(
                f"{type(self).__name__}: training images must be square (C, S, S), got "
                f"{tuple(image.shape)}; set the DataModule's image_size"
            )
        index = torch.as_tensor(dm.split["train"], dtype=torch.long)
        labels = torch.as_tensor(dm.labels("train"), dtype=torch.float32)
        order = torch.argsort(index)  # rows of H in increasing dataset index (batch_rows)
        index, labels = index[order], labels[order]
        shape = (int(image.shape[0]), int(image.shape[1]), len(index), labels.shape[1])
        if self.generator is None:
            self._build(*shape)
        elif shape[2] != len(self.code_logits):
            raise ValueError(
                f"{type(self).__name__}: built for {len(self.code_logits)} training images, the "
                f"data has {shape[2]}; use the checkpoint with the data it was trained on"
            )
        if not bool(self.stage1_done):
            self.train_index.copy_(index.to(self.device))
            self.train_labels.copy_(labels.to(self.device))

    def on_fit_start(self) -> None:
        """Stage 1 (eq. 6) on the training labels, unless restored from a checkpoint."""
        if not self.use_gan or bool(self.stage1_done):
            return
        epochs, block, lr = self.stage1
        u = learn_approximate_codes(self.train_labels, self.bits, epochs, block, lr, self.seed)
        with torch.no_grad():
            self.code_logits.copy_(u)
            self.approx_codes.copy_((u >= 0).to(torch.uint8))
            self.stage1_done.fill_(True)

    def parameter_groups(self) -> list[dict]:
        """The hash encoder ``F`` only: backbone (scaled lr) and hash head."""
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        groups = [{"params": list(self.hash_head.parameters()), "lr": self.optim.lr}]
        if backbone:
            groups.append({"params": backbone, "lr": self.optim.lr * self.optim.backbone_lr_mult})
        return groups

    def group_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Parameters of each of ``F, D, G, H, C`` that this model has."""
        groups = {"F": [p for g in self.parameter_groups() for p in g["params"]]}
        if self.use_gan:
            groups["D"] = list(self.discriminator.parameters())
            groups["G"] = list(self.generator.parameters())
            groups["H"] = [self.code_logits]
            if self.code_discriminator is not None:
                groups["C"] = list(self.code_discriminator.parameters())
        return groups

    def configure_optimizers(self):
        if self.use_gan and self.generator is None:
            raise ValueError(f"{type(self).__name__}: call setup (fit with a HashDataModule) first")
        first = super().configure_optimizers()  # F, with its schedule
        if not self.use_gan:
            return first
        f_opt = first["optimizer"] if isinstance(first, dict) else first
        adam = [
            torch.optim.Adam(ps, lr=self.gan_lr, betas=self.gan_betas)
            for key, ps in self.group_parameters().items()
            if key != "F"
        ]
        if isinstance(first, dict):
            return [f_opt, *adam], [first["lr_scheduler"]]
        return [f_opt, *adam]

    # -- losses --------------------------------------------------------------------------------
    def hash_objective(self, h: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """``L_F = L_Fc + beta L_Fq`` (eq. 14) of relaxed codes ``h`` and their labels."""
        pair = self.pair_loss(h=h, labels=labels)
        quant = self.quant_loss(h=h)
        return {"L_F": pair + self.beta * quant, "L_Fc": pair, "L_Fq": quant}

    def pair_logits(self, emb_fake: Tensor, emb_real: Tensor) -> Tensor:
        """Logits of ``D(I_f_i, I_r_j) = sigmoid(s_p cos(e_i, e_j))``."""
        return self.pair_scale * cosine_matrix(emb_fake, emb_real)

    def discriminator_loss(self, real: Tensor, fake: Tensor, sim: Tensor) -> dict[str, Tensor]:
        """``L_D = E[D(fake)] - E[D(real)] + lambda GP_D + L_DC`` (eqs. 7-9).

        ``fake`` ``(B, ...)``: its first ``k = len(sim)`` rows are coded by the batch's ``H`` (they
        inherit the labels), the rest by the prior; ``sim`` ``(k, B)``: ``S`` between those ``k``
        synthetic images and the real ones. All ``B`` enter eq. 7, the ``k`` alone eq. 8.
        """
        d = self.discriminator
        s_real, e_real = d(real)
        s_fake, e_fake = d(fake.detach())
        gp = gradient_penalty(d.score, real, fake)
        dc = pair_bce(self.pair_logits(e_fake[: len(sim)], e_real), sim)
        wd = wasserstein_critic_loss(s_real, s_fake)
        return {"L_D": wd + self.gp_weight * gp + dc, "L_DS_wd": wd, "L_DC": dc, "GP_D": gp}

    def prior_count(self, batch: int) -> int:
        """``m = round(prior_fraction B)`` prior-coded synthetic images of a batch, at most ``B - 1``."""
        return max(0, min(round(self.prior_fraction * batch), batch - 1))

    def code_critic_loss(self, codes: Tensor, prior: Tensor) -> dict[str, Tensor]:
        """``L_C = E[C(H)] - E[C(Z_r)] + lambda GP_C`` (eq. 11), ``H`` detached."""
        c = self.code_discriminator
        codes = codes.detach()
        gp = gradient_penalty(c, prior, codes)
        wd = wasserstein_critic_loss(f_fake=c(codes), f_real=c(prior))  # C(H) first, as before
        return {"L_C": wd + self.gp_weight * gp, "L_C_wd": wd, "GP_C": gp}

    def sample_prior(self, n: int) -> Tensor:
        """``Z_r``: ``n`` codes of independent fair bits in ``{0, 1}^q``."""
        return torch.randint(0, 2, (n, self.bits), device=self.device).float()

    def batch_rows(self, index: Tensor) -> Tensor:
        """Rows of ``H`` of dataset indices ``index`` (the training split, sorted)."""
        rows = torch.searchsorted(self.train_index, index.to(self.train_index.device))
        rows = rows.clamp_max(len(self.train_index) - 1)
        if not bool((self.train_index[rows] == index).all()):
            raise ValueError(
                f"{type(self).__name__}: a training batch holds images outside the training split "
                "its codes H were learnt for; train on the DataModule's train loader"
            )
        return rows

    # -- the three phases of eq. 17 --------------------------------------------------------------
    def _step(self, key: str, loss: Tensor) -> None:
        opt = dict(zip(self.group_parameters(), self._optimizers(), strict=True))[key]
        self.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()
        self.zero_grad(set_to_none=True)

    def _optimizers(self) -> list:
        opts = self.optimizers()
        return list(opts) if isinstance(opts, list | tuple) else [opts]

    def critic_phase(self, real: Tensor, fake: Tensor, codes: Tensor, sim: Tensor) -> dict:
        """``D`` minimises ``eta L_D``; ``C`` minimises ``eta L_C`` (``sim``: ``(k, B)``, see
        :meth:`discriminator_loss`)."""
        out = self.discriminator_loss(real, fake, sim)
        self._step("D", self.eta * out["L_D"])
        if self.code_discriminator is not None:
            c = self.code_critic_loss(codes, self.sample_prior(len(codes)))
            self._step("C", self.eta * c["L_C"])
            out.update(c)
        return out

    def generator_phase(
        self,
        real: Tensor,
        labels: Tensor,
        rows: Tensor,
        noise: Tensor,
        prior: Tensor | None = None,
        fake: Tensor | None = None,
    ) -> dict:
        """``G`` and ``H`` minimise ``L_F + eta (L_G + L_H - E[C(H_B)])`` (eqs. 6, 10, 17); ``F``
        steps on the same backward pass (only ``L_F`` reaches ``F``).

        ``G`` is conditioned on ``[H_1..H_k, prior]`` (``k = B - len(prior)``): the Wasserstein
        term of eq. 10 takes all ``B`` synthetic images, its pair term and ``L_F`` the first ``k``.
        ``fake``: those synthetic images already made, with their graph to ``G`` and ``H``
        (:meth:`synthesize` with ``grad=True``, ``G`` and ``H`` not updated since); ``None``: made
        here.
        """
        codes = torch.sigmoid(self.code_logits[rows])
        m = 0 if prior is None else len(prior)
        k = len(codes) - m
        if fake is None:
            fake = self.generator(codes if not m else torch.cat([codes[:k], prior]), noise)
        s_fake, e_fake = self.discriminator(fake)
        with torch.no_grad():
            _, e_real = self.discriminator(real)
        sim = pairwise_similarity(labels)
        l_g = wasserstein_generator_loss(s_fake) + pair_bce(
            self.pair_logits(e_fake[:k], e_real), sim[:k]
        )
        l_h = code_reconstruction_loss(codes, codes, sim)
        h = self(torch.cat([(real + 1) / 2, (fake[:k] + 1) / 2]))
        out = self.hash_objective(h, torch.cat([labels, labels[:k]]))
        gan = l_g + l_h
        out.update(L_G=l_g, L_H=l_h)
        if self.code_discriminator is not None:
            adv = wasserstein_generator_loss(self.code_discriminator(codes))
            gan = gan + adv
            out["L_H_adv"] = adv
        total = out["L_F"] + self.eta * gan
        self.zero_grad(set_to_none=True)
        self.manual_backward(total)
        opts = dict(zip(self.group_parameters(), self._optimizers(), strict=True))
        for key in ("G", "H", "F"):
            opts[key].step()
        self.zero_grad(set_to_none=True)
        return out

    def encoder_phase(self, images: Tensor, labels: Tensor) -> dict:
        """``F`` minimises ``L_F`` on ``images`` (float in ``[0, 1]`` or ``uint8``)."""
        out = self.hash_objective(self(images), labels)
        self._step("F", out["L_F"])
        return out

    def synthesize(
        self, rows: Tensor, noise: Tensor, prior: Tensor | None, grad: bool = False
    ) -> tuple[Tensor, Tensor]:
        """``(H_rows, G([H_1..H_k, prior], noise))``: the batch's relaxed codes and its synthetic
        images (``k = len(rows) - len(prior)``). ``grad=False``: both without a graph. ``grad=True``:
        with the graph to ``G`` and ``H``, and ``G``'s batch norms' running statistics move as two
        forwards on this batch would (:func:`_as_forwards`): the images serve both the critic phase
        (detached) and :meth:`generator_phase`, which before made them in a second, identical
        forward (same codes, noise and ``G``; training-mode batch norm uses the batch's statistics).
        """
        with torch.set_grad_enabled(grad):
            codes = torch.sigmoid(self.code_logits[rows])
            cond = codes if prior is None else torch.cat([codes[: len(rows) - len(prior)], prior])
            with _as_forwards(self.generator, 2 if grad else 1):
                fake = self.generator(cond, noise)
        return codes, fake

    def training_step(self, batch: dict, batch_idx: int) -> None:
        images, labels = batch["image"], batch["label"].float()
        if not self.use_gan:
            logs = self.encoder_phase(images, labels)
        else:
            real = to_gan_range(images)
            rows = self.batch_rows(batch["index"])
            m = self.prior_count(len(real))
            k = len(real) - m
            sim = pairwise_similarity(labels[:k], labels)
            noise = torch.randn(len(real), self.noise_dim, device=self.device)
            prior = self.sample_prior(m) if m else None
            generator_batch = batch_idx % self.n_critic == 0
            codes, made = self.synthesize(rows, noise, prior, grad=generator_batch)
            fake = made.detach()
            logs = self.critic_phase(real, fake, codes.detach(), sim)
            if generator_batch:  # G, H and F on one backward pass
                logs.update(self.generator_phase(real, labels, rows, noise, prior, fake=made))
            else:
                both = torch.cat([(real + 1) / 2, (fake[:k] + 1) / 2])
                logs.update(self.encoder_phase(both, torch.cat([labels, labels[:k]])))
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in logs.items()},
            on_step=False,
            on_epoch=True,
            batch_size=len(labels),
        )

    def on_train_epoch_end(self) -> None:
        sched = self.lr_schedulers()
        if sched is not None:
            sched.step()


@contextmanager
def _as_forwards(module: nn.Module, times: int):
    """Inside, one training-mode forward of ``module`` moves each batch norm's running statistics
    as ``times`` forwards on the same batch would (the same batch statistics ``times`` times):
    momentum ``m`` becomes ``1 - (1 - m)^times`` (``momentum=None``, the cumulative average over
    ``n`` batches: ``times / (n + times)``) and ``num_batches_tracked`` grows by ``times``."""
    norms = [
        bn
        for bn in module.modules()
        if isinstance(bn, nn.modules.batchnorm._BatchNorm)
        and bn.training
        and bn.track_running_stats
        and bn.num_batches_tracked is not None
    ]
    if times == 1 or not norms:
        yield
        return
    saved = [bn.momentum for bn in norms]
    for bn in norms:
        n = int(bn.num_batches_tracked)
        bn.momentum = times / (n + times) if bn.momentum is None else 1 - (1 - bn.momentum) ** times
    before = [int(bn.num_batches_tracked) for bn in norms]
    try:
        yield
    finally:
        for bn, momentum, n in zip(norms, saved, before, strict=True):
            bn.momentum = momentum
            if int(bn.num_batches_tracked) > n:  # the forward ran
                bn.num_batches_tracked.add_(times - 1)


class PCWGAN(PCAEGAN):
    """PC-WGAN ablation (HashGAN, Cao, Liu, Long, Wang, CVPR 2018): PC-AEGAN without the code
    discriminator ``C``, with HashGAN's cosine cross-entropy and cosine quantisation by default.

    Same arguments as :class:`PCAEGAN` (``code_width`` is unused; ``prior_fraction`` defaults
    to 0, see the module docstring).
    """

    use_code_discriminator = False
    default_hash_loss = "cosine"
    default_prior_fraction = 0.0


class DCH(PCAEGAN):
    """Deep Cauchy Hashing (Cao, Long, Liu, Wang, CVPR 2018): stage 3 of PC-AEGAN alone, on real
    images only, no GAN: ``L_F = L_Fc + beta L_Fq`` (eqs. 1, 4, 13-16 of seed 003).

    Args:
        bits: code length ``K``.
        backbone: backbone name.
        pretrained: backbone weights.
        gamma: Cauchy scale ``gamma``.
        beta: quantisation weight ``beta``.
        optim: optimiser of ``F``.
        ties: tie rule of the reported metrics.
    """

    use_gan = False
    use_code_discriminator = False

    def __init__(
        self,
        bits: int = 32,
        backbone: str = "small_cnn",
        pretrained: bool | str = False,
        gamma: float = 20.0,
        beta: float = 0.1,
        optim: Optim = Optim(lr=2e-4, weight_decay=0.0, schedule="none"),
        ties: TieRule = DEFAULT_TIES,
    ) -> None:
        super().__init__(
            bits,
            backbone,
            pretrained,
            hash_loss="cauchy",
            gamma=gamma,
            beta=beta,
            optim=optim,
            ties=ties,
        )
