"""`HashingMethod`: the LightningModule every deep hashing method subclasses.

The base class owns what all methods share (DESIGN.md, "Extension points"):

- backbone (:func:`hashbench.models.backbones.build_backbone`) + :class:`~hashbench.models.heads.HashHead`,
  with the input adapter that turns the DataModule's ``uint8`` images into the backbone's input;
- :meth:`encode`: images -> packed binary codes ``1[h >= threshold]``;
- validation: encodes ``val_query`` and ``val_database`` and logs ``val/mAP`` (protocol depth, tie rule
  ``index``); checkpoint selection on it (:meth:`configure_callbacks`);
- test: encodes ``query`` and ``database`` and logs every PROTOCOL.md metric as ``test/<name>``; the
  full result (curves included) is kept in :attr:`test_results`;
- predict: returns packed codes and dataset indices;
- a non-finite loss stops training with a clear error before the optimiser step (no corrupt checkpoint).

A method overrides :meth:`training_step` (and, for GANs, sets ``automatic_optimization = False``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import lightning as L
import numpy as np
import torch

from hashbench.models.heads import Activation, HashHead
from hashbench.retrieval.codes import check_bits
from hashbench.retrieval.evaluation import (
    DEFAULT_TIES,
    TEST_METRICS,
    VAL_METRICS,
    VAL_MONITOR,
    TieRule,
    map_key,
    metric_groups,
)

__all__ = ["TEST_METRICS", "HashingMethod", "NonFiniteLossError", "Optim", "PairwiseHashingMethod"]


@dataclass(frozen=True)
class Optim:
    """Optimiser settings shared by the deep methods (``optim:`` in a method config).

    Args:
        name: ``adam``, ``sgd`` (with ``momentum``) or ``rmsprop``.
        lr: learning rate of the hash head and method-specific nets.
        backbone_lr_mult: learning-rate multiplier for the backbone (e.g. 0.1 when fine-tuning).
        weight_decay: L2 weight decay.
        momentum: momentum for ``sgd`` / ``rmsprop``.
        schedule: ``none``, ``cosine`` (to 0 over ``max_epochs``) or ``step`` (x0.1 at 2/3 of training).
    """

    name: Literal["adam", "sgd", "rmsprop"] = "adam"
    lr: float = 1e-3
    backbone_lr_mult: float = 1.0
    weight_decay: float = 1e-5
    momentum: float = 0.9
    schedule: Literal["none", "cosine", "step"] = "cosine"


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


class HashingMethod(L.LightningModule):
    """Backbone + hash head trained by a subclass's loss; shared encode / validate / test / predict.

    Args:
        bits: code length (a positive multiple of 8).
        backbone: backbone name (``small_cnn``, ``alexnet``, ``vgg16``, ``vgg19``, ``resnet18``,
            ``resnet50``, ``efficientnet_lite0``).
        pretrained: ``False`` (random init), ``True`` (ImageNet weights from a local file / cache) or a
            path to a weights file.
        optim: optimiser settings (:class:`Optim`).
        ties: tie rule of the reported metrics (PROTOCOL.md): ``index`` or ``expected``.
    """

    #: relaxation of the hash layer; subclasses set it.
    activation: ClassVar[Activation] = "tanh"

    def __init__(
        self,
        bits: int = 32,
        backbone: str = "small_cnn",
        pretrained: bool | str = False,
        optim: Optim = Optim(),
        ties: TieRule = DEFAULT_TIES,
    ) -> None:
        super().__init__()
        check_bits(bits)
        self.save_hyperparameters()
        from hashbench.data.transforms import InputAdapter
        from hashbench.models.backbones import build_backbone, input_spec

        self.bits = bits
        self.optim = Optim(**optim) if isinstance(optim, Mapping) else optim  # dict when restored
        self.hparams["optim"] = asdict(self.optim)  # plain data in checkpoints (weights_only loads)
        self.ties = ties
        self.adapter = InputAdapter(input_spec(backbone))
        self.backbone, self.feature_dim = build_backbone(backbone, pretrained)
        # NHWC convolutions: 1.2-1.8x faster on CPU here (oneDNN), and the usual fast path on GPUs.
        self.backbone.to(memory_format=torch.channels_last)
        self.hash_head = HashHead(self.feature_dim, bits, self.activation)
        self.test_results: dict[str, Any] = {}
        #: packed codes the last test pass computed, in loader order: ``{"query": ..., "database": ...}``
        self.test_codes: dict[str, np.ndarray] = {}
        self._metrics: dict[str, Any] = {}

    # -- forward / encode ---------------------------------------------------------------------------
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features of an image batch (``uint8``, or float in ``[0, 1]``)."""
        return self.backbone(self.adapter(images).contiguous(memory_format=torch.channels_last))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Relaxed codes ``h`` ``(B, bits)`` of an image batch."""
        return self.hash_head(self.features(images))

    @property
    def threshold(self) -> float:
        return self.hash_head.threshold

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Packed binary codes ``uint8 (B, bits/8)``: bit ``1[h >= threshold]``, MSB first."""
        bits = self(images) >= self.threshold
        weights = (2 ** torch.arange(7, -1, -1, device=bits.device)).to(torch.uint8)
        return (bits.view(bits.shape[0], -1, 8).to(torch.uint8) * weights).sum(-1).to(torch.uint8)

    # -- training -------------------------------------------------------------------------------------
    def on_before_backward(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(
                f"{type(self).__name__}: the training loss became {loss.item()} at epoch "
                f"{self.current_epoch}, step {self.global_step}; training stopped before the update "
                "(no checkpoint was written from this state). Lower the learning rate "
                "(--model.init_args.optim.lr), check the input data, or use "
                "--trainer.gradient_clip_val."
            )

    def parameter_groups(self) -> list[dict]:
        """Optimiser parameter groups: the backbone (scaled lr) and everything else."""
        backbone = list(self.backbone.parameters())
        ids = {id(p) for p in backbone}
        rest = [p for p in self.parameters() if id(p) not in ids and p.requires_grad]
        lr = self.optim.lr
        groups = [{"params": rest, "lr": lr}]
        if any(p.requires_grad for p in backbone):
            groups.append(
                {
                    "params": [p for p in backbone if p.requires_grad],
                    "lr": lr * self.optim.backbone_lr_mult,
                }
            )
        return groups

    def make_optimizer(self, groups: list[dict]) -> torch.optim.Optimizer:
        o = self.optim
        if o.name == "adam":
            return torch.optim.Adam(groups, lr=o.lr, weight_decay=o.weight_decay)
        if o.name == "sgd":
            return torch.optim.SGD(
                groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay
            )
        return torch.optim.RMSprop(
            groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay
        )

    def configure_optimizers(self):
        optimizer = self.make_optimizer(self.parameter_groups())
        epochs = max(1, self.trainer.max_epochs or 1) if self._trainer else 1
        if self.optim.schedule == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        elif self.optim.schedule == "step":
            sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, 2 * epochs // 3))
        else:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def configure_callbacks(self):
        from lightning.pytorch.callbacks import ModelCheckpoint

        return [
            ModelCheckpoint(
                monitor=VAL_MONITOR,
                mode="max",
                save_last=True,
                filename="epoch{epoch:03d}-valmAP{val/mAP:.4f}",
                auto_insert_metric_name=False,
            )
        ]

    # -- evaluation -----------------------------------------------------------------------------------
    def _datamodule(self):
        return getattr(self.trainer, "datamodule", None) if self._trainer else None

    def _metric(self, stage: str):
        """A fresh retrieval metric for ``stage`` with the protocol's depth and tie seed."""
        from hashbench.retrieval.metric import HashRetrievalMetric

        dm = self._datamodule()
        metric = HashRetrievalMetric(
            k=getattr(dm, "metric_k", None),
            metrics=VAL_METRICS
            if stage == "val"
            else metric_groups(bool(getattr(dm, "multi_label", False))),
            ties=self.ties,
            seed=getattr(dm, "seed", 0),
            per_query=stage == "test",
        ).to(self.device)
        self._metrics[stage] = metric
        return metric

    def _eval_step(self, stage: str, batch: dict, dataloader_idx: int) -> None:
        role = "query" if dataloader_idx == 0 else "database"
        self._metrics[stage].update(
            self.encode(batch["image"]), batch["label"], role, indices=batch["index"]
        )

    def on_validation_epoch_start(self) -> None:
        self._metric("val")

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("val", batch, dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        metric = self._metrics.pop("val")
        result = metric.compute()
        self.log(VAL_MONITOR, float(result[map_key(result)]), prog_bar=True, sync_dist=False)

    def on_test_epoch_start(self) -> None:
        self._metric("test")

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("test", batch, dataloader_idx)

    def on_test_epoch_end(self) -> None:
        metric = self._metrics.pop("test")
        self.test_codes = {role: metric.codes(role) for role in ("query", "database")}
        full = metric.compute_full()
        self.test_results = full
        scalars = {f"test/{k}": float(v) for k, v in full.items() if np.ndim(v) == 0}
        self.log_dict(scalars)

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        return {
            "codes": self.encode(batch["image"]).cpu(),
            "index": batch["index"].cpu(),
            "dataloader_idx": dataloader_idx,
        }


class PairwiseHashingMethod(HashingMethod):
    """A method whose loss is a function of one batch's relaxed codes and labels.

    Subclasses implement :meth:`loss`; :meth:`training_step` logs it as ``train/loss``.
    """

    def loss(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        raise NotImplementedError

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self.loss(self(batch["image"]), batch["label"])
        terms = out if isinstance(out, dict) else {"loss": out}
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in terms.items()},
            prog_bar=True,
            on_step=False,
            on_epoch=True,
            batch_size=len(batch["label"]),
        )
        return terms["loss"]
