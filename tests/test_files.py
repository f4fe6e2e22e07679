"""Atomic writes (hashbench.files): the destination is complete or untouched, never half-written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hashbench import files


def test_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"  # the folder is created
    files.write_text_atomic(target, "one\n")
    assert target.read_text() == "one\n"
    files.write_bytes_atomic(target, b"two", fsync=True)
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]  # no temporary left


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="writer died"):
        with files.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_temporary_is_beside_the_target_with_the_suffix(tmp_path: Path) -> None:
    target = tmp_path / "split.npz"
    with files.atomic_path(target, suffix=".npz.tmp") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".split.npz.") and tmp.name.endswith(".npz.tmp")
        assert not target.exists()  # nothing at the destination until the block succeeds
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_get_the_users_umask_not_0600(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        files.write_text_atomic(tmp_path / "record.json", "{}")
        with files.atomic_path(tmp_path / "codes.npy") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    for name in ("record.json", "codes.npy"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask
