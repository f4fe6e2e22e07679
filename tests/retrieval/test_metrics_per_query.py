"""Per-query values (``evaluate(..., per_query=True)``): the inputs of the claims' paired bootstrap.

The expected values are written here from the definitions, one query at a time in plain Python:
the ranking by (Hamming distance, position in the seeded shuffle), then AP, P@N and the ball.
"""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.retrieval.metrics import evaluate

pytestmark = pytest.mark.usefixtures("metrics_backend")  # numba kernels and numpy engine


def _hamming(a: np.ndarray, b: np.ndarray) -> int:
    return sum(bin(int(x) ^ int(y)).count("1") for x, y in zip(a, b, strict=True))


def _reference(q, d, ql, dl, seed: int, n: int, radius: int) -> dict[str, list[float]]:
    perm = np.random.default_rng(seed).permutation(len(d))
    position = {int(item): p for p, item in enumerate(perm)}
    out: dict[str, list[float]] = {"ap": [], "p_n": [], "p_ball": [], "r_ball": [], "ap_ball": []}
    for i in range(len(q)):
        dist = [_hamming(q[i], d[j]) for j in range(len(d))]
        ranked = sorted(range(len(d)), key=lambda j: (dist[j], position[j]))
        rel = [bool((ql[i] & dl[j]).any()) for j in ranked]

        def ap(items: list[bool]) -> float:
            hits, total = 0, 0.0
            for rank, r in enumerate(items, 1):
                if r:
                    hits += 1
                    total += hits / rank
            return total / hits if hits else 0.0

        out["ap"].append(ap(rel))
        out["p_n"].append(sum(rel[: min(n, len(d))]) / min(n, len(d)))
        ball = [r for j, r in zip(ranked, rel, strict=True) if dist[j] <= radius]
        out["p_ball"].append(sum(ball) / len(ball) if ball else 0.0)
        out["r_ball"].append(sum(ball) / sum(rel) if sum(rel) else 0.0)
        out["ap_ball"].append(ap(ball))
    return out


@pytest.mark.parametrize("seed", [0, 3])
def test_per_query_values_follow_the_definitions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 256, (9, 2), np.uint8)
    d = rng.integers(0, 256, (40, 2), np.uint8)
    ql = (rng.random((9, 4)) < 0.3).astype(np.uint8)  # multi-label, some queries with no label
    dl = (rng.random((40, 4)) < 0.3).astype(np.uint8)
    res = evaluate(q, d, ql, dl, seed=seed, per_query=True, p_at_n=(10,), chunk_size=4)
    ref = _reference(q, d, ql, dl, seed, 10, 2)
    np.testing.assert_allclose(res["per_query/mAP@all"], ref["ap"], atol=1e-12)
    np.testing.assert_allclose(res["per_query/P@10"], ref["p_n"], atol=1e-12)
    np.testing.assert_allclose(res["per_query/P@H<=2"], ref["p_ball"], atol=1e-12)
    np.testing.assert_allclose(res["per_query/R@H<=2"], ref["r_ball"], atol=1e-12)
    np.testing.assert_allclose(res["per_query/mAP@H<=2"], ref["ap_ball"], atol=1e-12)
    # the scalars are the means of the per-query values
    for key in ("mAP@all", "P@10", "P@H<=2", "R@H<=2", "mAP@H<=2"):
        assert res[key] == pytest.approx(float(np.mean(res[f"per_query/{key}"])), abs=1e-12)


def test_per_query_is_off_by_default() -> None:
    rng = np.random.default_rng(1)
    q, d = rng.integers(0, 256, (3, 1), np.uint8), rng.integers(0, 256, (10, 1), np.uint8)
    ql, dl = np.eye(2, dtype=np.uint8)[[0, 1, 0]], np.eye(2, dtype=np.uint8)[rng.integers(0, 2, 10)]
    assert not any(k.startswith("per_query/") for k in evaluate(q, d, ql, dl))
