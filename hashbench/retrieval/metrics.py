"""Exact retrieval metrics for binary codes ranked by Hamming distance (PROTOCOL.md, "Metrics").

Every function takes packed codes (``uint8 (n, b/8)``, see :mod:`hashbench.retrieval.codes`) and
multi-hot labels (``(n, c)``, any dtype; a non-zero entry is a label the item carries) for the
queries and the database. Every metric is computed per query and then averaged over the queries.

Relevance and similarity (PROTOCOL.md, "Relevance"): a database item is relevant to a query when
the two share at least one label; the similarity level used by NDCG and ACG is the number of shared
labels.

Ranking (PROTOCOL.md, "Ranking and ties"): the database is ranked by Hamming distance, ascending.
Hamming distances are small integers, so ties decide a lot; two rules are implemented:

- ``ties="index"`` (default): the database order is shuffled once with
  ``np.random.default_rng(seed).permutation(n_db)`` and items are ranked by
  (distance, position in that shuffle) - stable and reproducible. :func:`tie_order` gives the key.
- ``ties="expected"``: the expected value of the metric when the items inside each distance bucket
  are in uniformly random order, in exact closed form (no sampling). For AP this is the tie-aware AP
  of McSherry and Najork (ECIR 2008), extended to a cutoff ``k`` that falls inside a bucket by
  conditioning on the hypergeometric number of relevant items of that bucket inside the cut.

Metric groups (names for ``evaluate(metrics=...)``) and the keys they produce (``{k}`` is the
cutoff, ``all`` for the whole database; ``{N}`` each entry of ``p_at_n`` that is <= the database
size; ``{r}`` the radius):

===================  ==========================================================================
group                keys
===================  ==========================================================================
``"mAP"``            ``mAP@{k}``: mean AP@k, normaliser chosen by ``normalize``
``"P@N"``            ``P@{N}``, ``R@{N}``; ``P@N_curve``, ``R@N_curve`` (arrays over the kept N)
                     and ``P@N_curve/N`` (the kept N themselves)
``"hamming_radius"`` ``P@H<={r}``, ``R@H<={r}``, ``mAP@H<={r}``, ``F1@H<={r}``
``"pr_curve"``       ``pr_curve/precision``, ``pr_curve/recall``: arrays of length b + 1 (r = 0..b)
``"ndcg"``           ``NDCG@{k}``, ``ACG@{k}``
``"auc"``            ``AUC``
===================  ==========================================================================

Speed: the database is permuted into tie order once (so a column's index is its tie position),
distances are computed for a chunk of queries at a time (memory bounded by :data:`CHUNK_BYTES`),
and each query's ranking is a stable ``argsort`` of its ``uint8``/``uint16`` distances (numpy uses
a radix sort there: linear time), done one query at a time so the row stays in cache. The
order-free quantities (PR curve, radius metrics, AUC and all of ``ties="expected"``) come from
per-query counts over the ``b + 1`` distance buckets; no comparison sort anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from typing import Literal

import numpy as np
from scipy.special import gammaln

from hashbench.retrieval.codes import hamming_distances
from hashbench.retrieval.evaluation import TieRule as Ties

Normalize = Literal["retrieved", "relevant"]

P_AT_N: tuple[int, ...] = (1, 10, 100, 200, 400, 500, 1000, 2000, 5000)
METRIC_GROUPS: tuple[str, ...] = ("mAP", "P@N", "hamming_radius", "pr_curve", "ndcg", "auc")
DEFAULT_METRICS: tuple[str, ...] = METRIC_GROUPS

#: Chunks of queries are sized so that ``chunk * n_db * 8`` bytes (the largest per-chunk array holds
#: at most 8 bytes per query-item pair) stays under this; the peak working memory of a chunk is a
#: small multiple of it (distances, relevance, ranks and similarity levels together).
CHUNK_BYTES = 64 << 20

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_METRICS",
    "METRIC_GROUPS",
    "Normalize",
    "P_AT_N",
    "Ties",
    "auc",
    "evaluate",
    "hamming_radius_metrics",
    "mean_average_precision",
    "ndcg_acg_at_k",
    "pr_curve",
    "precision_recall_at_n",
    "relevance",
    "tie_order",
]


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------


def _to_numpy(x: object, name: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
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


def _check_k(k: object, name: str = "k") -> int | None:
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(
            f"{name}={k!r} must be a positive integer, or None for the whole database."
        )
    return int(k)


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


def _k_name(k: int | None) -> str:
    return "all" if k is None else str(k)


# ----------------------------------------------------------------------------------------------
# Public building blocks
# ----------------------------------------------------------------------------------------------


def relevance(query_labels: object, db_labels: object) -> np.ndarray:
    """Ground-truth relevance: ``rel[i, j] = 1[query i and database item j share >= 1 label]``.

    Args:
        query_labels: multi-hot ``(nq, c)`` labels (bool / int / float; non-zero means "has label").
        db_labels: multi-hot ``(nb, c)`` labels over the same ``c`` labels.

    Returns:
        ``bool`` array ``(nq, nb)``.
    """
    ql = _check_labels(
        query_labels, "query_labels", _to_numpy(query_labels, "query_labels").shape[0]
    )
    dl = _check_labels(db_labels, "db_labels", _to_numpy(db_labels, "db_labels").shape[0])
    if ql.shape[1] != dl.shape[1]:
        raise ValueError(
            f"query_labels have {ql.shape[1]} classes but db_labels have {dl.shape[1]}."
        )
    return (ql.astype(np.float32) @ dl.astype(np.float32).T) > 0


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


# ----------------------------------------------------------------------------------------------
# Per-chunk state
# ----------------------------------------------------------------------------------------------


class _Labels:
    """Labels encoded for fast pairwise comparison.

    Single-label data (every row of both sets has exactly one label) becomes class indices, compared
    with ``==``; multi-label data becomes bit masks packed into ``uint64`` words, and the number of
    shared labels is the popcount of their AND (exact, no floating point).
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

    def permute_db(self, perm: np.ndarray) -> None:
        self.db = np.ascontiguousarray(self.db[perm])

    def rel(self, rows: slice) -> np.ndarray:
        """``bool (q, nb)``: shares at least one label."""
        if self.single:
            return self.query[rows, None] == self.db[None, :]
        q = self.query[rows]
        out = (q[:, None, 0] & self.db[None, :, 0]) != 0
        for w in range(1, q.shape[1]):
            out |= (q[:, None, w] & self.db[None, :, w]) != 0
        return out

    def overlap(self, rows: slice) -> np.ndarray:
        """``uint8``/``uint16 (q, nb)``: number of shared labels (the similarity level)."""
        if self.single:
            return (self.query[rows, None] == self.db[None, :]).view(np.uint8)
        q = self.query[rows]
        dtype = np.uint8 if self.n_classes <= 255 else np.uint16
        out = np.bitwise_count(q[:, None, 0] & self.db[None, :, 0]).astype(dtype, copy=False)
        for w in range(1, q.shape[1]):
            out += np.bitwise_count(q[:, None, w] & self.db[None, :, w]).astype(dtype, copy=False)
        return out


