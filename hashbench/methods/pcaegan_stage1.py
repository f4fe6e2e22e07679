"""Stage 1 of PC-AEGAN (seed 003, eq. 6): approximate codes ``H`` from the training labels.

``min_H ||S - (1/q) H H^T||_F^2`` with ``S_ij = 1`` when training images i and j share a label.
Resolved (METHODS.md section 3): ``H = sigmoid(U)``, minimised by Adam over row blocks ``I`` against
all rows, ``S[I, :]`` computed on the fly from the labels (never an ``n x n`` matrix), binarised at
0.5. Used by :meth:`hashbench.methods.pcaegan.PCAEGAN.on_fit_start` (``L_H`` of a batch is
:func:`code_reconstruction_loss` on its ``B x B`` block).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hashbench.losses.base import pairwise_similarity


def code_reconstruction_loss(h_rows: Tensor, h_cols: Tensor, sim: Tensor) -> Tensor:
    """``mean_ij (S_ij - (1/q) H_i H_j^T)^2`` over a ``rows x cols`` block (eq. 6, averaged)."""
    q = h_rows.shape[1]
    return (sim - h_rows @ h_cols.T / q).pow(2).mean()


def learn_approximate_codes(
    labels: Tensor,
    bits: int,
    epochs: int = 30,
    block: int = 512,
    lr: float = 0.1,
    seed: int = 0,
) -> Tensor:
    """Stage 1 (eq. 6): logits ``U`` ``(n, bits)`` with ``H = sigmoid(U)`` minimising
    ``||S - (1/q) H H^T||_F^2``; binary codes are ``1[sigmoid(U) >= 0.5]``.

    Each step takes a block ``I`` of (shuffled) rows, forms ``S[I, :]`` from the labels and minimises
    ``mean (S[I, :] - H_I H^T / q)^2`` with Adam: memory ``O(block x n)``, never ``n x n``.

    Args:
        labels: multi-hot ``(n, c)``.
        bits: ``q``.
        epochs: passes over the row blocks.
        block: rows per step.
        lr: Adam learning rate.
        seed: initialisation and shuffling seed.
    """
    if labels.ndim != 2 or labels.shape[0] < 1:
        raise ValueError(f"stage 1 needs multi-hot labels (n, c), got {tuple(labels.shape)}")
    if epochs < 0 or block < 1:
        raise ValueError(f"stage 1 needs epochs >= 0 and block >= 1, got {epochs}, {block}")
    gen = torch.Generator().manual_seed(seed)
    n = labels.shape[0]
    labels = labels.float()
    u = torch.randn(n, bits, generator=gen).to(labels.device).requires_grad_(True)
    opt = torch.optim.Adam([u], lr=lr)
    with torch.enable_grad():
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen).to(labels.device)
            for rows in perm.split(block):
                h = torch.sigmoid(u)
                sim = pairwise_similarity(labels[rows], labels)
                loss = code_reconstruction_loss(h[rows], h, sim)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return u.detach()
