"""The engine under :mod:`hashbench.retrieval.metrics`: distances, relevance and rankings per chunk.

The database is permuted once into the protocol's tie order (:func:`tie_order`), so a column's
index *is* its position in the seeded shuffle and a stable sort by distance is the ``"index"``
ranking. Queries are processed in chunks (:class:`Chunk`); every quantity of a chunk is computed
lazily, once, and shared by the metric groups that read it.

Hamming distances are integers in ``[0, b]``, so nothing here needs a comparison sort:

- **Bucket counts** (:attr:`Chunk.counts`): per query, the items and the relevant items of each
  distance bucket ``t = 0..b``, one ``bincount`` of ``2 d + rel``. The PR curve, the radius
  metrics, AUC and every ``ties="expected"`` figure are closed forms of these counts.
- **The head of the ranking** (:attr:`Chunk.ranked`): a metric at depth ``k`` only needs the
  buckets up to the one that holds the ``k``-th item, ``t_k = min{t : #(d <= t) >= k}``. Those
  items (found by two or three vectorised comparisons, no histogram of the row) are ordered by a
  stable counting sort on their distance (numpy's radix ``argsort`` of ``uint8``/``uint16`` keys,
  linear time) - over the columns in tie order, so ties fall in shuffle order. At ``k = nb`` this
  is the whole row.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

import numpy as np

from hashbench.retrieval.codes import hamming_distances_words, hamming_words

#: Rows per chunk are sized so that ``rows * n_db * 8`` bytes stays under this. The per-chunk arrays
#: hold 1 or 2 bytes per query-item pair (distances, relevance, counting keys), so a chunk's working
#: set is a few MiB: it stays in cache, and the peak memory does not grow with the number of queries.
CHUNK_BYTES = 16 << 20


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
    if nbytes in (1, 2, 4):
        dtype = {1: np.uint8, 2: np.uint16, 4: np.uint32}[nbytes]
    else:
        dtype = np.uint64
        nbytes = -(-nbytes // 8) * 8
    pad = nbytes - packed.shape[1]
    if pad:
        packed = np.concatenate([packed, np.zeros((packed.shape[0], pad), np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view(dtype)


class Labels:
    """Labels encoded for fast pairwise comparison.

    Single-label data (every row of both sets has exactly one label) becomes class indices, compared
    with ``==``; multi-label data becomes bit masks (:func:`_label_words`), and the number of shared
    labels is the popcount of their AND (exact, no floating point).
    """

    def __init__(self, query: np.ndarray, db: np.ndarray):
        self.n_classes = query.shape[1]
        self.single = bool((query.sum(1) == 1).all() and (db.sum(1) == 1).all())
        if self.single:
            dtype = np.uint8 if self.n_classes <= 256 else np.int64
            self.query = query.argmax(1).astype(dtype)
            self.db = db.argmax(1).astype(dtype)
        else:
            self.query, self.db = _label_words(query), _label_words(db)
            self.db_t = np.ascontiguousarray(self.db.T)  # (w, nb): one contiguous row per word

    def permute_db(self, perm: np.ndarray) -> None:
        self.db = np.ascontiguousarray(self.db[perm])
        if not self.single:
            self.db_t = np.ascontiguousarray(self.db.T)

    def rel(self, rows: slice) -> np.ndarray:
        """``bool (q, nb)``: shares at least one label."""
        if self.single:
            return self.query[rows, None] == self.db[None, :]
        q = self.query[rows]
        out = np.bitwise_and(q[:, None, 0], self.db_t[None, 0, :]) != 0
        for w in range(1, q.shape[1]):
            out |= np.bitwise_and(q[:, None, w], self.db_t[None, w, :]) != 0
        return out

    def rel_at(self, qi: int, cols: np.ndarray) -> np.ndarray:
        """``bool (len(cols),)``: relevance of the database columns ``cols`` to query ``qi``."""
        if self.single:
            return np.take(self.db, cols) == self.query[qi]
        q = self.query[qi]
        out = (np.take(self.db_t[0], cols) & q[0]) != 0
        for w in range(1, q.shape[0]):
            out |= (np.take(self.db_t[w], cols) & q[w]) != 0
        return out

    def overlap(self, rows: slice) -> np.ndarray:
        """``uint8``/``uint16 (q, nb)``: number of shared labels (the similarity level)."""
        if self.single:
            return (self.query[rows, None] == self.db[None, :]).view(np.uint8)
        q = self.query[rows]
        dtype = np.uint8 if self.n_classes <= 255 else np.uint16
        out = np.bitwise_count(q[:, None, 0] & self.db_t[None, 0, :]).astype(dtype, copy=False)
        for w in range(1, q.shape[1]):
            out += np.bitwise_count(q[:, None, w] & self.db_t[None, w, :]).astype(dtype, copy=False)
        return out


def sparse_flatnonzero(mask: np.ndarray) -> np.ndarray:
    """``np.flatnonzero(mask)`` of a 1-d ``bool`` mask, faster when few entries are set.

    Scans the mask as ``uint64`` words (8 entries each) first and expands only the non-zero words.
    """
    n8 = mask.shape[0] // 8 * 8
    words = np.flatnonzero(mask[:n8].view(np.uint64))
    inner = np.flatnonzero(mask[:n8].reshape(-1, 8)[words])
    head = words[inner >> 3] * 8 + (inner & 7)
    if n8 == mask.shape[0]:
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


class Chunk:
    """Quantities for one chunk of queries, computed lazily and shared by the metric groups.

    ``dist`` has the database columns already permuted into tie order. Before a group reads
    :attr:`ranked` or :attr:`head_counts`, the runner sets :attr:`depth` (per query, how much of the
    ranking is needed) and :attr:`keep_order` (whether the ranked column indices are kept).
    """

    def __init__(self, dist: np.ndarray, labels: Labels, rows: slice, n_bits: int):
        self.dist = dist
        self.labels = labels
        self.rows = rows
        self.n_bits = n_bits
        self.n_q, self.n_db = dist.shape
        self.n_buckets = n_bits + 1
        self.depth = np.full(self.n_q, self.n_db, dtype=np.int64)
        self.keep_order = False

    @cached_property
    def overlap(self) -> np.ndarray:
        """Number of shared labels, ``(q, nb)`` small unsigned integers."""
        return self.labels.overlap(self.rows)

    @cached_property
    def rel(self) -> np.ndarray:
        return self.labels.rel(self.rows)

    def rel_at(self, i: int, cols: np.ndarray | None) -> np.ndarray:
        """Relevance of query ``i`` of the chunk to the columns ``cols`` (``None``: all)."""
        if cols is None:
            return self.rel[i]
        if "rel" in self.__dict__:
            return self.rel[i, cols]
        return self.labels.rel_at(self.rows.start + i, cols)

    def _keys(self) -> tuple[np.ndarray, int]:
        nbk = self.n_buckets
        key_dtype = np.uint8 if 2 * nbk <= 256 else np.uint16
        key = self.dist.astype(key_dtype, copy=True)
        key += key
        key += self.rel.view(np.uint8)
        return key, 2 * nbk

    @cached_property
    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Per query and distance bucket ``t = 0..b``: items ``cnt`` and relevant items ``rcnt``."""
        key, n_keys = self._keys()
        both = np.empty((self.n_q, n_keys), dtype=np.int64)
        for i in range(self.n_q):
            both[i] = np.bincount(key[i], minlength=n_keys)
        rcnt = both[:, 1::2]
        return both[:, 0::2] + rcnt, np.ascontiguousarray(rcnt)

    def bucket_sums(self, weights: np.ndarray) -> np.ndarray:
        """Per query and distance bucket: the sum of ``weights (q, nb)``."""
        out = np.empty((self.n_q, self.n_buckets), dtype=np.float64)
        for i in range(self.n_q):
            out[i] = np.bincount(self.dist[i], weights=weights[i], minlength=self.n_buckets)
        return out

    @cached_property
    def head_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """:attr:`counts` restricted to the buckets up to each query's cut (zero beyond).

        Exact for every quantity at depth ``<= depth[i]``: buckets past the cut hold no item of the
        top ``depth[i]``. The full counts when they are already known.
        """
        if "counts" in self.__dict__ or all(c is None for c in self.cuts):
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

    @cached_property
    def n_relevant(self) -> np.ndarray:
        if "counts" in self.__dict__:
            return self.counts[1].sum(axis=1)
        rel = self.rel
        return np.array([np.count_nonzero(rel[i]) for i in range(self.n_q)], dtype=np.int64)

    @cached_property
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
            else:
                if cum is not None:
                    np.less_equal(self.dist[i], int(np.searchsorted(cum[i], k)), out=mask)
                else:
                    cut_bucket(self.dist[i], k, self.n_buckets, mask)
                out.append(sparse_flatnonzero(mask))
        return out

    @cached_property
    def ranked(self) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray] | None]:
        """The head of the ``"index"`` ranking, one query at a time (a row stays in cache).

        For each query: the 0-based ranks of its relevant items among the top ``depth[i]``
        (ascending) and the running sum of precision at those ranks,
        ``cum[j] = sum_{i <= j} (i + 1) / (rank_i + 1)``, so that the AP numerator of any cutoff is
        one lookup. Also the top ``depth[i]`` column indices in rank order when ``keep_order``.
        """
        orders: list[np.ndarray] | None = [] if self.keep_order else None
        ranks, cums = [], []
        hits = np.arange(1, self.n_db + 1, dtype=np.float64)
        for i, cand in enumerate(self.cuts):
            k = int(self.depth[i])
            if cand is None:
                o = np.argsort(self.dist[i], kind="stable")  # radix sort: linear
                r = np.flatnonzero(np.take(self.rel[i], o))
            else:
                top = np.argsort(self.dist[i, cand], kind="stable")[:k]
                o = cand[top]
                r = np.flatnonzero(self.rel_at(i, cand)[top])
            ranks.append(r)
            prec = r + 1.0
            np.divide(hits[: r.size], prec, out=prec)
            cums.append(np.cumsum(prec, out=prec))
            if orders is not None:
                orders.append(o)
        return ranks, cums, orders

    def order(self, k: int) -> np.ndarray:
        """The top ``k`` column indices of every query, ``(q, k)`` (needs ``keep_order``)."""
        orders = self.ranked[2]
        if orders is None:
            raise RuntimeError("internal: ranking order requested but keep_order was False")
        return np.stack([o[:k] for o in orders])

    def hits_at(self, k: np.ndarray) -> np.ndarray:
        """Relevant items in the top ``k[i]`` of query ``i`` (``"index"`` ranking), ``(q,)``."""
        ranks = self.ranked[0]
        return np.array([np.searchsorted(ranks[i], k[i]) for i in range(self.n_q)], np.int64)

    def hits_at_each(self, ns: np.ndarray) -> np.ndarray:
        """Relevant items in the top ``n`` for every ``n`` in ``ns``, ``(q, len(ns))``."""
        return np.stack([np.searchsorted(r, ns) for r in self.ranked[0]]).astype(np.int64)


def bucket_before(cnt: np.ndarray, rcnt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Items and relevant items in the buckets strictly closer than each bucket."""
    return np.cumsum(cnt, axis=1) - cnt, np.cumsum(rcnt, axis=1) - rcnt


def iter_chunks(
    qc: np.ndarray,
    dc: np.ndarray,
    ql: np.ndarray,
    dl: np.ndarray,
    seed: int,
    chunk_size: int | None,
) -> Iterator[Chunk]:
    """Chunks of queries over the database in tie order (inputs already checked)."""
    n_db = dc.shape[0]
    key = tie_order(n_db, seed)
    perm = np.empty(n_db, dtype=np.int64)
    perm[key] = np.arange(n_db, dtype=np.int64)  # perm[p] = item at position p
    labels = Labels(ql, dl)
    labels.permute_db(perm)
    n_bits = qc.shape[1] * 8
    q_words, d_words = hamming_words(qc), hamming_words(dc[perm])
    if chunk_size is None:
        chunk_size = max(1, CHUNK_BYTES // (8 * n_db))
    for start in range(0, qc.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        dist = hamming_distances_words(q_words[:, rows], d_words, n_bits)
        yield Chunk(dist, labels, rows, n_bits)
