"""Named, seeded split presets (PROTOCOL.md, "Splits"; ``docs/protocol.md``).

A protocol splits a dataset into ``train``, ``val_query``, ``val_database``, ``query`` and ``database``.
The split is drawn once per (protocol, seed), written to ``<split_dir>/<protocol>-seed<k>.npz`` with a
fingerprint of the dataset (size and label hash) and the layout version (:data:`SPLIT_VERSION`), and
reused; a changed dataset under an existing split file is a :class:`SplitMismatchError`, never a
silent new split, and a file of an older layout is redrawn with a one-line note.

Drawing order (layout 2): ``query`` first, then ``train`` from what is left, then ``val_query`` -
held out: drawn from the same side as ``train`` and stratified the same way (``val_fraction`` of the
train count, per class when ``train`` is per class, at least one), from items in neither ``train``
nor ``query``. Where ``train`` takes every item of its side (``cifar10-50k``), ``val_query`` is taken
out of it first and ``train`` shrinks. ``database`` follows :attr:`Protocol.database`.
``val_database`` is ``train`` when the database contains the training items, else a seeded sample
(as many items as ``train``) of the database without ``query`` and ``val_query``. No method trains
on ``val_query``, with or without labels.

Per-class draws on multi-label data take, for each class in turn, items carrying that class that were
not drawn yet (so "100 per concept" gives at most 100 x classes distinct items).

Interpretation: where PROTOCOL.md says the database is "the rest", it is every item not in ``query``
(the training and validation items included), as for ``fashion-mnist-69k``; ``cifar10-54k`` is the
one preset whose database excludes the training items. ``query``, ``train`` and ``database`` are the
same as in layout 1 except for ``cifar10-50k``'s ``train`` (less its ``val_query``).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from hashbench.files import atomic_path
from hashbench.registry import Registry

SPLITS = ("train", "val_query", "val_database", "query", "database")
#: Layout version of a split file. 1: validation drawn inside ``train`` (in-sample; superseded).
#: 2: ``val_query`` held out of ``train`` and ``query``.
SPLIT_VERSION = 2
Source = Literal["train", "test", "any"]


class SplitMismatchError(RuntimeError):
    """The dataset on disk no longer matches the one a saved split was drawn from."""


class SplitTooSmallError(ValueError):
    """The dataset does not hold enough items for one of the protocol's sets; the message says which
    class lacks how many."""


@dataclass(frozen=True)
class Draw:
    """How one set is drawn: ``count`` items (per class when ``per_class``) from ``source``.

    ``count=None`` takes every remaining item of ``source``.
    """

    count: int | None
    per_class: bool = False
    source: Source = "any"


@dataclass(frozen=True)
class Protocol:
    """A split preset. ``k`` is the metric depth (``None`` = the whole database).

    ``top_labels`` keeps only the most frequent labels (and the items carrying one of them), as
    NUS-WIDE-21 does.
    """

    name: str
    query: Draw
    train: Draw
    database: Literal["rest", "rest_minus_train", "train"]
    k: int | None = None
    top_labels: int | None = None
    val_fraction: float = 0.1
    description: str = ""


#: The split presets, by name (a :class:`~hashbench.registry.Registry`).
PROTOCOLS: Registry[Protocol] = Registry("protocol")


def register_protocol(protocol: Protocol) -> Protocol:
    """Add a preset to :data:`PROTOCOLS` under its ``name``.

    Args:
        protocol: the preset; its name must be new.

    Returns:
        ``protocol``.

    Raises:
        ValueError: a preset of that name is already registered.
    """
    PROTOCOLS.register(protocol.name, protocol)
    return protocol


def get_protocol(name: str) -> Protocol:
    """The preset called ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered (a ``ValueError`` listing the known names).
    """
    return PROTOCOLS.get(name)


for _p in (
    Protocol(
        "cifar10-54k",
        Draw(100, True),
        Draw(500, True),
        "rest_minus_train",
        k=54000,
        description="1,000 query / 5,000 train / the other 54,000 as database",
    ),
    Protocol(
        "cifar10-59k",
        Draw(100, True),
        Draw(500, True),
        "rest",
        description="1,000 query / 5,000 train / all 59,000 non-query as database",
    ),
    Protocol(
        "cifar10-50k",
        Draw(None, source="test"),
        Draw(None, source="train"),
        "train",
        k=1000,
        description="the 10,000 test images as queries against the 50,000 training images",
    ),
    Protocol(
        "fashion-mnist-69k",
        Draw(100, True, "test"),
        Draw(500, True, "train"),
        "rest",
        description="100 per class test queries / 500 per class train / 69,000 database",
    ),
    Protocol(
        "mnist-69k",
        Draw(100, True, "test"),
        Draw(500, True, "train"),
        "rest",
        description="100 per class test queries / 500 per class train / 69,000 database",
    ),
    Protocol(
        "nus-wide-21",
        Draw(100, True),
        Draw(500, True),
        "rest",
        k=5000,
        top_labels=21,
        description="21 most frequent concepts: 100 per concept query / 500 per concept train",
    ),
    Protocol(
        "nus-wide-81",
        Draw(5000),
        Draw(10000),
        "rest",
        k=5000,
        description="5,000 random query / 10,000 train / the rest as database",
    ),
    Protocol(
        "svhn",
        Draw(100, True, "test"),
        Draw(500, True, "train"),
        "rest",
        description="100 per class test queries / 500 per class train / the rest as database",
    ),
    Protocol(
        "tiny",
        Draw(10, True, "test"),
        Draw(50, True, "train"),
        "rest",
        description="10 per class query / 50 per class train: smoke tests and quick looks",
    ),
):
    register_protocol(_p)


def fingerprint(labels: np.ndarray, source: np.ndarray | None = None) -> str:
    """Dataset fingerprint stored with a split: item count, label shape, a hash of labels and sides."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    h = hashlib.sha1(labels.tobytes())
    if source is not None:
        h.update("\n".join(map(str, source)).encode())
    return f"n={labels.shape[0]};classes={labels.shape[1]};sha1={h.hexdigest()[:16]}"


