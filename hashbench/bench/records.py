"""One JSON record per benchmark cell (dataset, method, bits, seed), written atomically.

Layout::

    <results>/raw/<benchmark>/<profile>/<method>/<bits>bits-seed<seed>.json.gz

gzip-compressed JSON (``mtime`` 0, so the same record gives the same bytes); readers also accept
plain ``.json`` files. A record holds the cell's status (``ok`` or ``failed``), its full resolved configuration and a hash
of it (:func:`config_hash`), the PROTOCOL.md metrics (scalars under ``metrics``, curves as lists
under ``curves``, and under ``per_query`` the per-query values of :data:`PER_QUERY_KEYS` that the
claims' paired bootstrap resamples, in dataset-index order of the queries), wall times, peak memory, the device, library versions and the git commit. Tables
and figures are built from these files only (:mod:`hashbench.bench.leaderboard`).

Files are written to a temporary file in the same folder (``.<name>.<random>.tmp``) and renamed
into place (:func:`write_record`), so a reader never sees half a record; a temporary file left by a
killed process is ignored by readers and removed when its cell runs again.

This module imports no torch at import time: the leaderboard reads records without it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hashbench import files

#: Version of the record format; bump it when a field changes meaning.
#: 2: gzip-compressed, profile folder, ``per_query`` values, ``config.code`` fingerprint.
RECORD_VERSION = 2

#: Metrics whose per-query values a record keeps (those the claims judge), where computed.
PER_QUERY_KEYS = ("mAP@k", "mAP@H<=2", "P@H<=2", "R@H<=2", "P@500")

#: Decimals kept of a per-query value (1e-6 is far below any query's weight in a mean).
PER_QUERY_DECIMALS = 6

#: File name suffix of a record.
RECORD_SUFFIX = ".json.gz"

#: Suffix of the temporary files :func:`write_record` renames into place.
TMP_SUFFIX = files.TMP_SUFFIX


# -- paths ------------------------------------------------------------------------------------------
def raw_dir(results: str | os.PathLike) -> Path:
    """The folder holding every record: ``<results>/raw``."""
    return Path(results) / "raw"


def record_path(
    results: str | os.PathLike,
    benchmark: str,
    method: str,
    bits: int,
    seed: int,
    profile: str = "default",
) -> Path:
    """Where the record of one cell lives:
    ``<results>/raw/<benchmark>/<profile>/<method>/<b>bits-seed<s>.json.gz``."""
    return raw_dir(results) / benchmark / profile / method / f"{bits}bits-seed{seed}{RECORD_SUFFIX}"


def per_query_values(result: dict) -> dict[str, list[float]]:
    """The ``per_query/<key>`` arrays of an :func:`~hashbench.retrieval.metrics.evaluate` result
    for the keys of :data:`PER_QUERY_KEYS` (``mAP@k``: the result's mAP at the preset's depth),
    rounded to :data:`PER_QUERY_DECIMALS` decimals."""
    out = {}
    for key, value in result.items():
        if not str(key).startswith("per_query/"):
            continue
        name = str(key)[len("per_query/") :]
        wanted = name in PER_QUERY_KEYS or (
            name.startswith("mAP@") and not name.startswith("mAP@H") and "mAP@k" in PER_QUERY_KEYS
        )
        if wanted:
            out[name] = [round(float(v), PER_QUERY_DECIMALS) for v in value]
    return dict(sorted(out.items()))


def temp_files(path: Path) -> list[Path]:
    """Temporary files a (killed) writer of ``path`` left behind, sorted."""
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{path.name}.*{TMP_SUFFIX}"))


# -- JSON -------------------------------------------------------------------------------------------
def to_jsonable(obj: Any) -> Any:
    """``obj`` with numpy arrays as lists, numpy scalars as Python numbers, paths as strings.

    Non-finite floats become ``None`` (JSON has no NaN).
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return str(obj)
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars, torch tensors
    if callable(tolist):
        return to_jsonable(tolist())
    return str(obj)


