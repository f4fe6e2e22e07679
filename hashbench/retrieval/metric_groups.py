"""Metric groups of :func:`hashbench.retrieval.metrics.evaluate`: per-chunk maths and reducers.

Each group asks for a ranking depth per query (:meth:`Group.depth`), computes per-query arrays from
a :class:`~hashbench.retrieval.metric_engine.Chunk` (:meth:`Group.per_chunk`) and reduces them to
the flat result dict (:meth:`Group.finish`). Formulas and citations are in the public functions of
:mod:`hashbench.retrieval.metrics`; the tie-aware closed forms are documented here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import gammaln

from hashbench.retrieval.metric_engine import Chunk, bucket_before


def k_name(k: int | None) -> str:
    return "all" if k is None else str(k)


def check_k(k: object, name: str = "k") -> int | None:
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(
            f"{name}={k!r} must be a positive integer, or None for the whole database."
        )
    return int(k)


# ----------------------------------------------------------------------------------------------
# Average precision
# ----------------------------------------------------------------------------------------------


def _ap_index(ch: Chunk, k: np.ndarray, normalize: str) -> np.ndarray:
    """AP@k per query under the ``"index"`` ranking; ``k`` is ``(q,)``, already capped at ``nb``."""
    h = ch.hits_at(k)  # R_k
    num = ch.ap_numerator(h)  # sum over the relevant items of the top k of (hits / rank)
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


def _ap_expected(ch: Chunk, k: np.ndarray, normalize: str, H: np.ndarray) -> np.ndarray:
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
    cnt, rcnt = ch.head_counts
    n_before, r_before = bucket_before(cnt, rcnt)
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


def _full(ch: Chunk, k: int | None) -> np.ndarray:
    return np.full(ch.n_q, ch.n_db if k is None else min(k, ch.n_db), dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# Metric groups: ranking depth per query, per-chunk per-query arrays, reducer to a flat dict
# ----------------------------------------------------------------------------------------------


class Group:
    """A metric group: ``depth(chunk)``, ``per_chunk(chunk) -> arrays``, ``finish(arrays)``."""

    #: whether ``per_chunk`` reads the ranked column indices (``Chunk.order``)
    needs_order = False
    #: whether ``per_chunk`` reads the levels of the ranked items (``Chunk.top_levels``)
    needs_levels = False
    #: whether ``per_chunk`` reads the full bucket counts (``Chunk.counts``): the runner then
    #: computes them first, and the cuts are read from them instead of searched for
    needs_counts = False

    def depth(self, ch: Chunk) -> np.ndarray | None:
        """How much of the ranking (or of the bucket counts) each query needs; None: none."""
        return None

    def per_chunk(self, ch: Chunk) -> tuple[np.ndarray, ...]:  # pragma: no cover - interface
        raise NotImplementedError

    def finish(self, arrays: tuple[np.ndarray, ...]) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def per_query(self, arrays: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        """The per-query values behind the scalar means of :meth:`finish` (same keys); ``{}`` when
        a scalar is not a mean over queries (F1, AUC)."""
        return {}


class MAP(Group):
    def __init__(self, k: int | None, ties: str, normalize: str, n_db: int):
        self.k, self.ties, self.normalize = k, ties, normalize
        self.H = _harmonic(n_db) if ties == "expected" else None

    def depth(self, ch):
        return _full(ch, self.k)

    def per_chunk(self, ch):
        kk = _full(ch, self.k)
        if self.ties == "index":
            return (_ap_index(ch, kk, self.normalize),)
        return (_ap_expected(ch, kk, self.normalize, self.H),)

    def finish(self, arrays):
        return {f"mAP@{k_name(self.k)}": float(arrays[0].mean())}

    def per_query(self, arrays):
        return {f"mAP@{k_name(self.k)}": arrays[0]}


def _expected_hits_at(ch: Chunk, n: int) -> np.ndarray:
    """Expected relevant items in the top ``n`` under random order within buckets, ``(q,)``."""
    cnt, rcnt = ch.head_counts
    n_before, _ = bucket_before(cnt, rcnt)
    inside = np.clip(n - n_before, 0, cnt)
    return (rcnt * inside / np.maximum(cnt, 1)).sum(axis=1)


class PAtN(Group):
    """``P@N`` / ``R@N`` for each requested ``N``, computed at ``min(N, nb)`` (keys keep ``N``)."""

    def __init__(self, p_at_n: Sequence[int], ties: str, n_db: int):
        ns = [check_k(n, "p_at_n entry") for n in p_at_n]
        if any(n is None for n in ns):
            raise ValueError(f"p_at_n={tuple(p_at_n)!r} must hold positive integers only.")
        self.ns = [int(n) for n in ns]
        self.eff = [min(n, n_db) for n in self.ns]  # capped at the database size
        self.ties = ties

    def depth(self, ch):
        return np.full(ch.n_q, max(self.eff, default=0), dtype=np.int64)

    def per_chunk(self, ch):
        prec = np.zeros((ch.n_q, len(self.ns)))
        rec = np.zeros((ch.n_q, len(self.ns)))
        n_rel = ch.n_relevant
        if self.ties == "index" and self.ns:
            hits_index = ch.hits_at_each(np.asarray(self.eff, dtype=np.int64))
        for j, n in enumerate(self.eff):
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

    def per_query(self, arrays):
        out = {}
        for j, n in enumerate(self.ns):
            out[f"P@{n}"] = arrays[0][:, j]
            out[f"R@{n}"] = arrays[1][:, j]
        return out


def _ball_pr(ch: Chunk) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per query and radius ``r = 0..b``: precision, recall, ball size, relevant in ball."""
    cnt, rcnt = ch.counts
    size = np.cumsum(cnt, axis=1)
    rel_in = np.cumsum(rcnt, axis=1)
    prec = np.divide(rel_in, size, out=np.zeros(size.shape), where=size > 0)
    n_rel = ch.n_relevant[:, None]
    rec = np.divide(rel_in, n_rel, out=np.zeros(size.shape), where=n_rel > 0)
    return prec, rec, size, rel_in