def _candidates(pool: np.ndarray, source: np.ndarray, want: Source) -> np.ndarray:
    if want == "any" or not np.isin(want, source).any():
        return pool
    return pool[source[pool] == want]


def _class_name(class_names: list[str] | None, c: int) -> str:
    return repr(class_names[c]) if class_names is not None and c < len(class_names) else str(c)


def _draw(
    rule: Draw,
    pool: np.ndarray,
    labels: np.ndarray,
    source: np.ndarray,
    rng: np.random.Generator,
    what: str,
    class_names: list[str] | None = None,
) -> np.ndarray:
    cand = _candidates(pool, source, rule.source)
    if rule.count is None:
        return np.sort(cand)
    if not rule.per_class:
        if rule.count > len(cand):
            raise SplitTooSmallError(
                f"{what}: needs {rule.count} items but only {len(cand)} are available "
                f"(lacks {rule.count - len(cand)})"
            )
        return np.sort(rng.choice(cand, size=rule.count, replace=False))
    taken = np.zeros(labels.shape[0], dtype=bool)
    for c in range(labels.shape[1]):
        have = cand[(labels[cand, c] > 0) & ~taken[cand]]
        if len(have) < rule.count:
            raise SplitTooSmallError(
                f"{what}: class {_class_name(class_names, c)} has {len(have)} available items, the "
                f"protocol needs {rule.count} per class (lacks {rule.count - len(have)})"
            )
        taken[rng.choice(have, size=rule.count, replace=False)] = True
    return np.flatnonzero(taken)


def val_rule(protocol: Protocol, n_train: int) -> Draw:
    """How ``val_query`` is drawn: ``train``'s side and stratification, ``val_fraction`` of its count."""
    rule = protocol.train
    per = rule.count if rule.count is not None else n_train
    count = max(1, int(round(protocol.val_fraction * per)))
    return Draw(count, rule.per_class, rule.source)


