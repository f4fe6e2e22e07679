"""Judging a claim per code length with a paired bootstrap over queries and seeds.

A claim "A beats B (by at least d) on metric M at code lengths L" is judged per length, then as a
whole (``docs/protocol.md``, "Judging a claim"):

- per length ``l``: ``D_l = min over A of mean_seeds M(A) - max over B of mean_seeds M(B)``, where
  ``M`` of one run is the mean over queries of its per-query values
  (:func:`hashbench.retrieval.metrics.evaluate` with ``per_query=True``). A 95% interval for ``D_l``
  comes from a paired bootstrap: each resample draws the queries with replacement - the same draw
  for every method, since all methods answer the same queries - and, per method, its seeds with
  replacement (the seeds of different methods are independent runs, so they are not paired).
  The verdict at ``l`` is **holds** when the interval's lower end exceeds ``d``, **fails** when its
  upper end is below ``d``, **inconclusive** otherwise, and **not measured** when a side has no
  values at that length.
- the claim: **holds** when it holds at every length, **fails** when it fails at any, **mixed**
  when it holds at some and neither fails nor holds at the others, **inconclusive** when it holds
  at none, **not measured** when no length is measured. Never an average over lengths.

Pure functions of arrays; the leaderboard feeds them the records' per-query values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Per method: its runs' per-query values, ``(n_seeds, n_queries)``.
Runs = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class LengthVerdict:
    """The measured difference at one code length, its 95% interval and the verdict there."""

    bits: int
    diff: float | None
    low: float | None
    high: float | None
    verdict: str  # holds | fails | inconclusive | not measured
    seeds: dict[str, int]


def _gap(means: Mapping[str, float], a: Sequence[str], b: Sequence[str]) -> float:
    """The worst of ``a`` minus the best of ``b``."""
    return min(means[m] for m in a) - max(means[m] for m in b)


def difference(runs: Runs, a: Sequence[str], b: Sequence[str]) -> float:
    """``D = min_A mean M(A) - max_B mean M(B)``; ``M`` = mean over seeds and queries."""
    return _gap({m: float(np.mean(runs[m])) for m in [*a, *b]}, a, b)


def bootstrap_interval(
    runs: Runs,
    a: Sequence[str],
    b: Sequence[str],
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of :func:`difference` under the paired (queries) / per-method (seeds)
    bootstrap described in the module docstring.

    Raises:
        ValueError: the methods' arrays do not hold the same number of queries, or are empty.
    """
    methods = list(dict.fromkeys([*a, *b]))
    arrays = {m: np.atleast_2d(np.asarray(runs[m], dtype=np.float64)) for m in methods}
    n_q = {arr.shape[1] for arr in arrays.values()}
    if len(n_q) != 1 or 0 in n_q or any(arr.shape[0] == 0 for arr in arrays.values()):
        raise ValueError(
            "bootstrap: every method needs per-query values of the same queries, got shapes "
            + ", ".join(f"{m} {arr.shape}" for m, arr in arrays.items())
        )
    nq = n_q.pop()
    rng = np.random.default_rng(seed)
    # Vectorised over the resamples: a resample's mean of one method is the mean of its per-query
    # values weighted by how often each seed and each query was drawn, ``w_seeds @ arr @ w_queries``.
    queries = _draw_weights(rng, nq, n_resamples)  # (n_resamples, nq), shared by every method
    means = {}
    for m, arr in arrays.items():
        seeds = _draw_weights(rng, arr.shape[0], n_resamples)  # (n_resamples, n_seeds), per method
        means[m] = np.einsum("rq,rq->r", seeds @ arr, queries)
    diffs = np.min([means[m] for m in a], axis=0) - np.max([means[m] for m in b], axis=0)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return float(low), float(high)


def _draw_weights(rng: np.random.Generator, n: int, n_resamples: int) -> np.ndarray:
    """Per resample, the share of each of ``n`` items in a draw of ``n`` with replacement."""
    draws = rng.integers(0, n, (n_resamples, n))
    draws += np.arange(n_resamples)[:, None] * n
    counts = np.bincount(draws.ravel(), minlength=n_resamples * n).reshape(n_resamples, n)
    return counts / n


def judge_length(
    bits: int,
    runs: Runs,
    a: Sequence[str],
    b: Sequence[str],
    min_diff: float = 0.0,
    n_resamples: int = 1000,
    seed: int = 0,
) -> LengthVerdict:
    """The verdict at one code length (``runs`` holds that length's values)."""
    seeds = {m: int(np.atleast_2d(runs[m]).shape[0]) if m in runs else 0 for m in [*a, *b]}
    if any(n == 0 for n in seeds.values()):
        return LengthVerdict(bits, None, None, None, "not measured", seeds)
    diff = difference(runs, a, b)
    low, high = bootstrap_interval(runs, a, b, n_resamples, seed=seed)
    if low > min_diff:
        verdict = "holds"
    elif high < min_diff:
        verdict = "fails"
    else:
        verdict = "inconclusive"
    return LengthVerdict(bits, diff, low, high, verdict, seeds)


def judge_claim(verdicts: Sequence[LengthVerdict]) -> str:
    """The claim's verdict from its per-length verdicts (never an average over lengths)."""
    kinds = [v.verdict for v in verdicts]
    if not kinds or all(k == "not measured" for k in kinds):
        return "not measured"
    if "fails" in kinds:
        return "fails"
    if all(k == "holds" for k in kinds):
        return "holds"
    return "mixed" if "holds" in kinds else "inconclusive"
