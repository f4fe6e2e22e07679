"""Plain-data specs of a :class:`~hashbench.methods.composite.Composite` objective.

The parser turns the ``terms`` configuration (a list of :class:`WeightedTerm`, or of mappings
``{term: {class_path, init_args}, weight, name}``) into weighted :class:`~hashbench.losses.Term`
modules (:func:`coerce_terms`, :func:`build_module`, :func:`term_names`); the serialiser writes
them back as plain data (:func:`module_spec`, :func:`term_specs`), the checkpoint's
hyper-parameters, so ``Composite.load_from_checkpoint`` rebuilds the same objective.
"""

from __future__ import annotations

import importlib
import inspect
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hashbench.losses import TERMS, ScheduledTanh, Term


@dataclass
class WeightedTerm:
    """One entry of a composite objective: ``weight * term(**term.gather(context))``.

    Args:
        term: an objective term (YAML: ``class_path`` / ``init_args`` of a
            :class:`~hashbench.losses.Term` subclass, e.g. ``hashbench.losses.QuantizationLoss``).
        weight: its weight in the sum (finite).
        name: the name it is logged under (``train/<name>``); ``None`` = its key in
            :data:`hashbench.losses.TERMS` (``pairwise_likelihood``, ``quantization``, ...), with a
            numeric suffix when a name repeats.
    """

    term: Term
    weight: float = 1.0
    name: str | None = None


def default_terms() -> list[WeightedTerm]:
    """DPSH's objective, the default (same as ``configs/methods/dpsh.yaml``)."""
    from hashbench.losses import PairwiseLikelihoodLoss, QuantizationLoss

    return [
        WeightedTerm(PairwiseLikelihoodLoss(scale=0.5), 1.0, "pairwise_likelihood"),
        WeightedTerm(QuantizationLoss(), 0.002, "quantization"),
    ]


# -- serialiser: modules -> plain data ------------------------------------------------------------
def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _public_state(module: nn.Module) -> dict[str, Any]:
    return {
        k: v
        for k, v in vars(module).items()
        if not k.startswith("_")
        and k != "training"
        and not isinstance(v, (nn.Module, torch.Tensor))
    }


def module_spec(module: nn.Module) -> dict[str, Any]:
    """``{"class_path", "init_args"}`` of a term / relaxation, read from its attributes.

    The library's convention is that a term keeps each constructor argument under its own name;
    the spec is checked by rebuilding the module and comparing its public attributes.

    Raises:
        ValueError: when the module does not follow that convention (its spec would not rebuild it).
    """
    cls = type(module)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    init_args: dict[str, Any] = {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or not hasattr(module, p.name):
            raise ValueError(f"{cls.__name__} keeps no attribute {p.name!r} for its argument")
        init_args[p.name] = getattr(module, p.name)
    rebuilt = cls(**init_args)
    ours, theirs = _public_state(module), _public_state(rebuilt)
    if isinstance(module, ScheduledTanh):  # the step is training state, not configuration
        ours.pop("step", None)
        theirs.pop("step", None)
    if ours != theirs:
        raise ValueError(f"{cls.__name__}'s attributes do not rebuild it from {init_args}")
    return {"class_path": _class_path(cls), "init_args": init_args}


# -- parser: plain data -> modules ----------------------------------------------------------------
def _import_class(path: str, base: type, what: str) -> type:
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name) if module else None
    except (ImportError, AttributeError):
        cls = None
    if cls is None and base is Term and path in TERMS:
        cls = TERMS[path]
    if not (isinstance(cls, type) and issubclass(cls, base)):
        known = ", ".join(sorted(c.__name__ for c in TERMS.values())) if base is Term else ""
        raise ValueError(
            f"{what}: class_path {path!r} is not a {base.__name__} subclass"
            + (f"; use one of hashbench.losses.{{{known}}}" if known else "")
        )
    return cls


def build_module(spec: Any, base: type, what: str) -> Any:
    """A module from itself or a ``{"class_path", "init_args"}`` mapping."""
    if isinstance(spec, base):
        return spec
    if isinstance(spec, Mapping) and "class_path" in spec:
        cls = _import_class(str(spec["class_path"]), base, what)
        init_args = dict(spec.get("init_args") or {})
        try:
            return cls(**init_args)
        except TypeError as e:
            raise ValueError(f"{what}: cannot build {cls.__name__}({init_args}): {e}") from None
    raise ValueError(
        f"{what} must be a {base.__name__} or a mapping with class_path / init_args, got "
        f"{type(spec).__name__}"
    )


def coerce_terms(terms: Sequence[WeightedTerm | Mapping[str, Any]] | None) -> list[WeightedTerm]:
    """The ``terms`` argument as :class:`WeightedTerm` entries with built terms (``None`` = DPSH).

    Raises:
        ValueError: an entry is malformed, names an unknown class, or has a non-finite weight.
    """
    if terms is None:
        return default_terms()
    if isinstance(terms, (str, bytes, Mapping)) or not isinstance(terms, Sequence):
        raise ValueError(f"terms must be a list of {{weight, term}} entries, got {type(terms)}")
    out = []
    for i, entry in enumerate(terms):
        what = f"Composite terms[{i}]"
        if isinstance(entry, WeightedTerm):
            wt = WeightedTerm(build_module(entry.term, Term, what), entry.weight, entry.name)
        elif isinstance(entry, Mapping):
            unknown = set(entry) - {"term", "weight", "name"}
            if unknown or "term" not in entry:
                raise ValueError(
                    f"{what}: expected the keys term, weight, name; got {sorted(entry)}"
                )
            wt = WeightedTerm(
                build_module(entry["term"], Term, what),
                float(entry.get("weight", 1.0)),
                entry.get("name"),
            )
        else:
            raise ValueError(f"{what} must be a WeightedTerm or a mapping, got {type(entry)}")
        if not math.isfinite(float(wt.weight)):
            raise ValueError(f"{what}: weight must be finite, got {wt.weight!r}")
        out.append(wt)
    if not out:
        raise ValueError("Composite needs at least one term (terms: [...] is empty)")
    return out


def term_names(terms: list[WeightedTerm]) -> list[str]:
    """The names the terms are logged under: ``name``, else the :data:`~hashbench.losses.TERMS`
    key (else the class name), with ``_2``, ``_3``, ... on repeats."""
    keys = {cls: key for key, cls in TERMS.items()}
    names: list[str] = []
    for wt in terms:
        base = wt.name or keys.get(type(wt.term), type(wt.term).__name__)
        if not base.isidentifier() or base == "loss":
            raise ValueError(f"term name {base!r} must be an identifier other than 'loss'")
        name, k = base, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


# -- the terms hyper-parameter --------------------------------------------------------------------
def spec_or_object(module: nn.Module) -> Any:
    """:func:`module_spec` of ``module``, or (with a warning) the module itself when it has none."""
    try:
        return module_spec(module)
    except ValueError as e:
        warnings.warn(
            f"{e}; the checkpoint keeps the object itself (load it with weights_only=False)",
            stacklevel=3,
        )
        return module


def term_specs(
    objective: Sequence[nn.Module], weights: Sequence[float], weighted: Sequence[WeightedTerm]
) -> list[dict[str, Any]]:
    """The plain-data ``terms`` hyper-parameter: ``{"term": spec, "weight", "name"}`` per term."""
    return [
        {"term": spec_or_object(t), "weight": w, "name": wt.name}
        for t, w, wt in zip(objective, weights, weighted, strict=True)
    ]


__all__ = [
    "WeightedTerm",
    "build_module",
    "coerce_terms",
    "default_terms",
    "module_spec",
    "spec_or_object",
    "term_names",
    "term_specs",
]
