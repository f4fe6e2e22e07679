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
cutoff, ``all`` for the whole database; ``{N}`` each entry of ``p_at_n``, computed at
``min(N, nb)`` - PROTOCOL.md: "capped at the database size" - so every dataset has the same keys;
``{r}`` the radius):

===================  ==========================================================================
group                keys
===================  ==========================================================================
``"mAP"``            ``mAP@{k}``: mean AP@k, normaliser chosen by ``normalize``
``"P@N"``            ``P@{N}``, ``R@{N}``; ``P@N_curve``, ``R@N_curve`` (arrays over ``p_at_n``)
                     and ``P@N_curve/N`` (the requested N themselves)
``"hamming_radius"`` ``P@H<={r}``, ``R@H<={r}``, ``mAP@H<={r}``, ``F1@H<={r}``
``"pr_curve"``       ``pr_curve/precision``, ``pr_curve/recall``: arrays of length b + 1 (r = 0..b)
``"ndcg"``           ``NDCG@{k}``, ``ACG@{k}``
``"auc"``            ``AUC``
===================  ==========================================================================

Speed (:mod:`hashbench.retrieval.metric_engine`; measured in ``docs/metric_speed.md``): the
database is permuted into tie order once, distances are a cache-blocked XOR + popcount, and no
comparison sort is used anywhere. Order-free quantities (PR curve, radius metrics, AUC and all of
``ties="expected"``) are closed forms of per-query counts over the ``b + 1`` distance buckets. A
metric at depth ``k`` reads only the buckets up to the one holding the ``k``-th item; those items
are ranked by a stable counting (radix) sort of their distances over the shuffled columns.
:func:`evaluate` makes one pass per query chunk: the distances, the per-bucket counts (items and
relevant items, one counting step that every group reads) and the head of the ranking are
computed once; label-only quantities (relevant items per query, NDCG's level histogram) once per
distinct label set. Queries go in chunks (:data:`CHUNK_BYTES`), so memory does not grow with the
number of queries. This module imports numpy and scipy only (no torch).

Compiled kernels (:mod:`hashbench.retrieval.kernels`, numba; loaded on the first evaluation) do
the per-pair loops: distances, relevance, bucket counts, and the ``"index"`` ranks of the relevant
items from one counter per distance bucket (no sort). They give the same floats as the numpy
engine, which runs where numba is missing or when ``HASHBENCH_METRICS_BACKEND=numpy``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from hashbench.retrieval.evaluation import TIE_RULES
from hashbench.retrieval.evaluation import TieRule as Ties
from hashbench.retrieval.metric_engine import CHUNK_BYTES, ChunkSource, Workspace, tie_order
from hashbench.retrieval.metric_groups import (
    AUC,
    MAP,
    NDCG,
    Group,
    PAtN,
    PRCurve,
    Radius,
    check_k,
    k_name,
)
from hashbench.retrieval.metric_inputs import (
    _check_choice,
    _check_chunk_size,
    _check_codes,
    _check_inputs,
    _check_labels,
    _to_numpy,
)

Normalize = Literal["retrieved", "relevant"]

P_AT_N: tuple[int, ...] = (1, 10, 100, 200, 400, 500, 1000, 2000, 5000)
METRIC_GROUPS: tuple[str, ...] = ("mAP", "P@N", "hamming_radius", "pr_curve", "ndcg", "auc")
DEFAULT_METRICS: tuple[str, ...] = METRIC_GROUPS

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


def _run(
    groups: Sequence[Group],
    query_codes: object,
    db_codes: object,
    query_labels: object,
    db_labels: object,
    seed: int,
    chunk_size: int | None,
    per_query: bool = False,
    threads: int = 1,
) -> dict:
    qc, dc, ql, dl = _check_inputs(query_codes, db_codes, query_labels, db_labels)
    chunk_size = _check_chunk_size(chunk_size)
    threads = _check_threads(threads)
    keep_order = any(g.needs_order for g in groups)
    keep_levels = any(g.needs_levels for g in groups)
    needs_counts = any(g.needs_counts for g in groups)
    source = ChunkSource(qc, dc, ql, dl, seed, chunk_size)
    per_thread = threading.local()

    def score(rows: slice) -> list[tuple[np.ndarray, ...]]:
        if not hasattr(per_thread, "workspace"):
            per_thread.workspace = Workspace()
        ch = source.chunk(rows, per_thread.workspace)
        if needs_counts:
            _ = ch.counts  # one counting pass shared by every group; the cuts then read it
        depths = [d for d in (g.depth(ch) for g in groups) if d is not None]
        if depths:
            ch.depth = np.minimum(np.maximum.reduce(depths), ch.n_db)
        ch.keep_order = keep_order
        ch.keep_levels = keep_levels
        return [g.per_chunk(ch) for g in groups]

    if threads == 1 or len(source.rows) == 1:
        per_chunk = [score(rows) for rows in source.rows]
    else:  # chunks are independent; results come back in query order
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=threads) as pool:
            per_chunk = list(pool.map(score, source.rows))
    out: dict = {}
    for i, g in enumerate(groups):
        part = [chunk[i] for chunk in per_chunk]
        arrays = tuple(np.concatenate(a, axis=0) for a in zip(*part, strict=True))
        out.update(g.finish(arrays))
        if per_query:
            out.update({f"per_query/{k}": v for k, v in g.per_query(arrays).items()})
    return out


