"""Per-class sample grids of PC-AEGAN (seed 003): one PNG per validation epoch.

<log dir>/samples/epochNNN.png: row ``c`` holds ``G(c, z)`` conditioned on the binary stage-1 codes
of the first ``samples_per_class`` training images of class ``c`` (a fixed noise, seeded by
``seed``). Mixed into :class:`hashbench.methods.pcaegan.PCAEGAN`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from hashbench.models.gan import save_image_grid


class SampleGrids:
    """Validation-epoch sample grids of a PC-AEGAN model (a mixin of
    :class:`~hashbench.methods.pcaegan.PCAEGAN`: it uses its ``generator``, ``approx_codes``,
    ``train_labels``, ``stage1_done``, ``samples_per_class``, ``noise_dim`` and ``seed``)."""

    @torch.no_grad()
    def sample_grid(self) -> Tensor:
        """Synthetic images ``(classes x k, C, S, S)`` in ``[0, 1]``: row ``c`` conditioned on the
        binary stage-1 codes of the first ``k`` training images of class ``c``."""
        k = self.samples_per_class
        rows = []
        for c in range(self.train_labels.shape[1]):
            idx = torch.nonzero(self.train_labels[:, c] > 0).flatten()[:k]
            if len(idx):
                rows.append(torch.cat([idx, idx[:1].repeat(k - len(idx))]))
        if not rows:
            return torch.zeros(0)
        rows_t = torch.cat(rows)
        gen = torch.Generator().manual_seed(self.seed)
        noise = torch.randn(len(rows_t), self.noise_dim, generator=gen).to(self.device)
        was_training = self.generator.training
        self.generator.eval()
        try:
            images = self.generator(self.approx_codes[rows_t].float(), noise)
        finally:
            self.generator.train(was_training)
        return (images + 1) / 2

    def sample_dir(self) -> Path:
        logger = self.trainer.logger if self._trainer else None
        root = getattr(logger, "log_dir", None) or (self.trainer.default_root_dir)
        return Path(root) / "samples"

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if not self.use_gan or not self.samples_per_class or self.trainer.sanity_checking:
            return
        if not bool(self.stage1_done) or not self.trainer.is_global_zero:
            return
        path = self.sample_dir() / f"epoch{self.current_epoch:03d}.png"
        save_image_grid(self.sample_grid(), path, nrow=self.samples_per_class)