def canonical_json(obj: Any) -> str:
    """Compact JSON with sorted keys: the same data always gives the same string."""
    return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(config: dict) -> str:
    """SHA-256 (first 16 hex digits) of a cell's configuration in canonical JSON."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def write_record(path: str | os.PathLike, record: dict) -> Path:
    """Write ``record`` as JSON at ``path`` atomically (temporary file in the same folder, then rename).

    Leftover temporary files of earlier, killed writers of the same record are removed first.
    """
    path = Path(path)
    for stale in temp_files(path):
        stale.unlink(missing_ok=True)
    text = json.dumps(to_jsonable(record), sort_keys=True, indent=1, allow_nan=False) + "\n"
    if path.name.endswith(".gz"):
        files.write_bytes_atomic(path, gzip.compress(text.encode(), mtime=0), fsync=True)
    else:
        files.write_text_atomic(path, text, fsync=True)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    files.write_text_atomic(path, text)
    return path


def read_record(path: str | os.PathLike) -> dict | None:
    """The record at ``path``; ``None`` when it is missing or unreadable (a warning says which)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        record = json.loads(data.decode("utf-8"))
    except (OSError, ValueError, EOFError) as e:
        warnings.warn(f"ignoring unreadable benchmark record {path}: {e}", stacklevel=2)
        return None
    if not isinstance(record, dict):
        warnings.warn(f"ignoring benchmark record {path}: not a JSON object", stacklevel=2)
        return None
    return record


def load_records(results: str | os.PathLike) -> list[dict]:
    """Every record under ``<results>/raw`` (ok and failed), in sorted path order.

    Temporary files are skipped. Each record gets ``_path`` (relative to ``results``, POSIX).
    """
    root = raw_dir(results)
    out = []
    paths = sorted([*root.rglob("*.json"), *root.rglob("*.json.gz")]) if root.is_dir() else []
    for path in paths:
        if path.name.startswith("."):
            continue
        record = read_record(path)
        if record is not None:
            record["_path"] = path.relative_to(Path(results)).as_posix()
            out.append(record)
    return out


# -- environment ------------------------------------------------------------------------------------
def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None
    return str(getattr(mod, "__version__", "unknown"))


def versions() -> dict[str, str | None]:
    """Versions of Python and the libraries that decide the numbers."""
    from hashbench import __version__

    return {
        "python": platform.python_version(),
        "hashbench": __version__,
        "torch": _version("torch"),
        "lightning": _version("lightning"),
        "faiss": _version("faiss"),
        "numpy": _version("numpy"),
    }


def git_commit(repo: str | os.PathLike | None = None) -> dict[str, Any]:
    """``{"commit": <git rev-parse HEAD> or "unknown", "dirty": bool | None}``.

    ``dirty``: a tracked file outside ``results/`` differs from ``HEAD`` (the records a sweep
    rewrites are its output, not its code). Read-only git calls; ``status`` runs with
    ``--no-optional-locks`` so it never refreshes the index (no lock taken while others use the
    repository).
    """
    cwd = Path(repo) if repo is not None else Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {"commit": "unknown", "dirty": None}
        status = subprocess.run(
            [
                "git",
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)results",
            ],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=30,
        )
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        return {"commit": commit.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: str | None = None) -> dict[str, Any]:
    """Where a cell ran: ``device`` (``cpu`` / ``cuda:0``), its name, CPU model and core count."""
    info: dict[str, Any] = {
        "device": device or "cpu",
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        if device and device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    info["name"] = info.get("gpu") or f"{info['cpu']} ({info['cpu_count']} cores)"
    return info


UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (``2026-01-31T12:00:00Z``)."""
    return datetime.now(timezone.utc).strftime(UTC_FORMAT)


# -- peak memory ------------------------------------------------------------------------------------
class PeakMemory:
    """Peak memory of one cell: resident set (``getrusage``) and CUDA allocations.

    :meth:`reset` clears the kernel's RSS high-water mark (Linux ``/proc/self/clear_refs``, value 5)
    and torch's CUDA peak statistics, so :meth:`read` gives the cell's own peak; where the reset is
    not possible ``rss_scope`` says ``process`` (the peak since the process started).
    """

    def __init__(self) -> None:
        self.scope = "process"

    def reset(self) -> None:
        """Start a new measurement."""
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.scope = "cell"
        except OSError:
            self.scope = "process"
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def read(self) -> dict[str, Any]:
        """``peak_rss_mb`` (``ru_maxrss``), ``rss_scope`` and ``cuda_peak_mb`` (``None`` without CUDA)."""
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform == "darwin":  # bytes there
            rss_kb /= 1024
        cuda = None
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            cuda = torch.cuda.max_memory_allocated() / 2**20
        return {"peak_rss_mb": rss_kb / 1024, "rss_scope": self.scope, "cuda_peak_mb": cuda}
