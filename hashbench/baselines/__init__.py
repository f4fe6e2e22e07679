"""Shallow hashing baselines: sklearn-style estimators on feature vectors (see BASELINES.md).

Every baseline subclasses :class:`~hashbench.baselines.base.Hasher`
(``fit(X, y=None) -> self``, ``project(X)``, ``encode(X)``). :data:`BASELINES` (a
:class:`~hashbench.registry.Registry`) maps the benchmark key to the class; :data:`SUPERVISED`
holds the keys whose ``fit`` needs labels.
"""

from __future__ import annotations

from hashbench.baselines.base import Hasher, NotFittedError
from hashbench.baselines.itq import ITQ
from hashbench.baselines.itq_cca import ITQCCA
from hashbench.baselines.ksh import KSH
from hashbench.baselines.lsh import LSH
from hashbench.baselines.pcah import PCAH
from hashbench.baselines.sdh import SDH
from hashbench.baselines.sh import SH
from hashbench.baselines.sph import SpH, spherical_hamming_distances
from hashbench.baselines.ws_ksh import WSKSH
from hashbench.registry import Registry

BASELINES: Registry[type[Hasher]] = Registry(
    "baseline",
    {
        "lsh": LSH,
        "pcah": PCAH,
        "sh": SH,
        "itq": ITQ,
        "sph": SpH,
        "itq_cca": ITQCCA,
        "ksh": KSH,
        "sdh": SDH,
        "ws_ksh": WSKSH,  # KSH on the WSDH stage-1 network's features (seed 002)
    },
)

SUPERVISED: frozenset[str] = frozenset(k for k, cls in BASELINES.items() if cls.supervised)


def get_baseline(name: str) -> type[Hasher]:
    """The baseline class registered under ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered (a ``KeyError`` listing the choices).
    """
    return BASELINES.get(name)


def builds_on_deep_method(name: str) -> bool:
    """Whether baseline ``name`` reads a deep method's output (an ``input_features(datamodule)``
    hook, e.g. ``ws_ksh`` on ``wsdh``'s stage 1) rather than the grid's features: the sweep runs it
    after the deep cells, and the shallow-baseline claim groups leave it out."""
    return hasattr(get_baseline(name), "input_features")


__all__ = [
    "builds_on_deep_method",
    "BASELINES",
    "SUPERVISED",
    "Hasher",
    "NotFittedError",
    "LSH",
    "PCAH",
    "SH",
    "ITQ",
    "SpH",
    "ITQCCA",
    "KSH",
    "SDH",
    "WSKSH",
    "get_baseline",
    "spherical_hamming_distances",
]
