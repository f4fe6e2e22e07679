"""Binarisation, packing and Hamming distances (hashbench.retrieval.codes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashbench.retrieval.codes import (
    binarize,
    check_bits,
    encode_real,
    hamming_distances,
    looks_unpacked,
    pack_bits,
    to_signed,
    unpack_bits,
)


@pytest.mark.parametrize("bits", [8, 16, 32, 48, 64, 128])
def test_valid_bits(bits: int) -> None:
    assert check_bits(bits) == bits


@pytest.mark.parametrize("bits", [0, -8, 7, 12, 33, 8.0, True, "32"])
def test_invalid_bits_name_the_fix(bits) -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        check_bits(bits)


def test_binarize_uses_ge_zero_never_sign() -> None:
    x = torch.tensor([[-1.0, 0.0, 1e-9, -1e-9]])
    np.testing.assert_array_equal(binarize(x), [[False, True, True, False]])
    np.testing.assert_array_equal(binarize(np.array([0.49, 0.5]), threshold=0.5), [False, True])


@pytest.mark.parametrize("bits", [8, 48, 64])
def test_pack_unpack_round_trip_and_shape(bits: int) -> None:
    rng = np.random.default_rng(bits)
    b = rng.integers(0, 2, (37, bits)).astype(np.uint8)
    packed = pack_bits(b)
    assert packed.dtype == np.uint8 and packed.shape == (37, bits // 8)
    np.testing.assert_array_equal(unpack_bits(packed), b)
    np.testing.assert_array_equal(to_signed(packed), b * 2.0 - 1)
    # most significant bit first: the first bit of a row is worth 128 in its first byte
    one = np.zeros((1, bits), np.uint8)
    one[0, 0] = 1
    assert pack_bits(one)[0, 0] == 128


def test_pack_rejects_bad_width() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        pack_bits(np.zeros((3, 12), bool))


@pytest.mark.parametrize("bits", [8, 24, 48, 64, 72])
def test_hamming_distances_match_loops(bits: int) -> None:
    rng = np.random.default_rng(1)
    q = rng.integers(0, 2, (9, bits))
    d = rng.integers(0, 2, (13, bits))
    got = hamming_distances(pack_bits(q), pack_bits(d))
    want = [[int((q[i] != d[j]).sum()) for j in range(13)] for i in range(9)]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bits", [8, 16, 32, 40, 64, 128, 264])
def test_hamming_distances_across_scratch_blocks(bits: int, monkeypatch) -> None:
    """Query blocks smaller than the query set (tiny scratch), every word width, b > 255."""
    from hashbench.retrieval import codes as codes_module

    monkeypatch.setattr(codes_module, "_SCRATCH_BYTES", 64)
    rng = np.random.default_rng(bits)
    q = rng.integers(0, 2, (11, bits))
    d = rng.integers(0, 2, (7, bits))
    got = hamming_distances(pack_bits(q), pack_bits(d))
    assert got.dtype == (np.uint8 if bits <= 255 else np.uint16)
    want = [
        [sum(int(a != b) for a, b in zip(q[i], d[j], strict=True)) for j in range(7)]
        for i in range(11)
    ]
    np.testing.assert_array_equal(got, want)


def test_looks_unpacked() -> None:
    bits = np.random.default_rng(0).integers(0, 2, (5, 64)).astype(np.uint8)
    assert looks_unpacked(bits, bits)
    assert not looks_unpacked(pack_bits(bits), pack_bits(bits))
    assert not looks_unpacked(np.zeros((5, 8), np.uint8))  # all-zero packed codes are fine
    assert not looks_unpacked(bits[:, :4])  # fewer than 8 columns is never an unpacked code
    assert not looks_unpacked(bits.astype(bool))


def test_codes_import_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, hashbench.retrieval.codes; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_hamming_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="bits"):
        hamming_distances(np.zeros((2, 4), np.uint8), np.zeros((2, 8), np.uint8))


def test_encode_real_is_binarize_then_pack() -> None:
    x = np.random.default_rng(0).normal(size=(5, 16))
    np.testing.assert_array_equal(encode_real(x), pack_bits(x >= 0))
