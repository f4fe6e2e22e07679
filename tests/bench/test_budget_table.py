"""scripts/budget_table.py: the default-vs-doubled-budget comparison, on constructed records and on
the shared tiny sweep (which records are current)."""

from __future__ import annotations

import pytest

from tests.bench.conftest import write_grid
from tests.fixtures import load_script


@pytest.fixture(scope="module")
def budget_table():
    return load_script("scripts/budget_table.py")


def _record(method, seed, profile, cap, run, best, val, per_query, stopped=False):
    return {
        "status": "ok",
        "dataset": "toy",
        "method": method,
        "bits": 32,
        "seed": seed,
        "bench": {"profile": profile},
        "training": {
            "max_epochs": cap,
            "epochs_run": run,
            "best_epoch": best,
            "stopped_early": stopped,
            "best_val": {"val/mAP": val},
        },
        "per_query": {"mAP@all": per_query},
    }


def test_rows_pair_cells_and_give_the_differences(budget_table) -> None:
    records = [
        _record("dsh", 0, "default", 20, 20, 18, 0.80, [0.5, 0.7, 0.9]),
        _record("dsh", 1, "default", 20, 20, 19, 0.84, [0.6, 0.6, 0.9]),
        _record("dsh", 0, "budget", 40, 33, 22, 0.86, [0.6, 0.7, 0.9], stopped=True),
        # the rule fired in the last epoch: the run still reached the cap, not "stopped"
        _record("dsh", 1, "budget", 40, 40, 37, 0.88, [0.6, 0.8, 0.9], stopped=True),
        _record("dsh", 2, "budget", 40, 40, 39, 0.99, [1.0, 1.0, 1.0]),  # no default partner
        _record("dhn", 0, "default", 20, 20, 10, 0.50, [0.1, 0.1, 0.1]),  # no budget partner
    ]
    short = budget_table._deep(records, "toy", "default")
    long = budget_table._deep(records, "toy", "budget")
    (row,) = budget_table.rows(short, long, "mAP@all", n_resamples=200)
    cells = dict(zip(budget_table.HEADER, row, strict=True))
    assert cells["method"] == "dsh"
    assert cells["cells"] == "32 bits s0, 32 bits s1"  # seed 2 has no default record
    assert cells["caps"] == "20/40"
    # val: (0.80 + 0.84) / 2 = 0.82 and (0.86 + 0.88) / 2 = 0.87
    assert (cells["val short"], cells["val long"], cells["val long - short"]) == (
        "0.8200",
        "0.8700",
        "+0.0500",
    )
    # epochs run per seed, best epoch counted from 1, early stops counted
    assert cells["epochs run (best) short"] == "20/20 (19/20)"
    assert cells["epochs run (best) long"] == "33/40 (23/38) 1 stopped"
    # test: mean of (0.5 .. 0.9) = 0.7 short, mean of (0.6 .. 0.9) = 0.75 long
    assert cells["test short"] == "0.7000"
    assert cells["test long"] == "0.7500"
    diff, interval = cells["test long - short [95% CI]"].split(" ", 1)
    assert diff == "+0.0500"
    low, high = (float(x) for x in interval.strip("[]").split(", "))
    assert low <= 0.05 <= high


def test_missing_results_folder_is_a_clear_error(budget_table, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        budget_table.main(["--short", str(tmp_path / "nowhere"), "--long", str(tmp_path)])
    assert "no records there" in capsys.readouterr().err


def test_stale_records_are_left_out(budget_table) -> None:
    records = {
        ("dsh", 32, 0): {"config_hash": "a"},
        ("dsh", 32, 1): {"config_hash": "old"},  # the method changed since: stale
        ("dhn", 32, 0): {"config_hash": "c"},  # no longer in the profile's grid
    }
    fresh, left_out = budget_table.drop_stale(records, {("dsh", 32, 0)})  # the plan skips it
    assert list(fresh) == [("dsh", 32, 0)]
    assert left_out == [("dhn", 32, 0), ("dsh", 32, 1)]


def test_current_cells_are_the_deep_cells_the_sweep_would_skip(
    budget_table, bench_sweep, tmp_path
) -> None:
    assert bench_sweep.rc == 0
    results = str(bench_sweep.results)
    current = budget_table.current_cells(str(bench_sweep.grid), "default", results)
    assert current == {("dsh", 8, 0), ("dsh", 16, 0)}  # itq is a baseline: not listed
    changed = write_grid(  # another epoch cap: the dsh records no longer match the grid
        tmp_path / "grid.yaml",
        bench_sweep.root,
        ["dsh", "itq"],
        [8, 16],
        profile_args={"trainer.max_epochs": 2},
    )
    assert budget_table.current_cells(str(changed), "default", results) == set()