class PRCurve(Group):
    needs_counts = True

    def per_chunk(self, ch):
        prec, rec, _, _ = _ball_pr(ch)
        return prec, rec

    def finish(self, arrays):
        return {
            "pr_curve/precision": arrays[0].mean(axis=0),
            "pr_curve/recall": arrays[1].mean(axis=0),
        }


class Radius(Group):
    needs_counts = True

    def __init__(self, radius: int, ties: str, n_db: int):
        if isinstance(radius, bool) or not isinstance(radius, int | np.integer) or radius < 0:
            raise ValueError(f"radius={radius!r} must be a non-negative integer.")
        self.radius, self.ties = int(radius), ties
        self.H = _harmonic(n_db) if ties == "expected" else None

    def depth(self, ch):
        return np.cumsum(ch.counts[0], axis=1)[:, min(self.radius, ch.n_bits)]

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

    def per_query(self, arrays):
        rr = self.radius
        return {f"P@H<={rr}": arrays[0], f"R@H<={rr}": arrays[1], f"mAP@H<={rr}": arrays[2]}


class NDCG(Group):
    """NDCG@k and ACG@k. Reads only the head of the ranking (or, for ``ties="expected"``, the level
    sums of the buckets up to the cut) and the level histogram of the database (:class:`Labels`,
    per distinct label set), never a level per query-item pair.

    Ideal DCG: with ``n_l`` database items at level ``l`` and the levels sorted descending, the
    items of level ``l`` occupy ranks ``s_l + 1 .. e_l`` (``s_l = sum_{l' > l} n_l'``), so
    ``IDCG@k = sum_l (2^l - 1) (D[min(e_l, k)] - D[min(s_l, k)])`` with ``D[j]`` the sum of the
    discounts ``1 / log2(i + 1)`` of ranks ``1..j``. ``ties="expected"``: each of the ``m_t`` ranks
    of bucket ``t`` inside the top ``k`` gets the bucket's mean gain ``G_t / n_t``, so
    ``E[DCG@k] = sum_t (G_t / n_t) (D[N_t + m_t] - D[N_t])`` (``N_t`` items in closer buckets) and
    ``E[ACG@k] = sum_t (L_t / n_t) m_t / k`` with ``L_t`` the bucket's level sum.
    """

    def __init__(self, k: int | None, ties: str, n_db: int):
        self.k, self.ties = k, ties
        self.needs_levels = ties == "index"
        kk = n_db if k is None else min(k, n_db)
        self.kk = kk
        disc = np.zeros(n_db + 1)
        disc[1:] = 1.0 / np.log2(np.arange(2, n_db + 2))  # discount of rank i is 1/log2(i + 1)
        self.disc_cum = np.cumsum(disc)  # disc_cum[j] = sum of the discounts of ranks 1..j

    def depth(self, ch):
        return _full(ch, self.k)

    def per_chunk(self, ch):
        kk, dc = self.kk, self.disc_cum
        n_levels = ch.labels.n_levels
        gain_of = np.exp2(np.arange(n_levels, dtype=np.float64)) - 1.0  # level -> 2^level - 1
        if self.ties == "index":
            top = ch.top_levels(kk)  # levels of the top kk in rank order, (q, kk)
            dcg = gain_of[top] @ np.diff(dc[: kk + 1])
            cg = top.sum(axis=1, dtype=np.float64)
        else:
            cnt, _ = ch.head_counts
            n_before = np.cumsum(cnt, axis=1) - cnt
            inside = np.clip(kk - n_before, 0, cnt)
            safe = np.maximum(cnt, 1)
            gain_mean = ch.head_level_sums(gain_of) / safe
            level_mean = ch.head_level_sums(np.arange(n_levels, dtype=np.float64)) / safe
            dcg = (gain_mean * (dc[n_before + inside] - dc[n_before])).sum(axis=1)
            cg = (level_mean * inside).sum(axis=1)
        desc = ch.level_hist[:, ::-1]  # items per level, highest level first
        end = np.minimum(np.cumsum(desc, axis=1), kk)
        start = np.minimum(np.cumsum(desc, axis=1) - desc, kk)
        ideal = ((dc[end] - dc[start]) * gain_of[::-1]).sum(axis=1)
        ndcg = np.divide(dcg, ideal, out=np.zeros(ch.n_q), where=ideal > 0)
        return ndcg, cg / kk

    def finish(self, arrays):
        name = k_name(self.k)
        return {f"NDCG@{name}": float(arrays[0].mean()), f"ACG@{name}": float(arrays[1].mean())}


class AUC(Group):
    needs_counts = True

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
