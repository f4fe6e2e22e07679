"""The engine under :mod:`hashbench.retrieval.metrics`: distances, relevance and rankings per chunk.

The database is permuted once into the protocol's tie order (:func:`tie_order`), so a column's
index *is* its position in the seeded shuffle and a stable sort by distance is the ``"index"``
ranking. Queries are processed in chunks (:class:`Chunk`); every quantity of a chunk is computed
lazily, once, and shared by the metric groups that read it.

Hamming distances are integers in ``[0, b]``, so nothing here needs a comparison sort:

- **Bucket counts** (:attr:`Chunk.counts`, :func:`bucket_counts`): per query, the items and the
  relevant items of each distance bucket ``t = 0..b``, in one counting pass over the key
  ``2 d + rel`` (two keys per counted element). The PR curve, the radius metrics, AUC and the
  ``ties="expected"`` figures are closed forms of these counts.
- **Label-only quantities** (:class:`Labels`): the relevant items of a query and the histogram of
  its similarity levels (shared labels) over the database do not depend on the codes; they are
  computed once per distinct database label set, not per item.
- **The head of the ranking** (:attr:`Chunk.head`): a metric at depth ``k`` only needs the
  buckets up to the one that holds the ``k``-th item, ``t_k = min{t : #(d <= t) >= k}``. Those
  items are ordered by a stable counting sort on their distance (numpy's radix ``argsort`` of
  ``uint8``/``uint16`` keys, linear time) - over the columns in tie order, so ties fall in shuffle
  order. At ``k = nb`` this is the whole row.

Compiled kernels (:mod:`hashbench.retrieval.kernels`, numba) replace the hottest numpy steps when
numba imports (:func:`load_kernels`; ``HASHBENCH_METRICS_BACKEND=numpy`` turns them off): the
distances, the relevance rows, the bucket counts, and - for the ``"index"`` ranking when no group
needs the ranked columns themselves - the relevant ranks, from one counter per bucket instead of a
sort. They compute integers and the same divisions, so both engines give identical results.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from types import ModuleType
from typing import NamedTuple

import numpy as np

from hashbench.retrieval.codes import hamming_distances_words, hamming_words

#: Rows per chunk are sized so that ``rows * n_db * 8`` bytes stays under this. The per-chunk arrays
#: hold 1 or 2 bytes per query-item pair (distances, relevance, counting keys), so a chunk's working
#: set is a few MiB: it stays in cache, and the peak memory does not grow with the number of queries.
CHUNK_BYTES = 16 << 20

#: Counts up to this are exact in ``float32`` (every partial sum is an integer <= 2**24).
FLOAT32_EXACT_COUNTS = 1 << 24

#: Multi-label relevance ORs one packed bit row per label (:meth:`Labels.mark_relevant`) when the
#: ``classes x items / 8`` bytes fit in this (0.5 MB for NUS-WIDE's 21 labels x 194k items).
LABEL_BITS_BYTES = 64 << 20


#: Environment variable that picks the engine's loops (:func:`load_kernels`).
BACKEND_ENV = "HASHBENCH_METRICS_BACKEND"
#: ``auto``: compiled kernels when numba imports, else numpy; ``numba``: kernels or an error;
#: ``numpy``: the numpy engine only.
BACKENDS = ("auto", "numba", "numpy")


def load_kernels(backend: str | None = None) -> ModuleType | None:
    """The compiled kernels (:mod:`hashbench.retrieval.kernels`), or ``None`` for the numpy engine.

    Args:
        backend: one of :data:`BACKENDS`; ``None`` reads :data:`BACKEND_ENV` (default ``auto``).
    """
    if backend is None:
        backend = os.environ.get(BACKEND_ENV, "").strip() or "auto"
    if backend not in BACKENDS:
        raise ValueError(
            f"{BACKEND_ENV}={backend!r} is not one of {BACKENDS}; unset it for the default (auto)."
        )
    if backend == "numpy":
        return None
    try:
        from hashbench.retrieval import kernels
    except ImportError as err:
        if backend == "numba":
            raise ImportError(
                f"{BACKEND_ENV}=numba but the compiled metric kernels do not import ({err}); "
                f"install numba (pip install numba) or set {BACKEND_ENV}=auto."
            ) from err
        return None
    return kernels


def tie_order(n_db: int, seed: int) -> np.ndarray:
    """The protocol's tie-breaking key: the position of each database item in a seeded shuffle.

    The database order is shuffled once, ``perm = np.random.default_rng(seed).permutation(n_db)``
    (``perm[p]`` is the item at position ``p``), and this returns the inverse permutation:
    ``key[perm[p]] = p``. With ``ties="index"`` items are ranked by ``(hamming distance, key)``.

    Args:
        n_db: database size.
        seed: the protocol's seed.

    Returns:
        ``int64`` array ``(n_db,)``, a permutation of ``0..n_db-1``.
    """
    if isinstance(n_db, bool) or not isinstance(n_db, int | np.integer) or n_db < 0:
        raise ValueError(f"n_db={n_db!r} must be a non-negative integer.")
    perm = np.random.default_rng(seed).permutation(int(n_db))
    key = np.empty(int(n_db), dtype=np.int64)
    key[perm] = np.arange(int(n_db), dtype=np.int64)
    return key


def _label_words(labels: np.ndarray) -> np.ndarray:
    """Multi-hot rows as bit masks in the narrowest unsigned word that holds them, ``(n, w)``."""
    packed = np.packbits(labels, axis=1, bitorder="little")
    nbytes = max(packed.shape[1], 1)
    if nbytes <= 4:
        nbytes = 1 if nbytes == 1 else 2 if nbytes == 2 else 4
        dtype = {1: np.uint8, 2: np.uint16, 4: np.uint32}[nbytes]
    else:
        dtype = np.uint64
        nbytes = -(-nbytes // 8) * 8
    pad = nbytes - packed.shape[1]
    if pad:
        packed = np.concatenate([packed, np.zeros((packed.shape[0], pad), np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view(dtype)


def _unique_rows(words: np.ndarray, inverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``words (n, w)`` and how many times each occurs (``inverse``: the
    index of each row's distinct row instead)."""
    flat = words.shape[1] == 1
    sets, extra = np.unique(
        words[:, 0] if flat else words,
        axis=None if flat else 0,
        return_counts=not inverse,
        return_inverse=inverse,
    )
    return (sets[:, None] if flat else sets), extra.reshape(-1)


