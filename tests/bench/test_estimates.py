"""The plan's time estimate (hashbench/bench/sweep.py, estimate_times / plan_summary)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hashbench.bench.cells import Cell
from hashbench.bench.sweep import FALLBACK_ESTIMATE_S, PlannedCell, estimate_times


def _record(method: str, profile: str, total: float, train: float, epochs: int, kind="deep"):
    return {
        "status": "ok",
        "method": method,
        "kind": kind,
        "bench": {"profile": profile},
        "times": {"total_s": total, "train_s": train},
        "training": {"epochs_run": epochs},
    }


def _planned(method: str, profile: str, cap: int | None, kind: str = "deep") -> PlannedCell:
    path = Path("results/raw/toy") / profile / method / "16bits-seed0.json.gz"
    training = None if cap is None else {"trainer": {"max_epochs": cap}}
    return PlannedCell(Cell(1, method, 16, 0, kind), {}, "h", path, "run", training)


def test_same_profile_records_give_their_mean_wall_time() -> None:
    p = _planned("dsh", "default", 20)
    estimate_times(
        [p], [_record("dsh", "default", 100, 80, 20), _record("dsh", "default", 120, 90, 18)]
    )
    assert p.estimate_s == pytest.approx(110.0)


def test_another_profile_is_scaled_to_this_epoch_cap() -> None:
    """A 1-epoch quick cell from the default profile's records: the fixed part (test, index)
    plus one epoch of training, not the 20-epoch wall time."""
    p = _planned("dsh", "quick", 1)
    records = [_record("dsh", "default", 100, 80, 20), _record("dsh", "default", 60, 50, 10)]
    estimate_times([p], records)
    assert p.estimate_s == pytest.approx(((100 - 80 + 80 / 20) + (60 - 50 + 50 / 10)) / 2)


def test_without_records_of_the_method_kind_then_fallback() -> None:
    deep, base = _planned("dhn", "quick", 1), _planned("itq", "quick", None, kind="baseline")
    estimate_times([deep, base], [_record("lsh", "quick", 3, 1, 0, kind="baseline")])
    assert deep.estimate_s == FALLBACK_ESTIMATE_S["deep"]
    assert base.estimate_s == pytest.approx(3.0)  # the mean of its kind in this profile
