"""benchmarks/metric_speed.py: its CalcTopMap port computes mAP, with or without timing its steps."""

from __future__ import annotations

import numpy as np

from tests.fixtures import load_script


def _tiny_case() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """8-bit codes: item j is the all-zero code with its first j bits set, so every query (all
    zeros, all ones) sees distinct distances and the ranking has no ties."""
    bits = np.zeros((9, 8), dtype=np.uint8)
    for j in range(9):
        bits[j, :j] = 1
    dc = np.packbits(bits, axis=1)
    qc = np.packbits(np.array([[0] * 8, [1] * 8], dtype=np.uint8), axis=1)
    dl = np.eye(3, dtype=np.uint8)[[0, 1, 0, 2, 0, 1, 1, 2, 0]]
    ql = np.array([[1, 0, 0], [0, 1, 1]], dtype=np.uint8)
    return qc, dc, ql, dl


def _hand_map(k: int) -> float:
    # query 0 (zeros): items in order 0..8; relevant (class 0): items 0, 2, 4, 8
    # query 1 (ones): items in order 8..0; relevant (class 1 or 2): items 7, 6, 5, 3, 1
    rankings = [list(range(9)), list(range(8, -1, -1))]
    relevant = [{0, 2, 4, 8}, {1, 3, 5, 6, 7}]
    total = 0.0
    for order, rel in zip(rankings, relevant, strict=True):
        hits, precisions = 0, []
        for position, item in enumerate(order[:k], start=1):
            if item in rel:
                hits += 1
                precisions.append(hits / position)
        total += sum(precisions) / len(precisions) if precisions else 0.0
    return total / 2


def test_calctopmap_port_matches_a_hand_computation() -> None:
    module = load_script("benchmarks/metric_speed.py")
    qc, dc, ql, dl = _tiny_case()
    for k in (None, 3, 1):
        expect = _hand_map(9 if k is None else k)
        assert abs(module.calctopmap_port(qc, dc, ql, dl, k) - expect) < 1e-12, k


def test_calctopmap_port_timing_its_steps_returns_the_same_value() -> None:
    module = load_script("benchmarks/metric_speed.py")
    qc, dc, ql, dl = _tiny_case()
    steps: dict[str, float] = {}
    value = module.calctopmap_port(qc, dc, ql, dl, None, steps)
    assert value == module.calctopmap_port(qc, dc, ql, dl, None)
    assert set(steps) == set(module.STEPS)
    assert all(seconds >= 0 for seconds in steps.values())
