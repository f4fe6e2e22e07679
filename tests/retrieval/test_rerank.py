"""Secondary screening (seed 000): re-ranking the Hamming shortlist by cosine of continuous codes."""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.retrieval.codes import encode_real
from hashbench.retrieval.metrics import mean_average_precision, tie_order
from hashbench.retrieval.rerank import average_precision, rerank_order, reranked_map

pytestmark = pytest.mark.usefixtures("metrics_backend")  # numba kernels and numpy engine


def _data(nq=7, nb=40, bits=16, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    qr, dr = rng.normal(size=(nq, bits)), rng.normal(size=(nb, bits))
    ql = np.eye(classes)[rng.integers(0, classes, nq)]
    dl = np.eye(classes)[rng.integers(0, classes, nb)]
    return encode_real(qr), encode_real(dr), np.tanh(qr), np.tanh(dr), ql, dl


def _reference_map(qc, dc, qr, dr, ql, dl, shortlist, k, seed) -> float:
    """Loops: sort by (hamming, tie key); re-sort the first `shortlist` by (-cosine, that rank)."""
    key = tie_order(len(dc), seed)
    qb = np.unpackbits(qc, axis=1)
    db = np.unpackbits(dc, axis=1)
    aps = []
    for i in range(len(qc)):
        items = list(range(len(dc)))
        dist = [int((qb[i] != db[j]).sum()) for j in items]
        ranked = sorted(items, key=lambda j: (dist[j], key[j]))
        top = ranked[:shortlist]

        def cos(j, i=i):
            return float(qr[i] @ dr[j] / (np.linalg.norm(qr[i]) * np.linalg.norm(dr[j])))

        top = sorted(top, key=lambda j: (-cos(j), ranked.index(j)))
        ranked = top + ranked[shortlist:]
        hits, total = 0, 0.0
        for pos, j in enumerate(ranked[: k or len(ranked)], start=1):
            if (ql[i] * dl[j]).sum() > 0:
                hits += 1
                total += hits / pos
        aps.append(total / hits if hits else 0.0)
    return float(np.mean(aps))


@pytest.mark.parametrize("shortlist,k", [(0, None), (5, None), (12, 20), (100, None)])
def test_reranked_map_matches_loop_reference(shortlist: int, k: int | None) -> None:
    data = _data()
    got = reranked_map(*data, shortlist=shortlist, k=k, seed=3, chunk=3)
    assert got == pytest.approx(_reference_map(*data, shortlist, k, 3), abs=1e-12)


def test_no_shortlist_is_the_protocol_map() -> None:
    qc, dc, qr, dr, ql, dl = _data(nq=20, nb=200, seed=1)
    ours = reranked_map(qc, dc, qr, dr, ql, dl, shortlist=0, seed=5)
    assert ours == pytest.approx(mean_average_precision(qc, dc, ql, dl, seed=5), abs=1e-12)


def test_rerank_order_resorts_only_the_shortlist() -> None:
    dist = np.array([3, 0, 1, 0, 2])
    cos = np.array([0.9, 0.1, 0.8, 0.5, 0.99])
    assert rerank_order(dist, cos, 0).tolist() == [1, 3, 2, 4, 0]
    assert rerank_order(dist, cos, 3).tolist() == [2, 3, 1, 4, 0]


def test_average_precision_by_hand() -> None:
    assert average_precision(np.array([1, 0, 1, 0], bool)) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([0, 0, 1], bool), k=2) == 0.0


def test_bad_input_is_a_clear_error() -> None:
    qc, dc, qr, dr, ql, dl = _data()
    with pytest.raises(ValueError, match="shortlist"):
        reranked_map(qc, dc, qr, dr, ql, dl, shortlist=-1)
    with pytest.raises(ValueError, match="one row per code"):
        reranked_map(qc, dc, qr[:3], dr, ql, dl, shortlist=2)
