"""knngan diagnostics: how much each term of eq. 8 moves the hash layer (seed 000).

Peng, Wu, Zi, *Laser & Optoelectronics Progress* 55(10), 2018, eq. 8:
``L = L_N + lambda1 (L_MSE + L_per + L_H) + lambda2 L_A`` (the method:
:class:`hashbench.methods.knngan.KNNGAN`). The hash layer ``eta = W f + c`` receives the sum of the
terms' gradients. On one batch this module reports, for each term ``t`` with weight ``w_t``
(``w_N = 1``, ``w_H = w_MSE = w_per = lambda1``, ``w_A = lambda2``)::

    grad_<t> = || d(w_t L_t) / d(W, c) ||_2          (autograd, the L2 norm over W and c together)

and the share of the GAN-side terms (those that need the generator)::

    gan_share = || g_all - g_{L_N + lambda1 L_H} ||_2 / || g_all ||_2,   g_S = d(sum_{t in S} w_t L_t)/d(W, c)

A term whose ``grad_<t>`` is many orders of magnitude below ``grad_L_N`` cannot change the codes
(the issue #18 measurement: with ``L_N`` summed over 128 x 127 pairs the GAN terms were 9-10
orders below it).

Use: ``hashbench fit ... --trainer.callbacks+=hashbench.methods.knngan_diagnostics.GradientShares``
or ``--model.init_args.log_gradient_shares true``; logged once per epoch (first training batch, before
its update) as ``diag/grad_L_N``, ``diag/grad_L_H``, ``diag/grad_L_MSE``, ``diag/grad_L_per``,
``diag/grad_L_A`` and ``diag/gan_share``. The measurement leaves training unchanged: it forks the
random number generators (the noise ``z`` it draws is not taken from the training stream) and
restores every buffer (batch-norm statistics) afterwards.
"""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

TERMS = ("L_N", "L_H", "L_MSE", "L_per", "L_A")
BASE_TERMS = ("L_N", "L_H")  # the terms the no-GAN ablation keeps


def term_gradients(model, images: Tensor, index: Tensor) -> dict[str, Tensor]:
    """Flattened gradient ``d(w_t L_t) / d(W, c)`` on the hash layer of each term present.

    Args:
        model: a :class:`~hashbench.methods.knngan.KNNGAN` with its neighbourhood set.
        images: a training batch (``uint8`` or floats in ``[0, 1]``).
        index: the batch items' dataset indices (training items).
    """
    real = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    r = model(images)
    weighted = model.weighted_terms(model.loss_terms(r, model.positions(index), real))
    params = list(model.hash_head.parameters())
    out = {}
    for name, value in weighted.items():
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        flat = [
            (torch.zeros_like(p) if g is None else g).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
        out[name] = torch.cat(flat).detach()
    return out


def gradient_shares(model, batch: dict) -> dict[str, float]:
    """``grad_<term>`` for each term of eq. 8 present and ``gan_share`` on ``batch`` (see module).

    Side-effect free: the random generators are forked and the model's buffers restored.
    """
    devices = [model.device] if model.device.type == "cuda" else []
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    try:
        with torch.random.fork_rng(devices=devices), torch.enable_grad():
            grads = term_gradients(model, batch["image"], batch["index"])
    finally:
        with torch.no_grad():
            for n, b in model.named_buffers():
                b.copy_(buffers[n])
    out = {f"grad_{k}": float(v.norm()) for k, v in grads.items()}
    g_all = sum(grads.values())
    g_base = sum(v for k, v in grads.items() if k in BASE_TERMS)
    norm = float(g_all.norm())
    out["gan_share"] = float((g_all - g_base).norm()) / norm if norm > 0 else 0.0
    return out


class GradientShares(Callback):
    """Logs each eq. 8 term's weighted gradient norm on the hash layer once per epoch.

    Computed on the first training batch of every ``every_n_epochs``-th epoch, before its update;
    logged as ``diag/grad_<term>`` and ``diag/gan_share`` and kept in :attr:`history` (one dict per
    measurement, with its ``epoch``).

    Args:
        every_n_epochs: measure every this many epochs (>= 1).
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"GradientShares: every_n_epochs must be >= 1, got {every_n_epochs}")
        self.every_n_epochs = int(every_n_epochs)
        self.history: list[dict[str, float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if batch_idx != 0 or trainer.current_epoch % self.every_n_epochs:
            return
        if not hasattr(pl_module, "weighted_terms"):
            raise TypeError(
                f"GradientShares works with knngan models, not {type(pl_module).__name__}"
            )
        values = gradient_shares(pl_module, batch)
        self.history.append({"epoch": trainer.current_epoch, **values})
        pl_module.log_dict(
            {f"diag/{k}": v for k, v in values.items()},
            on_step=False,
            on_epoch=True,
            batch_size=batch["image"].shape[0],
        )
