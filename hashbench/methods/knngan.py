"""knngan: unsupervised hashing with a KNN similarity structure and a Wasserstein GAN (seed 000).

Peng Yanfei, Wu Hong, Zi Lingling, "Image Retrieval Based on Hash Method and Generative Adversarial
Networks" (基于哈希算法及生成对抗网络的图像检索), *Laser & Optoelectronics Progress* 55(10): 101002,
2018, DOI 10.3788/LOP55.101002 (``shared/seeds/000_b9109fe9d42fefd9.txt``; METHODS.md section 1).

Encoder (eq. 1): backbone -> hash layer ``eta`` (``q`` outputs) -> ``R = tanh(eps * eta)``; binary
code ``b = 1[R >= 0]``, as ``+-1`` inside the losses.

Neighbourhood (eqs. 2-4, no labels): ``M[i, j] = +1`` if ``x_j`` is a ``K1``-NN of ``x_i`` or a
``K1``-NN of one of ``x_i``'s ``K2``-NNs (cosine similarity of fixed features ``x`` of the training
images), else ``-1``; Faiss k-NN, stored sparse (:mod:`hashbench.losses.knn`), looked up per batch.

Generator ``G(b, z)`` (``z in {-1, +1}^d``, Bernoulli 0.5) -> reconstruction ``I^R``; critic
``f_phi``; Wasserstein objective (eqs. 14-15): the critic minimises ``E f(fake) - E f(real)``, the
generator ``L_A = -E f(fake)``. Networks: :class:`hashbench.models.gan.TransposedConvGenerator`,
:class:`hashbench.models.gan.ConvCritic`; adversarial terms and gradient penalty:
:mod:`hashbench.losses.adversarial`; ``L_MSE``, ``L_per``, ``L_H``: :mod:`hashbench.methods.knngan_terms`;
reconstruction grids and secondary screening: :mod:`hashbench.methods.knngan_eval`.

Loss (eq. 8): ``L = L_N + lambda1 (L_MSE + L_per + L_H) + lambda2 L_A`` with

- ``L_N = 1/2 sum_{i != j in batch} ((1/q) R_i^T R_j - M_ij)^2``  (eq. 9, relaxed ``h = R``),
  divided by the ``B(B-1)`` ordered pairs by default (``pair_reduction``);
- ``L_MSE = 1/(CWH) sum (I - I^R)^2``  (eq. 10);
- ``L_per = 1/|theta| sum (theta(I) - theta(I^R))^2``, ``theta`` = last conv layer of a frozen
  network (eq. 11);
- ``L_H = 1/2 ||b - R||^2``  (eq. 12), divided by ``q`` by default (``quantization_reduction``);

and the GAN's parameters trained with RMSProp + Nesterov momentum (eqs. 5-7,
:class:`hashbench.optim.RMSPropNesterov`).

Interpretation / Resolved (also in ``docs/methods/knngan.md``):

- Features for ``M``: the paper uses VGG-19 FC7 features of the images. Here ``knn_features`` names
  any :class:`~hashbench.models.features.FeatureCache` source: the shipped configs use
  ``efficientnet_lite0`` with ImageNet weights (closest to the paper; 0.05-0.14 mAP better
  than pixels in a test-set figure, so re-chosen by ``hashbench tune`` on validation), the constructor's default and ``make bench``'s CPU profile use ``pixels`` (free, the
  baselines' input). They are fixed, computed once on the ``train`` split in ``setup``; no labels.
- Reductions (issue #18): every term is a mean per element, so the lambdas weigh terms of one
  scale, as eq. 8 reads: ``L_N`` averages eq. 9 over the ordered pairs ``i != j`` of the batch
  (``pair_reduction: sum`` = eq. 9 literally, ``B(B-1)`` = 16,256 times larger at batch 128);
  ``L_H`` averages over bits and images (``quantization_reduction: sum`` = eq. 12 literally, ``q``
  times larger); ``L_MSE``/``L_per`` average over pixels/feature elements and images (eqs. 10-11).
- ``lambda1 = 0.3``, ``lambda2 = 0.1`` (the paper gives none): chosen by gradient shares at
  initialisation; to be confirmed with hashbench tune (docs/protocol.md). On a fresh 32-bit model,
  batch 128 of Fashion-MNIST, the weighted gradient norms on the hash layer
  (:mod:`hashbench.methods.knngan_diagnostics`) are then ``L_N`` 0.15, ``lambda1 L_H`` 0.15,
  ``lambda1 L_MSE`` 7.3e-4, ``lambda1 L_per`` 1.3e-3, ``lambda2 L_A`` 9.6e-4: the GAN/content terms
  at 1/100-1/200 of ``L_N``. ``lambda1`` also weighs ``L_H``, whose gradient is 200 times
  ``L_MSE``'s: ``lambda1 = 1`` (``L_MSE`` at 1/60 of ``L_N``, ``L_H`` 3.4 times ``L_N``) collapsed
  the codes within one epoch (8 distinct codes among 1,000 training images, val/mAP 0.14 against
  0.24 at 0.3; docs/methods/knngan.md). On the generator ``lambda2 L_A`` (0.07) stays below
  ``lambda1 L_MSE`` (0.10) at initialisation. The earlier defaults (``L_N``, ``L_H`` summed,
  ``lambda1 = 0.01``, ``lambda2 = 1e-4``) gave ``L_N`` 2.4e3 against 2.5e-5 to 9e-7 for the GAN
  terms: the GAN could not change the codes.
- Ablation ``gan: false`` (``knngan_nogan``): no generator, critic or ``theta``, so no ``L_MSE``,
  ``L_per``, ``L_A``; ``L_N`` and ``lambda1 L_H`` are kept, so it isolates the GAN.
- With ``augment: none`` (``cache_perceptual``), ``theta(I)`` of each training item is computed
  once and kept in memory (``theta`` is frozen and the image never changes); ``theta(I^R)`` is
  computed every step.
- The generator sees the binary code ``b`` with a straight-through gradient
  (``b + R - stop_grad(R)``), so the GAN terms reach the encoder (``straight_through: false``
  feeds ``b`` without gradient: the GAN then cannot change the codes).
- Lipschitz constraint of the critic: gradient penalty (weight 10) by default, weight clipping as
  an option (the paper states only a Lipschitz constant).
- One critic update per batch (``critic_steps``), then one encoder + generator update on eq. 8.
  Both use the batch's one reconstruction ``I^R = G(b, z)`` (one draw of ``z``; the critic's
  updates see it detached); WGAN's Algorithm 1 draws fresh noise for the generator update, the
  same in distribution, one generator forward more per step.
  The encoder uses the project's ``optim`` (Adam by default); the generator and critic use
  ``gan_optim`` (``rmsprop_nesterov``, the paper's eqs. 5-7, by default).
- Perceptual network ``theta``: frozen ``efficientnet_lite0`` with ImageNet weights (the paper: VGG)
  at ``perceptual_size`` pixels (32 by default: CPU-affordable), features of its last conv layer.
  Its eval-mode batch norms are folded into the convolutions
  (:func:`~hashbench.methods.knngan_terms.fold_efficientnet_batch_norms`): the same function, about
  4x cheaper forward + backward on CPU.
- ``eps`` may grow each epoch: ``eps_e = eps * eps_anneal ** epoch`` (``eps_anneal = 1``: fixed).
- The validation mAP (labels) is used only to pick the checkpoint, as for every method.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from hashbench.losses.adversarial import (
    gradient_penalty,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from hashbench.losses.base import binary_codes
from hashbench.losses.knn import KNNGraphLoss, KNNNeighbourhood, knn_neighbourhood
from hashbench.methods.base import HashingMethod, NonFiniteLossError, Optim
from hashbench.methods.knngan_eval import ReconstructionGrids, SecondaryScreening
from hashbench.methods.knngan_terms import (
    PerceptualFeatures,
    perceptual_loss,
    pixel_mse,
    quantization_loss,
    straight_through,
)
from hashbench.models.gan import ConvCritic, TransposedConvGenerator
from hashbench.retrieval.evaluation import DEFAULT_TIES, TieRule

GanOptim = Literal["rmsprop_nesterov", "adam"]
# chosen on held-out val/mAP with hashbench tune (docs/tune/fashion-mnist/knngan_small/tune.md)
LAMBDA1 = 0.003
LAMBDA2 = 0.001
Lipschitz = Literal["gradient_penalty", "clip"]


# -- the method ----------------------------------------------------------------------------------------
class KNNGAN(ReconstructionGrids, SecondaryScreening, HashingMethod):
    """Unsupervised hashing with a KNN neighbourhood and a WGAN (Peng, Wu, Zi, LOP 2018).

    See the module docstring for the formulas and every interpretation.

    Args:
        bits: code length ``q``.
        backbone: encoder backbone.
        pretrained: encoder backbone weights.
        eps: ``eps`` of ``R = tanh(eps * eta)`` (> 0).
        eps_anneal: per-epoch factor on ``eps`` (>= 1; 1 = fixed).
        k1: ``K1``.
        k2: ``K2``.
        knn_features: fixed features ``M`` is built from: ``pixels`` or a backbone name.
        knn_pretrained: weights of that backbone.
        pair_reduction: ``mean`` (over the ordered pairs ``i != j``) or ``sum`` (eq. 9) for ``L_N``.
        quantization_reduction: ``mean`` (over bits) or ``sum`` (eq. 12) for ``L_H``.
        lambda1: weight of ``L_C = L_MSE + L_per + L_H`` (chosen by gradient shares at
            initialisation; to be confirmed with hashbench tune, docs/protocol.md).
        lambda2: weight of ``L_A`` (chosen likewise).
        gan: build the generator, critic and ``theta`` (``False``: the ablation without ``L_MSE``,
            ``L_per``, ``L_A``; ``L_N`` and ``L_H`` unchanged).
        noise_dim: ``d``, length of the binary noise ``z``.
        gan_width: channel width of the generator and critic.
        perceptual_backbone: ``theta``'s network, or ``none`` to drop ``L_per``.
        perceptual_pretrained: its weights.
        perceptual_size: its input side (``None`` = native).
        lipschitz: ``gradient_penalty`` or ``clip``.
        gp_weight: gradient penalty weight.
        clip_value: weight clipping bound of the critic (``clip``).
        critic_steps: critic updates per batch.
        straight_through: pass the encoder's gradient through ``b`` into the generator.
        gan_optim: ``rmsprop_nesterov`` (eqs. 5-7) or ``adam`` for the generator and critic.
        gan_lr: their learning rate (``delta``).
        nesterov_alpha: ``alpha`` of eqs. 5-7.
        nesterov_beta: ``beta`` of eqs. 5-7.
        rerank: secondary screening: shortlist length re-ranked by cosine of ``R`` at test time
            (``0`` = off); logged as ``test/rerank_mAP@<k>``.
        grid_size: images in the per-validation-epoch reconstruction grid (``0`` = none).
        image_shape: ``(C, H, W)`` of the images; ``None`` = from the DataModule.
        cache_perceptual: with ``augment: none``, compute ``theta(I)`` once per training item.
        log_gradient_shares: add :class:`~hashbench.methods.knngan_diagnostics.GradientShares`
            (``diag/grad_<term>`` once per epoch).
        optim: encoder optimiser settings.
        ties: tie rule of the reported metrics.
    """

    activation = "tanh"

    def __init__(
        self,
        bits: int = 32,
        backbone: str = "small_cnn",
        pretrained: bool | str = False,
        eps: float = 1.0,
        eps_anneal: float = 1.0,
        k1: int = 20,
        k2: int = 5,
        knn_features: str = "pixels",
        knn_pretrained: bool | str = False,
        pair_reduction: Literal["mean", "sum"] = "mean",
        quantization_reduction: Literal["mean", "sum"] = "mean",
        lambda1: float = LAMBDA1,
        lambda2: float = LAMBDA2,
        gan: bool = True,
        noise_dim: int = 32,
        gan_width: int = 32,
        perceptual_backbone: str = "efficientnet_lite0",
        perceptual_pretrained: bool | str = True,
        perceptual_size: int | None = 32,
        lipschitz: Lipschitz = "gradient_penalty",
        gp_weight: float = 10.0,
        clip_value: float = 0.01,
        critic_steps: int = 1,
        straight_through: bool = True,
        gan_optim: GanOptim = "rmsprop_nesterov",
        gan_lr: float = 5e-5,
        nesterov_alpha: float = 0.9,
        nesterov_beta: float = 0.0005,
        rerank: int = 0,
        grid_size: int = 16,
        image_shape: tuple[int, int, int] | None = None,
        cache_perceptual: bool = True,
        log_gradient_shares: bool = False,
        optim: Optim = Optim(),
        ties: TieRule = DEFAULT_TIES,
    ) -> None:
        _check_args(locals())
        super().__init__(bits, backbone, pretrained, optim, ties)
        self.automatic_optimization = False
        self.eps, self.eps_anneal = float(eps), float(eps_anneal)
        self.register_buffer("eps_current", torch.tensor(float(eps)))
        self.knn_loss = KNNGraphLoss(k1, k2, pair_reduction)
        self.knn_features, self.knn_pretrained = knn_features, knn_pretrained
        self.quantization_reduction = quantization_reduction
        self.lambda1, self.lambda2, self.gan = float(lambda1), float(lambda2), bool(gan)
        self.cache_perceptual, self.log_gradient_shares = cache_perceptual, log_gradient_shares
        self._theta_cache: tuple[Tensor, Tensor] | None = None  # (values, filled) by M's row
        self._theta_cache_on = False  # set in setup: only with a DataModule and augment "none"
        self.noise_dim, self.gan_width = int(noise_dim), int(gan_width)
        self.perceptual_args = (perceptual_backbone, perceptual_pretrained, perceptual_size)
        self.lipschitz, self.gp_weight, self.clip_value = lipschitz, gp_weight, clip_value
        self.critic_steps, self.straight_through = int(critic_steps), straight_through
        self.gan_optim, self.gan_lr = gan_optim, float(gan_lr)
        self.nesterov = (float(nesterov_alpha), float(nesterov_beta))
        self.rerank, self.grid_size = int(rerank), int(grid_size)
        self.generator: TransposedConvGenerator | None = None
        self.critic: ConvCritic | None = None
        self._perceptual: list[PerceptualFeatures] = []  # frozen, kept out of the state_dict
        self.register_buffer("train_index", torch.zeros(0, dtype=torch.int64), persistent=False)
        self._grid: Tensor | None = None
        self._real_codes: dict[str, list] = {}
        if image_shape is not None:
            self._build_gan(tuple(int(s) for s in image_shape))

    # -- construction -------------------------------------------------------------------------------
    @property
    def uses_generator(self) -> bool:
        return self.gan and (self.lambda1 > 0 or self.lambda2 > 0)

    @property
    def uses_critic(self) -> bool:
        return self.gan and self.lambda2 > 0

    def _build_gan(self, shape: tuple[int, int, int]) -> None:
        if len(shape) != 3 or shape[0] not in (1, 3) or min(shape[1:]) < 8:
            raise ValueError(f"knngan: image_shape must be (C in 1/3, H >= 8, W >= 8), got {shape}")
        self.hparams["image_shape"] = list(shape)
        if self.uses_generator and self.generator is None:
            self.generator = TransposedConvGenerator(
                self.bits, self.noise_dim, shape, self.gan_width
            )
        if self.uses_critic and self.critic is None:
            self.critic = ConvCritic(shape, self.gan_width)
        if self.generator is not None:
            self.generator.to(self.device)
        if self.critic is not None:
            self.critic.to(self.device)

    def setup(self, stage: str) -> None:
        """Build the GAN nets from the data's image shape; on ``fit``, build ``M`` (no labels)."""
        dm = self._datamodule()
        if self.uses_generator and self.generator is None:
            if dm is None:
                raise ValueError("knngan: pass image_shape or train with a HashDataModule")
            self._build_gan(_image_shape(dm))
        if stage == "fit" and dm is not None:
            self.build_neighbourhood_from(dm)
            self.configure_perceptual_cache(getattr(dm, "augment", None))
        if stage == "fit":
            _ = self.perceptual  # build theta now: its initialisation draws random numbers

    def configure_perceptual_cache(self, augment: str | None) -> bool:
        """Cache ``theta(I)`` of the training items when their images never change
        (``augment == "none"``) and ``cache_perceptual``; returns whether it is on."""
        self._theta_cache_on = bool(self.cache_perceptual and augment == "none")
        self._theta_cache = None
        return self._theta_cache_on

    def build_neighbourhood_from(self, dm) -> None:
        """``M`` from the ``train`` split's ``knn_features`` (FeatureCache; labels never read)."""
        from hashbench.models.features import FeatureCache

        idx = np.sort(np.asarray(dm.split["train"], dtype=np.int64))
        feats = FeatureCache(dm, self.knn_features, self.knn_pretrained).get(idx)
        self.set_neighbourhood(knn_neighbourhood(feats, self.knn_loss.k1, self.knn_loss.k2), idx)

    def set_neighbourhood(self, neighbourhood: KNNNeighbourhood, train_index) -> None:
        """Use ``neighbourhood`` over the items ``train_index`` (dataset positions, in its order)."""
        idx = torch.as_tensor(np.asarray(train_index), dtype=torch.int64)
        if idx.numel() != neighbourhood.num_items:
            raise ValueError(
                f"knngan: {idx.numel()} training indices for a neighbourhood of "
                f"{neighbourhood.num_items} items"
            )
        if idx.numel() > 1 and not bool((idx[1:] > idx[:-1]).all()):
            raise ValueError("knngan: train_index must be strictly increasing (sorted, unique)")
        self.train_index = idx.to(self.device)
        self.knn_loss.set_neighbourhood(neighbourhood)
        self._theta_cache = None  # rows of M changed

    def positions(self, index: Tensor) -> Tensor:
        """Rows of ``M`` of the dataset items ``index`` (they must be training items)."""
        if self.train_index.numel() == 0:
            raise RuntimeError(
                "knngan: no neighbourhood; fit with a HashDataModule or call set_neighbourhood"
            )
        index = index.to(self.train_index.device)
        pos = torch.searchsorted(self.train_index, index).clamp_max(self.train_index.numel() - 1)
        if not bool((self.train_index[pos] == index).all()):
            raise ValueError("knngan: a training batch holds items outside the train split")
        return pos

    @property
    def perceptual(self) -> PerceptualFeatures | None:
        name, pretrained, size = self.perceptual_args
        if name == "none" or self.lambda1 == 0 or not self.gan:
            return None
        if not self._perceptual:
            self._perceptual.append(PerceptualFeatures(name, pretrained, size))
        return self._perceptual[0].to(self.device)

    # -- encoder ------------------------------------------------------------------------------------
    def forward(self, images: Tensor) -> Tensor:
        """``R = tanh(eps * eta)`` ``(B, q)`` (eq. 1)."""
        eta = self.hash_head.pre_activation(self.features(images))
        return torch.tanh(self.eps_current * eta)

    # -- optimisers ----------------------------------------------------------------------------------
    def _gan_optimizer(self, params) -> torch.optim.Optimizer:
        if self.gan_optim == "adam":
            return torch.optim.Adam(params, lr=self.gan_lr, betas=(0.5, 0.9))
        from hashbench.optim import RMSPropNesterov

        alpha, beta = self.nesterov
        return RMSPropNesterov(params, lr=self.gan_lr, alpha=alpha, beta=beta)

    def _encoder_groups(self) -> list[dict]:
        gan = {
            id(p) for m in (self.generator, self.critic) if m is not None for p in m.parameters()
        }
        groups = []
        for g in self.parameter_groups():
            params = [p for p in g["params"] if id(p) not in gan]
            if params:
                groups.append({**g, "params": params})
        return groups

    def configure_optimizers(self):
        encoder = self.make_optimizer(self._encoder_groups())
        opts = [encoder]
        if self.generator is not None:
            opts.append(self._gan_optimizer(self.generator.parameters()))
        if self.critic is not None:
            opts.append(self._gan_optimizer(self.critic.parameters()))
        epochs = max(1, self.trainer.max_epochs or 1) if self._trainer else 1
        if self.optim.schedule == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(encoder, T_max=epochs)
        elif self.optim.schedule == "step":
            sched = torch.optim.lr_scheduler.StepLR(encoder, step_size=max(1, 2 * epochs // 3))
        else:
            return opts
        return opts, [sched]

    def _optimizers(self):
        opts = self.optimizers()
        opts = list(opts) if isinstance(opts, list | tuple) else [opts]
        enc = opts.pop(0)
        gen = opts.pop(0) if self.generator is not None else None
        crit = opts.pop(0) if self.critic is not None else None
        return enc, gen, crit

    # -- training -------------------------------------------------------------------------------------
    def _check_finite(self, name: str, loss: Tensor) -> None:
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(
                f"knngan: the {name} loss became {loss.item()} at epoch {self.current_epoch}, "
                f"step {self.global_step}; training stopped before the update (no checkpoint was "
                "written from this state). Lower --model.init_args.optim.lr or "
                "--model.init_args.gan_lr, or check the input data."
            )

    def noise(self, n: int) -> Tensor:
        """Binary noise ``z in {-1, +1}^(n, d)``, Bernoulli(0.5)."""
        return (
            torch.randint(0, 2, (n, self.noise_dim), device=self.device).to(torch.float32) * 2 - 1
        )

    def _critic_step(self, opt, real: Tensor, fake: Tensor) -> Tensor:
        f_real, f_fake = self.critic(real), self.critic(fake.detach())
        loss = wasserstein_critic_loss(f_real, f_fake)
        if self.lipschitz == "gradient_penalty":
            loss = loss + self.gp_weight * gradient_penalty(self.critic, real, fake)
        self._check_finite("critic", loss)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()
        if self.lipschitz == "clip":
            with torch.no_grad():
                for p in self.critic.parameters():
                    p.clamp_(-self.clip_value, self.clip_value)
        return loss.detach()

    def reconstruct_codes(self, r: Tensor) -> Tensor:
        """``I^R = G(b, z)`` for the relaxed codes ``r`` (``b`` with a straight-through gradient
        unless ``straight_through: false``) and fresh binary noise ``z``."""
        code = straight_through(r) if self.straight_through else binary_codes(r)
        return self.generator(code, self.noise(r.shape[0]))

    def loss_terms(
        self,
        r: Tensor,
        positions: Tensor,
        real: Tensor | None = None,
        fake: Tensor | None = None,
    ) -> dict:
        """Eq. 8's terms for a batch (``real`` images in ``[0, 1]``); ``loss`` is their weighted sum.

        Keys: ``neighbourhood`` (``L_N``), ``quantization`` (``L_H``, when ``lambda1 > 0``), and with
        the GAN (``gan`` and a positive weight) ``fake``, ``mse``, ``perceptual``, ``adversarial``.
        ``fake`` = ``reconstruct_codes(r)`` (with its graph) when given, else it is drawn here.
        """
        terms = {"neighbourhood": self.knn_loss(h=r, index=positions)}
        if self.lambda1 > 0:
            terms["quantization"] = quantization_loss(r, self.quantization_reduction)
        if self.uses_generator:
            fake = self.reconstruct_codes(r) if fake is None else fake
            terms["fake"] = fake
            if self.lambda1 > 0:
                terms["mse"] = pixel_mse(real, fake)
                theta = self.perceptual
                if theta is not None:
                    target = self.perceptual_target(theta, real, positions)
                    terms["perceptual"] = perceptual_loss(theta, real, fake, target)
            if self.uses_critic:
                # the critic's own parameters get no gradient from eq. 8 (it is not updated on it:
                # its next step starts from zeroed gradients), so autograd skips their weight grads
                with _frozen(self.critic):
                    terms["adversarial"] = wasserstein_generator_loss(self.critic(fake))
        terms["loss"] = sum(self.weighted_terms(terms).values())
        return terms

    def weighted_terms(self, terms: dict) -> dict[str, Tensor]:
        """The summands of eq. 8 present in ``terms``: ``L_N``, ``lambda1 L_H``, ``lambda1 L_MSE``,
        ``lambda1 L_per``, ``lambda2 L_A`` (keys ``L_N``, ``L_H``, ``L_MSE``, ``L_per``, ``L_A``)."""
        out = {"L_N": terms["neighbourhood"]}
        for key, name, weight in (
            ("quantization", "L_H", self.lambda1),
            ("mse", "L_MSE", self.lambda1),
            ("perceptual", "L_per", self.lambda1),
            ("adversarial", "L_A", self.lambda2),
        ):
            if key in terms:
                out[name] = weight * terms[key]
        return out

    @torch.no_grad()
    def perceptual_target(self, theta, real: Tensor, positions: Tensor | None = None) -> Tensor:
        """``theta(I)`` of a training batch; cached per item (row of ``M``) when the cache is on.

        The cache holds ``n_train x |theta(I)|`` floats on the model's device (5,000 x 1,280 at the
        default ``perceptual_size = 32``: 26 MB). It is on only when ``setup`` saw ``augment:
        none``, so an item's image, and so ``theta(I)``, is the same every epoch.
        """
        if not self._theta_cache_on or positions is None:
            return theta(real)
        if self._theta_cache is None:
            first = theta(real[:1])
            n = self.train_index.numel()
            values = first.new_zeros((n, *first.shape[1:]))
            self._theta_cache = (values, torch.zeros(n, dtype=torch.bool, device=first.device))
        values, filled = self._theta_cache
        todo = ~filled[positions]
        if bool(todo.any()):
            values[positions[todo]] = theta(real[todo])
            filled[positions[todo]] = True
        return values[positions]

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        enc, gen, crit = self._optimizers()
        images = batch["image"]
        real = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        positions = self.positions(batch["index"])
        r = self(images)
        logs = {}
        # one reconstruction per batch: the critic's updates see it detached, eq. 8 with its graph
        # (the generator's parameters do not change in between, so both see the same G(b, z))
        fake = self.reconstruct_codes(r) if self.uses_generator else None
        if crit is not None:
            for _ in range(self.critic_steps):
                logs["critic"] = self._critic_step(crit, real, fake.detach())
        terms = self.loss_terms(r, positions, real, fake)
        loss = terms["loss"]
        self._check_finite("training", loss)
        for opt in (enc, gen):
            if opt is not None:
                opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        for opt in (enc, gen):
            if opt is not None:
                opt.step()
        logs.update({k: v.detach() for k, v in terms.items() if k != "fake"})
        self.log_dict(
            {f"train/{k}": v for k, v in logs.items()},
            on_step=False,
            on_epoch=True,
            batch_size=images.shape[0],
        )
        return loss.detach()

    def configure_callbacks(self):
        callbacks = list(super().configure_callbacks())
        if self.log_gradient_shares:
            from hashbench.methods.knngan_diagnostics import GradientShares

            callbacks.append(GradientShares())
        return callbacks

    def on_train_epoch_start(self) -> None:
        self.eps_current.fill_(self.eps * self.eps_anneal**self.current_epoch)

    def on_train_epoch_end(self) -> None:
        sched = self.lr_schedulers()
        if sched is not None:
            sched.step()


@contextmanager
def _frozen(module: torch.nn.Module):
    """Build the graph with ``module``'s parameters not requiring gradients (restored after):
    gradients still flow through it to its input."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p in params:
            p.requires_grad_(True)


def _image_shape(dm) -> tuple[int, int, int]:
    images = dm.arrays.images
    if isinstance(images, np.ndarray):
        return tuple(int(s) for s in images.shape[1:])
    size = getattr(dm, "image_size", None) or 224
    return (3, int(size), int(size))


def _check_args(a: dict) -> None:
    """Clear errors for bad hyper-parameters (each names the argument and the fix)."""
    checks = [
        (a["eps"] > 0 and math.isfinite(a["eps"]), "eps must be a finite number > 0"),
        (a["eps_anneal"] >= 1, "eps_anneal must be >= 1 (eps is annealed upwards)"),
        (a["lambda1"] >= 0 and math.isfinite(a["lambda1"]), "lambda1 must be a finite number >= 0"),
        (a["lambda2"] >= 0 and math.isfinite(a["lambda2"]), "lambda2 must be a finite number >= 0"),
        (a["noise_dim"] >= 1, "noise_dim must be >= 1"),
        (a["gan_width"] >= 1, "gan_width must be >= 1"),
        (a["gp_weight"] >= 0, "gp_weight must be >= 0"),
        (a["clip_value"] > 0, "clip_value must be > 0"),
        (a["critic_steps"] >= 1, "critic_steps must be >= 1"),
        (a["gan_lr"] > 0, "gan_lr must be > 0"),
        (0 <= a["nesterov_alpha"] < 1, "nesterov_alpha must be in [0, 1)"),
        (0 <= a["nesterov_beta"] < 1, "nesterov_beta must be in [0, 1)"),
        (a["rerank"] >= 0, "rerank (shortlist length) must be >= 0; 0 turns it off"),
        (a["grid_size"] >= 0, "grid_size must be >= 0"),
        (a["k1"] >= 1 and a["k2"] >= 0, "need k1 >= 1 and k2 >= 0"),
        (a["k2"] <= a["k1"], f"k2 ({a['k2']}) must be <= k1 ({a['k1']}) (eqs. 2-4)"),
        (a["pair_reduction"] in ("mean", "sum"), "pair_reduction must be 'mean' or 'sum'"),
        (
            a["quantization_reduction"] in ("mean", "sum"),
            "quantization_reduction must be 'mean' or 'sum'",
        ),
        (a["lipschitz"] in ("gradient_penalty", "clip"), "lipschitz: 'gradient_penalty' or 'clip'"),
        (a["gan_optim"] in ("rmsprop_nesterov", "adam"), "gan_optim: 'rmsprop_nesterov' or 'adam'"),
    ]
    from hashbench.models.backbones import BACKBONES

    checks += [
        (
            a["knn_features"] in ("pixels", *BACKBONES),
            f"knn_features must be 'pixels' or one of {', '.join(BACKBONES)}",
        ),
        (
            a["perceptual_backbone"] in ("none", *BACKBONES),
            f"perceptual_backbone must be 'none' or one of {', '.join(BACKBONES)}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"knngan: {message} (check configs/methods/knngan.yaml)")
