"""Figures of a benchmark's records (seaborn / matplotlib, Agg backend, small PNGs).

Per benchmark (dataset), from the ``ok`` records only:

- ``<name>-map-vs-bits.png``: the preset's mAP against code length, one line per method (mean over
  seeds, error bars = +-1 sample std over seeds where a point has several seeds);
- ``<name>-pr-<b>bits.png``: precision-recall curves over Hamming radius ``r = 0..b`` (PROTOCOL.md,
  "PR curve") at 32 and 64 bits (or, when neither was run, the largest code length), curves
  averaged over seeds, with a band of +-1 std of the precision over seeds;
- ``<name>-precision-at-n-<b>bits.png``: Precision@N against N at the same code lengths (band
  likewise);
- ``<name>-map-vs-query-time.png``: mAP against the time to answer one query (encode it and take
  its top-k from the index, ``times.query_ms``) at the reference code length (32 bits, else the
  largest), error bars +-1 std over seeds on both axes.

:func:`figure_data` gives what a figure draws (mean, std and seed count per point), so the spread
is testable without reading pixels.

Which figures exist is decided by the records alone (:func:`plan_figures`), so the leaderboard can
list them deterministically. Files are written atomically.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Code lengths of the PR and P@N figures when they were run.
CURVE_BITS = (32, 64)
#: Preferred reference code length of the cost table and the time figure.
REFERENCE_BITS = 32
DPI = 100


@dataclass(frozen=True)
class Figure:
    """One planned figure: what it shows and where it goes (relative to the figures folder)."""

    dataset: str
    kind: str  # map_vs_bits | pr | pn | map_vs_time
    bits: int | None
    filename: str
    caption: str


def ok_records(records: list[dict], dataset: str) -> list[dict]:
    """The ``ok`` records of one benchmark, in their (sorted) order."""
    return [r for r in records if r.get("benchmark") == dataset and r.get("status") == "ok"]


def map_key(record: dict) -> str | None:
    """The preset's mAP key of a record (``mAP@all``, ``mAP@5000``, ...)."""
    from hashbench.retrieval.evaluation import map_key as metrics_map_key

    return metrics_map_key(record.get("metrics", {}))


def reference_bits(bits: list[int]) -> int | None:
    """32 when present, else the largest code length (``None`` for no bits)."""
    if not bits:
        return None
    return REFERENCE_BITS if REFERENCE_BITS in bits else max(bits)


def curve_bits(bits: list[int]) -> list[int]:
    """The code lengths of the curve figures: those of :data:`CURVE_BITS` present, else the largest."""
    chosen = [b for b in CURVE_BITS if b in bits]
    return chosen or ([max(bits)] if bits else [])


def plan_figures(records: list[dict]) -> dict[str, list[Figure]]:
    """Per benchmark, the figures its ok records support, in a fixed order."""
    out: dict[str, list[Figure]] = {}
    for dataset in sorted({str(r.get("benchmark")) for r in records}):
        ok = ok_records(records, dataset)
        if not ok:
            continue
        bits = sorted({int(r["bits"]) for r in ok})
        figs = [
            Figure(
                dataset,
                "map_vs_bits",
                None,
                f"{dataset}-map-vs-bits.png",
                "mAP against code length",
            )
        ]
        for b in curve_bits(bits):
            if any(r["bits"] == b and "pr_curve/precision" in r.get("curves", {}) for r in ok):
                figs.append(
                    Figure(dataset, "pr", b, f"{dataset}-pr-{b}bits.png", f"P-R curves, {b} bits")
                )
            if any(r["bits"] == b and "P@N_curve" in r.get("curves", {}) for r in ok):
                figs.append(
                    Figure(
                        dataset,
                        "pn",
                        b,
                        f"{dataset}-precision-at-n-{b}bits.png",
                        f"Precision@N, {b} bits",
                    )
                )
        ref = reference_bits(bits)
        if any(r["bits"] == ref and "query_ms" in r.get("times", {}) for r in ok):
            figs.append(
                Figure(
                    dataset,
                    "map_vs_time",
                    ref,
                    f"{dataset}-map-vs-query-time.png",
                    f"mAP against query time, {ref} bits",
                )
            )
        out[dataset] = figs
    return out


def _method_order(ok: list[dict]) -> list[str]:
    kinds = {r["method"]: r.get("kind", "deep") for r in ok}
    return sorted(kinds, key=lambda m: (kinds[m] != "deep", m))


