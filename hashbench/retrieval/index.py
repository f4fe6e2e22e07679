"""Hamming-distance index over packed binary codes, backed by Faiss binary indexes.

:class:`HammingIndex` puts one Faiss binary index behind one interface: add codes with external
``int64`` ids, k-nearest-neighbour search, inclusive-radius search, atomic save / load.

Codes are packed ``uint8`` arrays ``(n, bits / 8)`` in ``numpy.packbits(..., bitorder="big")``
order (:mod:`hashbench.retrieval.codes`); the distance is ``H(q, x) = popcount(q XOR x)``, an
integer in ``[0, bits]``.

Kinds, and which results are exact:

=============  ========================  ==============================  =======================
kind           Faiss index               top-k ``search``                ``range_search``
=============  ========================  ==============================  =======================
``flat``       ``IndexBinaryFlat``       exact (GPU when there is one)   exact
``hash``       ``IndexBinaryHash``       approximate                     exact (see below)
``multihash``  ``IndexBinaryMultiHash``  approximate                     exact (see below)
``ivf``        ``IndexBinaryIVF``        approximate (``nprobe``)        approximate (``nprobe``)
``hnsw``       ``IndexBinaryHNSW``       approximate (graph walk)        exact (storage scan)
=============  ========================  ==============================  =======================

Every returned distance is the true Hamming distance of the returned item; "approximate" means an
item may be missed, never that a distance is wrong. ``ivf`` is exact with ``nprobe >= nlist``.

- ``hash`` (Norouzi, Punjani & Fleet, "Fast search in Hamming space with multi-index hashing",
  CVPR 2012, one table): items are bucketed by ``hash_bits`` bits of their code (Faiss: the low
  ``hash_bits`` bits of the code's first little-endian 64-bit word); a query probes every bucket
  within ``nflip`` bit flips of its own key, so top-k search ranks the items whose key is within
  ``nflip`` flips of the query's (among them every item at distance ``<= nflip``). Range search
  with radius ``r`` probes ``min(hash_bits, r)`` flips whatever ``nflip`` is: exact, since the key
  distance never exceeds the full distance.
- ``multihash`` (same paper): ``nhash`` tables over disjoint ``hash_bits``-bit substrings. An item
  at distance ``<= r`` differs from the query in at most ``r // nhash`` bits of at least one
  substring (pigeonhole), so range search probes ``r // nhash`` flips per table and is exact; when
  that would probe more buckets than there are items it scans the index's flat code storage
  instead (also exact). Top-k search (``nflip`` flips per table) sees every item within distance
  ``nhash * (nflip + 1) - 1``.
- ``hnsw`` (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using
  Hierarchical Navigable Small World graphs", TPAMI 2020): Faiss has no binary HNSW range search,
  so range search scans the index's own flat code storage (exact, no extra copy of the codes).
- ``ivf``: binary k-means coarse quantiser with ``nlist`` lists, ``nprobe`` visited per query;
  trained on the first ``add`` unless :meth:`HammingIndex.train` was called.

Ids: every kind is wrapped in ``IndexBinaryIDMap``, so ids are any non-negative ``int64`` values,
unique within the index; ``-1`` marks "no result". The wrapped index numbers items
``0..ntotal-1`` in insertion order, which the GPU and storage-scan paths map back to ids.

Result order: each ``search`` row and each ``range_search`` ball is sorted by ``(distance, id)``;
top-k slots without a result (fewer than ``k`` candidates) hold id ``-1`` and distance
:data:`MISSING_DISTANCE` and come last.

GPU: with ``use_gpu=True``, or ``"auto"`` where Faiss is a GPU build that sees a GPU, a ``flat``
index answers top-k queries with ``k <= 2048`` on ``faiss.GpuIndexBinaryFlat`` (copied lazily from
the CPU index, refreshed after ``add``); range search and larger ``k`` use the CPU index, which
stays the source of truth and is what :meth:`HammingIndex.save` writes. ``faiss.get_num_gpus() > 0``
is checked before any other GPU call: a GPU build of Faiss without a GPU aborts on GPU calls.

Threads: Faiss's OpenMP thread count is left alone (``faiss.omp_set_num_threads`` is the
caller's). An index is not safe to use from several Python threads at once (``hash`` /
``multihash`` range search changes ``nflip`` for the duration of the call).

Files: :meth:`HammingIndex.save` writes a plain Faiss binary index file (``faiss.read_index_binary``
reads it) and a JSON sidecar ``<path>.json`` with the configuration, ``ntotal`` and the file's
SHA-256, both atomically (:func:`hashbench.files.atomic_path`: temporary file, then rename). The
sidecar can also carry the index's provenance (:attr:`HammingIndex.provenance`: what encoded the
codes, from which data), which ``hashbench search`` compares with its checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Literal, get_args

import faiss
import numpy as np

from hashbench.files import atomic_path
from hashbench.retrieval.codes import check_bits

IndexKind = Literal["flat", "hash", "multihash", "ivf", "hnsw"]
KINDS: tuple[str, ...] = get_args(IndexKind)

#: Distance reported in top-k slots that hold no result (id ``-1``).
MISSING_DISTANCE: int = int(np.iinfo(np.int32).max)

#: Largest ``k`` a Faiss GPU k-selection handles; larger ``k`` falls back to the CPU index.
GPU_MAX_K: int = 2048

#: Largest ``hash_bits``: Faiss reads a hash key from one unaligned 64-bit word.
MAX_HASH_BITS: int = 56

#: ``hash`` range search refuses to probe more buckets than this per query (it would not finish).
MAX_HASH_PROBES: int = 1 << 24

SIDECAR_SUFFIX = ".json"
FILE_FORMAT = "hashbench.HammingIndex"
FILE_VERSION = 1


def gpu_available() -> bool:
    """Whether Faiss can use a GPU here: a GPU build of Faiss that sees at least one GPU.

    Safe everywhere: ``faiss.get_num_gpus`` is the only call made, and it exists (returning 0) in
    CPU builds; nothing else GPU-related is touched unless this returns ``True``.
    """
    if not hasattr(faiss, "get_num_gpus"):
        return False
    try:
        if faiss.get_num_gpus() <= 0:
            return False
    except Exception:  # pragma: no cover - broken CUDA runtime
        return False
    return hasattr(faiss, "GpuIndexBinaryFlat") and hasattr(faiss, "StandardGpuResources")


def _n_probes(nbits: int, nflip: int) -> int:
    """Buckets a query probes in one ``nbits``-bit table: ``sum_{i <= nflip} C(nbits, i)``."""
    return sum(math.comb(nbits, i) for i in range(min(nflip, nbits) + 1))


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name}={value!r} is invalid: expected an integer >= {minimum}.")
    return int(value)


class HammingIndex:
    """Hamming-distance index over packed binary codes (Faiss binary indexes).

    See the module docstring for the kinds, which of their results are exact, the result order, the
    GPU rule and the file format.

    Args:
        bits: Code length ``b``, a positive multiple of 8 (codes are ``uint8 (n, b / 8)``).
        kind: Index structure: ``"flat"`` (exact brute force), ``"hash"``, ``"multihash"``,
            ``"ivf"`` or ``"hnsw"``.
        nlist: ``ivf`` only: number of inverted lists (k-means centroids); training needs at least
            ``nlist`` codes (Faiss recommends ``>= 39 * nlist``).
        nprobe: ``ivf`` only: lists visited per query (capped at ``nlist``; ``nprobe >= nlist`` is
            exact).
        hash_bits: ``hash`` / ``multihash`` only: bits per hash key. Default: ``min(bits, 16)`` for
            ``hash`` (at most 65,536 buckets: ~15 items per bucket at 10^6 items) and
            ``min(bits // nhash, 16)`` for ``multihash`` (disjoint substrings covering the code when
            ``nhash`` divides it, e.g. 4 x 16 bits for 64-bit codes). At most 56; for
            ``multihash``, ``nhash * hash_bits <= bits``.
        nhash: ``multihash`` only: number of hash tables.
        nflip: ``hash`` / ``multihash`` only: bit flips probed around the query's key in each table
            for top-k search (more: slower, higher recall). Range search ignores it and probes
            what exactness needs.
        hnsw_m: ``hnsw`` only: graph degree ``M`` (``2 * M`` links on the base layer).
        hnsw_ef_search: ``hnsw`` only: search beam width (Faiss uses ``max(hnsw_ef_search, k)``).
        use_gpu: ``"auto"``: answer ``flat`` top-k queries on the GPU when Faiss has one;
            ``True``: require it (error without a GPU, or for a kind other than ``flat``);
            ``False``: CPU only.
    """

    def __init__(
        self,
        bits: int,
        kind: IndexKind = "flat",
        *,
        nlist: int = 256,
        nprobe: int = 16,
        hash_bits: int | None = None,
        nhash: int = 4,
        nflip: int = 2,
        hnsw_m: int = 32,
        hnsw_ef_search: int = 64,
        use_gpu: bool | Literal["auto"] = "auto",
    ) -> None:
        self.bits = check_bits(bits)
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not an index kind; choose one of {list(KINDS)}.")
        self.kind: IndexKind = kind
        self.code_size = self.bits // 8
        self.nlist = _check_int("nlist", nlist, 1)
        self.nprobe = _check_int("nprobe", nprobe, 1)
        self.nhash = _check_int("nhash", nhash, 1)
        self.nflip = _check_int("nflip", nflip, 0)
        self.hnsw_m = _check_int("hnsw_m", hnsw_m, 2)
        self.hnsw_ef_search = _check_int("hnsw_ef_search", hnsw_ef_search, 1)
        self.hash_bits = self._resolve_hash_bits(hash_bits)
        self.use_gpu = use_gpu
        self._gpu_enabled = self._resolve_gpu(use_gpu)
        self._index = self._build()
        #: What encoded the codes, from which data (JSON-able; saved in the sidecar), or ``None``.
        self.provenance: dict[str, Any] | None = None
        self._invalidate()

    # ------------------------------------------------------------------ construction

    def _resolve_hash_bits(self, hash_bits: int | None) -> int | None:
        if self.kind not in ("hash", "multihash"):
            return None if hash_bits is None else _check_int("hash_bits", hash_bits, 1)
        if self.kind == "multihash" and self.nhash > self.bits:
            raise ValueError(
                f"nhash={self.nhash} hash tables cannot each get a substring of {self.bits}-bit "
                f"codes; use nhash <= {self.bits}."
            )
        if hash_bits is None:
            per_table = self.bits if self.kind == "hash" else self.bits // self.nhash
            return min(per_table, 16)
        hash_bits = _check_int("hash_bits", hash_bits, 1)
        limit = min(self.bits, MAX_HASH_BITS)
        if hash_bits > limit:
            raise ValueError(
                f"hash_bits={hash_bits} is too large for {self.bits}-bit codes: "
                f"use 1 <= hash_bits <= {limit}."
            )
        if self.kind == "multihash" and self.nhash * hash_bits > self.bits:
            raise ValueError(
                f"multihash needs nhash * hash_bits <= bits, got {self.nhash} * {hash_bits} > "
                f"{self.bits}; use hash_bits <= {self.bits // self.nhash} or fewer tables."
            )
        return hash_bits

    def _resolve_gpu(self, use_gpu: bool | Literal["auto"]) -> bool:
        if use_gpu == "auto" and not isinstance(use_gpu, bool):
            return self.kind == "flat" and gpu_available()
        if not isinstance(use_gpu, bool):
            raise ValueError(f"use_gpu={use_gpu!r} is invalid: expected True, False or 'auto'.")
        if not use_gpu:
            return False
        if self.kind != "flat":
            raise ValueError(
                f"use_gpu=True needs kind='flat' (Faiss GPU binary search is brute force only), "
                f"got kind={self.kind!r}; pass use_gpu='auto' or False."
            )
        if not gpu_available():
            raise RuntimeError(
                "use_gpu=True but Faiss sees no GPU here (CPU-only faiss build, or "
                "faiss.get_num_gpus() == 0); install faiss-gpu on a CUDA machine, or pass "
                "use_gpu='auto' / False."
            )
        return True

    def _build(self) -> Any:
        d = self.bits
        if self.kind == "flat":
            sub = faiss.IndexBinaryFlat(d)
        elif self.kind == "hash":
            sub = faiss.IndexBinaryHash(d, self.hash_bits)
            sub.nflip = self.nflip
        elif self.kind == "multihash":
            sub = faiss.IndexBinaryMultiHash(d, self.nhash, self.hash_bits)
            sub.nflip = self.nflip
        elif self.kind == "ivf":
            quantizer = faiss.IndexBinaryFlat(d)
            sub = faiss.IndexBinaryIVF(quantizer, d, self.nlist)  # keeps a reference to quantizer
            sub.nprobe = self.nprobe
        else:
            sub = faiss.IndexBinaryHNSW(d, self.hnsw_m)
            sub.hnsw.efSearch = self.hnsw_ef_search
        return faiss.IndexBinaryIDMap(sub)  # keeps a reference to sub

    def _invalidate(self) -> None:
        """Drop caches derived from the index contents (after ``add`` or ``load``)."""
        self._sub = faiss.downcast_IndexBinary(self._index.index)
        self._ids_cache: np.ndarray | None = None
        self._gpu_index: Any = None

    # ------------------------------------------------------------------ properties

    @property
    def ntotal(self) -> int:
        """Number of indexed items."""
        return int(self._index.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    @property
    def is_trained(self) -> bool:
        """Whether the index can take codes (only ``ivf`` needs training)."""
        return bool(self._index.is_trained)

    @property
    def ids(self) -> np.ndarray:
        """External ids of the indexed items, read-only ``int64 (ntotal,)``, in insertion order."""
        if self._ids_cache is None:
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)
            ids.flags.writeable = False
            self._ids_cache = ids
        return self._ids_cache

    def config(self) -> dict[str, Any]:
        """Constructor arguments (without ``use_gpu``) that rebuild an empty index like this one."""
        return {
            "bits": self.bits,
            "kind": self.kind,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "hash_bits": self.hash_bits,
            "nhash": self.nhash,
            "nflip": self.nflip,
            "hnsw_m": self.hnsw_m,
            "hnsw_ef_search": self.hnsw_ef_search,
        }

    def __repr__(self) -> str:
        return (
            f"HammingIndex(bits={self.bits}, kind={self.kind!r}, ntotal={self.ntotal}, "
            f"gpu={self._gpu_enabled})"
        )

    # ------------------------------------------------------------------ input checks

    def _check_codes(self, codes: Any, name: str) -> np.ndarray:
        arr = np.asarray(codes)
        if arr.ndim != 2:
            raise ValueError(
                f"{name} must be a 2-d array of packed codes (items, {self.code_size}), got shape "
                f"{arr.shape}; reshape a single code with codes[None, :]."
            )
        if arr.dtype != np.uint8 or arr.shape[1] != self.code_size:
            if arr.shape[1] == self.bits:
                fix = "these look like unpacked bits: pack them with codes.pack_bits"
            elif arr.dtype != np.uint8:
                fix = "pass packed uint8 codes (hashbench.retrieval.codes.pack_bits)"
            else:
                fix = (
                    "encode them with the same code length, or use an index built with "
                    f"bits={arr.shape[1] * 8}"
                )
            raise ValueError(
                f"{name} must be packed uint8 codes of {self.code_size} bytes each (this index "
                f"holds {self.bits}-bit codes), got dtype {arr.dtype} shape {arr.shape}; {fix}."
            )
        return np.ascontiguousarray(arr)

    def _check_ids(self, ids: Any, n: int) -> np.ndarray:
        if ids is None:
            start = int(self.ids.max()) + 1 if self.ntotal else 0
            return np.arange(start, start + n, dtype=np.int64)
        arr = np.asarray(ids)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise ValueError(f"ids must be a 1-d array of {n} ids (one per code), got {arr.shape}.")
        if n and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"ids must be integers, got dtype {arr.dtype}.")
        arr = arr.astype(np.int64)
        if n and arr.min() < 0:
            raise ValueError("ids must be >= 0 (-1 marks 'no result' in search output).")
        uniq = np.unique(arr)
        if uniq.shape[0] != n:
            raise ValueError("ids must be unique; this batch repeats some.")
        if self.ntotal:
            clash = np.intersect1d(uniq, self.ids, assume_unique=False)
            if clash.size:
                raise ValueError(
                    f"ids already in the index: {clash[:5].tolist()}"
                    f"{' ...' if clash.size > 5 else ''}; ids must be unique within the index."
                )
        return np.ascontiguousarray(arr)

    # ------------------------------------------------------------------ building

    def train(self, codes: np.ndarray) -> None:
        """Train the coarse quantiser (``ivf``); a no-op for other kinds.

        Args:
            codes: Packed training codes ``uint8 (n, bits / 8)``; ``ivf`` needs ``n >= nlist``.
        """
        codes = self._check_codes(codes, "training codes")
        if self.kind != "ivf":
            return
        if self.ntotal:
            raise RuntimeError(
                f"cannot retrain an ivf index that already holds {self.ntotal} codes; build a new "
                "HammingIndex and train it before adding."
            )
        if codes.shape[0] < self.nlist:
            raise ValueError(
                f"ivf training needs at least nlist={self.nlist} codes, got {codes.shape[0]}; "
                "train on more codes or pass a smaller nlist."
            )
        self._index.train(codes)
        self._invalidate()

    def add(self, codes: np.ndarray, ids: np.ndarray | None = None) -> None:
        """Add packed codes with external ids.

        Args:
            codes: Packed codes ``uint8 (n, bits / 8)``.
            ids: Non-negative ``int64`` ids ``(n,)``, unique within the index. Default: consecutive
                ids continuing after the largest id present (``0..n-1`` for an empty index).
        """
        codes = self._check_codes(codes, "codes")
        ids = self._check_ids(ids, codes.shape[0])
        if codes.shape[0] == 0:
            return
        if not self.is_trained:
            self.train(codes)
        self._index.add_with_ids(codes, ids)
        self._invalidate()

    # ------------------------------------------------------------------ search

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest indexed items to each query by Hamming distance.

        Exact for ``flat``, approximate for the other kinds (module docstring).

        Args:
            queries: Packed query codes ``uint8 (nq, bits / 8)``.
            k: Number of neighbours per query (``>= 1``; may exceed ``ntotal``).

        Returns:
            ``(distances, ids)``: ``int32 (nq, k)`` and ``int64 (nq, k)``, each row sorted by
            ``(distance, id)``; slots without a result hold id ``-1`` and distance
            :data:`MISSING_DISTANCE`.
        """
        queries = self._check_codes(queries, "queries")
        k = _check_int("k", k, 1)
        nq = queries.shape[0]
        if nq == 0 or self.ntotal == 0:
            return (
                np.full((nq, k), MISSING_DISTANCE, np.int32),
                np.full((nq, k), -1, np.int64),
            )
        if self._gpu_enabled and k <= GPU_MAX_K:
            distances, positions = self._gpu().search(queries, k)
            positions = np.asarray(positions, dtype=np.int64)
            labels = np.where(positions >= 0, self.ids[np.maximum(positions, 0)], -1)
        else:
            distances, labels = self._index.search(queries, k)
        distances = np.asarray(distances, dtype=np.int32)
        labels = np.asarray(labels, dtype=np.int64)
        distances = np.where(labels < 0, MISSING_DISTANCE, distances).astype(np.int32)
        order = np.lexsort((labels, distances), axis=-1)
        return (
            np.take_along_axis(distances, order, axis=1),
            np.take_along_axis(labels, order, axis=1),
        )

    def _gpu(self) -> Any:
        if self._gpu_index is None:
            if not hasattr(self, "_gpu_resources"):
                self._gpu_resources = faiss.StandardGpuResources()
            self._gpu_index = faiss.GpuIndexBinaryFlat(self._gpu_resources, self._sub)
        return self._gpu_index

    def range_search(self, queries: np.ndarray, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """All indexed items within Hamming distance ``<= radius`` (inclusive) of each query.

        Exact for every kind except ``ivf`` (which sees only ``nprobe`` lists). Faiss's own binary
        range search keeps distances strictly below its radius, so it is called with
        ``radius + 1``.

        Args:
            queries: Packed query codes ``uint8 (nq, bits / 8)``.
            radius: Largest distance included, ``>= 0``.

        Returns:
            One ``(distances int32 (m,), ids int64 (m,))`` pair per query, sorted by
            ``(distance, id)``; ``m = 0`` for an empty ball.
        """
        queries = self._check_codes(queries, "queries")
        radius = _check_int("radius", radius, 0)
        nq = queries.shape[0]
        if nq == 0:
            return []
        if self.ntotal == 0:
            return [(np.empty(0, np.int32), np.empty(0, np.int64)) for _ in range(nq)]
        faiss_radius = min(radius, self.bits) + 1
        if self.kind == "hnsw":
            lims, dist, labels = self._storage_range_search(queries, faiss_radius)
        elif self.kind in ("hash", "multihash"):
            lims, dist, labels = self._hash_range_search(queries, radius, faiss_radius)
        else:  # flat (exact), ivf (nprobe lists)
            lims, dist, labels = self._index.range_search(queries, faiss_radius)
        return self._split_sorted(lims, dist, labels)

    def _storage_range_search(self, queries: np.ndarray, faiss_radius: int) -> tuple:
        """Exact range search over the wrapped index's flat code storage (hnsw, multihash)."""
        storage = faiss.downcast_IndexBinary(self._sub.storage)
        lims, dist, positions = storage.range_search(queries, faiss_radius)
        return lims, dist, self.ids[np.asarray(positions, dtype=np.int64)]

    def _hash_range_search(self, queries: np.ndarray, radius: int, faiss_radius: int) -> tuple:
        b = self.hash_bits
        assert b is not None
        if self.kind == "hash":
            flips = min(b, radius)
            if _n_probes(b, flips) > MAX_HASH_PROBES:
                raise ValueError(
                    f"range_search(radius={radius}) on a hash index with hash_bits={b} would probe "
                    f"{_n_probes(b, flips):,} buckets per query; use a smaller radius, fewer "
                    "hash_bits, or kind='flat' / 'multihash'."
                )
        else:
            flips = min(b, radius // self.nhash)
            if self.nhash * _n_probes(b, flips) > self.ntotal:
                return self._storage_range_search(queries, faiss_radius)
        saved = self._sub.nflip
        self._sub.nflip = flips
        try:
            return self._index.range_search(queries, faiss_radius)
        finally:
            self._sub.nflip = saved

    @staticmethod
    def _split_sorted(
        lims: np.ndarray, dist: np.ndarray, labels: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        lims = np.asarray(lims, dtype=np.int64)
        dist = np.asarray(dist).astype(np.int32)
        labels = np.asarray(labels, dtype=np.int64)
        query_of = np.repeat(np.arange(lims.shape[0] - 1), np.diff(lims))
        order = np.lexsort((labels, dist, query_of))
        dist, labels = dist[order], labels[order]
        return [
            (dist[lo:hi].copy(), labels[lo:hi].copy())
            for lo, hi in zip(lims[:-1].tolist(), lims[1:].tolist(), strict=True)
        ]

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the (CPU) index to ``path`` and its JSON sidecar to ``<path>.json``, atomically.

        ``path`` is a plain Faiss binary index file (``faiss.read_index_binary`` reads it); the
        sidecar records the configuration, ``ntotal`` and the file's SHA-256 so :meth:`load` can
        tell a mismatched or damaged pair, and :attr:`provenance` when it is set.

        Args:
            path: Destination file; its directory must exist.
        """
        path = Path(path)
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise FileNotFoundError(
                f"cannot save index to {path}: directory {parent} does not exist; create it first."
            )
        sidecar = _sidecar_path(path)
        # The index is renamed into place only after its sidecar (which holds its SHA-256).
        with atomic_path(path) as tmp_index, atomic_path(sidecar) as tmp_meta:
            faiss.write_index_binary(self._index, str(tmp_index))
            meta = {
                "format": FILE_FORMAT,
                "version": FILE_VERSION,
                **self.config(),
                "ntotal": self.ntotal,
                "faiss_version": faiss.__version__,
                "index_file": path.name,
                "sha256": _sha256(tmp_index),
                **({"provenance": self.provenance} if self.provenance is not None else {}),
            }
            tmp_meta.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, use_gpu: bool | Literal["auto"] = "auto"
    ) -> HammingIndex:
        """Read an index written by :meth:`save`.

        The configuration comes from the Faiss file itself; when the sidecar ``<path>.json`` exists
        it must match the file (SHA-256 and configuration), else the pair is rejected. A Faiss
        file without a sidecar loads if it has the layout :meth:`save` writes
        (``IndexBinaryIDMap`` over a supported index).

        Args:
            path: Index file written by :meth:`save`.
            use_gpu: As in the constructor (not stored in the file).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"index file {path} does not exist; write one with HammingIndex.save()."
            )
        sidecar = _sidecar_path(path)
        meta = None
        if sidecar.exists():
            try:
                meta = json.loads(sidecar.read_text(encoding="utf-8"))
                if not isinstance(meta, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, UnicodeDecodeError) as err:
                raise ValueError(
                    f"index sidecar {sidecar} is not valid JSON ({err}); re-save the index, or "
                    "delete the sidecar to load the Faiss file alone."
                ) from err
            if meta.get("format") != FILE_FORMAT or meta.get("version") != FILE_VERSION:
                raise ValueError(
                    f"index sidecar {sidecar} has format {meta.get('format')!r} version "
                    f"{meta.get('version')!r}; expected {FILE_FORMAT!r} version {FILE_VERSION}."
                )
            if meta.get("sha256") != _sha256(path):
                raise ValueError(
                    f"index file {path} does not match its sidecar {sidecar} (SHA-256 differs): "
                    "the file was changed, damaged or only partly written; re-save the index."
                )
        try:
            index = faiss.read_index_binary(str(path))
        except RuntimeError as err:
            raise ValueError(
                f"index file {path} is not a readable Faiss binary index (corrupt or truncated?): "
                f"{str(err).strip().splitlines()[-1] if str(err).strip() else err}"
            ) from err
        # read_index_binary already returns the concrete (owning) class; downcasting it again would
        # make a non-owning proxy and free the index with the original.
        if not isinstance(index, faiss.IndexBinaryIDMap):
            raise ValueError(
                f"index file {path} holds a {type(index).__name__}, not a HammingIndex "
                "(IndexBinaryIDMap over a flat / hash / multihash / ivf / hnsw binary index)."
            )
        sub = faiss.downcast_IndexBinary(index.index)
        config: dict[str, Any] = {"bits": int(index.d)}
        if isinstance(sub, faiss.IndexBinaryFlat):
            config["kind"] = "flat"
        elif isinstance(sub, faiss.IndexBinaryHash):
            config.update(kind="hash", hash_bits=int(sub.b), nflip=int(sub.nflip))
        elif isinstance(sub, faiss.IndexBinaryMultiHash):
            config.update(
                kind="multihash", hash_bits=int(sub.b), nhash=int(sub.nhash), nflip=int(sub.nflip)
            )
        elif isinstance(sub, faiss.IndexBinaryIVF):
            config.update(kind="ivf", nlist=int(sub.nlist), nprobe=int(sub.nprobe))
        elif isinstance(sub, faiss.IndexBinaryHNSW):
            config.update(
                kind="hnsw",
                hnsw_m=int(sub.hnsw.nb_neighbors(1)),
                hnsw_ef_search=int(sub.hnsw.efSearch),
            )
        else:
            raise ValueError(
                f"index file {path} wraps a {type(sub).__name__}, which HammingIndex does not "
                f"support (kinds: {list(KINDS)})."
            )
        if meta is not None:
            for key in ("bits", "kind", "hash_bits", "nhash", "nlist"):
                if key in config and meta.get(key) != config[key]:
                    raise ValueError(
                        f"index sidecar {sidecar} says {key}={meta.get(key)!r} but index file "
                        f"{path} has {key}={config[key]!r}; re-save the index."
                    )
            # parameters the file does not hold (those of other kinds) round-trip via the sidecar
            for key in ("nlist", "nprobe", "nhash", "nflip", "hnsw_m", "hnsw_ef_search"):
                if key not in config and isinstance(meta.get(key), int):
                    config[key] = meta[key]
        obj = cls(**config, use_gpu=use_gpu)
        obj._index = index
        provenance = meta.get("provenance") if meta is not None else None
        obj.provenance = provenance if isinstance(provenance, dict) else None
        obj._invalidate()
        return obj


def _sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
