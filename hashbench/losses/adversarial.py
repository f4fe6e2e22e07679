"""Adversarial (Wasserstein GAN) objectives of the GAN hashing methods (``knngan``, ``pcaegan``).

A critic ``f`` scores samples; the Wasserstein GAN (Arjovsky, Chintala, Bottou, ICML 2017) trains
it to separate real from generated samples and the generator to raise the critic's score of its
samples:

- :func:`wasserstein_critic_loss`: ``E f(fake) - E f(real)``, minimised by the critic;
- :func:`wasserstein_generator_loss`: ``-E f(fake)``, minimised by the generator;
- :func:`gradient_penalty`: the WGAN-GP Lipschitz penalty ``E (||grad f(x^)||_2 - 1)^2``
  (Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville, NeurIPS 2017), weighted by the caller.

Pure functions of the critic's scores (or of the critic itself, for the penalty); the networks are
in :mod:`hashbench.models.gan`. Expectations are means over the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def wasserstein_critic_loss(f_real: Tensor, f_fake: Tensor) -> Tensor:
    """``E f(fake) - E f(real)``: the critic's Wasserstein objective (minimised).

    Arjovsky et al., ICML 2017; knngan eq. 15, pcaegan eqs. 7 and 11.

    Args:
        f_real: critic scores of real samples ``(n,)``.
        f_fake: critic scores of generated samples ``(m,)``.
    """
    return f_fake.mean() - f_real.mean()


def wasserstein_generator_loss(f_fake: Tensor) -> Tensor:
    """``-E f(fake)``: the generator's Wasserstein objective (minimised).

    knngan's ``L_A`` (eq. 14); the adversarial part of pcaegan's ``L_G`` (eq. 10) and of its codes'
    ``-E[C(H)]`` (eq. 17).

    Args:
        f_fake: critic scores of generated samples ``(m,)``.
    """
    return -f_fake.mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    alpha: Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP penalty ``mean_i (||grad_x f(x)|_{x = x^_i}||_2 - 1)^2`` on the interpolates
    ``x^_i = a_i real_i + (1 - a_i) fake_i``, ``a_i ~ U(0, 1)``.

    Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville, "Improved Training of Wasserstein GANs",
    NeurIPS 2017 (eq. 3; their weight ``lambda`` is applied by the caller). The gradient is taken
    with ``create_graph=True``, so the penalty is differentiable in the critic's parameters; ``real``
    and ``fake`` are detached (only ``x^`` gets a gradient). The norm is over all of a sample's
    elements. Used by knngan (critic ``f_phi``) and pcaegan (``D``, eq. 7; ``C``, eq. 11).

    Args:
        critic: callable ``(n, ...) -> (n,)`` scores.
        real: ``(n, ...)``.
        fake: ``(n, ...)``.
        alpha: ``(n,)`` mixing weights ``a``; drawn uniform in ``[0, 1)`` when omitted.
        generator: random generator of ``a`` (``None``: torch's global one).
    """
    n = real.shape[0]
    if alpha is None:
        alpha = torch.rand(n, device=real.device, dtype=real.dtype, generator=generator)
    a = alpha.view(n, *([1] * (real.dim() - 1)))
    x = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    with torch.enable_grad():
        scores = critic(x)
        (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return (grad.reshape(n, -1).norm(dim=1) - 1).pow(2).mean()
