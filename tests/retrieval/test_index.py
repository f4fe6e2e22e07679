"""Tests for hashbench.retrieval.index.HammingIndex against the exact numpy reference."""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import numpy as np
import pytest

from hashbench.retrieval import index as index_module
from hashbench.retrieval.codes import hamming_distances, pack_bits
from hashbench.retrieval.index import MISSING_DISTANCE, HammingIndex, gpu_available

KINDS = ["flat", "hash", "multihash", "ivf", "hnsw"]
# ivf is exact when every list is probed; the small nlist keeps training fast and well-posed.
EXACT_KW = {"ivf": {"nlist": 8, "nprobe": 8}}
APPROX_KW = {"ivf": {"nlist": 8, "nprobe": 2}}


@pytest.fixture(autouse=True)
def _one_faiss_thread():
    """One OpenMP thread for these tiny cases: on busy shared cores, Faiss's thread team spends far
    longer waiting at barriers than computing. Restored afterwards (the library never sets it)."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def _clustered(n: int, bits: int, seed: int, n_centres: int = 12, p: float = 0.06) -> np.ndarray:
    """Packed codes around a few random centres, so small Hamming balls are not empty."""
    rng = np.random.default_rng(seed)
    centres = rng.random((n_centres, bits)) < 0.5
    which = rng.integers(0, n_centres, n)
    return pack_bits(centres[which] ^ (rng.random((n, bits)) < p))


def _data(bits: int = 32, n: int = 600, nq: int = 40) -> tuple[np.ndarray, np.ndarray]:
    db = _clustered(n, bits, seed=0)
    nq = min(nq, n)
    rng = np.random.default_rng(1)
    # queries: perturbed database items, plus exact copies (distance 0)
    q = db[rng.choice(n, nq, replace=False)] ^ pack_bits(rng.random((nq, bits)) < 0.04)
    q[:5] = db[:5]
    return db, q


def _ids_for(n: int) -> np.ndarray:
    """Non-contiguous, non-sorted external ids."""
    return (np.random.default_rng(7).permutation(n) * 3 + 1000).astype(np.int64)


def _truth(q: np.ndarray, db: np.ndarray) -> np.ndarray:
    return hamming_distances(q, db).astype(np.int64)


def _assert_sorted_rows(dist: np.ndarray, ids: np.ndarray) -> None:
    for d, i in zip(dist, ids, strict=True):
        keys = list(zip(d.tolist(), i.tolist(), strict=True))
        assert keys == sorted(keys)


def _assert_true_distances(dist, ids, H, ext_ids) -> None:
    """Every returned (distance, id) pair is the true distance of that item."""
    pos_of = {int(e): p for p, e in enumerate(ext_ids)}
    for qi in range(dist.shape[0]):
        for d, i in zip(dist[qi], ids[qi], strict=True):
            if i == -1:
                assert d == MISSING_DISTANCE
            else:
                assert d == H[qi, pos_of[int(i)]]


def _distance_recall(dist: np.ndarray, truth_sorted: np.ndarray, bits: int) -> float:
    """Tie-aware recall: multiset overlap of returned and exact top-k distances, over k."""
    k = truth_sorted.shape[1]
    total = 0
    for d, t in zip(dist, truth_sorted, strict=True):
        d = d[d != MISSING_DISTANCE]
        a = np.bincount(d, minlength=bits + 1)
        b = np.bincount(t, minlength=bits + 1)
        total += np.minimum(a, b).sum()
    return total / (k * dist.shape[0])


# --------------------------------------------------------------------- k-NN


@pytest.mark.parametrize("bits", [8, 32, 48, 64])
def test_flat_search_equals_reference(bits):
    db, q = _data(bits)
    ext = _ids_for(len(db))
    idx = HammingIndex(bits, "flat", use_gpu=False)
    idx.add(db, ext)
    H = _truth(q, db)
    for k in (1, 10, 100):
        dist, ids = idx.search(q, k)
        assert dist.dtype == np.int32 and ids.dtype == np.int64
        assert dist.shape == ids.shape == (len(q), k)
        np.testing.assert_array_equal(dist, np.sort(H, axis=1)[:, :k])
        _assert_true_distances(dist, ids, H, ext)
        _assert_sorted_rows(dist, ids)


def test_ivf_search_is_exact_when_all_lists_probed():
    db, q = _data(32)
    idx = HammingIndex(32, "ivf", **EXACT_KW["ivf"])
    idx.add(db)
    dist, _ = idx.search(q, 25)
    np.testing.assert_array_equal(dist, np.sort(_truth(q, db), axis=1)[:, :25])


@pytest.mark.parametrize("kind", ["hash", "multihash", "ivf", "hnsw"])
@pytest.mark.parametrize("bits", [16, 64])
def test_approximate_search_recall_and_true_distances(kind, bits):
    db, q = _data(bits)
    ext = _ids_for(len(db))
    idx = HammingIndex(bits, kind, **APPROX_KW.get(kind, {}))
    idx.add(db, ext)
    H = _truth(q, db)
    k = 10
    dist, ids = idx.search(q, k)
    _assert_true_distances(dist, ids, H, ext)
    _assert_sorted_rows(dist, ids)
    # the query's exact copies (first 5 queries) are always found at distance 0
    assert (dist[:5, 0] == 0).all()
    recall = _distance_recall(dist, np.sort(H, axis=1)[:, :k], bits)
    assert recall >= 0.75, f"{kind} recall {recall:.3f}"


def test_hash_search_finds_everything_within_nflip():
    db, q = _data(64)
    idx = HammingIndex(64, "hash", nflip=2)
    idx.add(db)
    H = _truth(q, db)
    dist, ids = idx.search(q, 50)
    for qi in range(len(q)):
        within = set(np.nonzero(H[qi] <= 2)[0].tolist())
        assert within <= set(ids[qi].tolist()) or len(within) > 50


@pytest.mark.parametrize("kind", KINDS)
def test_fewer_than_k_results_padded(kind):
    db, q = _data(32, n=30)
    idx = HammingIndex(32, kind, nlist=4, nprobe=4)
    idx.add(db)
    dist, ids = idx.search(q, 50)
    assert dist.shape == (len(q), 50)
    assert (ids[:, 30:] == -1).all() and (dist[:, 30:] == MISSING_DISTANCE).all()
    found = ids >= 0
    # missing slots come last in every row
    assert (np.diff(found.astype(int), axis=1) <= 0).all()
    _assert_true_distances(dist, ids, _truth(q, db), np.arange(30))


@pytest.mark.parametrize("kind", KINDS)
def test_empty_index(kind):
    idx = HammingIndex(16, kind)
    q = np.zeros((3, 2), np.uint8)
    dist, ids = idx.search(q, 4)
    assert (ids == -1).all() and (dist == MISSING_DISTANCE).all()
    balls = idx.range_search(q, 16)
    assert len(balls) == 3 and all(len(i) == 0 for _, i in balls)
    assert len(idx) == idx.ntotal == 0


# --------------------------------------------------------------------- range search


@pytest.mark.parametrize("kind", ["flat", "hash", "multihash", "ivf", "hnsw"])
@pytest.mark.parametrize("bits", [8, 32, 64])
def test_range_search_inclusive_equals_reference(kind, bits):
    db, q = _data(bits)
    ext = _ids_for(len(db))
    idx = HammingIndex(bits, kind, **EXACT_KW.get(kind, {}))
    idx.add(db, ext)
    H = _truth(q, db)
    for radius in (0, 1, 2, 3, 5):
        # make sure the case "distance exactly r" occurs in the data
        assert (H == radius).any() or bits == 8 and radius > 3
        balls = idx.range_search(q, radius)
        assert len(balls) == len(q)
        for qi, (dist, ids) in enumerate(balls):
            assert dist.dtype == np.int32 and ids.dtype == np.int64
            pos = np.nonzero(H[qi] <= radius)[0]
            expected = sorted(zip(H[qi, pos].tolist(), ext[pos].tolist(), strict=True))
            got = list(zip(dist.tolist(), ids.tolist(), strict=True))
            assert got == expected, (kind, bits, radius, qi)


def test_range_search_empty_ball_and_radius_bounds():
    db, _ = _data(32)
    idx = HammingIndex(32, "flat")
    idx.add(db)
    far = ~db[:1]  # complement of an item: distance 32 to it, far from its cluster
    H = _truth(far, db)
    r = int(H.min()) - 1
    ((dist, ids),) = idx.range_search(far, r)
    assert dist.shape == ids.shape == (0,)
    ((dist, ids),) = idx.range_search(far, r + 1)
    assert len(ids) == (H == r + 1).sum() > 0
    ((dist, ids),) = idx.range_search(far, 1000)  # larger than bits: everything
    assert len(ids) == len(db)
    assert idx.range_search(far[:0], 2) == []
    with pytest.raises(ValueError, match="radius"):
        idx.range_search(far, -1)


def test_ivf_range_search_approximate_is_subset():
    db, q = _data(32)
    idx = HammingIndex(32, "ivf", **APPROX_KW["ivf"])
    idx.add(db)
    H = _truth(q, db)
    for qi, (dist, ids) in enumerate(idx.range_search(q, 4)):
        assert (dist <= 4).all()
        np.testing.assert_array_equal(dist, H[qi, ids])
        assert set(ids.tolist()) <= set(np.nonzero(H[qi] <= 4)[0].tolist())


def test_multihash_range_search_both_paths_exact(monkeypatch):
    db, q = _data(32, n=400)
    idx = HammingIndex(32, "multihash", nhash=4, nflip=0)  # 4 tables x 8 bits
    idx.add(db)
    H = _truth(q, db)
    calls = []
    original = HammingIndex._storage_range_search

    def spy(self, *args):
        calls.append(args[-1])
        return original(self, *args)

    monkeypatch.setattr(HammingIndex, "_storage_range_search", spy)
    for radius in (3, 9, 20):  # flips 0, 2 (hash tables), 5 (> ntotal probes: storage scan)
        for qi, (_, ids) in enumerate(idx.range_search(q, radius)):
            np.testing.assert_array_equal(np.sort(ids), np.nonzero(H[qi] <= radius)[0])
    assert calls == [21]
    assert idx._sub.nflip == 0  # restored


def test_hash_range_search_refuses_hopeless_probe_counts():
    db, q = _data(64, n=50)
    idx = HammingIndex(64, "hash", hash_bits=48)
    idx.add(db)
    with pytest.raises(ValueError, match="hash_bits=48"):
        idx.range_search(q, 12)
    idx.range_search(q, 2)  # fine
    assert idx._sub.nflip == 2


# --------------------------------------------------------------------- ids


def test_default_ids_continue_and_external_ids():
    db, q = _data(16, n=20)
    idx = HammingIndex(16)
    idx.add(db[:5])
    idx.add(db[5:8])
    np.testing.assert_array_equal(idx.ids, np.arange(8))
    idx.add(db[8:10], ids=np.array([100, 50]))
    idx.add(db[10:12])
    np.testing.assert_array_equal(idx.ids, [0, 1, 2, 3, 4, 5, 6, 7, 100, 50, 101, 102])
    assert len(idx) == 12
    ((dist, ids),) = idx.range_search(db[9:10], 0)
    assert 50 in ids.tolist()


def test_bad_ids_are_clear_errors():
    db, _ = _data(16, n=20)
    idx = HammingIndex(16)
    with pytest.raises(ValueError, match="unique"):
        idx.add(db[:3], ids=[1, 1, 2])
    with pytest.raises(ValueError, match=">= 0"):
        idx.add(db[:3], ids=[0, -1, 2])
    with pytest.raises(ValueError, match="one per code"):
        idx.add(db[:3], ids=[0, 1])
    with pytest.raises(ValueError, match="integers"):
        idx.add(db[:2], ids=[0.5, 1.5])
    idx.add(db[:3], ids=[7, 8, 9])
    with pytest.raises(ValueError, match=r"already in the index: \[8\]"):
        idx.add(db[3:5], ids=[8, 10])
    assert len(idx) == 3  # nothing half-added


# --------------------------------------------------------------------- save / load


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(tmp_path, kind):
    db, q = _data(64)
    ext = _ids_for(len(db))
    kw = {"nlist": 8, "nprobe": 3, "nflip": 1, "hnsw_m": 12, "hnsw_ef_search": 40}
    idx = HammingIndex(64, kind, **kw)
    idx.add(db, ext)
    path = tmp_path / "db.faissb"
    idx.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.faissb", "db.faissb.json"]
    meta = json.loads((tmp_path / "db.faissb.json").read_text())
    assert meta["kind"] == kind and meta["bits"] == 64 and meta["ntotal"] == len(db)

    loaded = HammingIndex.load(path)
    assert loaded.config() == idx.config()
    assert len(loaded) == len(idx)
    np.testing.assert_array_equal(loaded.ids, ext)
    for a, b in zip(idx.search(q, 15), loaded.search(q, 15), strict=True):
        np.testing.assert_array_equal(a, b)
    for (da, ia), (db_, ib) in zip(idx.range_search(q, 3), loaded.range_search(q, 3), strict=True):
        np.testing.assert_array_equal(da, db_)
        np.testing.assert_array_equal(ia, ib)
    # the file is a plain Faiss binary index; loaded indexes keep growing with fresh ids
    assert faiss.read_index_binary(str(path)).ntotal == len(db)
    loaded.add(q[:2])
    assert loaded.ids[-2:].tolist() == [ext.max() + 1, ext.max() + 2]


def test_save_overwrites_atomically(tmp_path):
    db, q = _data(32)
    path = tmp_path / "idx.faissb"
    a = HammingIndex(32)
    a.add(db[:10])
    a.save(path)
    b = HammingIndex(32, "hnsw")
    b.add(db)
    b.save(str(path))
    assert HammingIndex.load(path).kind == "hnsw"
    assert len(HammingIndex.load(path)) == len(db)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx.faissb", "idx.faissb.json"]


def test_load_without_sidecar(tmp_path):
    db, q = _data(32)
    idx = HammingIndex(32, "multihash", hash_bits=6, nhash=3)
    idx.add(db)
    idx.save(tmp_path / "x.bin")
    os.remove(tmp_path / "x.bin.json")
    loaded = HammingIndex.load(tmp_path / "x.bin")
    assert (loaded.kind, loaded.hash_bits, loaded.nhash) == ("multihash", 6, 3)
    np.testing.assert_array_equal(loaded.search(q, 5)[1], idx.search(q, 5)[1])


def test_load_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.faissb"
    with pytest.raises(FileNotFoundError, match="nope.faissb"):
        HammingIndex.load(missing)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HammingIndex(16).save(tmp_path / "no_dir" / "x.faissb")

    garbage = tmp_path / "garbage.faissb"
    garbage.write_bytes(b"this is not a faiss index at all" * 4)
    with pytest.raises(ValueError, match="garbage.faissb"):
        HammingIndex.load(garbage)

    db, _ = _data(32)
    idx = HammingIndex(32)
    idx.add(db)
    good = tmp_path / "good.faissb"
    idx.save(good)
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])  # truncated, sidecar present
    with pytest.raises(ValueError, match="good.faissb.*SHA-256"):
        HammingIndex.load(good)
    os.remove(tmp_path / "good.faissb.json")  # truncated, no sidecar
    with pytest.raises(ValueError, match="good.faissb"):
        HammingIndex.load(good)

    idx.save(good)
    (tmp_path / "good.faissb.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"good.faissb.json"):
        HammingIndex.load(good)

    plain = tmp_path / "plain.faissb"  # a Faiss index that is not a HammingIndex layout
    flat = faiss.IndexBinaryFlat(32)
    flat.add(db)
    faiss.write_index_binary(flat, str(plain))
    with pytest.raises(ValueError, match="plain.faissb.*IndexBinaryFlat"):
        HammingIndex.load(plain)


# --------------------------------------------------------------------- configuration errors


@pytest.mark.parametrize("bits", [0, 12, -8, 8.0, True])
def test_bad_bits(bits):
    with pytest.raises(ValueError, match="multiple of 8"):
        HammingIndex(bits)


def test_bad_configuration():
    with pytest.raises(ValueError, match="kind='annoy'"):
        HammingIndex(32, "annoy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nhash \\* hash_bits"):
        HammingIndex(32, "multihash", nhash=4, hash_bits=9)
    with pytest.raises(ValueError, match="hash_bits=40"):
        HammingIndex(32, "hash", hash_bits=40)
    with pytest.raises(ValueError, match="nprobe"):
        HammingIndex(32, "ivf", nprobe=0)
    with pytest.raises(ValueError, match="use_gpu"):
        HammingIndex(32, use_gpu="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind='flat'"):
        HammingIndex(32, "hnsw", use_gpu=True)
    assert HammingIndex(64, "hash").hash_bits == 16
    assert HammingIndex(8, "hash").hash_bits == 8
    assert HammingIndex(64, "multihash").hash_bits == 16
    assert HammingIndex(32, "multihash", nhash=3).hash_bits == 10


def test_wrong_code_width_and_dtype():
    idx = HammingIndex(64)
    idx.add(np.zeros((4, 8), np.uint8))
    with pytest.raises(ValueError, match=r"64-bit codes.*shape \(2, 4\)"):
        idx.search(np.zeros((2, 4), np.uint8), 3)
    with pytest.raises(ValueError, match="64-bit"):
        idx.add(np.zeros((2, 16), np.uint8))
    with pytest.raises(ValueError, match="unpacked bits"):
        idx.add(np.zeros((2, 64), np.uint8))
    with pytest.raises(ValueError, match="unpacked bits"):
        idx.range_search(np.zeros((2, 64), bool), 1)
    with pytest.raises(ValueError, match="packed uint8"):
        idx.search(np.zeros((2, 8), np.int64), 3)
    with pytest.raises(ValueError, match="2-d"):
        idx.search(np.zeros(8, np.uint8), 3)
    with pytest.raises(ValueError, match="k=0"):
        idx.search(np.zeros((1, 8), np.uint8), 0)


def test_ivf_training():
    db, q = _data(32)
    idx = HammingIndex(32, "ivf", nlist=16)
    with pytest.raises(ValueError, match="nlist=16"):
        idx.train(db[:10])
    assert not idx.is_trained
    idx.train(db)
    assert idx.is_trained and len(idx) == 0
    idx.add(db[:100])
    with pytest.raises(RuntimeError, match="retrain"):
        idx.train(db)
    auto = HammingIndex(32, "ivf", nlist=16)
    auto.add(db)  # trains itself
    assert auto.is_trained and len(auto) == len(db)
    HammingIndex(32, "flat").train(db)  # no-op


# --------------------------------------------------------------------- GPU


def test_use_gpu_true_without_gpu_is_clear_error():
    if gpu_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no GPU"):
        HammingIndex(32, use_gpu=True)
    assert not HammingIndex(32, use_gpu="auto")._gpu_enabled


def test_gpu_dispatch_logic_with_fake_gpu(monkeypatch):
    """Exercise the GPU path on CPU: a fake GpuIndexBinaryFlat that is a CPU flat copy."""
    made = []

    class FakeResources:
        pass

    def fake_gpu_index(res, cpu_flat):
        assert isinstance(res, FakeResources)
        assert isinstance(cpu_flat, faiss.IndexBinaryFlat)
        copy = faiss.IndexBinaryFlat(cpu_flat.d)
        copy.add(faiss.vector_to_array(cpu_flat.xb).reshape(cpu_flat.ntotal, cpu_flat.code_size))
        made.append(copy)
        return copy

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "StandardGpuResources", FakeResources, raising=False)
    monkeypatch.setattr(faiss, "GpuIndexBinaryFlat", fake_gpu_index, raising=False)
    assert gpu_available()

    db, q = _data(32, n=3000)
    ext = _ids_for(len(db))
    idx = HammingIndex(32, use_gpu=True)
    assert idx._gpu_enabled and not HammingIndex(32, "hash")._gpu_enabled
    idx.add(db[:2000], ext[:2000])
    H = _truth(q, db)
    dist, ids = idx.search(q, 10)
    assert len(made) == 1
    np.testing.assert_array_equal(dist, np.sort(H[:, :2000], axis=1)[:, :10])
    _assert_true_distances(dist, ids, H, ext)
    idx.search(q, index_module.GPU_MAX_K)
    assert len(made) == 1  # reused
    idx.add(db[2000:], ext[2000:])  # refreshed after add
    dist, ids = idx.search(q, 10)
    assert len(made) == 2
    np.testing.assert_array_equal(dist, np.sort(H, axis=1)[:, :10])
    _assert_true_distances(dist, ids, H, ext)
    big = idx.search(q[:2], index_module.GPU_MAX_K + 1)  # CPU fallback
    assert len(made) == 2 and big[0].shape == (2, index_module.GPU_MAX_K + 1)


@pytest.mark.gpu
def test_gpu_flat_matches_cpu(tmp_path):
    if not gpu_available():
        pytest.skip("needs a GPU build of Faiss and a visible GPU")
    db, q = _data(64, n=5000)
    ext = _ids_for(len(db))
    gpu = HammingIndex(64, use_gpu=True)
    cpu = HammingIndex(64, use_gpu=False)
    for idx in (gpu, cpu):
        idx.add(db, ext)
    H = _truth(q, db)
    for k in (1, 100, 2048, 2049):
        dg, ig = gpu.search(q, k)
        dc, _ = cpu.search(q, k)
        np.testing.assert_array_equal(dg, dc)
        _assert_true_distances(dg, ig, H, ext)
    gpu.save(tmp_path / "g.faissb")
    loaded = HammingIndex.load(tmp_path / "g.faissb", use_gpu=False)
    np.testing.assert_array_equal(loaded.search(q, 10)[0], cpu.search(q, 10)[0])


def test_path_types_accepted(tmp_path):
    idx = HammingIndex(8)
    idx.add(np.arange(16, dtype=np.uint8)[:, None])
    idx.save(str(tmp_path / "a"))
    assert len(HammingIndex.load(Path(tmp_path / "a"))) == 16
