"""Compiled loops of the metric engine (numba): distances, relevance, bucket counts, relevant ranks.

:mod:`hashbench.retrieval.metric_engine` uses these when numba is installed (a dependency of
hashbench; ``HASHBENCH_METRICS_BACKEND=numpy`` turns them off) and its numpy code otherwise. Each
kernel computes *integers* only - Hamming distances, 0/1 relevance, per-bucket counts and the
0-based ranks of relevant items - plus the precision at each relevant rank by the same IEEE
division the numpy engine does, ``(j + 1) / (rank_j + 1)``. Every sum stays in numpy, so both
engines return the same floats bit for bit (tested).

Why compiled code: the ``ties="index"`` ranking needs, for every relevant item, its position among
the items of its own distance bucket in tie order. numpy has no primitive for that short of a
stable sort of the whole row (``docs/metric_speed.md``, the numpy floor); a loop gets it from one
counter per bucket in a single pass (:func:`relevant_ranks`).

All kernels release the GIL (``nogil``), so ``evaluate(..., threads=n)`` runs chunks in parallel.
They are compiled on first use and cached next to this file (numba's ``cache=True``; a read-only
install caches in numba's user cache folder instead).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.extending import intrinsic

#: ``relevant_ranks`` packs (position in bucket, distance) into one int64: distance in the low bits.
_DIST_BITS = 16
_DIST_MASK = (1 << _DIST_BITS) - 1


@intrinsic
def _popcount(typingctx, x):
    """LLVM's ``ctpop`` of an unsigned integer (one instruction, vectorised by LLVM)."""

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return x(x), codegen


@njit(cache=True, nogil=True)
def hamming_distances(query_words, db_words, out):
    """``out[i, j] = sum_w popcount(query_words[w, i] ^ db_words[w, j])``.

    Args:
        query_words: ``(w, nq)`` unsigned words (:func:`hashbench.retrieval.codes.hamming_words`).
        db_words: ``(w, nb)`` words of the same dtype.
        out: ``uint8``/``uint16`` ``(nq, nb)``, written.
    """
    n_words, nq = query_words.shape
    nb = db_words.shape[1]
    for i in range(nq):
        row = out[i]
        q = query_words[0, i]
        col = db_words[0]
        for j in range(nb):
            row[j] = _popcount(q ^ col[j])
        for w in range(1, n_words):
            q = query_words[w, i]
            col = db_words[w]
            for j in range(nb):
                row[j] += _popcount(q ^ col[j])


@njit(cache=True, nogil=True)
def relevance_classes(query_class, db_class, out):
    """Single-label relevance: ``out[i, j] = db_class[j] == query_class[i]`` (``uint8`` 0/1)."""
    nb = db_class.shape[0]
    for i in range(query_class.shape[0]):
        row = out[i]
        c = query_class[i]
        for j in range(nb):
            row[j] = db_class[j] == c


@njit(cache=True, nogil=True)
def relevance_words(query_words, db_words_t, out):
    """Multi-label relevance: ``out[i, j] = [sum_w (query_words[i, w] & db_words_t[w, j]) != 0]``.

    Args:
        query_words: ``(nq, w)`` label bit masks.
        db_words_t: ``(w, nb)`` label bit masks, one contiguous row per word.
        out: ``uint8 (nq, nb)``, written.
    """
    nb = db_words_t.shape[1]
    for i in range(query_words.shape[0]):
        row = out[i]
        row[:] = 0
        for w in range(query_words.shape[1]):
            q = query_words[i, w]
            if q == 0:
                continue
            col = db_words_t[w]
            for j in range(nb):
                row[j] |= (col[j] & q) != 0


@njit(cache=True, nogil=True)
def bucket_counts(dist, rel, cnt, rcnt):
    """Per row: ``cnt[i, t] = #{j : d_ij = t}``, ``rcnt[i, t] = #{j : d_ij = t, rel_ij}``.

    One pass over the key ``2 d + rel`` into four interleaved histograms (consecutive items with
    the same key then do not wait on each other's store), summed at the end.
    """
    n_q, nb = dist.shape
    n_buckets = cnt.shape[1]
    hist = np.zeros((4, 2 * n_buckets), np.int64)
    for i in range(n_q):
        hist[:] = 0
        d = dist[i]
        r = rel[i]
        for j in range(nb):
            hist[j & 3, 2 * np.int64(d[j]) + r[j]] += 1
        for t in range(n_buckets):
            off = hist[0, 2 * t] + hist[1, 2 * t] + hist[2, 2 * t] + hist[3, 2 * t]
            on = hist[0, 2 * t + 1] + hist[1, 2 * t + 1] + hist[2, 2 * t + 1] + hist[3, 2 * t + 1]
            cnt[i, t] = off + on
            rcnt[i, t] = on


