"""benchmarks/bench_times.py: the run-time table is read from the records, nothing timed."""

from __future__ import annotations

import pytest

from tests.fixtures import load_script


@pytest.fixture(scope="module")
def bench_times():
    return load_script("benchmarks/bench_times.py")


def _record(method, kind, bits, total, train=None, test=None, epochs=None, status="ok", t0="00"):
    times = {"total_s": total, "train_s": train, "test_s": test, "epochs": epochs}
    return {
        "method": method,
        "kind": kind,
        "cell": f"{method}/{bits}bits/seed0",
        "status": status,
        "times": {k: v for k, v in times.items() if v is not None},
        "started_at": f"2026-11-25T10:{t0}:00Z",
        "finished_at": f"2026-11-25T10:{t0}:30Z",
    }


def test_table_sums_and_medians(bench_times):
    records = [
        _record("dsh", "deep", 8, 60.0, train=40.0, test=10.0, epochs=6, t0="00"),
        _record("dsh", "deep", 16, 120.0, train=80.0, test=30.0, epochs=6, t0="05"),
        _record("dsh", "deep", 32, 90.0, train=50.0, test=20.0, epochs=6, t0="10"),
        _record("lsh", "baseline", 8, 6.0, train=0.5, t0="01", status="failed"),
    ]
    lines = bench_times.run_time_table(records)
    assert lines[2].startswith("| `lsh` | baseline | 1 | - | 0.5 | - | 6.0 | 0.1 min |")
    assert lines[3] == "| `dsh` | deep | 3 | 6 | 50.0 | 20.0 | 90.0 | 4.5 min |"
    text = "\n".join(lines)
    assert "Cells' summed wall time: 4.6 min (baseline 0.1 min, deep 4.5 min)." in text
    assert "10:00:00 UTC, last finished 10:10:30 UTC: 10.5 min." in text
    assert "Cells: 4, failed: 1 (lsh/8bits/seed0)." in text


def test_no_records_is_a_clear_error(bench_times, tmp_path):
    with pytest.raises(SystemExit, match="no records under .*make bench"):
        bench_times.main(["--results", str(tmp_path)])