def draw_split(
    protocol: Protocol,
    labels: np.ndarray,
    source: np.ndarray,
    seed: int,
    class_names: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Draw the five sets of ``protocol`` (sorted ``int64`` item indices) with ``seed`` (layout 2).

    Args:
        protocol: the preset.
        labels: multi-hot ``(n, c)`` labels (after any ``top_labels`` restriction).
        source: ``(n,)`` strings ``"train"`` / ``"test"`` giving each item's official side.
        seed: the split seed.
        class_names: named in the error when a class has too few items.

    Raises:
        SplitTooSmallError: a set cannot be drawn (names the set, the class and how many it lacks).
    """
    rng = np.random.default_rng(seed)
    n = labels.shape[0]
    pool = np.flatnonzero(labels.any(axis=1)) if protocol.top_labels else np.arange(n)
    name = protocol.name
    query = _draw(protocol.query, pool, labels, source, rng, f"{name} query", class_names)
    left = np.setdiff1d(pool, query)
    train = _draw(protocol.train, left, labels, source, rng, f"{name} train", class_names)
    rule = val_rule(protocol, len(train))
    if protocol.train.count is None:  # train took its whole side: hold val_query out of it
        val_query = _draw(rule, train, labels, source, rng, f"{name} val_query", class_names)
        train_side, train = train, np.setdiff1d(train, val_query)
    else:
        held_out = np.setdiff1d(left, train)
        val_query = _draw(rule, held_out, labels, source, rng, f"{name} val_query", class_names)
        train_side = train
    if protocol.database == "rest":
        database = left
    elif protocol.database == "rest_minus_train":
        database = np.setdiff1d(left, train)
    else:
        database = train_side
    if np.isin(train, database).all():
        val_database = train
    else:
        side = np.setdiff1d(database, val_query)
        size = min(len(train), len(side))
        val_database = np.sort(rng.choice(side, size=size, replace=False))
    out = dict(
        train=train, val_query=val_query, val_database=val_database, query=query, database=database
    )
    return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}


def split_path(split_dir: str | os.PathLike, protocol: str, seed: int) -> Path:
    """Where the split of ``protocol`` with ``seed`` is stored."""
    return Path(split_dir) / f"{protocol}-seed{seed}.npz"


def _stderr(message: str) -> None:
    print(f"hashbench: {message}", file=sys.stderr, flush=True)


def load_or_create_split(
    split_dir: str | os.PathLike,
    protocol: Protocol,
    labels: np.ndarray,
    source: np.ndarray,
    seed: int,
    class_names: list[str] | None = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """Load the saved split, or draw and save it atomically on first use.

    A saved file of an older layout (:data:`SPLIT_VERSION`) is redrawn with a one-line note
    (``echo``, default: standard error): its validation sets were drawn inside ``train``.

    Raises:
        SplitMismatchError: the saved split was drawn from a different dataset, or is unreadable.
        SplitTooSmallError: the dataset cannot hold the protocol's sets.
    """
    path = split_path(split_dir, protocol.name, seed)
    fp = fingerprint(labels, source)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                saved_fp = str(f["fingerprint"])
                version = int(f["version"]) if "version" in f.files else 1
                split = (
                    {k: f[k].astype(np.int64) for k in SPLITS} if version == SPLIT_VERSION else None
                )
        except Exception as e:  # noqa: BLE001 - any read failure means a corrupt file
            raise SplitMismatchError(
                f"split file {path} is unreadable ({e}); delete it to draw the split again"
            ) from e
        if saved_fp != fp:
            raise SplitMismatchError(
                f"the dataset changed since the split {path} was drawn (saved: {saved_fp}; now: {fp}). "
                f"Restore the original dataset, or delete {path} to draw a new split "
                "(results made with the old split are then not comparable)."
            )
        if split is not None:
            return split
        if version > SPLIT_VERSION:
            raise SplitMismatchError(
                f"split file {path} has layout {version}, newer than this hashbench "
                f"({SPLIT_VERSION}); upgrade hashbench or delete the file"
            )
        note = (
            f"split file {path} has layout {version} (validation inside train); redrawing it "
            f"with layout {SPLIT_VERSION} (held-out val_query)"
        )
        (echo or _stderr)(note)
    split = draw_split(protocol, labels, source, seed, class_names)
    with atomic_path(path, suffix=".npz.tmp") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, fingerprint=np.array(fp), version=np.array(SPLIT_VERSION), **split)
    return split
