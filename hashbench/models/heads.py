"""Hash heads: the layer between backbone features and the ``b`` code units."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Activation = Literal["identity", "tanh", "sigmoid"]


class HashHead(nn.Module):
    """``h = act(W f + c)`` with ``b`` outputs; bits are ``1[h >= threshold]``.

    The threshold is 0 for ``identity``/``tanh`` and 0.5 for ``sigmoid`` (PROTOCOL.md, "Codes").

    Args:
        in_features: backbone feature width.
        bits: code length.
        activation: relaxation applied to the linear outputs.
        scale: multiplier inside the activation (``tanh(scale * x)``; the ``eps`` of seed 000 eq. 1).
    """

    def __init__(
        self, in_features: int, bits: int, activation: Activation = "tanh", scale: float = 1.0
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, bits)
        self.activation = activation
        self.scale = scale

    @property
    def threshold(self) -> float:
        return 0.5 if self.activation == "sigmoid" else 0.0

    def pre_activation(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.linear(features)
        if self.activation == "tanh":
            return torch.tanh(self.scale * x)
        if self.activation == "sigmoid":
            return torch.sigmoid(self.scale * x)
        return x
