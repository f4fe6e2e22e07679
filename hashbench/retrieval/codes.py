"""Binary codes: binarise real outputs, pack to bytes, Hamming distances.

Conventions (PROTOCOL.md, "Codes"):

- a real output ``x`` becomes bit ``1[x >= 0]`` - never ``sign(x)``, whose ``sign(0) = 0`` gives ternary codes;
- codes are stored packed as ``uint8``, ``b / 8`` bytes per item, most significant bit first
  (``numpy.packbits`` order, the order Faiss binary indexes read);
- ``b`` must be a positive multiple of 8; anything else is rejected by :func:`check_bits`.
"""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def check_bits(bits: int) -> int:
    """Return ``bits`` if it is a valid code length, else raise ``ValueError`` naming the fix."""
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or bits <= 0 or bits % 8:
        raise ValueError(
            f"bits={bits!r} is not a valid code length: codes are packed into bytes, so the length "
            "must be a positive multiple of 8 (the benchmark uses 8, 16, 32, 48 and 64)."
        )
    return int(bits)


def binarize(x: ArrayLike, threshold: float = 0.0) -> np.ndarray:
    """Bits ``1[x >= threshold]`` as a ``bool`` array (threshold 0 for tanh/linear outputs, 0.5 for sigmoid)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x) >= threshold


def pack_bits(bits: ArrayLike) -> np.ndarray:
    """Pack an ``(n, b)`` array of {0, 1} / bool bits into ``(n, b / 8)`` ``uint8`` codes."""
    if isinstance(bits, torch.Tensor):
        bits = bits.detach().cpu().numpy()
    bits = np.asarray(bits)
    if bits.ndim != 2:
        raise ValueError(f"bits must be a 2-d (items, bits) array, got shape {bits.shape}")
    check_bits(bits.shape[1])
    return np.packbits(bits.astype(bool), axis=1, bitorder="big")


def encode_real(x: ArrayLike, threshold: float = 0.0) -> np.ndarray:
    """Real outputs ``(n, b)`` -> packed codes ``(n, b / 8)``: :func:`binarize` then :func:`pack_bits`."""
    return pack_bits(binarize(x, threshold))


def unpack_bits(codes: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Packed ``(n, b / 8)`` ``uint8`` codes -> ``(n, b)`` ``uint8`` array of 0/1."""
    codes = _as_codes(codes)
    out = np.unpackbits(codes, axis=1, bitorder="big")
    return out if bits is None else out[:, : check_bits(bits)]


def to_signed(codes: np.ndarray) -> np.ndarray:
    """Packed codes -> ``(n, b)`` ``float32`` array of -1/+1 (bit 1 -> +1)."""
    return unpack_bits(codes).astype(np.float32) * 2.0 - 1.0


def _as_codes(codes: np.ndarray) -> np.ndarray:
    codes = np.ascontiguousarray(codes)
    if codes.dtype != np.uint8 or codes.ndim != 2:
        raise ValueError(
            f"packed codes must be a 2-d uint8 array (items, bits/8), got {codes.dtype} {codes.shape}"
        )
    return codes


def _as_words(codes: np.ndarray) -> np.ndarray:
    """View packed codes as ``uint64`` words (zero-padded to a multiple of 8 bytes)."""
    codes = _as_codes(codes)
    pad = (-codes.shape[1]) % 8
    if pad:
        codes = np.concatenate([codes, np.zeros((codes.shape[0], pad), np.uint8)], axis=1)
    return np.ascontiguousarray(codes).view(np.uint64)


def hamming_distances(query: np.ndarray, database: np.ndarray) -> np.ndarray:
    """Exact Hamming distances between packed codes: ``(nq, nb)`` ``uint8`` (``b <= 255``) or ``uint16``.

    Memory is ``O(nq * nb)``; callers chunk over queries for large databases.
    """
    if query.shape[1] != database.shape[1]:
        raise ValueError(
            f"query codes have {query.shape[1] * 8} bits but database codes have {database.shape[1] * 8}"
        )
    q, d = _as_words(query), _as_words(database)
    dtype = np.uint8 if query.shape[1] * 8 <= 255 else np.uint16
    out = np.zeros((q.shape[0], d.shape[0]), dtype=dtype)
    for w in range(q.shape[1]):
        out += np.bitwise_count(q[:, w, None] ^ d[None, :, w]).astype(dtype)
    return out
