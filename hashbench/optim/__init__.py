"""Optimisers used by the methods (beyond ``torch.optim``)."""

from hashbench.optim.rmsprop_nesterov import RMSPropNesterov

__all__ = ["RMSPropNesterov"]
