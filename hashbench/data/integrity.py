"""Unreadable image files, found when a dataset is read rather than in the middle of a run.

Datasets read from image files (:mod:`~hashbench.data.image_folder`,
:mod:`~hashbench.data.image_list`, :mod:`~hashbench.data.nus_wide`) call :func:`drop_unreadable`
where they list their files. Every file is opened and decoded once (JPEG at its smallest draft
scale, which still reads every byte, so a truncated file fails); files that fail are left out and
counted in one warning (:class:`CorruptImagesWarning`), like missing files, and the split is drawn
without them. Without this a damaged database image stops the run at test time, after training.

The result is cached in ``<cache_dir>/image-check.json`` under a digest of every file's path, size
and modification time, so the check runs once per state of the files: a second run, another cell of
a sweep or another rank reads the cache; changing, adding or removing a file checks again.

The check also reports the most common image size, which is the "native" size that
``image_size: null`` resolves to (:func:`native_side`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from hashbench.data.base import CorruptDatasetError
from hashbench.files import write_text_atomic

CACHE_NAME = "image-check.json"
CACHE_VERSION = 1
#: States kept in one cache file (several lists can share a folder, e.g. NUS-WIDE-21 and -81).
CACHE_STATES = 8
#: Files named in the warning; the rest are counted.
SHOWN = 5
#: Above this many files the check says what it is doing (it can take minutes once).
ANNOUNCE_ABOVE = 5000
#: Largest side ``image_size: null`` resolves to (the backbones' input size).
NATIVE_SIDE_CAP = 224


class CorruptImagesWarning(UserWarning):
    """Some image files cannot be decoded and were left out of the dataset."""


@dataclass
class ImageCheck:
    """What :func:`check_images` found.

    Attributes:
        bad: path -> why it cannot be read, for each unreadable file.
        size: the most common ``(width, height)`` of the readable files (``None`` if none).
        cached: whether the result came from the cache.
    """

    bad: dict[str, str] = field(default_factory=dict)
    size: tuple[int, int] | None = None
    cached: bool = False


def check_image(path: str) -> tuple[str | None, tuple[int, int] | None]:
    """``(None, (width, height))`` for a decodable image file, else ``(reason, None)``."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            size = im.size
            im.draft("RGB", (1, 1))  # JPEG: smallest scale; the whole file is still decoded
            im.load()
        return None, (int(size[0]), int(size[1]))
    except Exception as e:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, ...
        return f"{type(e).__name__}: {e}", None


def files_state(paths: Sequence[str]) -> str:
    """A digest of each file's path, size and modification time (the cache key)."""
    digest = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
            digest.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{p}\t-\n".encode())
    return digest.hexdigest()


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    states = data.get("states")
    return states if isinstance(states, dict) else {}


def _write_cache(path: Path, states: dict) -> None:
    kept = dict(list(states.items())[-CACHE_STATES:])
    try:
        write_text_atomic(path, json.dumps({"version": CACHE_VERSION, "states": kept}) + "\n")
    except OSError:
        pass  # a read-only dataset folder: the check runs again next time


def _workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def check_images(paths: Sequence[str], cache_dir: str | os.PathLike | None) -> ImageCheck:
    """Decode every file of ``paths`` once per state of the files (cached under ``cache_dir``).

    Args:
        paths: image files (all of them exist; missing files are the caller's to leave out).
        cache_dir: where ``image-check.json`` is kept; ``None`` checks without a cache.
    """
    paths = list(paths)
    cache = Path(cache_dir) / CACHE_NAME if cache_dir is not None else None
    state = files_state(paths)
    states = _read_cache(cache) if cache is not None else {}
    hit = states.get(state)
    if isinstance(hit, dict):
        size = hit.get("size")
        return ImageCheck(dict(hit.get("bad", {})), tuple(size) if size else None, cached=True)
    if len(paths) > ANNOUNCE_ABOVE:
        rank_zero_info(
            f"checking that {len(paths)} image files decode (once; the result is cached in "
            f"{cache or 'memory only'})"
        )
    if len(paths) > 64:
        with ThreadPoolExecutor(_workers()) as pool:  # PIL decodes without holding the GIL
            results = list(pool.map(check_image, paths, chunksize=64))
    else:
        results = [check_image(p) for p in paths]
    bad = {p: reason for p, (reason, _) in zip(paths, results, strict=True) if reason}
    sizes = Counter(size for _, size in results if size is not None)
    size = max(sizes.items(), key=lambda kv: (kv[1], kv[0]))[0] if sizes else None
    if cache is not None:
        states.pop(state, None)
        states[state] = {"bad": bad, "size": list(size) if size else None, "n": len(paths)}
        _write_cache(cache, states)
    return ImageCheck(bad, size)


def drop_unreadable(
    paths: Sequence[str],
    cache_dir: str | os.PathLike | None,
    where: str,
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, ImageCheck]:
    """Which of ``paths`` decode, as a boolean mask, warning once about those that do not.

    Args:
        paths: the image files (all existing).
        cache_dir: see :func:`check_images`.
        where: the dataset, for the messages (``"image folder data/x"``).
        names: how to show each file (e.g. relative to the dataset root); default the paths.

    Raises:
        CorruptDatasetError: no file decodes.
    """
    check = check_images(paths, cache_dir)
    keep = np.fromiter((p not in check.bad for p in paths), dtype=bool, count=len(paths))
    if not check.bad:
        return keep, check
    shown_names = list(names) if names is not None else list(paths)
    bad = [(shown_names[i], check.bad[paths[i]]) for i in np.flatnonzero(~keep)]
    first = "; ".join(f"{name} ({reason})" for name, reason in bad[:SHOWN])
    more = f"; and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    if not keep.any():
        raise CorruptDatasetError(
            f"none of the {len(paths)} image files of {where} can be decoded: {first}{more}. "
            "Check that the files are images (jpg, png, ...) and were copied completely."
        )
    rank_zero_warn(
        f"{len(bad)} of {len(paths)} image files of {where} cannot be decoded and are left out: "
        f"{first}{more}. Replace or delete them; the split is drawn without them, and the check "
        f"runs again when files change.",
        category=CorruptImagesWarning,
    )
    return keep, check


def native_side(check: ImageCheck, paths: Sequence[str]) -> int:
    """The side ``image_size: null`` resolves to: the larger side of the most common image size,
    at most :data:`NATIVE_SIDE_CAP` (224)."""
    size = check.size
    if size is None:  # no check ran: the first readable file decides
        size = next((s for p in paths[:32] if (s := check_image(p)[1]) is not None), (224, 224))
    return max(1, min(NATIVE_SIDE_CAP, max(size)))
