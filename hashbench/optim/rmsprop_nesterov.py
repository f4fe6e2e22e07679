"""RMSProp with Nesterov momentum, as written in seed 000 (eqs. 5-7).

Peng Yanfei, Wu Hong, Zi Lingling, "Image Retrieval Based on Hash Method and Generative Adversarial
Networks", *Laser & Optoelectronics Progress* 55(10): 101002, 2018, section 2.2 (METHODS.md, 1):

    interim point   chi~ = chi + alpha v             (the gradient g is taken at chi~)
    (5)             r   <- beta r + (1 - beta) g * g
    (6)             v   <- alpha v - delta / sqrt(r) * g
    (7)             chi <- chi + v

with ``r = 0`` and ``v = 0`` initially; paper values ``alpha = 0.9`` (momentum), ``beta = 0.0005``
(decay of the squared-gradient average: unusually small, so ``r`` is almost the last ``g * g`` and an
update is close to ``delta * sign(g)`` plus momentum), ``delta`` = the learning rate.

Resolved (this implementation):

- The gradient must be taken at the interim point ``chi~``, but ``torch.optim`` evaluates gradients
  at the parameters it holds. The parameters therefore hold the interim point: after a step they are
  set to ``chi~_{t+1} = chi_{t+1} + alpha v_{t+1}``, so the next backward pass gives ``g`` at
  ``chi~`` exactly. The committed point ``chi = p - alpha v`` is returned by :meth:`committed`.
  (This is the same trajectory as eqs. 5-7 with a look-ahead evaluation; nothing is approximated.)
- ``delta / sqrt(r)`` divides by zero where ``g`` has always been zero; the denominator is
  ``sqrt(r) + eps`` with ``eps = 1e-8`` (``eps = 0`` gives the paper's formula literally).
- No weight decay (the paper has none).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


class RMSPropNesterov(torch.optim.Optimizer):
    """RMSProp with Nesterov momentum (Peng, Wu, Zi, Laser Optoelectron. Prog. 2018, eqs. 5-7).

    See the module docstring for the update and what is interpretation.

    Args:
        params: parameters or parameter groups.
        lr: ``delta``, the global learning rate (> 0).
        alpha: ``alpha``, the momentum coefficient in ``[0, 1)`` (paper: 0.9).
        beta: ``beta``, the decay of the squared-gradient average in ``[0, 1)`` (paper: 0.0005).
        eps: added to ``sqrt(r)`` in the denominator (>= 0).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-4,
        alpha: float = 0.9,
        beta: float = 0.0005,
        eps: float = 1e-8,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"RMSPropNesterov: lr (delta) must be > 0, got {lr}")
        if not 0 <= alpha < 1:
            raise ValueError(f"RMSPropNesterov: alpha (momentum) must be in [0, 1), got {alpha}")
        if not 0 <= beta < 1:
            raise ValueError(f"RMSPropNesterov: beta (decay) must be in [0, 1), got {beta}")
        if not eps >= 0:
            raise ValueError(f"RMSPropNesterov: eps must be >= 0, got {eps}")
        super().__init__(params, {"lr": lr, "alpha": alpha, "beta": beta, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        """One update of eqs. 5-7; the parameters move to the next interim point ``chi~``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, alpha, beta, eps = group["lr"], group["alpha"], group["beta"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["r"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                r, v = state["r"], state["v"]
                r.mul_(beta).addcmul_(g, g, value=1 - beta)  # (5)
                v_old = v.clone()
                v.mul_(alpha).addcdiv_(g, r.sqrt().add_(eps), value=-lr)  # (6)
                # chi_{t+1} = chi_t + v (7), chi_t = p - alpha v_old; hold chi~_{t+1} = chi_{t+1} + alpha v
                p.add_(v, alpha=1 + alpha).sub_(v_old, alpha=alpha)
        return loss

    def committed(self, p: Tensor) -> Tensor:
        """The committed parameter ``chi = p - alpha v`` of ``p`` (``p`` itself before any step)."""
        state = self.state.get(p)
        if not state:
            return p.detach().clone()
        alpha = next(g["alpha"] for g in self.param_groups if any(q is p for q in g["params"]))
        return (p - alpha * state["v"]).detach()