class Labels:
    """Labels encoded for fast pairwise comparison.

    Single-label data (every row of both sets has exactly one label) becomes class indices, compared
    with ``==``; multi-label data becomes bit masks (:func:`_label_words`), and the number of shared
    labels is the popcount of their AND (exact, no floating point). The database is also grouped by
    label set (class counts, or the distinct bit masks and their multiplicities ``c_u``), so that
    label-only quantities cost ``O(#sets)`` per query instead of ``O(nb)``.
    """

    def __init__(self, query: np.ndarray, db: np.ndarray):
        self.n_classes = query.shape[1]
        self.n_levels = self.n_classes + 1  # similarity levels 0..c
        self.n_db = db.shape[0]
        self.single = bool((query.sum(1) == 1).all() and (db.sum(1) == 1).all())
        if self.single:
            dtype = np.uint8 if self.n_classes <= 256 else np.int64
            self.query = query.argmax(1).astype(dtype)
            self.db = db.argmax(1).astype(dtype)
            self.class_counts = np.bincount(self.db, minlength=self.n_classes).astype(np.int64)
        else:
            self.query, self.db = _label_words(query), _label_words(db)
            self.db_t = np.ascontiguousarray(self.db.T)  # (w, nb): one contiguous row per word
            self.sets, set_counts = _unique_rows(self.db)
            self.set_counts = set_counts.astype(np.float64)  # exact: counts < 2**53
            self.query_sets, self.query_set_of = _unique_rows(self.query, inverse=True)
            self.query_bool = query

    def permute_db(self, perm: np.ndarray) -> None:
        self.db = np.ascontiguousarray(self.db[perm])
        if not self.single:
            self.db_t = np.ascontiguousarray(self.db.T)
            self.__dict__.pop("label_bits", None)

    @cached_property
    def label_bits(self) -> np.ndarray | None:
        """Multi-label: ``uint8 (c, ceil(nb / 8))``, row ``c`` the packed bits ``[item has label
        c]`` (little bit order), when they fit in :data:`LABEL_BITS_BYTES`; else ``None``."""
        if self.single or self.n_classes * -(-self.n_db // 8) > LABEL_BITS_BYTES:
            return None
        bits_per_word = self.db_t.dtype.itemsize * 8
        rows = [
            (self.db_t[c // bits_per_word] >> (c % bits_per_word)) & 1
            for c in range(self.n_classes)
        ]
        return np.packbits(np.stack(rows).astype(bool), axis=1, bitorder="little")

    def mark_relevant(self, qi: int, key: np.ndarray, word: np.ndarray | None = None) -> None:
        """Set bit 0 of ``key`` (one entry per database column, even values) where the column
        shares a label with query ``qi``: ``key |= rel``, in place, one row (stays in cache).

        Multi-label: the OR of the packed label rows of the query's labels (:attr:`label_bits`,
        ``nb / 8`` bytes each), unpacked once; without them ``(word & q) != 0`` per label word
        (``word``: scratch of ``nb`` label words).
        """
        if self.single:
            np.bitwise_or(key, (self.db == self.query[qi]).view(np.uint8), out=key)
            return
        bits = self.label_bits
        if bits is not None:
            own = np.flatnonzero(self.query_bool[qi])
            if own.size:
                union = np.bitwise_or.reduce(bits[own], axis=0)
                rel = np.unpackbits(union, count=self.n_db, bitorder="little")
                np.bitwise_or(key, rel, out=key)
            return
        q = self.query[qi]
        if word is None:
            word = np.empty(self.n_db, dtype=self.db_t.dtype)
        for w in range(q.shape[0]):
            if q[w]:
                shared = np.bitwise_and(self.db_t[w], q[w], out=word) != 0
                np.bitwise_or(key, shared.view(np.uint8), out=key)

    def rel(self, rows: slice) -> np.ndarray:
        """``bool (q, nb)``: shares at least one label."""
        if self.single:
            return self.query[rows, None] == self.db[None, :]
        first = range(self.query.shape[0])[rows]
        out = np.zeros((len(first), self.n_db), dtype=np.uint8)
        word = np.empty(self.n_db, dtype=self.db_t.dtype)
        for i, qi in enumerate(first):
            self.mark_relevant(qi, out[i], word)
        return out.view(bool)

    def rel_at(self, qi: int, cols: np.ndarray) -> np.ndarray:
        """``bool (len(cols),)``: relevance of the database columns ``cols`` to query ``qi``."""
        if self.single:
            return np.take(self.db, cols) == self.query[qi]
        q = self.query[qi]
        out = (np.take(self.db_t[0], cols) & q[0]) != 0
        for w in range(1, q.shape[0]):
            out |= (np.take(self.db_t[w], cols) & q[w]) != 0
        return out

    def levels_at(self, qi: int | slice, cols: np.ndarray | None) -> np.ndarray:
        """Similarity levels (shared labels) of query ``qi`` with the columns ``cols`` (``(k,)``,
        ``None``: all), or of the queries ``qi`` (a slice) with ``cols (q, k)``.

        ``uint8`` (``uint16`` beyond 255 classes).
        """
        q = self.query[qi]
        two_d = isinstance(qi, slice)
        if self.single:
            db = self.db if cols is None else np.take(self.db, cols)
            return (db == (q[:, None] if two_d else q)).view(np.uint8)
        dtype = np.uint8 if self.n_classes <= 255 else np.uint16
        out = None
        for w in range(q.shape[-1]):
            db = self.db_t[w] if cols is None else np.take(self.db_t[w], cols)
            part = np.bitwise_count(db & (q[:, w, None] if two_d else q[w])).astype(dtype)
            out = part if out is None else np.add(out, part, out=out)
        return out

    def _set_levels(self, query_words: np.ndarray) -> np.ndarray:
        """``(m, U)``: shared labels of each query word row with each distinct database set."""
        q = query_words
        out = np.bitwise_count(q[:, None, 0] & self.sets[None, :, 0]).astype(np.uint16)
        for w in range(1, q.shape[1]):
            out += np.bitwise_count(q[:, None, w] & self.sets[None, :, w])
        return out

    @cached_property
    def _level_hist_of_set(self) -> np.ndarray:
        """``int64 (m, c + 1)``: per distinct query label set ``q``, the database items per
        similarity level, ``n_l = sum_u c_u [|q & s_u| = l]``.

        Computed as matrix-vector products: for each level ``l >= 1`` the indicator matrix
        ``[|q & s_u| = l]`` (``m x U``, written straight as floats) times the multiplicities
        ``c``, and ``n_0 = nb - sum_{l >= 1} n_l``. The query sets are taken in blocks sorted by
        label count, so a block needs only the levels up to its largest count. Exact: every partial
        sum is an integer at most ``nb``, and ``float32`` is used only for ``nb <= 2**24``
        (:data:`FLOAT32_EXACT_COUNTS`).
        """
        fdtype = np.float32 if self.n_db <= FLOAT32_EXACT_COUNTS else np.float64
        counts = self.set_counts.astype(fdtype)
        qs = self.query_sets
        order = np.argsort(np.bitwise_count(qs).sum(axis=1), kind="stable")
        out = np.zeros((qs.shape[0], self.n_levels), dtype=np.int64)
        block = max(1, (1 << 21) // max(1, self.sets.shape[0]))
        for s in range(0, qs.shape[0], block):
            idx = order[s : s + block]
            levels = self._set_levels(qs[idx])
            indicator = np.empty(levels.shape, dtype=fdtype)
            for lv in range(1, int(levels.max(initial=0)) + 1):
                np.equal(levels, lv, out=indicator, casting="unsafe")
                out[idx, lv] = np.rint(indicator @ counts).astype(np.int64)
        out[:, 0] = self.n_db - out[:, 1:].sum(axis=1)
        return out

    def n_relevant(self, rows: slice) -> np.ndarray:
        """``R``: relevant database items of each query, ``int64 (q,)``.

        Single-label: the size of the query's class. Multi-label: ``nb - n_0`` from the level
        histogram of the query's label set (:meth:`level_hist`).
        """
        if self.single:
            return self.class_counts[self.query[rows]]
        return self.n_db - self._level_hist_of_set[self.query_set_of[rows], 0]

    def level_hist(self, rows: slice) -> np.ndarray:
        """``int64 (q, c + 1)``: database items per similarity level ``l = 0..c`` of each query,
        ``sum_u c_u [|q & s_u| = l]`` once per distinct query label set (single-label: ``nb - R``
        at level 0, ``R`` at level 1)."""
        if not self.single:
            return self._level_hist_of_set[self.query_set_of[rows]]
        n_rel = self.n_relevant(rows)
        out = np.zeros((n_rel.shape[0], self.n_levels), dtype=np.int64)
        out[:, 0], out[:, 1] = self.n_db - n_rel, n_rel
        return out


def sparse_flatnonzero(mask: np.ndarray, count: int | None = None) -> np.ndarray:
    """``np.flatnonzero(mask)`` of a 1-d ``bool`` mask, faster when at most 10 % is set.

    numpy's own loop jumps from one set entry to the next, which mispredicts about once per entry
    when entries are scattered at densities of a few percent. Below 10 % (``count``: the number of
    set entries, when the caller knows it) the mask is scanned as ``uint64`` words (8 entries) first,
    and only the non-zero words are expanded; both scans then run at a density numpy handles
    without mispredictions.
    """
    n = mask.shape[0]
    if count is None:
        count = int(np.count_nonzero(mask))
    if n < 64 or 10 * count > n:
        return np.flatnonzero(mask)
    n8 = n // 8 * 8
    words = mask[:n8].view(np.uint64)
    nz = np.flatnonzero(words != 0)
    inner = np.flatnonzero(np.take(words, nz).view(bool))
    head = nz[inner >> 3]
    head <<= 3
    head |= inner & 7
    if n8 == n:
        return head
    return np.concatenate([head, n8 + np.flatnonzero(mask[n8:])])


def cut_bucket(row: np.ndarray, k: int, n_buckets: int, mask: np.ndarray) -> int:
    """``t_k = min{t : #(row <= t) >= k}`` for ``1 <= k <= len(row)``; leaves ``row <= t_k`` in ``mask``.

    A first guess comes from a strided sample of the row (the columns are in shuffled order, so it
    is a random sample); each correction step moves ``t`` by one and is checked exactly with full
    comparisons, so the result is exact whatever the guess.
    """
    n = row.shape[0]
    step = max(1, n // 2048)
    sample = row[::step]
    cum = np.cumsum(np.bincount(sample, minlength=n_buckets))
    t = int(min(np.searchsorted(cum, k * sample.shape[0] / n), n_buckets - 1))
    while True:
        if t > 0 and np.count_nonzero(np.less(row, t, out=mask)) >= k:
            t -= 1
            continue
        if np.count_nonzero(np.less_equal(row, t, out=mask)) < k and t < n_buckets - 1:
            t += 1
            continue
        return t


def bucket_counts(
    dist: np.ndarray,
    rel: np.ndarray | Callable[[int, np.ndarray], None],
    n_buckets: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row ``i`` and distance bucket ``t``: ``cnt[i, t] = #{j : d_ij = t}`` and
    ``rcnt[i, t] = #{j : d_ij = t, rel_ij}``, ``int64 (q, n_buckets)``.

    One counting pass per row over the key ``v_j = 2 d_j + rel_j`` (``K = 2 n_buckets`` values):
    ``cnt[t] = n(2t) + n(2t+1)`` and ``rcnt[t] = n(2t + 1)``. When ``B = K + 1 <= 256`` and the row
    is long, the keys are counted two at a time: ``u_j = v_{2j} + B v_{2j+1}`` (a ``uint16`` view of
    the key bytes, compacted), ``h = bincount(u)`` over ``B^2`` values, and
    ``n(v) = sum_w h[v, w] + h[w, v]`` counts every item once - half as many elements to count,
    numpy's ``bincount`` being the per-element cost. An odd row is padded with the key ``K``,
    dropped at the end.

    Args:
        dist: distances ``(q, nb)``, values below ``n_buckets``.
        rel: relevance ``bool (q, nb)``, or ``rel(i, key)`` that ORs row ``i``'s relevance into
            bit 0 of ``key`` (:meth:`Labels.mark_relevant`), so that no relevance matrix is kept.
        n_buckets: ``b + 1``.
    """
    n_q, nb = dist.shape
    n_keys = 2 * n_buckets
    base = n_keys + 1
    both = np.empty((n_q, n_keys), dtype=np.int64)
    if callable(rel):
        mark = rel
    else:

        def mark(i: int, key: np.ndarray) -> None:
            np.bitwise_or(key, rel[i].view(np.uint8), out=key)

    if base <= 256 and nb >= base * base:
        key = np.empty(nb + (nb & 1), dtype=np.uint8)  # d <= 126 here: 2 d + 1 fits a byte
        pairs = key.view(np.uint16)  # a + 256 b or b + 256 a: the sum below is symmetric
        high = np.empty_like(pairs)
        for i in range(n_q):
            key[nb:] = n_keys  # the pad (odd rows); the compaction below rewrites it
            np.add(dist[i], dist[i], out=key[:nb])
            mark(i, key[:nb])
            np.right_shift(pairs, 8, out=high)
            np.multiply(high, 256 - base, out=high)
            np.subtract(pairs, high, out=pairs)  # low + base * high < base**2
            h = np.bincount(pairs, minlength=base * base).reshape(base, base)
            both[i] = (h.sum(axis=0) + h.sum(axis=1))[:n_keys]
    else:
        key = np.empty(nb, dtype=np.uint8 if n_keys <= 256 else np.uint16)
        for i in range(n_q):
            np.add(dist[i], dist[i], out=key, dtype=key.dtype)
            mark(i, key)
            both[i] = np.bincount(key, minlength=n_keys)
    rcnt = np.ascontiguousarray(both[:, 1::2])
    return both[:, 0::2] + rcnt, rcnt


class Workspace:
    """Reusable arrays for one thread's chunks, by name, grown on demand.

    A chunk's per-pair arrays (distances, relevance, the kernels' scratch and ranks) are views of
    these when the chunk is given a workspace, so each new chunk writes to memory that is already
    mapped: fresh allocations of that size cost about 40,000 page faults per 1,000 x 59,000
    evaluation (~0.07 s, as much as the kernels' own work). A workspace serves one chunk at a
    time: the runner (:func:`hashbench.retrieval.metrics._run`) keeps one per thread.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype: type | np.dtype) -> np.ndarray:
        """An uninitialised ``shape`` array of ``dtype``, the same memory as the last request of
        ``name`` when it fits."""
        dtype = np.dtype(dtype)
        size = int(np.prod(shape, dtype=np.int64))
        buf = self._buffers.get(name)
        if buf is None or buf.dtype != dtype or buf.size < size:
            buf = self._buffers[name] = np.empty(max(size, 1), dtype=dtype)
        return buf[:size].reshape(shape)


def _empty(
    workspace: Workspace | None, name: str, shape: tuple[int, ...], dtype: type | np.dtype
) -> np.ndarray:
    """``np.empty(shape, dtype)``, or the workspace's array ``name`` when there is one."""
    if workspace is None:
        return np.empty(shape, dtype=dtype)
    return workspace.array(name, shape, dtype)


class chunk_property:  # noqa: N801 - used as a decorator, like functools.cached_property
    """``functools.cached_property`` without its lock, for :class:`Chunk`.

    Before Python 3.12 ``cached_property`` computes under one lock per property shared by *every*
    instance, so two threads scoring two chunks (``evaluate(..., threads=n)``) waited for each
    other's distances, counts and rankings: 2 threads ran no faster than 1. A chunk is used by one
    thread, so its values need no lock. The value is stored in the instance ``__dict__`` under
    the property's name (``"counts" in chunk.__dict__`` tells whether it was computed).
    """

    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, objtype: type | None = None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


class Chunk:
    """Quantities for one chunk of queries, computed lazily and shared by the metric groups.

    ``dist`` has the database columns already permuted into tie order. Before a group reads
    :attr:`head` or :attr:`head_counts`, the runner sets :attr:`depth` (per query, how much of the
    ranking is needed), :attr:`keep_order` and :attr:`keep_levels` (whether the ranked column
    indices / their similarity levels are kept).
    """

    def __init__(
        self,
        dist: np.ndarray,
        labels: Labels,
        rows: slice,
        n_bits: int,
        kernels: ModuleType | None = None,
        workspace: Workspace | None = None,
    ):
        self.dist = dist
        self.labels = labels
        self.kernels = kernels
        self.workspace = workspace
        self.rows = rows
        self.n_bits = n_bits
        self.n_q, self.n_db = dist.shape
        self.n_buckets = n_bits + 1
        self.depth = np.full(self.n_q, self.n_db, dtype=np.int64)
        self.keep_order = False
        self.keep_levels = False

    @chunk_property
    def rel(self) -> np.ndarray:
        """``bool (q, nb)``: shares at least one label."""
        if self.kernels is None:
            return self.labels.rel(self.rows)
        out = _empty(self.workspace, "rel", (self.n_q, self.n_db), np.uint8)
        if self.labels.single:
            self.kernels.relevance_classes(self.labels.query[self.rows], self.labels.db, out)
        else:
            self.kernels.relevance_words(self.labels.query[self.rows], self.labels.db_t, out)
        return out.view(bool)

    def rel_at(self, i: int, cols: np.ndarray | None) -> np.ndarray:
        """Relevance of query ``i`` of the chunk to the columns ``cols`` (``None``: all)."""
        if cols is None:
            return self.rel[i]
        if "rel" in self.__dict__:
            return self.rel[i, cols]
        return self.labels.rel_at(self.rows.start + i, cols)

    @chunk_property
    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Per query and distance bucket ``t = 0..b``: items ``cnt`` and relevant items ``rcnt``."""
        if self.kernels is not None:
            cnt = np.empty((self.n_q, self.n_buckets), dtype=np.int64)
            rcnt = np.empty_like(cnt)
            self.kernels.bucket_counts(self.dist, self.rel.view(np.uint8), cnt, rcnt)
            return cnt, rcnt
        if "rel" in self.__dict__:
            return bucket_counts(self.dist, self.rel, self.n_buckets)
        word = None if self.labels.single else np.empty(self.n_db, dtype=self.labels.db_t.dtype)
        start = self.rows.start

        def mark(i: int, key: np.ndarray) -> None:
            self.labels.mark_relevant(start + i, key, word)

        return bucket_counts(self.dist, mark, self.n_buckets)

    @chunk_property
    def head_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """:attr:`counts` restricted to the buckets up to each query's cut (zero beyond).

        Exact for every quantity at depth ``<= depth[i]``: buckets past the cut hold no item of the
        top ``depth[i]``. The full counts when they are already known.
        """
        if "counts" in self.__dict__ or self.kernels is not None:
            if bool((self.depth >= self.n_db).all()):
                return self.counts
            cnt, rcnt = self.counts
            beyond = np.arange(self.n_buckets) > self.cut_buckets[:, None]
            return np.where(beyond, 0, cnt), np.where(beyond, 0, rcnt)
        if all(c is None for c in self.cuts):
            return self.counts
        nbk = self.n_buckets
        cnt = np.zeros((self.n_q, nbk), dtype=np.int64)
        rcnt = np.zeros((self.n_q, nbk), dtype=np.int64)
        for i, cand in enumerate(self.cuts):
            d = self.dist[i] if cand is None else self.dist[i, cand]
            r = self.rel_at(i, cand)
            cnt[i] = np.bincount(d, minlength=nbk)
            rcnt[i] = np.bincount(d[r], minlength=nbk)
        return cnt, rcnt

    @chunk_property
    def cut_buckets(self) -> np.ndarray:
        """Per query, the cut bucket of ``depth[i]`` from the counts, ``t_k = min{t : #(d <= t) >=
        k}`` (``b`` at full depth), ``int64 (q,)``."""
        cum = np.cumsum(self.counts[0], axis=1)
        last = self.n_buckets - 1
        return np.minimum((cum < self.depth[:, None]).sum(axis=1), last).astype(np.int64)

    def head_level_sums(self, value_of_level: np.ndarray) -> np.ndarray:
        """Per query and bucket up to the cut: ``sum_{j in bucket} value_of_level[level_j]``
        (``float64 (q, b + 1)``, zero past the cut)."""
        if self.kernels is not None and not self.labels.single:
            return self.head_level_counts @ value_of_level  # exact: integer counts and values
        out = np.zeros((self.n_q, self.n_buckets), dtype=np.float64)
        for i, (cand, levels) in enumerate(zip(self.cuts, self.head_levels, strict=True)):
            d = self.dist[i] if cand is None else self.dist[i, cand]
            out[i] = np.bincount(d, weights=value_of_level[levels], minlength=self.n_buckets)
        return out

    @chunk_property
    def head_level_counts(self) -> np.ndarray:
        """Multi-label, compiled: items per bucket up to the cut and similarity level,
        ``float64 (q, b + 1, c + 1)`` (:func:`hashbench.retrieval.kernels.bucket_level_counts`)."""
        out = np.empty((self.n_q, self.n_buckets, self.labels.n_levels), dtype=np.int64)
        query = np.ascontiguousarray(self.labels.query[self.rows])
        self.kernels.bucket_level_counts(self.dist, query, self.labels.db_t, self.cut_buckets, out)
        return out.astype(np.float64)

    @chunk_property
    def head_levels(self) -> list[np.ndarray]:
        """Per query: the similarity levels of the columns of :attr:`cuts` (ascending columns)."""
        start = self.rows.start
        return [self.labels.levels_at(start + i, cand) for i, cand in enumerate(self.cuts)]

    @chunk_property
    def n_relevant(self) -> np.ndarray:
        if "counts" in self.__dict__:
            return self.counts[1].sum(axis=1)
        return self.labels.n_relevant(self.rows)

    @chunk_property
    def level_hist(self) -> np.ndarray:
        """Database items per similarity level, ``int64 (q, c + 1)`` (:meth:`Labels.level_hist`)."""
        return self.labels.level_hist(self.rows)

    @chunk_property
    def cuts(self) -> list[np.ndarray | None]:
        """Per query: the columns (ascending) of the buckets up to the cut bucket of ``depth[i]``,
        or ``None`` when the whole row is needed."""
        out: list[np.ndarray | None] = []
        mask = np.empty(self.n_db, dtype=bool)
        cum = np.cumsum(self.counts[0], axis=1) if "counts" in self.__dict__ else None
        for i in range(self.n_q):
            k = int(self.depth[i])
            if k >= self.n_db:
                out.append(None)
            elif k <= 0:
                out.append(np.empty(0, dtype=np.intp))
            elif cum is not None:
                t = int(np.searchsorted(cum[i], k))
                np.less_equal(self.dist[i], t, out=mask)
                out.append(sparse_flatnonzero(mask, int(cum[i, t])))
            else:
                cut_bucket(self.dist[i], k, self.n_buckets, mask)
                out.append(sparse_flatnonzero(mask))
        return out

    @chunk_property
    def head(self) -> Head:
        """The head of the ``"index"`` ranking (:class:`Head`), one query at a time (a row stays
        in cache).

        For each query: the 0-based ranks of its relevant items among the top ``depth[i]``
        (ascending) and the precision at each of them, ``prec[j] = (j + 1) / (rank_j + 1)``, so that
        the AP numerator of a cutoff holding ``h`` relevant items is ``sum(prec[:h])``. Also the top
        ``depth[i]`` column indices in rank order when ``keep_order``, and their similarity levels
        (:attr:`top_levels`) when ``keep_levels`` - relevance is then read from the levels, so the
        label words are gathered once.
        """
        if self.kernels is not None and not (self.keep_order or self.keep_levels):
            return self._compiled_head()
        orders: list[np.ndarray] | None = [] if self.keep_order else None
        levels: list[np.ndarray] | None = [] if self.keep_levels else None
        size = int(np.minimum(self.depth, self.n_relevant).sum())
        ranks = _empty(self.workspace, "ranks", (size,), np.int64)
        precs = _empty(self.workspace, "precs", (size,), np.float64)
        offsets = np.zeros(self.n_q + 1, dtype=np.int64)
        hits = np.arange(1, self.n_db + 1, dtype=np.float64)
        start = self.rows.start
        for i, cand in enumerate(self.cuts):
            if cand is None:
                o = np.argsort(self.dist[i], kind="stable")  # radix sort: linear
            else:
                o = cand[np.argsort(self.dist[i, cand], kind="stable")[: int(self.depth[i])]]
            if levels is not None:
                lev = self.labels.levels_at(start + i, o)
                levels.append(lev)
                r = sparse_flatnonzero(lev != 0)
            elif cand is None:
                r = sparse_flatnonzero(np.take(self.rel[i], o))
            else:
                r = np.flatnonzero(self.rel_at(i, o))
            a, b = offsets[i], offsets[i] + r.size
            offsets[i + 1] = b
            ranks[a:b] = r
            np.add(r, 1.0, out=precs[a:b])
            np.divide(hits[: r.size], precs[a:b], out=precs[a:b])
            if orders is not None:
                orders.append(o)
        self._top_levels = levels
        return Head(ranks, precs, offsets, orders)

    def _compiled_head(self) -> Head:
        """:attr:`head` by :func:`hashbench.retrieval.kernels.relevant_ranks` (no ordering).

        Below full depth the bucket counts come first, so the kernel reads only the buckets up to
        each query's cut; at full depth its own counters are the counts, kept for later readers.
        """
        depth = self.depth.astype(np.int64)
        last = self.n_buckets - 1
        if bool((depth >= self.n_db).all()):
            cut = np.full(self.n_q, last, dtype=np.int64)
        else:
            cut = self.cut_buckets
        size = int(np.minimum(depth, self.n_relevant).sum())
        ranks = _empty(self.workspace, "ranks", (size,), np.int64)
        precs = _empty(self.workspace, "precs", (size,), np.float64)
        scratch = _empty(self.workspace, "rank_scratch", (2, self.n_db + 1), np.int64)
        offsets = np.empty(self.n_q + 1, dtype=np.int64)
        cnt = np.empty((self.n_q, self.n_buckets), dtype=np.int64)
        rcnt = np.empty_like(cnt)
        self.kernels.relevant_ranks(
            self.dist,
            self.rel.view(np.uint8),
            depth,
            cut,
            cnt,
            rcnt,
            offsets,
            ranks,
            precs,
            scratch,
        )
        if "counts" not in self.__dict__ and bool((cut == last).all()):
            self.__dict__["counts"] = (cnt, rcnt)
        self._top_levels = None
        end = offsets[-1]
        return Head(ranks[:end], precs[:end], offsets, None)

    def top_levels(self, k: int) -> np.ndarray:
        """Similarity levels of the top ``k`` items of every query in rank order, ``(q, k)``."""
        _ = self.head
        if self._top_levels is not None:
            return np.stack([lev[:k] for lev in self._top_levels])
        return self.labels.levels_at(self.rows, self.order(k))

    def ap_numerator(self, h: np.ndarray) -> np.ndarray:
        """``sum_{j < h[i]} (j + 1) / (rank_j + 1)`` per query: the AP numerator of a cutoff that
        holds ``h[i]`` relevant items, ``float64 (q,)``."""
        precs, starts = self.head.precs, self.head.offsets[:-1].tolist()
        # numpy's pairwise .sum() per query, as before the flat layout: results stay bit-identical
        return np.array(
            [precs[a : a + int(n)].sum() for a, n in zip(starts, h, strict=True)], dtype=np.float64
        )

    def order(self, k: int) -> np.ndarray:
        """The top ``k`` column indices of every query, ``(q, k)`` (needs ``keep_order``)."""
        orders = self.head.orders
        if orders is None:
            raise RuntimeError("internal: ranking order requested but keep_order was False")
        return np.stack([o[:k] for o in orders])

    def hits_at(self, k: np.ndarray) -> np.ndarray:
        """Relevant items in the top ``k[i]`` of query ``i`` (``"index"`` ranking), ``(q,)``."""
        head = self.head
        k = np.asarray(k, dtype=np.int64)
        if bool((k >= self.depth).all()):  # every kept rank is below depth[i] <= k[i]
            return np.diff(head.offsets)
        bounds = head.offsets.tolist()
        return np.array(
            [np.searchsorted(head.ranks[bounds[i] : bounds[i + 1]], k[i]) for i in range(self.n_q)],
            dtype=np.int64,
        )

    def hits_at_each(self, ns: np.ndarray) -> np.ndarray:
        """Relevant items in the top ``n`` for every ``n`` in ``ns``, ``(q, len(ns))``."""
        ranks, bounds = self.head.ranks, self.head.offsets.tolist()
        rows = [np.searchsorted(ranks[bounds[i] : bounds[i + 1]], ns) for i in range(self.n_q)]
        return np.stack(rows).astype(np.int64)


class Head(NamedTuple):
    """The head of a chunk's ``"index"`` ranking (:attr:`Chunk.head`), flat over its queries.

    Query ``i`` owns ``ranks[offsets[i]:offsets[i + 1]]`` (the 0-based ranks of its relevant items
    in the top ``depth[i]``, ascending) and the same span of ``precs``
    (``(j + 1) / (rank_j + 1)``); ``orders[i]`` is its top ``depth[i]`` columns in rank order, when
    kept.
    """

    ranks: np.ndarray
    precs: np.ndarray
    offsets: np.ndarray
    orders: list[np.ndarray] | None

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Query ``i``'s ranks and precisions."""
        span = slice(self.offsets[i], self.offsets[i + 1])
        return self.ranks[span], self.precs[span]


def bucket_before(cnt: np.ndarray, rcnt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Items and relevant items in the buckets strictly closer than each bucket."""
    return np.cumsum(cnt, axis=1) - cnt, np.cumsum(rcnt, axis=1) - rcnt


class ChunkSource:
    """The query chunks of one evaluation: the shared set-up once, each chunk on demand.

    :meth:`chunk` only reads the shared state, so chunks may be built and scored on several
    threads at once (``evaluate(..., threads=n)``).
    """

    def __init__(
        self,
        qc: np.ndarray,
        dc: np.ndarray,
        ql: np.ndarray,
        dl: np.ndarray,
        seed: int,
        chunk_size: int | None,
    ) -> None:
        n_db = dc.shape[0]
        key = tie_order(n_db, seed)
        perm = np.empty(n_db, dtype=np.int64)
        perm[key] = np.arange(n_db, dtype=np.int64)  # perm[p] = item at position p
        self.labels = Labels(ql, dl)
        self.labels.permute_db(perm)
        self.kernels = load_kernels()
        self.n_bits = qc.shape[1] * 8
        self.q_words, self.d_words = hamming_words(qc), hamming_words(dc[perm])
        if chunk_size is None:
            chunk_size = max(1, CHUNK_BYTES // (8 * n_db))
        self.rows = [
            slice(start, start + chunk_size) for start in range(0, qc.shape[0], chunk_size)
        ]

    def chunk(self, rows: slice, workspace: Workspace | None = None) -> Chunk:
        """The chunk of queries ``rows`` (their distances computed now).

        With a ``workspace`` the chunk's large arrays live in it, so the chunk is valid until the
        next chunk made with the same workspace.
        """
        q_words = self.q_words[:, rows]
        dtype = np.uint8 if self.n_bits <= 255 else np.uint16
        dist = _empty(workspace, "dist", (q_words.shape[1], self.d_words.shape[1]), dtype)
        if self.kernels is None:
            hamming_distances_words(q_words, self.d_words, self.n_bits, out=dist)
        else:
            self.kernels.hamming_distances(np.ascontiguousarray(q_words), self.d_words, dist)
        return Chunk(dist, self.labels, rows, self.n_bits, self.kernels, workspace)
