"""Shared machinery of the objective terms: the :class:`Term` base class, the input vocabulary,
pair construction and reductions.

The conventions every term follows are written once, in the docstring of :mod:`hashbench.losses`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

Reduction = Literal["mean", "sum"]

#: Names a term may list in ``inputs`` / ``optional_inputs`` (see :mod:`hashbench.losses`).
VOCABULARY: tuple[str, ...] = (
    "h",
    "b",
    "labels",
    "sim",
    "logits",
    "x",
    "x_hat",
    "features",
    "index",
    "weights",
    "classifier_weight",
    # the second set of a batch x second-set pairing (e.g. a memory bank)
    "h_other",
    "labels_other",
    "features_other",
    "index_other",
)


class Term(nn.Module):
    """Base class of every objective term.

    Subclasses set ``inputs`` (the keyword tensors ``forward`` needs, from :data:`VOCABULARY`),
    ``optional_inputs`` (the ones it may take), ``equation`` (the survey's equation number, or a
    short source tag) and implement ``forward`` with exactly those keyword arguments.
    """

    inputs: ClassVar[tuple[str, ...]] = ()
    optional_inputs: ClassVar[tuple[str, ...]] = ()
    equation: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()

    def gather(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """Pick this term's keyword arguments out of a context dict.

        Every name in ``inputs`` must be present; names in ``optional_inputs`` are passed when the
        context holds them and they are not ``None``.

        Args:
            context: mapping from vocabulary names to tensors.
        """
        missing = [k for k in self.inputs if k not in context]
        if missing:
            raise KeyError(
                f"{type(self).__name__} needs the inputs {list(self.inputs)}; the context lacks "
                f"{missing}. Put them in the context (names from hashbench.losses.VOCABULARY)."
            )
        kwargs = {k: context[k] for k in self.inputs}
        for k in self.optional_inputs:
            if context.get(k) is not None:
                kwargs[k] = context[k]
        return kwargs


class PairwiseTerm(Term):
    """Base class of the terms summed over pairs of items (see :mod:`hashbench.losses`).

    It owns the steps every pairwise term shares: :func:`check_reduction` of ``reduction``, the
    second set, similarity matrix and pair mask (:func:`resolve_pairs`: the ordered pairs
    ``i != j`` of the batch, or all ``n x m`` pairs against ``h_other``), and the reduction of the
    per-pair values over the mask (:func:`reduce_pairs`). A subclass implements
    :meth:`pair_values`, the ``(n, m)`` values of its formula, and overrides :meth:`reduce` when its
    result is not the sum or mean over the pairs (a divergence, a triplet loss, ...).

    The default inputs are those of a label-driven term: ``h``, ``labels`` and optionally an
    explicit ``sim`` and a second set. A term fed by other inputs (features, dataset indices)
    declares them and writes its own ``forward``, which builds ``(h_b, sim, mask)`` and returns
    :meth:`pair_loss`.

    Class attributes:
        graded: the similarity is the shared-label count (:func:`shared_label_counts`) instead of
            the 0/1 :func:`pairwise_similarity`.
        nonnegative_sim: an explicit ``sim`` must be non-negative.

    Args:
        reduction: ``"mean"`` or ``"sum"`` over pairs (used by the default :meth:`reduce`).
    """

    inputs: ClassVar[tuple[str, ...]] = ("h", "labels")
    optional_inputs: ClassVar[tuple[str, ...]] = ("sim", "h_other", "labels_other")
    graded: ClassVar[bool] = False
    nonnegative_sim: ClassVar[bool] = False

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(
        self,
        h: Tensor,
        labels: Tensor | None,
        sim: Tensor | None = None,
        h_other: Tensor | None = None,
        labels_other: Tensor | None = None,
    ) -> Tensor:
        h_b, s, mask = resolve_pairs(h, h_other, labels, labels_other, sim, graded=self.graded)
        assert s is not None  # resolve_pairs needs labels or sim here
        if self.nonnegative_sim and sim is not None and (sim < 0).any():
            raise ValueError(f"{type(self).__name__} needs a non-negative (graded) `sim`")
        return self.pair_loss(h, h_b, s, mask)

    def pair_loss(self, h: Tensor, h_b: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        """The term's value: :meth:`reduce` of :meth:`pair_values`."""
        return self.reduce(self.pair_values(h, h_b, sim, mask), sim, mask)

    def pair_values(self, h: Tensor, h_b: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        """Per-pair values ``(n, m)`` of the formula (entries outside ``mask`` are ignored).

        Args:
            h: ``(n, q)`` codes of the batch.
            h_b: ``(m, q)`` codes of the second set (``h`` itself within a batch).
            sim: ``(n, m)`` similarity (or affinity), in ``h``'s dtype.
            mask: boolean ``(n, m)`` mask of the pairs the term sums over.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement pair_values")

    def reduce(self, values: Tensor, sim: Tensor, mask: Tensor) -> Tensor:
        """The scalar from the per-pair values: their sum or mean over ``mask`` by default."""
        return reduce_pairs(values, mask, self.reduction)


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def check_codes(h: Tensor, name: str = "h") -> Tensor:
    """Check that ``h`` is a 2-d floating tensor ``(n, q)`` and return it."""
    if not isinstance(h, Tensor) or h.ndim != 2 or not h.is_floating_point():
        shape = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
        raise ValueError(
            f"`{name}` must be a 2-d float tensor (items, bits), got {shape}; "
            "reshape the hash layer output to (n, q)."
        )
    return h


def check_rows(t: Tensor, n: int, name: str, what: str = "items") -> Tensor:
    """Check that ``t`` is 2-d with ``n`` rows."""
    if not isinstance(t, Tensor) or t.ndim != 2 or t.shape[0] != n:
        shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
        raise ValueError(f"`{name}` must be a 2-d tensor with {n} rows ({what}), got {shape}.")
    return t


def check_reduction(reduction: str) -> str:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    return reduction


def check_positive(value: float, name: str, allow_zero: bool = False) -> float:
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------------
# codes, similarities, pairs
# --------------------------------------------------------------------------------------------


def binary_codes(h: Tensor) -> Tensor:
    """``b = where(h >= 0, +1, -1)``, detached (PROTOCOL.md's binarisation, bit ``1[h >= 0]``)."""
    h = h.detach()
    return torch.where(h >= 0, torch.ones_like(h), -torch.ones_like(h))


def shared_label_counts(labels_a: Tensor, labels_b: Tensor | None = None) -> Tensor:
    """``G[i, j]`` = number of labels items ``i`` (of ``a``) and ``j`` (of ``b``) share.

    Args:
        labels_a: multi-hot ``(n, c)``.
        labels_b: multi-hot ``(m, c)``; ``labels_a`` when omitted.

    Returns:
        ``(n, m)`` float tensor (float32 unless ``labels_a`` is floating).
    """
    labels_b = labels_a if labels_b is None else labels_b
    if labels_a.ndim != 2 or labels_b.ndim != 2 or labels_a.shape[1] != labels_b.shape[1]:
        raise ValueError(
            "labels must be multi-hot (n, c) and (m, c) tensors with the same number of classes, "
            f"got {tuple(labels_a.shape)} and {tuple(labels_b.shape)}"
        )
    dtype = labels_a.dtype if labels_a.is_floating_point() else torch.float32
    a = (labels_a > 0).to(dtype)
    b = (labels_b > 0).to(dtype)
    return a @ b.T


def pairwise_similarity(labels_a: Tensor, labels_b: Tensor | None = None) -> Tensor:
    """``s[i, j] = 1`` if items ``i`` and ``j`` share at least one label, else ``0``.

    Args:
        labels_a: multi-hot ``(n, c)``.
        labels_b: multi-hot ``(m, c)``; ``labels_a`` when omitted.

    Returns:
        ``(n, m)`` float tensor of 0/1.
    """
    g = shared_label_counts(labels_a, labels_b)
    return (g > 0).to(g.dtype)


def pair_mask(n: int, m: int, same_set: bool, device: torch.device | None = None) -> Tensor:
    """Boolean ``(n, m)`` mask of the pairs a term sums over.

    Within one set (``same_set``) these are the ordered pairs ``i != j``; between a batch and a
    second set, all ``n * m`` pairs.
    """
    if same_set:
        return ~torch.eye(n, m, dtype=torch.bool, device=device)
    return torch.ones(n, m, dtype=torch.bool, device=device)


def resolve_pairs(
    h: Tensor,
    h_other: Tensor | None,
    labels: Tensor | None = None,
    labels_other: Tensor | None = None,
    sim: Tensor | None = None,
    need_sim: bool = True,
    graded: bool = False,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Second set, similarity matrix and pair mask of a pairwise term.

    Args:
        h: ``(n, q)`` codes of the batch.
        h_other: ``(m, q)`` codes of a second set, or ``None`` for pairs within the batch.
        labels: multi-hot ``(n, c)``.
        labels_other: multi-hot ``(m, c)`` (needed with ``h_other`` unless ``sim`` is given).
        sim: explicit ``(n, m)`` similarity; overrides the labels.
        need_sim: whether the term needs a similarity at all.
        graded: shared-label counts instead of 0/1 similarity.

    Returns:
        ``(h_b, sim, mask)`` with ``h_b`` the second set (``h`` itself within a batch).
    """
    check_codes(h)
    same = h_other is None
    h_b = h if same else check_codes(h_other, "h_other")
    if h_b.shape[1] != h.shape[1]:
        raise ValueError(
            f"`h` and `h_other` must have the same code length, got {h.shape[1]} and {h_b.shape[1]}"
        )
    n, m = h.shape[0], h_b.shape[0]
    s: Tensor | None = None
    if sim is not None:
        if sim.shape != (n, m):
            raise ValueError(
                f"`sim` must have shape ({n}, {m}) (batch x second set), got {tuple(sim.shape)}"
            )
        s = sim.to(h.dtype)
    elif need_sim:
        if labels is None:
            raise ValueError(f"{'graded ' if graded else ''}pairwise term needs `labels` or `sim`")
        check_rows(labels, n, "labels")
        if same:
            lb = labels
        else:
            if labels_other is None:
                raise ValueError("with `h_other`, pass `labels_other` (or an explicit `sim`)")
            lb = check_rows(labels_other, m, "labels_other")
        s = (shared_label_counts if graded else pairwise_similarity)(labels, lb).to(h.dtype)
    return h_b, s, pair_mask(n, m, same, h.device)


def reduce_pairs(values: Tensor, mask: Tensor, reduction: str) -> Tensor:
    """Sum or mean of ``values`` over the pairs selected by ``mask`` (0 when there are none)."""
    total = values.masked_fill(~mask, 0.0).sum()
    if reduction == "sum":
        return total
    return total / mask.sum().clamp_min(1)  # no pairs: 0 (and no host-device sync)


def reduce_items(values: Tensor, reduction: str) -> Tensor:
    """Sum or mean of per-item values ``(n,)``."""
    return values.sum() if reduction == "sum" else values.mean()


def relaxed_hamming(h_a: Tensor, h_b: Tensor) -> Tensor:
    """``d[i, j] = (q - h_a[i] . h_b[j]) / 2``: the Hamming distance for +-1 codes, its usual
    relaxation for real codes."""
    return 0.5 * (h_a.shape[1] - h_a @ h_b.T)


def squared_euclidean(h_a: Tensor, h_b: Tensor) -> Tensor:
    """``d[i, j] = ||h_a[i] - h_b[j]||^2`` by the expansion ``|a|^2 + |b|^2 - 2 a.b``
    (clamped at 0), ``O(n m)`` memory."""
    d = h_a.pow(2).sum(1, keepdim=True) + h_b.pow(2).sum(1)[None, :] - 2.0 * (h_a @ h_b.T)
    return d.clamp_min(0.0)
