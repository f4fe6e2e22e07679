"""Secondary screening: re-rank the Hamming shortlist by the continuous codes (seed 000).

Peng, Wu, Zi, *Laser & Optoelectronics Progress* 55(10), 2018, section 1 ("对结果进行二次筛选和排查",
a second screening of the Hamming results; METHODS.md, 1, "Retrieval"). The database is ranked by
Hamming distance with the protocol's tie rule ``index`` (:func:`~hashbench.retrieval.metrics.tie_order`),
then the first ``shortlist`` items of that ranking are re-ordered by the cosine similarity of the
continuous codes ``R`` (descending; equal cosines keep their Hamming order); the rest keep their
Hamming order.

Interpretation: the paper names the step without details; the shortlist length and the cosine
similarity of ``R`` are METHODS.md's resolution. ``shortlist = 0`` is plain Hamming ranking, and
:func:`reranked_map` then equals :func:`~hashbench.retrieval.metrics.mean_average_precision` with
``ties="index"``, ``normalize="retrieved"``.
"""

from __future__ import annotations

import numpy as np

from hashbench.retrieval.codes import hamming_distances
from hashbench.retrieval.metrics import tie_order


def rerank_order(distances: np.ndarray, cosines: np.ndarray, shortlist: int) -> np.ndarray:
    """One query's ranking: by Hamming distance, then the top ``shortlist`` by cosine.

    Args:
        distances: ``(n,)`` Hamming distances of the database items, in tie order (column ``j`` is
            the item at position ``j`` of the tie shuffle, so ties are broken by column).
        cosines: ``(n,)`` cosine similarities of the continuous codes, same columns.
        shortlist: how many of the Hamming-ranked items are re-ranked (``0`` = none).

    Returns:
        ``(n,)`` column indices, best first.
    """
    order = np.argsort(distances, kind="stable")
    s = min(int(shortlist), order.size)
    if s > 0:
        top = order[:s]
        order = np.concatenate([top[np.argsort(-cosines[top], kind="stable")], order[s:]])
    return order


def average_precision(relevant_ranked: np.ndarray, k: int | None = None) -> float:
    """AP@k of one ranking: ``(1/R_k) sum_{j <= k, relevant} P@j`` (0 when ``R_k = 0``).

    The ``retrieved`` normaliser of :func:`~hashbench.retrieval.metrics.mean_average_precision`.

    Args:
        relevant_ranked: ``(n,)`` booleans, relevance of the ranked items, best first.
        k: cutoff; ``None`` = the whole ranking.
    """
    rel = np.asarray(relevant_ranked, dtype=bool)[: (None if k is None else int(k))]
    hits = np.cumsum(rel)
    if hits.size == 0 or hits[-1] == 0:
        return 0.0
    ranks = np.arange(1, rel.size + 1)
    return float((hits[rel] / ranks[rel]).sum() / hits[-1])


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def reranked_map(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_real: np.ndarray,
    db_real: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    shortlist: int,
    k: int | None = None,
    seed: int = 0,
    chunk: int = 64,
) -> float:
    """mAP@k of Hamming ranking with the top ``shortlist`` re-ranked by cosine of real codes.

    Args:
        query_codes: packed query codes ``uint8 (nq, b/8)``.
        db_codes: packed database codes ``uint8 (nb, b/8)``.
        query_real: continuous query codes ``(nq, b)`` (e.g. ``R = tanh(eps eta)``).
        db_real: continuous database codes ``(nb, b)``.
        query_labels: multi-hot ``(nq, c)``.
        db_labels: multi-hot ``(nb, c)``.
        shortlist: items re-ranked per query (``>= 0``; ``0`` = plain Hamming ranking).
        k: mAP cutoff; ``None`` = the whole database.
        seed: the protocol's tie seed.
        chunk: queries per block (memory only; the result does not depend on it).

    Returns:
        mAP@k (mean over all queries; a query with no relevant item in the top ``k`` counts 0).
    """
    nq, nb = len(query_codes), len(db_codes)
    if shortlist < 0:
        raise ValueError(f"shortlist must be >= 0, got {shortlist}")
    if query_real.shape[0] != nq or db_real.shape[0] != nb:
        raise ValueError(
            f"continuous codes must have one row per code: query {query_real.shape[0]} vs {nq}, "
            f"database {db_real.shape[0]} vs {nb}"
        )
    if nq == 0:
        raise ValueError("reranked_map needs at least one query")
    perm = np.argsort(tie_order(nb, seed))  # perm[p] = database item at tie position p
    dbc, dbr = db_codes[perm], _unit_rows(db_real)[perm]
    dbl = (np.asarray(db_labels)[perm] != 0).astype(np.float32)
    ql = (np.asarray(query_labels) != 0).astype(np.float32)
    qr = _unit_rows(query_real)
    total = 0.0
    for lo in range(0, nq, chunk):
        hi = min(lo + chunk, nq)
        dist = hamming_distances(query_codes[lo:hi], dbc)
        cos = qr[lo:hi] @ dbr.T if shortlist > 0 else np.zeros((hi - lo, nb))
        rel = (ql[lo:hi] @ dbl.T) > 0
        for i in range(hi - lo):
            order = rerank_order(dist[i], cos[i], shortlist)
            total += average_precision(rel[i][order], k)
    return total / nq


__all__ = ["average_precision", "rerank_order", "reranked_map"]
