"""Input checks of :mod:`hashbench.retrieval.metrics`: codes, labels and options, with the fix in
every message."""

from __future__ import annotations

import numpy as np

from hashbench.retrieval.codes import as_numpy, looks_unpacked


def _to_numpy(x: object, name: str) -> np.ndarray:
    try:
        return as_numpy(x)
    except Exception as err:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from err


def _check_codes(codes: object, name: str) -> np.ndarray:
    codes = _to_numpy(codes, name)
    if codes.dtype != np.uint8 or codes.ndim != 2:
        raise ValueError(
            f"{name} must be packed codes, a 2-d uint8 array (items, bits/8), got {codes.dtype} "
            f"{codes.shape}; pack bits with hashbench.retrieval.codes.pack_bits / encode_real."
        )
    if codes.shape[1] == 0:
        raise ValueError(f"{name} has zero bytes per code; codes need at least 8 bits.")
    return np.ascontiguousarray(codes)


def _check_labels(labels: object, name: str, n: int) -> np.ndarray:
    labels = _to_numpy(labels, name)
    if labels.ndim != 2:
        raise ValueError(
            f"{name} must be multi-hot labels, a 2-d (items, classes) array, "
            f"got shape {labels.shape}; "
            "one-hot encode class indices first (e.g. np.eye(n_classes)[y])."
        )
    if labels.shape[0] != n:
        raise ValueError(f"{name} has {labels.shape[0]} rows but its codes have {n} items.")
    if labels.dtype == object or not (
        np.issubdtype(labels.dtype, np.number) or labels.dtype == np.bool_
    ):
        raise ValueError(f"{name} must be a numeric or bool array, got dtype {labels.dtype}.")
    return labels != 0


def _check_inputs(
    query_codes: object, db_codes: object, query_labels: object, db_labels: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    qc = _check_codes(query_codes, "query_codes")
    dc = _check_codes(db_codes, "db_codes")
    if qc.shape[1] != dc.shape[1]:
        raise ValueError(
            f"query_codes have {qc.shape[1] * 8} bits but db_codes have {dc.shape[1] * 8}; "
            "encode queries and database with the same model."
        )
    if looks_unpacked(qc, dc):
        raise ValueError(
            f"query_codes and db_codes hold only 0/1 bytes ({qc.shape[1]} per item): they look "
            "like unpacked bits (one byte per bit), which would be read as "
            f"{qc.shape[1] * 8}-bit codes at 8x the work. Pack them first with "
            "hashbench.retrieval.codes.pack_bits (or encode_real for real-valued outputs)."
        )
    if qc.shape[0] == 0:
        raise ValueError("query_codes is empty: there are no queries to evaluate.")
    if dc.shape[0] == 0:
        raise ValueError("db_codes is empty: there is no database to retrieve from.")
    ql = _check_labels(query_labels, "query_labels", qc.shape[0])
    dl = _check_labels(db_labels, "db_labels", dc.shape[0])
    if ql.shape[1] != dl.shape[1]:
        raise ValueError(
            f"query_labels have {ql.shape[1]} classes but db_labels have {dl.shape[1]}; "
            "both must be multi-hot over the same label set."
        )
    return qc, dc, ql, dl


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {choices}.")
    return str(value)


def _check_chunk_size(chunk_size: object) -> int | None:
    if chunk_size is None:
        return None
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int | np.integer)
        or chunk_size < 1
    ):
        raise ValueError(
            f"chunk_size={chunk_size!r} must be a positive integer or None (automatic)."
        )
    return int(chunk_size)