def _styles(methods: list[str], kinds: dict[str, str]) -> dict[str, dict]:
    import seaborn as sns

    palette = sns.color_palette("tab10" if len(methods) <= 10 else "tab20", len(methods))
    return {
        m: {
            "color": palette[i],
            "linestyle": "-" if kinds.get(m) == "deep" else "--",
            "marker": "o" if kinds.get(m) == "deep" else "s",
        }
        for i, m in enumerate(methods)
    }


@dataclass(frozen=True)
class Series:
    """What one method's line (or point) of a figure shows: per point the mean over seeds, the
    sample standard deviation over seeds (``nan`` where there is one seed) and the seed count."""

    x: np.ndarray
    y: np.ndarray
    y_std: np.ndarray
    n_seeds: np.ndarray
    x_std: np.ndarray | None = None  # the time figure: the spread of the query time

    @property
    def has_spread(self) -> bool:
        """Some point averages several seeds (it gets an error bar or a band)."""
        return bool(np.any(self.n_seeds > 1))


def _std(values: np.ndarray) -> np.ndarray:
    """Sample std over axis 0; ``nan`` for one seed."""
    if values.shape[0] < 2:
        return np.full(values.shape[1:], np.nan)
    return values.std(axis=0, ddof=1)


def figure_data(ok: list[dict], spec: Figure) -> dict[str, Series]:
    """Per method, the data a figure draws (mean and spread over seeds), from one benchmark's ok
    records; deterministic (records are read in (method, bits, seed) order)."""
    ok = sorted(ok, key=lambda r: (r["method"], int(r["bits"]), int(r.get("seed", 0))))
    if spec.kind == "map_vs_bits":
        return _map_by_bits(ok)
    if spec.kind in ("pr", "pn"):
        keys = (
            ("pr_curve/recall", "pr_curve/precision")
            if spec.kind == "pr"
            else ("P@N_curve/N", "P@N_curve")
        )
        return _mean_curves(ok, spec.bits, *keys)
    return _map_by_time(ok, spec.bits)


def _map_by_bits(ok: list[dict]) -> dict[str, Series]:
    by_method: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in ok:
        key = map_key(r)
        if key:
            by_method[r["method"]][int(r["bits"])].append(float(r["metrics"][key]))
    out = {}
    for m, points in by_method.items():
        bits = sorted(points)
        out[m] = Series(
            x=np.asarray(bits, float),
            y=np.asarray([np.mean(points[b]) for b in bits]),
            y_std=np.asarray([_std(np.asarray(points[b])[:, None])[0] for b in bits]),
            n_seeds=np.asarray([len(points[b]) for b in bits]),
        )
    return out


def _mean_curves(ok: list[dict], bits: int, x_key: str, y_key: str) -> dict[str, Series]:
    by_method: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for r in ok:
        c = r.get("curves", {})
        if r["bits"] == bits and x_key in c and y_key in c:
            by_method[r["method"]].append(
                (np.asarray(c[x_key], float), np.asarray(c[y_key], float))
            )
    out = {}
    for m, pairs in by_method.items():
        n = min(len(x) for x, _ in pairs)
        ys = np.asarray([y[:n] for _, y in pairs])
        out[m] = Series(
            x=np.mean([x[:n] for x, _ in pairs], axis=0),
            y=ys.mean(axis=0),
            y_std=_std(ys),
            n_seeds=np.full(n, len(pairs)),
        )
    return out


def _map_by_time(ok: list[dict], bits: int | None) -> dict[str, Series]:
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in ok:
        if r["bits"] == bits and map_key(r) and "query_ms" in r.get("times", {}):
            points[r["method"]].append((r["times"]["query_ms"], r["metrics"][map_key(r)]))
    out = {}
    for m, values in points.items():
        arr = np.asarray(values, float)
        std = _std(arr)
        out[m] = Series(
            x=np.asarray([arr[:, 0].mean()]),
            y=np.asarray([arr[:, 1].mean()]),
            y_std=std[1:],
            n_seeds=np.asarray([len(arr)]),
            x_std=std[:1],
        )
    return out


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    from hashbench.files import atomic_path

    try:
        with atomic_path(path) as tmp:
            fig.savefig(
                tmp, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None}
            )
    finally:
        plt.close(fig)


def _legend(ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=7,
            frameon=False,
            ncol=1 if len(labels) <= 16 else 2,
        )


#: Opacity of the +-1 std band of a curve figure.
BAND_ALPHA = 0.15


def _errors(std: np.ndarray | None) -> np.ndarray | None:
    """Error bar half-lengths: the std, ``nan`` (no bar) where there is one seed."""
    return None if std is None or np.all(np.isnan(std)) else std