def _label_words(labels: np.ndarray) -> np.ndarray:
    packed = np.packbits(labels, axis=1, bitorder="little")
    pad = (-packed.shape[1]) % 8
    if pad or packed.shape[1] == 0:
        pad = pad or 8
        packed = np.concatenate([packed, np.zeros((packed.shape[0], pad), np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view(np.uint64)


class _Chunk:
    """Quantities for one chunk of queries, computed lazily and shared by the metric groups.

    ``dist`` has the database columns already permuted into tie order, so a column's index *is* its
    position in the protocol's shuffle and a stable sort by distance gives the ``"index"`` ranking.
    """

    def __init__(
        self, dist: np.ndarray, labels: _Labels, rows: slice, n_bits: int, keep_order: bool
    ):
        self.dist = dist
        self.labels = labels
        self.rows = rows
        self.n_bits = n_bits
        self.keep_order = keep_order
        self.n_q, self.n_db = dist.shape
        self.n_buckets = n_bits + 1

    @cached_property
    def overlap(self) -> np.ndarray:
        """Number of shared labels, ``(q, nb)`` small unsigned integers."""
        return self.labels.overlap(self.rows)

    @cached_property
    def rel(self) -> np.ndarray:
        return self.labels.rel(self.rows)

    @cached_property
    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Per query and distance bucket ``t = 0..b``: items ``cnt`` and relevant items ``rcnt``."""
        nbk = self.n_buckets
        key_dtype = np.uint8 if 2 * nbk <= 256 else np.uint16
        key = self.dist.astype(key_dtype, copy=True)
        key *= key_dtype(2)
        key += self.rel.view(np.uint8)
        both = np.empty((self.n_q, 2 * nbk), dtype=np.int64)
        for i in range(self.n_q):
            both[i] = np.bincount(key[i], minlength=2 * nbk)
        rcnt = both[:, 1::2]
        return both[:, 0::2] + rcnt, np.ascontiguousarray(rcnt)

    def bucket_sums(self, weights: np.ndarray) -> np.ndarray:
        """Per query and distance bucket: the sum of ``weights (q, nb)``."""
        out = np.empty((self.n_q, self.n_buckets), dtype=np.float64)
        for i in range(self.n_q):
            out[i] = np.bincount(self.dist[i], weights=weights[i], minlength=self.n_buckets)
        return out

    @cached_property
    def n_relevant(self) -> np.ndarray:
        return np.count_nonzero(self.rel, axis=1)

    @cached_property
    def before(self) -> tuple[np.ndarray, np.ndarray]:
        """Items and relevant items in the buckets strictly closer than each bucket."""
        cnt, rcnt = self.counts
        return np.cumsum(cnt, axis=1) - cnt, np.cumsum(rcnt, axis=1) - rcnt

    @cached_property
    def ranked(self) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray | None]:
        """The ``"index"`` ranking, one query at a time (a row fits in cache: faster than 2-d ops).

        For each query: the 0-based ranks of its relevant items (ascending) and the running sum of
        precision at those ranks, ``cum[j] = sum_{i <= j} (i + 1) / (rank_i + 1)``, so that the AP
        numerator of any cutoff is one lookup. Also the ranking itself (column indices sorted by
        (distance, column), ``(q, nb)``) when ``keep_order``, else ``None``.
        """
        rel = self.rel
        buf = np.empty(self.n_db, dtype=bool)
        order = None
        if self.keep_order:
            order = np.empty(rel.shape, dtype=np.int32 if self.n_db < 2**31 else np.int64)
        ranks, cums = [], []
        for i in range(self.n_q):
            o = np.argsort(self.dist[i], kind="stable")  # radix sort for small integers
            np.take(rel[i], o, out=buf)
            r = np.flatnonzero(buf)
            ranks.append(r)
            cums.append(np.cumsum(np.arange(1, r.size + 1) / (r + 1.0)))
            if order is not None:
                order[i] = o
        return ranks, cums, order

    @property
    def order(self) -> np.ndarray:
        order = self.ranked[2]
        if order is None:
            raise RuntimeError("internal: ranking order requested but keep_order was False")
        return order

    def hits_at(self, k: np.ndarray) -> np.ndarray:
        """Relevant items in the top ``k[i]`` of query ``i`` (``"index"`` ranking), ``(q,)``."""
        ranks = self.ranked[0]
        return np.array([np.searchsorted(ranks[i], k[i]) for i in range(self.n_q)], np.int64)

    def hits_at_each(self, ns: np.ndarray) -> np.ndarray:
        """Relevant items in the top ``n`` for every ``n`` in ``ns``, ``(q, len(ns))``."""
        return np.stack([np.searchsorted(r, ns) for r in self.ranked[0]]).astype(np.int64)


def _iter_chunks(
    query_codes: object,
    db_codes: object,
    query_labels: object,
    db_labels: object,
    seed: int,
    chunk_size: int | None,
    keep_order: bool = False,
) -> Iterator[_Chunk]:
    qc, dc, ql, dl = _check_inputs(query_codes, db_codes, query_labels, db_labels)
    chunk_size = _check_chunk_size(chunk_size)
    n_db = dc.shape[0]
    key = tie_order(n_db, seed)
    perm = np.empty(n_db, dtype=np.int64)
    perm[key] = np.arange(n_db, dtype=np.int64)  # perm[p] = item at position p
    dc = np.ascontiguousarray(dc[perm])
    labels = _Labels(ql, dl)
    labels.permute_db(perm)
    if chunk_size is None:
        chunk_size = max(1, CHUNK_BYTES // (8 * n_db))
    n_bits = qc.shape[1] * 8
    for start in range(0, qc.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        yield _Chunk(hamming_distances(qc[rows], dc), labels, rows, n_bits, keep_order)


# ----------------------------------------------------------------------------------------------
# Average precision
# ----------------------------------------------------------------------------------------------


def _ap_index(ch: _Chunk, k: np.ndarray, normalize: str) -> np.ndarray:
    """AP@k per query under the ``"index"`` ranking; ``k`` is ``(q,)``, already capped at ``nb``."""
    cums = ch.ranked[1]
    h = ch.hits_at(k)  # R_k
    num = np.array([cums[i][h[i] - 1] if h[i] else 0.0 for i in range(ch.n_q)], np.float64)
    denom = h if normalize == "retrieved" else np.minimum(k, ch.n_relevant)
    return np.divide(num, denom, out=np.zeros(ch.n_q), where=denom > 0)


def _harmonic(n: int) -> np.ndarray:
    """``H[j] = sum_{i=1..j} 1/i`` for ``j = 0..n`` in extended precision."""
    h = np.zeros(n + 1, dtype=np.longdouble)
    h[1:] = np.cumsum(1.0 / np.arange(1, n + 1, dtype=np.longdouble))
    return h


def _bucket_ap_sum(
    N: np.ndarray, R: np.ndarray, n: np.ndarray, r: np.ndarray, m: np.ndarray, H: np.ndarray
) -> np.ndarray:
    """Expected sum of precision@rank over the relevant items among the first ``m`` of a bucket.

    A bucket of ``n`` items, ``r`` of them relevant, in uniformly random order, follows ``N`` items
    of which ``R`` are relevant. Position ``p`` of the bucket is relevant with probability ``r/n``;
    given that, the relevant items among its ``p - 1`` predecessors in the bucket are
    hypergeometric with mean ``(p-1)(r-1)/(n-1)``. Hence (McSherry and Najork, ECIR 2008)

        sum_{p=1..m} r/n * (R + 1 + (p-1)(r-1)/(n-1)) / (N + p)
          = r/n * [(R + 1) h + (r-1)/(n-1) * (m - (N + 1) h)],   h = H[N+m] - H[N].

    All arguments broadcast; returns ``longdouble``; zero where ``n == 0``.
    """
    N, R, n, r, m = (np.asarray(a, dtype=np.int64) for a in (N, R, n, r, m))
    h = H[N + m] - H[N]
    n_safe = np.maximum(n, 1).astype(np.longdouble)
    c = np.where(n > 1, (r - 1) / np.maximum(n - 1, 1).astype(np.longdouble), 0)
    val = (r / n_safe) * ((R + 1) * h + c * (m - (N + 1) * h))
    return np.where(n > 0, val, 0)


def _ap_expected(ch: _Chunk, k: np.ndarray, normalize: str, H: np.ndarray) -> np.ndarray:
    """Exact expected AP@k per query under uniformly random order within distance buckets.

    Buckets entirely inside the top ``k`` contribute :func:`_bucket_ap_sum`. For the bucket cut by
    ``k`` (``m`` of its ``n`` items inside), the number ``X`` of its relevant items inside the cut
    is hypergeometric ``(n, r, m)`` and, given ``X = x``, those ``x`` items are uniformly placed
    among the ``m`` positions. With ``normalize="relevant"`` the denominator is fixed and the
    expectation is linear; with ``"retrieved"`` it is
    ``sum_x P(X=x) (S_full + S_cut(x)) / (R_full + x)``.

    The sum over ``x`` skips values farther than ``8 sqrt(m) + 2`` from the mean ``m r / n``: by
    Hoeffding's inequality for the hypergeometric their total probability is below
    ``2 exp(-128)``, so the result is exact to double precision while the work per query stays
    ``O(sqrt(m))`` instead of ``O(m)``.
    """
    cnt, rcnt = ch.counts
    n_before, r_before = ch.before
    m = np.clip(k[:, None] - n_before, 0, cnt)  # items of each bucket inside the cut
    full = m == cnt
    partial = (m > 0) & (m < cnt)
    s_full = np.where(full, _bucket_ap_sum(n_before, r_before, cnt, rcnt, cnt, H), 0).sum(axis=1)
    if normalize == "relevant":
        s_cut = np.where(partial, _bucket_ap_sum(n_before, r_before, cnt, rcnt, m, H), 0).sum(
            axis=1
        )
        denom = np.minimum(k, ch.n_relevant)
        return np.where(denom > 0, (s_full + s_cut) / np.maximum(denom, 1), 0).astype(np.float64)
    r_full = np.where(full, rcnt, 0).sum(axis=1)
    ap = np.where(r_full > 0, s_full / np.maximum(r_full, 1), 0)
    qi, ti = np.nonzero(partial)  # at most one cut bucket per query
    if qi.size:
        n, r, mm = cnt[qi, ti], rcnt[qi, ti], m[qi, ti]
        big_n, big_r = n_before[qi, ti], r_before[qi, ti]  # big_r == r_full[qi]
        centre = mm * r / np.maximum(n, 1)
        half = np.ceil(8.0 * np.sqrt(mm)) + 2
        lo = np.maximum(np.maximum(0, mm - (n - r)), np.floor(centre - half).astype(np.int64))
        hi = np.minimum(np.minimum(mm, r), np.ceil(centre + half).astype(np.int64))
        length = hi - lo + 1
        seg = np.repeat(np.arange(qi.size), length)
        first = np.cumsum(length) - length
        x = lo[seg] + (np.arange(seg.size) - first[seg])
        n_s, r_s, m_s = n[seg], r[seg], mm[seg]
        logpmf = _log_comb(r_s, x) + _log_comb(n_s - r_s, m_s - x) - _log_comb(n_s, m_s)
        pmf = np.exp(logpmf)
        pmf /= np.bincount(seg, weights=pmf, minlength=qi.size)[seg]  # renormalise rounding
        s_cut = _bucket_ap_sum(big_n[seg], big_r[seg], m_s, x, m_s, H)
        denom = big_r[seg] + x
        val = np.where(denom > 0, (s_full[qi][seg] + s_cut) / np.maximum(denom, 1), 0)
        ap[qi] = np.bincount(seg, weights=(pmf * val).astype(np.float64), minlength=qi.size)
    return ap.astype(np.float64)


def _log_comb(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def _ap_per_query(
    ch: _Chunk, k: int | None, ties: str, normalize: str, H: np.ndarray | None
) -> np.ndarray:
    kk = np.full(ch.n_q, ch.n_db if k is None else min(k, ch.n_db), dtype=np.int64)
    if ties == "index":
        return _ap_index(ch, kk, normalize)
    return _ap_expected(ch, kk, normalize, H)


# ----------------------------------------------------------------------------------------------
# Metric groups: per-chunk function returning per-query arrays + reducer to a flat dict
# ----------------------------------------------------------------------------------------------


class _Group:
    """A metric group: ``per_chunk(chunk) -> per-query arrays``, ``finish(arrays) -> dict``."""

    def per_chunk(self, ch: _Chunk) -> tuple[np.ndarray, ...]:  # pragma: no cover - interface
        raise NotImplementedError

    def finish(self, arrays: tuple[np.ndarray, ...]) -> dict:  # pragma: no cover - interface
        raise NotImplementedError


class _MAP(_Group):
    def __init__(self, k: int | None, ties: str, normalize: str, n_db: int):
        self.k, self.ties, self.normalize = k, ties, normalize
        self.H = _harmonic(n_db) if ties == "expected" else None

    def per_chunk(self, ch):
        return (_ap_per_query(ch, self.k, self.ties, self.normalize, self.H),)

    def finish(self, arrays):
        return {f"mAP@{_k_name(self.k)}": float(arrays[0].mean())}


def _expected_hits_at(ch: _Chunk, n: int) -> np.ndarray:
    """Expected relevant items in the top ``n`` under random order within buckets, ``(q,)``."""
    cnt, rcnt = ch.counts
    n_before, _ = ch.before
    inside = np.clip(n - n_before, 0, cnt)
    return (rcnt * inside / np.maximum(cnt, 1)).sum(axis=1)


class _PAtN(_Group):
    def __init__(self, p_at_n: Sequence[int], ties: str, n_db: int):
        ns = [_check_k(n, "p_at_n entry") for n in p_at_n]
        if any(n is None for n in ns):
            raise ValueError(f"p_at_n={tuple(p_at_n)!r} must hold positive integers only.")
        self.ns = [n for n in ns if n <= n_db]
        self.ties = ties

    def per_chunk(self, ch):
        prec = np.zeros((ch.n_q, len(self.ns)))
        rec = np.zeros((ch.n_q, len(self.ns)))
        n_rel = ch.n_relevant
        if self.ties == "index" and self.ns:
            hits_index = ch.hits_at_each(np.asarray(self.ns, dtype=np.int64))
        for j, n in enumerate(self.ns):
            if self.ties == "index":
                hits = hits_index[:, j].astype(np.float64)
            else:
                hits = _expected_hits_at(ch, n)
            prec[:, j] = hits / n
            rec[:, j] = np.divide(hits, n_rel, out=np.zeros(ch.n_q), where=n_rel > 0)
        return prec, rec

    def finish(self, arrays):
        p, r = arrays[0].mean(axis=0), arrays[1].mean(axis=0)
        out: dict = {}
        for j, n in enumerate(self.ns):
            out[f"P@{n}"] = float(p[j])
            out[f"R@{n}"] = float(r[j])
        out["P@N_curve"] = p
        out["R@N_curve"] = r
        out["P@N_curve/N"] = np.asarray(self.ns, dtype=np.int64)
        return out


def _ball_pr(ch: _Chunk) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per query and radius ``r = 0..b``: precision, recall, ball size, relevant in ball."""
    cnt, rcnt = ch.counts
    size = np.cumsum(cnt, axis=1)
    rel_in = np.cumsum(rcnt, axis=1)
    prec = np.divide(rel_in, size, out=np.zeros(size.shape), where=size > 0)
    n_rel = ch.n_relevant[:, None]
    rec = np.divide(rel_in, n_rel, out=np.zeros(size.shape), where=n_rel > 0)
    return prec, rec, size, rel_in


class _PRCurve(_Group):
    def per_chunk(self, ch):
        prec, rec, _, _ = _ball_pr(ch)
        return prec, rec

    def finish(self, arrays):
        return {
            "pr_curve/precision": arrays[0].mean(axis=0),
            "pr_curve/recall": arrays[1].mean(axis=0),
        }


class _Radius(_Group):
    def __init__(self, radius: int, ties: str, n_db: int):
        if isinstance(radius, bool) or not isinstance(radius, int | np.integer) or radius < 0:
            raise ValueError(f"radius={radius!r} must be a non-negative integer.")
        self.radius, self.ties = int(radius), ties
        self.H = _harmonic(n_db) if ties == "expected" else None

    def per_chunk(self, ch):
        prec, rec, size, _ = _ball_pr(ch)
        r = min(self.radius, ch.n_bits)
        ball = size[:, r].astype(np.int64)
        if self.ties == "index":
            ap = _ap_index(ch, ball, "retrieved")
        else:
            ap = _ap_expected(ch, ball, "retrieved", self.H)
        return prec[:, r], rec[:, r], ap

    def finish(self, arrays):
        p, r, ap = (float(a.mean()) for a in arrays)
        f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
        rr = self.radius
        return {f"P@H<={rr}": p, f"R@H<={rr}": r, f"mAP@H<={rr}": ap, f"F1@H<={rr}": f1}


class _NDCG(_Group):
    def __init__(self, k: int | None, ties: str, n_db: int):
        self.k, self.ties = k, ties
        self.needs_order = ties == "index"
        kk = n_db if k is None else min(k, n_db)
        self.kk = kk
        disc = np.zeros(n_db + 1)
        disc[1:] = 1.0 / np.log2(np.arange(2, n_db + 2))  # discount of rank i is 1/log2(i + 1)
        self.disc_cum = np.cumsum(disc)  # disc_cum[j] = sum of the discounts of ranks 1..j

    def per_chunk(self, ch):
        kk, dc = self.kk, self.disc_cum
        ov = ch.overlap  # similarity levels, small unsigned integers
        n_levels = ch.labels.n_classes + 1
        gain_of = np.exp2(np.arange(n_levels, dtype=np.float64)) - 1.0  # level -> 2^level - 1
        if self.ties == "index":
            top = np.take_along_axis(ov, ch.order[:, :kk], axis=1)
            dcg = gain_of[top] @ np.diff(dc[: kk + 1])
            cg = top.sum(axis=1, dtype=np.float64)
        else:
            cnt, _ = ch.counts
            n_before, _ = ch.before
            inside = np.clip(kk - n_before, 0, cnt)
            safe = np.maximum(cnt, 1)
            gain_mean = ch.bucket_sums(gain_of[ov]) / safe
            level_mean = ch.bucket_sums(ov) / safe
            dcg = (gain_mean * (dc[n_before + inside] - dc[n_before])).sum(axis=1)
            cg = (level_mean * inside).sum(axis=1)
        # Ideal DCG: every database item sorted by similarity level, descending.
        levels = np.empty((ch.n_q, n_levels), dtype=np.int64)
        for i in range(ch.n_q):
            levels[i] = np.bincount(ov[i], minlength=n_levels)
        desc = levels[:, ::-1]
        end = np.minimum(np.cumsum(desc, axis=1), kk)
        start = np.minimum(np.cumsum(desc, axis=1) - desc, kk)
        ideal = ((dc[end] - dc[start]) * gain_of[::-1]).sum(axis=1)
        ndcg = np.divide(dcg, ideal, out=np.zeros(ch.n_q), where=ideal > 0)
        return ndcg, cg / kk

    def finish(self, arrays):
        name = _k_name(self.k)
        return {f"NDCG@{name}": float(arrays[0].mean()), f"ACG@{name}": float(arrays[1].mean())}


class _AUC(_Group):
    def per_chunk(self, ch):
        cnt, rcnt = ch.counts
        neg = cnt - rcnt
        n_pos, n_neg = rcnt.sum(axis=1), neg.sum(axis=1)
        neg_farther = n_neg[:, None] - np.cumsum(neg, axis=1)  # negatives at a larger distance
        wins = (rcnt * neg_farther).sum(axis=1) + 0.5 * (rcnt * neg).sum(axis=1)
        pairs = (n_pos * n_neg).astype(np.float64)
        return (np.divide(wins, pairs, out=np.full(ch.n_q, np.nan), where=pairs > 0),)

    def finish(self, arrays):
        a = arrays[0]
        defined = ~np.isnan(a)
        return {"AUC": float(a[defined].mean()) if defined.any() else float("nan")}


def _run(
    groups: Sequence[_Group],
    query_codes: object,
    db_codes: object,
    query_labels: object,
    db_labels: object,
    seed: int,
    chunk_size: int | None,
) -> dict:
    parts: list[list[tuple[np.ndarray, ...]]] = [[] for _ in groups]
    keep_order = any(getattr(g, "needs_order", False) for g in groups)
    chunks = _iter_chunks(
        query_codes, db_codes, query_labels, db_labels, seed, chunk_size, keep_order
    )
    for ch in chunks:
        for g, part in zip(groups, parts, strict=True):
            part.append(g.per_chunk(ch))
    out: dict = {}
    for g, part in zip(groups, parts, strict=True):
        arrays = tuple(np.concatenate(a, axis=0) for a in zip(*part, strict=True))
        out.update(g.finish(arrays))
    return out


def _n_db(db_codes: object) -> int:
    return int(_check_codes(db_codes, "db_codes").shape[0])


# ----------------------------------------------------------------------------------------------
# Public metric functions
# ----------------------------------------------------------------------------------------------


def mean_average_precision(
    query_codes: object,
    db_codes: object,
    query_labels: object,
    db_labels: object,
    *,
    k: int | None = None,
    ties: Ties = "index",
    normalize: Normalize = "retrieved",
    seed: int = 0,
    chunk_size: int | None = None,
) -> float:
    """Mean average precision at ``k`` of Hamming ranking (PROTOCOL.md, "Metrics", ``mAP@k``).

    ``AP@k = (1 / Z) * sum_{j <= k, item j relevant} P@j``, ``P@j`` = relevant items in the top
    ``j`` divided by ``j``, and the normaliser ``Z`` is

    - ``normalize="retrieved"`` (default): ``R_k``, the relevant items in the top ``k``
      (the convention of ``CalcTopMap`` in DeepHash-pytorch and most hashing papers);
    - ``normalize="relevant"``: ``min(k, R)``, ``R`` the relevant items in the whole database.

    A query with ``Z = 0`` has AP 0 and still counts in the mean (unlike thulab/DeepHash, which
    skips it). mAP is the mean over all queries (seed 001, Shen, Lin and Jiang, Journal of Chinese
    Computer Systems 2020, eq. 34).

    Args:
        query_codes: packed query codes ``uint8 (nq, b/8)``.
        db_codes: packed database codes ``uint8 (nb, b/8)``.
        query_labels: multi-hot ``(nq, c)`` labels.
        db_labels: multi-hot ``(nb, c)`` labels.
        k: cutoff; ``None`` (or anything >= nb) is the whole database.
        ties: ``"index"`` (seeded shuffle, then stable) or ``"expected"`` (exact expectation over
            random orders within distance buckets; McSherry and Najork, ECIR 2008).
        normalize: ``"retrieved"`` or ``"relevant"``, see above.
        seed: the protocol's seed for :func:`tie_order` (ignored by ``ties="expected"``).
        chunk_size: queries per chunk; ``None`` picks one from :data:`CHUNK_BYTES`. Results do not
            depend on it.

    Returns:
        mAP@k as a Python float.
    """
    k = _check_k(k)
    ties = _check_choice(ties, "ties", ("index", "expected"))
    normalize = _check_choice(normalize, "normalize", ("retrieved", "relevant"))
    group = _MAP(k, ties, normalize, _n_db(db_codes))
    out = _run([group], query_codes, db_codes, query_labels, db_labels, seed, chunk_size)
    return out[f"mAP@{_k_name(k)}"]


def precision_recall_at_n(
    query_codes: object,
    db_codes: object,
    query_labels: object,
    db_labels: object,
    *,
    p_at_n: Sequence[int] = P_AT_N,
    ties: Ties = "index",
    seed: int = 0,
    chunk_size: int | None = None,
) -> dict:
    """Precision and recall of the top ``N`` of the Hamming ranking, for each ``N`` in ``p_at_n``.

    ``P@N = (relevant in top N) / N`` and ``R@N = (relevant in top N) / R`` (0 when the database
    holds no relevant item), seed 001 eqs. 28-29. Entries of ``p_at_n`` larger than the database
    are skipped.
    With ``ties="expected"`` the bucket cut by ``N`` contributes ``m * r / n`` relevant items
    (``m`` of its ``n`` items inside, ``r`` relevant).

    Returns:
        ``{"P@N": ..., "R@N": ...}`` for each kept ``N``, plus ``"P@N_curve"``, ``"R@N_curve"``
        (arrays over the kept ``N``) and ``"P@N_curve/N"`` (the kept ``N``).
    """
    ties = _check_choice(ties, "ties", ("index", "expected"))
    group = _PAtN(p_at_n, ties, _n_db(db_codes))
    return _run([group], query_codes, db_codes, query_labels, db_labels, seed, chunk_size)


def pr_curve(
    query_codes: object,
    db_codes: object,
    query_labels: object,
    db_labels: object,
    *,
    chunk_size: int | None = None,
) -> dict:
    """Precision-recall curve of Hamming-ball retrieval, radius ``r = 0..b`` (seed 001, sec. 6.4).

    For each query and radius, precision = relevant items at distance ``<= r`` / items at distance
    ``<= r`` (0 for an empty ball) and recall = relevant items in the ball / relevant items in the
    database (0 when there are none); both are averaged over queries. Order-free, so no tie rule.

    Returns:
        ``{"pr_curve/precision": array (b+1,), "pr_curve/recall": array (b+1,)}``.
    """
    return _run([_PRCurve()], query_codes, db_codes, query_labels, db_labels, 0, chunk_size)


def hamming_radius_metrics(
    query_codes: object,
    db_codes: object,
    query_labels: object,
    db_labels: object,
    *,
    radius: int = 2,
    ties: Ties = "index",
    seed: int = 0,
    chunk_size: int | None = None,
) -> dict:
    """Precision, recall, mAP and F1 of retrieval within Hamming radius ``radius``.

    ``P@H<=r`` and ``R@H<=r`` are the PR-curve values at ``r`` (mean over queries; an empty ball has
    precision 0). ``mAP@H<=r``: the AP of the items inside the ball, ranked by (distance, tie rule),
    normalised by the relevant items inside the ball, 0 for a ball without relevant items - the
    convention of DCH (Cao, Long, Liu and Wang, "Deep Cauchy Hashing for Hamming Space Retrieval",
    CVPR 2018) except that the ball is ranked by Hamming distance.
    Resolved: ``normalize`` does not apply here (always the items retrieved in the ball).
    ``F1@H<=r = 2 P R / (P + R)`` of the *averaged* ``P`` and ``R`` (seed 001 eq. 30 with beta = 1;
    PROTOCOL.md: "harmonic mean of the two above"), 0 when both are 0.

    Returns:
        ``{"P@H<=r", "R@H<=r", "mAP@H<=r", "F1@H<=r"}`` with ``r`` the radius.
    """
    ties = _check_choice(ties, "ties", ("index", "expected"))
    group = _Radius(radius, ties, _n_db(db_codes))
    return _run([group], query_codes, db_codes, query_labels, db_labels, seed, chunk_size)


def ndcg_acg_at_k(
    query_codes: object,
    db_codes: object,
    query_labels: object,
    db_labels: object,
    *,
    k: int | None = None,
    ties: Ties = "index",
    seed: int = 0,
    chunk_size: int | None = None,
) -> dict:
    """NDCG@k and ACG@k of the Hamming ranking (seed 001 eqs. 35-36).

    With ``r_i`` the similarity level (shared labels) of the item at rank ``i`` and
    ``k' = min(k, nb)``:

        NDCG@k = (1 / Z) * sum_{i <= k'} (2^{r_i} - 1) / log2(i + 1),
        ACG@k  = (1 / k') * sum_{i <= k'} r_i,

    where ``Z`` is the same sum for the ideal ranking (the whole database sorted by ``r``,
    descending; Jarvelin and Kekalainen, ACM TOIS 2002). Interpretation: the base of the logarithm
    cancels in the ratio; a query whose ``Z`` is 0 (no relevant item) has NDCG 0 and counts in the
    mean.
    With ``ties="expected"`` each rank of a bucket gets the bucket's mean gain (exact expectation;
    the same as scikit-learn's / torchmetrics' tie-averaged DCG).

    Returns:
        ``{"NDCG@k": ..., "ACG@k": ...}`` (``all`` for ``k=None``).
    """
    k = _check_k(k)
    ties = _check_choice(ties, "ties", ("index", "expected"))
    group = _NDCG(k, ties, _n_db(db_codes))
    return _run([group], query_codes, db_codes, query_labels, db_labels, seed, chunk_size)


def auc(
    query_codes: object,
    db_codes: object,
    query_labels: object,
    db_labels: object,
    *,
    chunk_size: int | None = None,
) -> dict:
    """Area under the ROC curve of relevance against negative Hamming distance (seed 001, 6.5).

    Per query, ``AUC = P(d(pos) < d(neg)) + 1/2 P(d(pos) = d(neg))`` over all (relevant, irrelevant)
    pairs - the tie-aware Mann-Whitney form of the area under the ROC (Hanley and McNeil, Radiology
    1982), equal to ``sklearn.metrics.roc_auc_score(rel, -dist)``. Averaged over queries.
    Resolved: a query with no relevant or no irrelevant item has no ROC and is skipped; the result
    is NaN if every query is skipped.

    Returns:
        ``{"AUC": ...}``.
    """
    return _run([_AUC()], query_codes, db_codes, query_labels, db_labels, 0, chunk_size)


def evaluate(
    query_codes: object,
    db_codes: object,
    query_labels: object,
    db_labels: object,
    *,
    k: int | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    ties: Ties = "index",
    normalize: Normalize = "retrieved",
    seed: int = 0,
    radius: int = 2,
    p_at_n: Sequence[int] = P_AT_N,
    chunk_size: int | None = None,
) -> dict:
    """Every requested metric group in one pass over the query chunks (distances computed once).

    Args:
        query_codes: packed query codes ``uint8 (nq, b/8)``.
        db_codes: packed database codes ``uint8 (nb, b/8)``.
        query_labels: multi-hot ``(nq, c)`` labels.
        db_labels: multi-hot ``(nb, c)`` labels.
        k: depth of ``mAP@k`` and ``NDCG@k`` / ``ACG@k``; ``None`` = the whole database (key
            ``@all``).
        metrics: groups from :data:`METRIC_GROUPS` (``"mAP"``, ``"P@N"``, ``"hamming_radius"``,
            ``"pr_curve"``, ``"ndcg"``, ``"auc"``).
        ties: ``"index"`` or ``"expected"`` (see the module docstring); order-free metrics ignore
            it.
        normalize: AP normaliser of ``mAP@k`` (see :func:`mean_average_precision`).
        seed: the protocol's seed for :func:`tie_order`.
        radius: Hamming radius of the ``hamming_radius`` group.
        p_at_n: the ``N`` of ``P@N`` / ``R@N`` (entries above the database size are skipped).
        chunk_size: queries per chunk; ``None`` = automatic. Results do not depend on it.

    Returns:
        A flat dict: Python floats for the scalar metrics, numpy arrays for the curves (keys in the
        module docstring).
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [m for m in metrics if m not in METRIC_GROUPS]
    if unknown:
        raise ValueError(f"unknown metric group(s) {unknown}; choose from {METRIC_GROUPS}.")
    k = _check_k(k)
    ties = _check_choice(ties, "ties", ("index", "expected"))
    normalize = _check_choice(normalize, "normalize", ("retrieved", "relevant"))
    n_db = _n_db(db_codes)
    makers: dict[str, Callable[[], _Group]] = {
        "mAP": lambda: _MAP(k, ties, normalize, n_db),
        "P@N": lambda: _PAtN(p_at_n, ties, n_db),
        "hamming_radius": lambda: _Radius(radius, ties, n_db),
        "pr_curve": _PRCurve,
        "ndcg": lambda: _NDCG(k, ties, n_db),
        "auc": _AUC,
    }
    groups = [makers[m]() for m in dict.fromkeys(metrics)]
    if not groups:
        return {}
    return _run(groups, query_codes, db_codes, query_labels, db_labels, seed, chunk_size)
