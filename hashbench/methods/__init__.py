"""Deep hashing methods and their registry.

:data:`METHODS` (a :class:`~hashbench.registry.Registry`) maps a method's key to its class,
registered by class path and imported on first use (``METHODS.path(key)`` is that path, the
``class_path`` of ``configs/methods/<key>.yaml``). Tests iterate over this registry, so a new
method is checked the day it is added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hashbench.registry import Registry

if TYPE_CHECKING:
    from hashbench.methods.base import HashingMethod

METHODS: Registry[type[HashingMethod]] = Registry(
    "method",
    {
        "dsh": "hashbench.methods.dsh.DSH",
        "dhih": "hashbench.methods.dhih.DHIH",
        "pcaegan": "hashbench.methods.pcaegan.PCAEGAN",
        "pcwgan": "hashbench.methods.pcaegan.PCWGAN",
        "dch": "hashbench.methods.pcaegan.DCH",
        **{k: "hashbench.methods.composite.Composite" for k in ("composite", "dpsh", "dhn")},
        **{k: "hashbench.methods.knngan.KNNGAN" for k in ("knngan", "knngan_nogan")},
        "drsch": "hashbench.methods.drsch.DRSCH",
        **{k: "hashbench.methods.wsdh.WSDH" for k in ("wsdh", "wsdrsch")},
    },
)


def method_class(key: str) -> type[HashingMethod]:
    """The class registered under ``key`` (imported on demand).

    Raises:
        UnknownNameError: ``key`` is not registered (a ``ValueError`` listing the keys).
    """
    return METHODS.get(key)


def import_all() -> None:
    """Import every registered method (so the CLI can resolve short class names)."""
    for key in METHODS:
        METHODS.get(key)


def load_method(ckpt_path: str, map_location: str = "cpu"):
    """A trained method restored from a Lightning checkpoint written by ``hashbench fit``.

    Raises:
        FileNotFoundError: no file at ``ckpt_path``.
    """
    from pathlib import Path

    import torch

    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(
            f"checkpoint {ckpt_path} not found; `hashbench fit` prints the best checkpoint's path "
            "(under <default_root_dir>/lightning_logs/version_*/checkpoints/)"
        )
    hparams = torch.load(ckpt_path, map_location="cpu", weights_only=False).get(
        "hyper_parameters", {}
    )
    class_path = hparams.get("_class_path")
    by_path = {path: key for key in METHODS if (path := METHODS.path(key))}
    if class_path not in by_path:
        raise ValueError(
            f"checkpoint {ckpt_path} holds {class_path or 'no method class'}, not a registered "
            f"method ({', '.join(sorted(by_path))})"
        )
    cls = METHODS.get(by_path[class_path])
    return cls.load_from_checkpoint(ckpt_path, map_location=map_location).eval()