def _log_errors(x: np.ndarray, std: np.ndarray | None) -> np.ndarray | None:
    """Error bars on a log axis: the lower half-length stops short of zero."""
    std = _errors(std)
    return None if std is None else np.vstack([np.minimum(std, 0.9 * x), std])


def _map_vs_bits(ok: list[dict], fig_spec: Figure, styles: dict, order: list[str]):
    import matplotlib.pyplot as plt

    data = figure_data(ok, fig_spec)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    key = next((map_key(r) for r in ok if map_key(r)), "mAP")
    for m in order:
        if m not in data:
            continue
        d, s = data[m], styles[m]
        ax.errorbar(
            d.x,
            d.y,
            yerr=_errors(d.y_std),
            label=m,
            color=s["color"],
            linestyle=s["linestyle"],
            marker=s["marker"],
            markersize=4,
            linewidth=1.2,
            capsize=2.5,
            elinewidth=0.9,
        )
    ax.set_xticks(sorted({int(b) for d in data.values() for b in d.x}))
    ax.set_xlabel("bits")
    ax.set_ylabel(key)
    spread = " (bars: +-1 std over seeds)" if any(d.has_spread for d in data.values()) else ""
    ax.set_title(f"{fig_spec.dataset}: {key} against code length{spread}", fontsize=10)
    ax.grid(True, alpha=0.3)
    _legend(ax)
    return fig


def _curves(ok: list[dict], fig_spec: Figure, styles: dict, order: list[str]):
    import matplotlib.pyplot as plt

    curves = figure_data(ok, fig_spec)
    if fig_spec.kind == "pr":
        xlabel, ylabel = "recall", "precision"
        title = f"{fig_spec.dataset}: precision-recall over Hamming radius, {fig_spec.bits} bits"
    else:
        xlabel, ylabel = "N (top retrieved)", "precision@N"
        title = f"{fig_spec.dataset}: precision@N, {fig_spec.bits} bits"
    if any(d.has_spread for d in curves.values()):
        title += " (bands: +-1 std over seeds)"
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for m in order:
        if m not in curves:
            continue
        d, s = curves[m], styles[m]
        ax.plot(d.x, d.y, label=m, color=s["color"], linestyle=s["linestyle"], linewidth=1.2)
        if d.has_spread:
            ax.fill_between(
                d.x, d.y - d.y_std, d.y + d.y_std, color=s["color"], alpha=BAND_ALPHA, linewidth=0
            )
    if fig_spec.kind == "pn":
        ax.set_xscale("log")
    else:
        ax.set_xlim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    _legend(ax)
    return fig


def _map_vs_time(ok: list[dict], fig_spec: Figure, styles: dict, order: list[str]):
    import matplotlib.pyplot as plt

    points = figure_data(ok, fig_spec)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for m in order:
        if m not in points:
            continue
        d, s = points[m], styles[m]
        ax.errorbar(
            d.x,
            d.y,
            xerr=_log_errors(d.x, d.x_std),
            yerr=_errors(d.y_std),
            label=m,
            color=s["color"],
            marker=s["marker"],
            markersize=5,
            linestyle="none",
            capsize=2.5,
            elinewidth=0.9,
        )
    ax.set_xscale("log")
    ax.set_xlabel("query time, ms (encode the query + top-k from the index)")
    key = next((map_key(r) for r in ok if map_key(r)), "mAP")
    ax.set_ylabel(key)
    title = f"{fig_spec.dataset}: {key} against query time, {fig_spec.bits} bits"
    if any(d.has_spread for d in points.values()):
        title += " (bars: +-1 std over seeds)"
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    _legend(ax)
    return fig


def render_figures(records: list[dict], fig_dir: str | os.PathLike) -> list[Path]:
    """Draw every planned figure into ``fig_dir``; returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig_dir = Path(fig_dir)
    written = []
    with plt.rc_context(), sns.axes_style("whitegrid"), sns.plotting_context("paper"):
        for dataset, figs in plan_figures(records).items():
            ok = ok_records(records, dataset)
            order = _method_order(ok)
            styles = _styles(order, {r["method"]: r.get("kind", "deep") for r in ok})
            for spec in figs:
                if spec.kind == "map_vs_bits":
                    fig = _map_vs_bits(ok, spec, styles, order)
                elif spec.kind in ("pr", "pn"):
                    fig = _curves(ok, spec, styles, order)
                else:
                    fig = _map_vs_time(ok, spec, styles, order)
                _save(fig, fig_dir / spec.filename)
                written.append(fig_dir / spec.filename)
    return written
