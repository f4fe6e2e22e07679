"""Composite: a deep hashing method assembled from objective terms written in the config.

The objective is a weighted sum of terms of the library :mod:`hashbench.losses`,

    L = sum_k w_k T_k(context),

where each ``T_k`` is given in YAML as ``class_path`` / ``init_args`` (any
:class:`~hashbench.losses.Term` subclass; jsonargparse resolves and validates it) and ``w_k`` is its
``weight``. A new deep hashing method can thus be tried without code::

    model:
      class_path: hashbench.methods.composite.Composite
      init_args:
        bits: 32
        activation: identity
        terms:
          - weight: 1.0
            term:
              class_path: hashbench.losses.PairwiseLikelihoodLoss
              init_args: {scale: 0.5}
          - weight: 0.002
            term: {class_path: hashbench.losses.QuantizationLoss}

The training step builds a *context* (the input vocabulary of :mod:`hashbench.losses`) from the
batch and calls every term as ``term(**term.gather(context))``:

- ``h``: the relaxed codes ``(B, bits)``: the hash head's output (``identity`` / ``tanh``), its
  centred form ``2 h - 1`` for ``sigmoid`` (Resolved: the terms assume codes in ``[-1, 1]`` around
  the threshold 0; the bits ``1[sigmoid >= 0.5]`` are exactly ``1[2 h - 1 >= 0]``), or
  ``tanh(beta z)`` of the linear output under ``tanh_beta_schedule`` (survey eq. 23);
- ``b``: ``where(h >= 0, +1, -1)``, detached (:func:`hashbench.losses.binary_codes`);
- ``labels``: multi-hot ``(B, c)``; ``index``: dataset indices ``(B,)``;
- ``x``: the backbone's normalised input; ``features``: the backbone features ``(B, d)``;
- ``weights``: ``[hash head weight (, classifier weight)]`` (survey eq. 10);
- ``logits`` / ``classifier_weight``: from ``nn.Linear(bits, num_classes)`` on ``h``, present when
  the method has a classifier (built automatically when a term needs ``logits``).

Inputs a term may need that no single batch provides (``sim``, ``x_hat``, the ``*_other`` second
set) are rejected at construction with a clear error. Each term is logged as ``train/<name>``
(unweighted), the total as ``train/loss``.

Reference configurations (``configs/methods/``): ``dpsh.yaml`` (Li, Wang, Kang, "Feature Learning
based Deep Supervised Hashing with Pairwise Labels", IJCAI 2016) and ``dhn.yaml`` (Zhu, Long, Wang,
Cao, "Deep Hashing Network for Efficient Similarity Retrieval", AAAI 2016); ``composite.yaml`` is
DPSH. See ``docs/methods/composite.md``.

Checkpoints: the hyper-parameters are stored as plain data (``terms`` as ``class_path`` /
``init_args`` specs, ``optim`` as a dict), whether the model came from the CLI or from Python, so
``hashbench test --ckpt_path`` and ``Composite.load_from_checkpoint`` rebuild the same objective.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn

from hashbench.losses import ScheduledTanh, binary_codes
from hashbench.losses.knn import KNNGraphLoss
from hashbench.methods.base import HashingMethod, Optim
from hashbench.methods.composite_spec import (
    WeightedTerm,
    build_module,
    coerce_terms,
    module_spec,
    spec_or_object,
    term_names,
    term_specs,
)
from hashbench.retrieval.evaluation import DEFAULT_TIES, TieRule

__all__ = ["BATCH_INPUTS", "CLASSIFIER_INPUTS", "Composite", "WeightedTerm", "module_spec"]

#: Context names the composite fills from a batch (``logits`` / ``classifier_weight`` need a
#: classifier).
BATCH_INPUTS: tuple[str, ...] = ("h", "b", "labels", "index", "x", "features", "weights")
CLASSIFIER_INPUTS: tuple[str, ...] = ("logits", "classifier_weight")


class Composite(HashingMethod):
    """A method whose objective is a weighted list of :mod:`hashbench.losses` terms (see module).

    Args:
        bits: code length (a positive multiple of 8).
        backbone: backbone name (see :class:`HashingMethod`).
        pretrained: backbone weights (see :class:`HashingMethod`).
        activation: relaxation of the hash layer: ``identity`` (linear outputs, DPSH / DSH),
            ``tanh`` (DHN) or ``sigmoid`` (bits at 0.5; the terms see ``2 h - 1``).
        terms: the objective, a list of :class:`WeightedTerm` (``weight``, ``term`` as
            ``class_path`` / ``init_args``, optional ``name``); ``None`` = DPSH's two terms.
        classifier: add ``nn.Linear(bits, num_classes)`` on ``h`` giving ``logits``; ``None`` =
            exactly when a term needs ``logits`` (``False`` with such a term is an error).
        num_classes: classifier outputs; ``None`` = the DataModule's ``num_classes`` at ``setup``
            (recorded in the hyper-parameters, so checkpoints restore the classifier).
        tanh_beta_schedule: survey eq. (23): ``h = tanh(beta_t z)`` of the linear output ``z``
            with ``beta_t`` following a :class:`~hashbench.losses.ScheduledTanh` schedule of the
            training step (needs ``activation: identity``); ``None`` = no schedule.
        optim: optimiser settings.
        ties: tie rule of the reported metrics.
    """

    def __init__(
        self,
        bits: int = 32,
        backbone: str = "small_cnn",
        pretrained: bool | str = False,
        activation: Literal["identity", "tanh", "sigmoid"] = "identity",
        terms: list[WeightedTerm] | None = None,
        classifier: bool | None = None,
        num_classes: int | None = None,
        tanh_beta_schedule: ScheduledTanh | None = None,
        optim: Optim = Optim(),  # noqa: B008 - frozen dataclass, as in HashingMethod
        ties: TieRule = DEFAULT_TIES,
    ) -> None:
        if activation not in ("identity", "tanh", "sigmoid"):
            raise ValueError(
                f"Composite: activation must be 'identity', 'tanh' or 'sigmoid', got {activation!r}"
            )
        if tanh_beta_schedule is not None and activation != "identity":
            raise ValueError(
                "Composite: tanh_beta_schedule applies tanh(beta z) to the linear outputs; set "
                f"activation: identity (got {activation!r})"
            )
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"Composite: num_classes must be >= 1 or null, got {num_classes}")
        # The base class builds the hash head from `self.activation` (a class attribute for
        # fixed-relaxation methods); here it is configuration, so set it per instance first.
        self.activation = activation
        with warnings.catch_warnings():  # replaced by a plain spec below
            warnings.filterwarnings("ignore", message=".*'tanh_beta_schedule' is an instance of")
            super().__init__(bits, backbone, pretrained, optim, ties)

        weighted = coerce_terms(terms)
        self.objective = nn.ModuleList([wt.term for wt in weighted])
        self.term_weights = [float(wt.weight) for wt in weighted]
        self.term_names = term_names(weighted)
        self.relaxation = (
            None
            if tanh_beta_schedule is None
            else build_module(tanh_beta_schedule, ScheduledTanh, "Composite tanh_beta_schedule")
        )

        needs = {k for t in self.objective for k in t.inputs}
        wants_classifier = bool(needs & set(CLASSIFIER_INPUTS))
        if classifier is False and wants_classifier:
            users = [
                n
                for n, t in zip(self.term_names, self.objective, strict=True)
                if set(t.inputs) & set(CLASSIFIER_INPUTS)
            ]
            raise ValueError(
                f"Composite: the terms {users} need `logits`; set classifier: true "
                "(or leave it null)"
            )
        self.use_classifier = wants_classifier if classifier is None else bool(classifier)
        available = set(BATCH_INPUTS) | (set(CLASSIFIER_INPUTS) if self.use_classifier else set())
        for name, t in zip(self.term_names, self.objective, strict=True):
            missing = [k for k in t.inputs if k not in available]
            if missing:
                raise ValueError(
                    f"Composite: term {name!r} ({type(t).__name__}) needs {missing}, which a "
                    f"training batch does not provide; available: {sorted(available)}. Use a "
                    "method that supplies them, or another term."
                )
        self.classifier: nn.Linear | None = None
        if self.use_classifier and num_classes is not None:
            self.classifier = nn.Linear(bits, num_classes)

        # Plain-data hyper-parameters (rebuild the same objective from a checkpoint).
        self.hparams["terms"] = term_specs(self.objective, self.term_weights, weighted)
        if self.relaxation is not None:
            self.hparams["tanh_beta_schedule"] = spec_or_object(self.relaxation)

    # -- setup -------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Build the classifier from the DataModule's ``num_classes`` when it is still missing."""
        if not self.use_classifier:
            return
        dm = self._datamodule()
        n = getattr(dm, "num_classes", None) if dm is not None else None
        if self.classifier is None:
            if n is None:
                raise ValueError(
                    "Composite: the classifier needs num_classes; pass "
                    "--model.init_args.num_classes or use a HashDataModule"
                )
            self.classifier = nn.Linear(self.bits, int(n)).to(self.device)
            self.hparams["num_classes"] = int(n)
        elif n is not None and int(n) != self.classifier.out_features:
            raise ValueError(
                f"Composite: num_classes={self.classifier.out_features} but the data "
                f"has {n} classes; set num_classes: null or {n}"
            )

    def on_fit_start(self) -> None:
        for name, t in zip(self.term_names, self.objective, strict=True):
            if isinstance(t, KNNGraphLoss) and t.neighbourhood is None:
                raise ValueError(
                    f"Composite: term {name!r} (KNNGraphLoss) has no neighbourhood; Composite does "
                    "not build the training set's KNN graph. Build it in Python "
                    "(term.build(train_features)) before fitting, or use another term."
                )

    # -- forward -----------------------------------------------------------------------------------
    def _relax(self, z: torch.Tensor) -> torch.Tensor:
        return z if self.relaxation is None else self.relaxation(z)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Relaxed codes ``(B, bits)``; bits are ``1[output >= threshold]``."""
        return self._relax(self.hash_head(self.features(images)))

    def centred(self, h: torch.Tensor) -> torch.Tensor:
        """The codes the terms see: ``2 h - 1`` for ``sigmoid``, else ``h``."""
        return 2.0 * h - 1.0 if self.hash_head.activation == "sigmoid" else h

    # -- objective ---------------------------------------------------------------------------------
    def context(self, batch: dict) -> dict[str, Any]:
        """The term inputs of a training batch (``image``, ``label``, ``index``)."""
        x = self.adapter(batch["image"])
        features = self.backbone(x)
        h = self.centred(self._relax(self.hash_head(features)))
        ctx: dict[str, Any] = {
            "h": h,
            "b": binary_codes(h),
            "labels": batch["label"],
            "index": batch.get("index"),
            "x": x,
            "features": features,
            "weights": [self.hash_head.linear.weight],
        }
        if self.use_classifier:
            if self.classifier is None:
                raise ValueError(
                    "Composite: the classifier is not built; pass num_classes or "
                    "train through a Trainer with a HashDataModule (setup)"
                )
            ctx["logits"] = self.classifier(h)
            ctx["classifier_weight"] = self.classifier.weight
            ctx["weights"].append(self.classifier.weight)
        return ctx

    def objective_terms(self, context: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """``{"loss": sum_k w_k T_k, <name_k>: T_k}`` (unweighted terms) on a context."""
        values = {
            name: t(**t.gather(context))
            for name, t in zip(self.term_names, self.objective, strict=True)
        }
        total = sum(w * v for w, v in zip(self.term_weights, values.values(), strict=True))
        return {"loss": total, **values}

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.relaxation is not None:
            self.relaxation.set_step(self.global_step)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self.objective_terms(self.context(batch))
        logs = {f"train/{k}": v.detach() for k, v in out.items() if k != "loss"}
        if self.relaxation is not None:
            logs["train/beta"] = torch.tensor(self.relaxation.beta)
        self.log_dict(
            logs, prog_bar=False, on_step=False, on_epoch=True, batch_size=len(batch["label"])
        )
        self.log(
            "train/loss",
            out["loss"].detach(),
            prog_bar=True,
            on_step=False,
            on_epoch=True,
            batch_size=len(batch["label"]),
        )
        return out["loss"]
