"""benchmarks/metric_pass_floor.py: every variant of the pass writes the records of a plain loop."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import load_script

pytest.importorskip("numba")


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no cc")
def test_every_pass_variant_writes_the_loop_records(tmp_path: Path) -> None:
    module = load_script("benchmarks/metric_pass_floor.py")
    rng = np.random.default_rng(0)
    nq, nb, n_buckets = 5, 83, 9  # 83: the AVX-512 variant's 16-wide steps leave a tail
    dist = rng.integers(0, n_buckets, (nq, nb)).astype(np.uint8)
    dist[:, 10:30] = 4  # runs of one bucket: conflicts inside a 16-lane step
    rel = (rng.random((nq, nb)) < 0.4).astype(np.uint8)
    expect = []
    for i in range(nq):
        seen, row = [0] * n_buckets, []
        for j in range(nb):
            d = int(dist[i, j])
            if rel[i, j]:
                row.append((seen[d] << 8) | d)
            seen[d] += 1
        expect.append(row)
    runs = module.passes(tmp_path)
    assert "numba" in runs and "C scalar" in runs
    for name, run in runs.items():
        assert module.records(run, dist, rel, n_buckets) == expect, name