def _check_threads(threads: object) -> int:
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}.")
    return int(threads)


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
    k = check_k(k)
    ties = _check_choice(ties, "ties", TIE_RULES)
    normalize = _check_choice(normalize, "normalize", ("retrieved", "relevant"))
    group = MAP(k, ties, normalize, _n_db(db_codes))
    out = _run([group], query_codes, db_codes, query_labels, db_labels, seed, chunk_size)
    return out[f"mAP@{k_name(k)}"]


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
    holds no relevant item), seed 001 eqs. 28-29. ``N`` larger than the database is capped at
    its size (PROTOCOL.md): ``P@5000`` of a 1,000-item database is ``P@1000`` (and ``R@5000`` is
    1 for a query with a relevant item); the key keeps the requested ``N``.
    With ``ties="expected"`` the bucket cut by ``N`` contributes ``m * r / n`` relevant items
    (``m`` of its ``n`` items inside, ``r`` relevant).

    Returns:
        ``{"P@N": ..., "R@N": ...}`` for each ``N`` of ``p_at_n``, plus ``"P@N_curve"``,
        ``"R@N_curve"`` (arrays over ``p_at_n``) and ``"P@N_curve/N"`` (``p_at_n``).
    """
    ties = _check_choice(ties, "ties", TIE_RULES)
    group = PAtN(p_at_n, ties, _n_db(db_codes))
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
    return _run([PRCurve()], query_codes, db_codes, query_labels, db_labels, 0, chunk_size)


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
    ties = _check_choice(ties, "ties", TIE_RULES)
    group = Radius(radius, ties, _n_db(db_codes))
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
    k = check_k(k)
    ties = _check_choice(ties, "ties", TIE_RULES)
    group = NDCG(k, ties, _n_db(db_codes))
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
    return _run([AUC()], query_codes, db_codes, query_labels, db_labels, 0, chunk_size)


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
    per_query: bool = False,
    threads: int = 1,
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
        p_at_n: the ``N`` of ``P@N`` / ``R@N`` (each capped at the database size; keys keep ``N``).
        chunk_size: queries per chunk; ``None`` = automatic. Results do not depend on it.
        per_query: also return ``per_query/<key>`` ``(nq,)`` arrays, in query order, for every
            scalar that is a mean over queries (``mAP@k``, ``P@N``, ``R@N``, ``P@H<=r``, ``R@H<=r``,
            ``mAP@H<=r``): the inputs of a paired bootstrap over queries.
        threads: query chunks scored on this many threads at once (numpy releases the GIL in
            most of the work; each thread holds one chunk's distances). Results do not depend on
            it; ``docs/metric_speed.md`` gives the measured speed-up.

    Returns:
        A flat dict: Python floats for the scalar metrics, numpy arrays for the curves (keys in the
        module docstring).
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [m for m in metrics if m not in METRIC_GROUPS]
    if unknown:
        raise ValueError(f"unknown metric group(s) {unknown}; choose from {METRIC_GROUPS}.")
    k = check_k(k)
    ties = _check_choice(ties, "ties", TIE_RULES)
    normalize = _check_choice(normalize, "normalize", ("retrieved", "relevant"))
    n_db = _n_db(db_codes)
    makers: dict[str, Callable[[], Group]] = {
        "mAP": lambda: MAP(k, ties, normalize, n_db),
        "P@N": lambda: PAtN(p_at_n, ties, n_db),
        "hamming_radius": lambda: Radius(radius, ties, n_db),
        "pr_curve": PRCurve,
        "ndcg": lambda: NDCG(k, ties, n_db),
        "auc": AUC,
    }
    groups = [makers[m]() for m in dict.fromkeys(metrics)]
    if not groups:
        return {}
    return _run(
        groups, query_codes, db_codes, query_labels, db_labels, seed, chunk_size, per_query, threads
    )
