"""benchmarks/metric_floor_c.py: its compiled kernel computes the engine's ``index`` mAP@all."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from hashbench.retrieval.metrics import mean_average_precision
from tests.fixtures import load_script


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no cc")
@pytest.mark.parametrize("n_bytes", [2, 8, 9])  # 16, 64 and 72 bits (padded to whole words)
def test_compiled_kernel_equals_the_engine(n_bytes: int, tmp_path: Path) -> None:
    module = load_script("benchmarks/metric_floor_c.py")
    fn = module.build_kernel(tmp_path)
    rng = np.random.default_rng(n_bytes)
    qc = rng.integers(0, 256, (17, n_bytes), dtype=np.uint8)
    dc = rng.integers(0, 256, (301, n_bytes), dtype=np.uint8)
    dc[:40] = dc[0]  # many exact ties, so the tie order matters
    ql = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, 17)]
    dl = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, 301)]
    dl[:, 3] = 0  # class 3 has no database item: queries of it have AP 0
    dl[dl.sum(1) == 0, 0] = 1
    for seed in (0, 5):
        got = module.compiled_map(fn, qc, dc, ql, dl, seed=seed)
        want = mean_average_precision(qc, dc, ql, dl, ties="index", seed=seed)
        assert got == pytest.approx(want, abs=1e-12)