@njit(cache=True, nogil=True)
def bucket_level_counts(dist, query_words, db_words_t, cut, out):
    """Per row ``i``, bucket ``t <= cut[i]`` and similarity level ``l`` (shared labels):
    ``out[i, t, l] = #{j : d_ij = t, |q_i & s_j| = l}`` (zero past the cut).

    NDCG's ``ties="expected"`` reads level sums per bucket, ``sum_l out[i, t, l] v_l``; with
    integer ``v_l`` those are exact in any summation order.

    Args:
        dist: ``(q, nb)`` distances.
        query_words: ``(q, w)`` label bit masks of the rows.
        db_words_t: ``(w, nb)`` label bit masks of the columns.
        cut: ``int64 (q,)``, the last bucket read per row.
        out: ``int64 (q, b + 1, c + 1)``, written.
    """
    n_q, nb = dist.shape
    n_words = query_words.shape[1]
    inside = np.empty(nb + 1, np.int64)  # one slot past the end for the branch-free write
    for i in range(n_q):
        o = out[i]
        o[:] = 0
        d_row = dist[i]
        top = cut[i]
        k = 0
        for j in range(nb):  # the columns inside the cut, without a branch per column
            inside[k] = j
            k += d_row[j] <= top
        if n_words == 1:
            q = query_words[i, 0]
            col = db_words_t[0]
            for m in range(k):
                j = inside[m]
                o[d_row[j], _popcount(q & col[j])] += 1
        else:
            for m in range(k):
                j = inside[m]
                level = 0
                for w in range(n_words):
                    level += _popcount(query_words[i, w] & db_words_t[w, j])
                o[d_row[j], level] += 1


@njit(cache=True, nogil=True)
def relevant_ranks(dist, rel, depth, cut, cnt, rcnt, offsets, ranks, precs, scratch):
    """The ``"index"`` ranking's relevant ranks, per row, without ordering the row.

    The columns are in tie order, so the rank (0-based) of item ``j`` at distance ``d`` is
    ``#{i : d_i < d} + #{i < j : d_i = d}``. One pass keeps a counter per bucket: every item with
    ``d <= cut[i]`` bumps its bucket's counter, and a relevant item records (its position in the
    bucket, ``d``) - branch-free: the record is always written and its slot advances by ``rel``.
    The counters are then the bucket counts; with their prefix sums the recorded items are placed
    in rank order, ``rank = start[d] + position``, and those with ``rank < depth[i]`` kept.

    Args:
        dist: ``(q, nb)`` distances, columns in tie order.
        rel: ``uint8 (q, nb)`` 0/1 relevance.
        depth: ``int64 (q,)``: ranks ``< depth[i]`` are kept.
        cut: ``int64 (q,)``: only buckets ``t <= cut[i]`` are read; it must hold the top
            ``depth[i]`` (``t_k`` or more; ``b`` for the whole row).
        cnt, rcnt: ``int64 (q, b + 1)``, written: the bucket counts up to the cut (zero beyond).
        offsets: ``int64 (q + 1,)``, written: row ``i``'s ranks are ``ranks[offsets[i]:
            offsets[i + 1]]``, ascending.
        ranks: ``int64``, at least ``sum_i min(depth[i], R_i)`` long (``R_i`` relevant items).
        precs: ``float64`` like ``ranks``, written: ``(m + 1) / (rank_m + 1)`` for the ``m``-th
            (0-based) relevant rank of the row.
        scratch: ``int64 (2, nb + 1)``, overwritten (passed in so that a caller can reuse it).
    """
    n_q, nb = dist.shape
    n_buckets = cnt.shape[1]
    record = scratch[0]  # nb + 1: one slot past the end for the branch-free write
    placed = scratch[1]
    start = np.empty(n_buckets, np.int64)
    rstart = np.empty(n_buckets, np.int64)
    o = 0
    offsets[0] = 0
    for i in range(n_q):
        c = cnt[i]
        c[:] = 0
        d_row = dist[i]
        r_row = rel[i]
        top = cut[i]
        k = 0
        if top >= n_buckets - 1:  # the whole row: the loop without the cut test
            for j in range(nb):
                d = np.int64(d_row[j])
                p = c[d]
                c[d] = p + 1
                record[k] = (p << _DIST_BITS) | d
                k += r_row[j]
        else:
            for j in range(nb):
                d = np.int64(d_row[j])
                if d <= top:
                    p = c[d]
                    c[d] = p + 1
                    record[k] = (p << _DIST_BITS) | d
                    k += r_row[j]
        rc = rcnt[i]
        rc[:] = 0
        for m in range(k):
            rc[record[m] & _DIST_MASK] += 1
        s = 0
        rs = 0
        for t in range(n_buckets):
            start[t] = s
            rstart[t] = rs
            s += c[t]
            rs += rc[t]
        limit = depth[i]
        if o + min(k, limit) > ranks.shape[0]:
            raise ValueError("relevant_ranks: ranks is shorter than sum(min(depth, R))")
        # relevant items of a bucket are recorded in tie order: slot = their index in rank order
        if limit >= nb:  # all kept: straight into the output
            out = ranks[o : o + k]
            kept = k
        else:
            out = placed
        for m in range(k):
            v = record[m]
            d = v & _DIST_MASK
            slot = rstart[d]
            rstart[d] = slot + 1
            out[slot] = start[d] + (v >> _DIST_BITS)
        if limit < nb:
            kept = 0
            while kept < k and placed[kept] < limit:
                ranks[o + kept] = placed[kept]
                kept += 1
        for m in range(kept):
            precs[o + m] = (m + 1.0) / (ranks[o + m] + 1.0)
        o += kept
        offsets[i + 1] = o
