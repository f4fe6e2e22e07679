"""Binary codes: binarise real outputs, pack to bytes, Hamming distances.

Conventions (PROTOCOL.md, "Codes"):

- a real output ``x`` becomes bit ``1[x >= 0]`` - never ``sign(x)``, whose ``sign(0) = 0`` gives ternary codes;
- codes are stored packed as ``uint8``, ``b / 8`` bytes per item, most significant bit first
  (``numpy.packbits`` order, the order Faiss binary indexes read);
- ``b`` must be a positive multiple of 8; anything else is rejected by :func:`check_bits`.

Imports numpy only: torch tensors are accepted (duck-typed through ``.detach().cpu().numpy()``)
without importing torch, so the numpy metric engine stays light to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

    ArrayLike = np.ndarray | torch.Tensor
else:
    ArrayLike = Any

#: Scratch bytes of one block of :func:`hamming_distances` (the XOR of a block of queries against
#: the whole database): small enough to stay in the L2 cache between the XOR and the popcount.
_SCRATCH_BYTES = 1 << 20


def as_numpy(x: object) -> np.ndarray:
    """``x`` as a numpy array; a torch tensor is detached and moved to the CPU first."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


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
    return as_numpy(x) >= threshold


def pack_bits(bits: ArrayLike) -> np.ndarray:
    """Pack an ``(n, b)`` array of {0, 1} / bool bits into ``(n, b / 8)`` ``uint8`` codes."""
    bits = as_numpy(bits)
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


def looks_unpacked(*codes: np.ndarray) -> bool:
    """True when ``uint8`` arrays given as packed codes look like *unpacked* 0/1 bits.

    That is: at least 8 columns (an unpacked code has ``b >= 8`` columns), every byte of every
    array is 0 or 1, and at least one is 1. Packed codes of ``b >= 64`` bits pass this only if
    every byte of every code has its seven high bits clear - probability ``2^-7`` per byte for
    random codes, so never in practice; all-zero codes (a legitimate packed code) do not trip it.
    """
    if not codes or any(c.ndim != 2 or c.shape[1] < 8 or c.dtype != np.uint8 for c in codes):
        return False
    top = max(int(c.max()) if c.size else 0 for c in codes)
    return top == 1


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


def hamming_words(codes: np.ndarray) -> np.ndarray:
    """Packed codes as column-major machine words for :func:`hamming_distances_words`.

    Returns ``(w, n)``: word ``i`` of every item, contiguous per word (``uint64``; a code of at most
    32 / 16 bits uses ``uint32`` / ``uint16`` words, so the XOR and popcount touch fewer bytes).
    """
    codes = _as_codes(codes)
    nbytes = codes.shape[1]
    if nbytes in (1, 2, 4):
        dtype = {1: np.uint8, 2: np.uint16, 4: np.uint32}[nbytes]
        return np.ascontiguousarray(codes).view(dtype).T.copy()
    return _as_words(codes).T.copy()


def hamming_distances_words(
    query_words: np.ndarray, db_words: np.ndarray, n_bits: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Hamming distances from :func:`hamming_words` layouts: ``(nq, nb)`` ``uint8``/``uint16``.

    Works through blocks of queries whose XOR scratch (``block * nb`` words) stays in cache, and
    writes the popcount straight into ``out`` (``np.bitwise_count``: exact, no floating point).
    """
    n_words, nq = query_words.shape
    nb = db_words.shape[1]
    dtype = np.uint8 if n_bits <= 255 else np.uint16
    if out is None:
        out = np.empty((nq, nb), dtype=dtype)
    block = max(1, min(nq, _SCRATCH_BYTES // max(1, nb * db_words.itemsize)))
    scratch = np.empty((block, nb), dtype=db_words.dtype)
    counts = np.empty((block, nb), dtype=np.uint8) if n_words > 1 else None
    for s in range(0, nq, block):
        m = min(block, nq - s)
        dst = out[s : s + m]
        for w in range(n_words):
            np.bitwise_xor(query_words[w, s : s + m, None], db_words[w, None, :], out=scratch[:m])
            if w == 0:
                np.bitwise_count(scratch[:m], out=dst, casting="unsafe")
            else:
                np.bitwise_count(scratch[:m], out=counts[:m])
                np.add(dst, counts[:m], out=dst, casting="unsafe")
    return out


def hamming_distances(query: np.ndarray, database: np.ndarray) -> np.ndarray:
    """Exact Hamming distances between packed codes: ``(nq, nb)`` ``uint8`` (``b <= 255``) or ``uint16``.

    Memory is ``O(nq * nb)``; callers chunk over queries for large databases.
    """
    if query.shape[1] != database.shape[1]:
        raise ValueError(
            f"query codes have {query.shape[1] * 8} bits but database codes have {database.shape[1] * 8}"
        )
    n_bits = query.shape[1] * 8
    return hamming_distances_words(hamming_words(query), hamming_words(database), n_bits)
