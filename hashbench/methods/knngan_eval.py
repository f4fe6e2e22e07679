"""knngan's evaluation extras (seed 000): reconstruction grids and secondary screening.

- :class:`ReconstructionGrids`: every validation epoch, ``<log dir>/reconstructions/epochNNN.png``
  (top row: ``grid_size`` validation images; bottom row: ``G(b, z)`` with a fixed noise), also logged
  to TensorBoard when that logger is used;
- :class:`SecondaryScreening`: with ``rerank = S > 0``, at test time the first ``S`` items of each
  query's Hamming ranking are re-ordered by the cosine similarity of the continuous codes ``R``
  (:func:`hashbench.retrieval.rerank.reranked_map`), logged as ``test/rerank_mAP@<k>``.

Mixins of :class:`hashbench.methods.knngan.KNNGAN` (they use its ``generator``, ``noise_dim``,
``grid_size``, ``_grid``, ``rerank`` and ``_real_codes``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from hashbench.losses.base import binary_codes
from hashbench.models.gan import save_image_grid
from hashbench.retrieval.codes import pack_bits


class ReconstructionGrids:
    """Saves originals and their reconstructions ``G(b, z)`` once per validation epoch."""

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        super().validation_step(batch, batch_idx, dataloader_idx)
        if batch_idx == 0 and dataloader_idx == 0 and self.grid_size > 0:
            self._grid = batch["image"][: self.grid_size]

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self._grid is not None and self.generator is not None and self._trainer is not None:
            self.save_reconstructions(self._grid)
        self._grid = None

    @torch.no_grad()
    def reconstruct(self, images: Tensor, seed: int = 0) -> Tensor:
        """``G(b, z)`` of ``images`` with a fixed noise (``[0, 1]`` floats)."""
        if self.generator is None:
            raise ValueError("knngan: no generator (gan: false, or lambda1 = lambda2 = 0)")
        g = torch.Generator().manual_seed(seed)
        z = torch.randint(0, 2, (images.shape[0], self.noise_dim), generator=g).float() * 2 - 1
        was = self.generator.training
        self.generator.eval()
        out = self.generator(binary_codes(self(images)), z.to(self.device))
        self.generator.train(was)
        return out

    def save_reconstructions(self, images: Tensor) -> Path:
        """Originals (top row) and reconstructions (bottom) as a PNG under the logger's folder."""
        real = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        fake = self.reconstruct(images)
        log_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)
        path = log_dir / "reconstructions" / f"epoch{self.current_epoch:03d}.png"
        grid = save_image_grid(torch.cat([real, fake]), path, nrow=images.shape[0])
        logger = self.logger
        experiment = getattr(logger, "experiment", None) if logger is not None else None
        if hasattr(experiment, "add_image"):
            experiment.add_image("val/reconstructions", grid, self.current_epoch)
        return path


class SecondaryScreening:
    """Re-ranks each test query's Hamming shortlist by the cosine of the continuous codes."""

    def _eval_step(self, stage: str, batch: dict, dataloader_idx: int) -> None:
        if stage != "test" or self.rerank <= 0:
            return super()._eval_step(stage, batch, dataloader_idx)
        role = "query" if dataloader_idx == 0 else "database"
        with torch.no_grad():
            r = self(batch["image"])
        codes = torch.from_numpy(pack_bits(r >= 0)).to(r.device)
        self._metrics[stage].update(codes, batch["label"], role, indices=batch["index"])
        self._real_codes.setdefault(role, []).append(
            (batch["index"].cpu(), codes.cpu(), r.cpu(), batch["label"].cpu())
        )

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if self.rerank <= 0 or not self._real_codes:
            return
        from hashbench.retrieval.rerank import reranked_map

        q, d = (_gather(self._real_codes[role]) for role in ("query", "database"))
        self._real_codes = {}
        dm = self._datamodule()
        k = getattr(dm, "metric_k", None)
        value = reranked_map(
            q[0], d[0], q[1], d[1], q[2], d[2], self.rerank, k, getattr(dm, "seed", 0)
        )
        name = f"test/rerank_mAP@{'all' if k is None else k}"
        self.test_results[name.removeprefix("test/")] = value
        self.log(name, value)


def _gather(parts: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes, continuous codes and labels of one role, sorted by dataset index (unique)."""
    idx = torch.cat([p[0] for p in parts]).numpy()
    _, keep = np.unique(idx, return_index=True)
    codes = torch.cat([p[1] for p in parts]).numpy()[keep]
    real = torch.cat([p[2] for p in parts]).numpy()[keep]
    labels = torch.cat([p[3] for p in parts]).numpy()[keep]
    return codes, real, labels
