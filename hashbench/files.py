"""Atomic file writes: nothing half-written is ever left at the destination.

Every writer in hashbench (records, splits, feature caches, codes, indexes, figures, checkpoints of
stage 1) goes through :func:`atomic_path`: the content is written to a temporary file in the
destination's folder (same file system), then renamed over the destination with ``os.replace``,
which is atomic on POSIX and Windows. A writer that raises or is killed leaves at most a temporary
file (``.<name>.*<suffix>``), never a truncated destination. The file gets the mode a plain
``open(path, "w")`` would give it (``0666`` less the process umask), not ``mkstemp``'s ``0600``, so
records, leaderboards, splits and codes are as readable as any other file the user writes.

This module sits at the bottom of the layers (standard library only): every package may use it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The suffix every temporary file of :func:`atomic_path` ends with (unless a caller passes one).
TMP_SUFFIX = ".tmp"


@contextmanager
def atomic_path(
    path: str | os.PathLike, suffix: str = TMP_SUFFIX, fsync: bool = False
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit rename it to ``path``.

    The caller writes the temporary file (by name: ``np.savez``, ``torch.save``, ``fig.savefig``,
    ``faiss.write_index_binary`` all take a path); on an exception the temporary file is removed and
    ``path`` is untouched. The destination's folder is created if needed.

    Args:
        path: the destination.
        suffix: the temporary file's suffix (some writers pick the format from it).
        fsync: flush the file's data to disk before the rename (for records that must survive a
            power loss, not only a killed process).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    tmp = Path(name)
    try:
        try:
            if hasattr(os, "fchmod"):  # POSIX; Windows has no umask to honour
                os.fchmod(fd, 0o666 & ~current_umask())
        finally:
            os.close(fd)
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (briefly process-wide)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str, fsync: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")


def write_bytes_atomic(path: str | os.PathLike, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
