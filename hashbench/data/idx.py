"""IDX files (the MNIST family's format), plain or gzip-compressed.

Layout: a 4-byte magic ``0x00 0x00 <dtype> <ndim>`` (dtype ``0x08`` = unsigned byte), ``ndim``
big-endian ``uint32`` sizes, then the data in C order.
"""

from __future__ import annotations

import gzip
import os
import urllib.request
from pathlib import Path

import numpy as np

from hashbench.data.base import CorruptDatasetError, DatasetNotFoundError
from hashbench.files import atomic_path


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX ``uint8`` array from ``path`` (``.gz`` or plain)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise CorruptDatasetError(f"{path} cannot be read ({e}); download it again") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise CorruptDatasetError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptDatasetError(f"{path} is truncated inside its IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise CorruptDatasetError(
            f"{path}: the IDX header promises {expected} bytes of shape {shape} but the file holds "
            f"{len(data) - header}; the file is truncated or corrupt - download it again"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a ``uint8`` array as IDX (gzip when the name ends in ``.gz``); used by test fixtures."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def find_or_fetch(
    name: str, roots: list[Path], base_url: str | None, dest: Path, how_to_get: str
) -> Path:
    """Path of file ``name`` (or its un-gzipped form) in the first of ``roots`` that has it.

    If none has it and ``base_url`` is given, download ``base_url + name`` into ``dest`` (atomic);
    when that fails (e.g. offline), raise :class:`DatasetNotFoundError` with ``how_to_get``.
    """
    for root in roots:
        for candidate in (root / name, root / name.removesuffix(".gz")):
            if candidate.is_file():
                return candidate
    searched = ", ".join(str(r) for r in roots)
    if base_url is None:
        raise DatasetNotFoundError(f"{name} not found in {searched}.\n{how_to_get}")
    try:
        with (
            atomic_path(dest / name, suffix=".part") as tmp,
            open(tmp, "wb") as out,
            urllib.request.urlopen(base_url + name, timeout=15) as r,
        ):
            out.write(r.read())
        return dest / name
    except Exception as e:  # noqa: BLE001 - offline, DNS, HTTP: all mean "get it by hand"
        raise DatasetNotFoundError(
            f"{name} not found in {searched}, and downloading {base_url + name} failed ({e}).\n"
            f"{how_to_get}"
        ) from None
