"""The figures show the spread over seeds: error bars (mAP against bits, against query time) and
+-1 std bands (P-R and P@N curves), for points with several seeds only; drawn deterministically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer

from hashbench.bench import plots
from hashbench.bench.plots import figure_data, ok_records, plan_figures, render_figures

#: mAP of method ``dsh`` at (bits, seed); ``itq`` has one seed.
DSH = {(16, 0): 0.50, (16, 1): 0.56, (16, 2): 0.62, (32, 0): 0.70, (32, 1): 0.72, (32, 2): 0.74}


def _record(method: str, bits: int, seed: int, m: float, kind: str, query_ms: float) -> dict:
    radius = np.arange(bits + 1)
    return {
        "benchmark": "toy",
        "status": "ok",
        "method": method,
        "kind": kind,
        "bits": bits,
        "seed": seed,
        "metrics": {"mAP@all": m},
        "curves": {
            "pr_curve/recall": (radius / bits).tolist(),
            "pr_curve/precision": (m * (1 - 0.5 * radius / bits)).tolist(),
            "P@N_curve/N": [1, 10, 100],
            "P@N_curve": [m, m - 0.1, m - 0.2],
        },
        "times": {"query_ms": query_ms},
    }


def _records() -> list[dict]:
    out = [_record("dsh", b, s, m, "deep", query_ms=1.0 + 0.1 * s) for (b, s), m in DSH.items()]
    out += [_record("itq", b, 0, 0.4, "baseline", query_ms=0.5) for b in (16, 32)]
    return out


def _specs():
    (figs,) = plan_figures(_records()).values()
    return {(f.kind, f.bits): f for f in figs}


def test_figure_data_has_mean_std_and_seed_count() -> None:
    ok = ok_records(_records(), "toy")
    specs = _specs()
    data = figure_data(ok, specs[("map_vs_bits", None)])
    dsh, itq = data["dsh"], data["itq"]
    assert dsh.x.tolist() == [16, 32] and dsh.n_seeds.tolist() == [3, 3]
    assert dsh.y == pytest.approx([0.56, 0.72])
    assert dsh.y_std == pytest.approx([np.std([0.5, 0.56, 0.62], ddof=1), 0.02])
    assert dsh.has_spread and not itq.has_spread and np.isnan(itq.y_std).all()
    pr = figure_data(ok, specs[("pr", 32)])["dsh"]
    expected = np.std(
        [[m * (1 - 0.5 * r / 32) for r in range(33)] for m in (0.7, 0.72, 0.74)], 0, ddof=1
    )
    assert pr.y_std == pytest.approx(expected) and pr.has_spread
    timed = figure_data(ok, specs[("map_vs_time", 32)])["dsh"]
    assert timed.x == pytest.approx([1.1]) and timed.x_std == pytest.approx([0.1])
    assert timed.y_std == pytest.approx([0.02])


def _drawn(monkeypatch, tmp_path: Path) -> dict[str, object]:
    figures = {}

    def keep(fig, path: Path) -> None:
        figures[path.name] = fig

    monkeypatch.setattr(plots, "_save", keep)
    render_figures(_records(), tmp_path)
    return figures


def test_drawn_figures_carry_the_spread(monkeypatch, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    figures = _drawn(monkeypatch, tmp_path)
    try:
        (ax,) = figures["toy-map-vs-bits.png"].axes
        bars = {c.get_label(): c for c in ax.containers if isinstance(c, ErrorbarContainer)}
        assert set(bars) == {"dsh", "itq"} and bars["dsh"].has_yerr
        (segments,) = bars["dsh"].lines[2]
        lengths = [s[1][1] - s[0][1] for s in segments.get_segments()]
        assert lengths == pytest.approx([2 * np.std([0.5, 0.56, 0.62], ddof=1), 0.04])
        assert not bars["itq"].has_yerr  # one seed: no bar
        (ax,) = figures["toy-pr-32bits.png"].axes
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 1  # dsh only: itq has one seed
        lows = bands[0].get_paths()[0].vertices[:, 1]
        pr = figure_data(ok_records(_records(), "toy"), _specs()[("pr", 32)])["dsh"]
        assert lows.min() == pytest.approx((pr.y - pr.y_std).min())
        assert (
            len(
                [
                    c
                    for c in figures["toy-precision-at-n-32bits.png"].axes[0].collections
                    if isinstance(c, PolyCollection)
                ]
            )
            == 1
        )
        (ax,) = figures["toy-map-vs-query-time.png"].axes
        bars = {c.get_label(): c for c in ax.containers if isinstance(c, ErrorbarContainer)}
        assert bars["dsh"].has_xerr and bars["dsh"].has_yerr
        assert "std over seeds" in ax.get_title()
    finally:
        for fig in figures.values():
            plt.close(fig)


def test_figures_are_deterministic(tmp_path: Path) -> None:
    first = render_figures(_records(), tmp_path / "a")
    second = render_figures(_records(), tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
        assert a.stat().st_size < 200_000
