"""The sections of the leaderboard Markdown (facts, metric tables, cost table, failed cells) and
the number formatting they share with :mod:`hashbench.bench.claims` and the CSV.

Everything here is a pure function of the records: sorted, fixed float formats, no clock.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from hashbench.bench.plots import map_key, reference_bits

DEFAULT_TABLES = ("mAP", "mAP@H<=2", "P@H<=2", "P@500")

#: Cost columns: (record ``times`` / ``memory`` key, header, format).
COST_COLUMNS = (
    ("times.epochs", "epochs", "{:,.1f}"),
    ("training.best_epoch", "best epoch", "{:,.1f}"),
    ("training.max_epochs", "epoch cap", "{:,.0f}"),
    ("times.train_s", "train s", "{:,.2f}"),
    ("times.encode_per_s", "encode items/s", "{:,.0f}"),
    ("times.index_build_s", "index build ms", "{:,.2f}", 1000.0),
    ("times.query_ms", "query ms", "{:,.3f}"),
    ("times.topk_qps", "top-k queries/s", "{:,.0f}"),
    ("times.radius_qps", "radius queries/s", "{:,.0f}"),
    ("memory.peak_rss_mb", "peak RSS MB", "{:,.0f}"),
    ("memory.cuda_peak_mb", "peak CUDA MB", "{:,.0f}"),
)


# -- helpers ----------------------------------------------------------------------------------------
def _get(record: dict, dotted: str) -> Any:
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def metric_value(record: dict, metric: str) -> float | None:
    """The value of ``metric`` in a record (``mAP`` = the preset's ``mAP@k``)."""
    key = map_key(record) if metric == "mAP" else metric
    value = record.get("metrics", {}).get(key) if key else None
    return None if value is None else float(value)


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var)


def _fmt(value: float | None, fmt: str = "{:.3f}") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    text = fmt.format(value)
    return "0.000" if text == "-0.000" else text


def _signed(value: float) -> str:
    """``+0.012``; a non-zero difference that rounds to zero keeps its sign with a 4th decimal."""
    text = f"{value:+.3f}"
    if text in ("+0.000", "-0.000") and value != 0:
        text = f"{value:+.4f}"
    return "+0.000" if text in ("-0.000", "-0.0000") else text


def _method_kinds(ok: list[dict]) -> dict[str, str]:
    out = {}
    for r in ok:
        kind = "deep" if r.get("kind") == "deep" else "shallow"
        sup = r.get("supervised")
        out[r["method"]] = kind + ("" if sup is None else (", supervised" if sup else ", unsup."))
    for m in {r["method"] for r in ok if _synthetic_tags(r)}:
        out[m] += ", synthetic tags"
    return out


def _synthetic_tags(record: dict) -> bool:
    """The cell trained on generated weak tags (a dataset with no user tags, e.g. Fashion-MNIST)."""
    return str(record.get("tag_source") or "").startswith("synthetic")


def _order(methods: dict[str, str]) -> list[str]:
    return sorted(methods, key=lambda m: (not methods[m].startswith("deep"), m))


def _values(ok: list[dict], quantity: str) -> dict[tuple[str, int], list[float]]:
    """(method, bits) -> values over seeds (records in sorted order) of a metric or cost key."""
    out: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in sorted(ok, key=lambda r: (r["method"], int(r["bits"]), int(r["seed"]))):
        if "." in quantity and quantity.split(".")[0] in ("times", "memory", "training"):
            v = _get(r, quantity)
        else:
            v = metric_value(r, quantity)
        if v is not None and isinstance(v, int | float) and math.isfinite(float(v)):
            out[(r["method"], int(r["bits"]))].append(float(v))
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def wall_time_by_kind(records: list[dict]) -> dict[str, float]:
    """Summed cell wall time (``times.total_s``, seconds) per record kind, kinds sorted."""
    by_kind: dict[str, float] = defaultdict(float)
    for r in records:
        by_kind[str(r.get("kind", "?"))] += float(_get(r, "times.total_s") or 0.0)
    return dict(sorted(by_kind.items()))


def compute_summary(records: list[dict]) -> str:
    """``<total> min (<kind> <t> min, ...)``: what the sweep cost, whatever the sharding."""
    by_kind = wall_time_by_kind(records)
    parts = ", ".join(f"{kind} {_minutes(t)}" for kind, t in by_kind.items())
    return f"{_minutes(sum(by_kind.values()))} ({parts})"


def _compute_line(records: list[dict]) -> str:
    return f"cells' summed wall time {compute_summary(records)}"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _join(values: set | list) -> str:
    return ", ".join(str(v) for v in sorted(values, key=str)) if values else "—"


def _schedule(record: dict) -> str | None:
    """The learning-rate schedule of a deep record's resolved config (``cosine``, ...)."""
    fit = (record.get("config") or {}).get("fit") or {}
    optim = ((fit.get("model") or {}).get("init_args") or {}).get("optim") or {}
    return optim.get("schedule")


def reached_cap(training: dict) -> bool:
    """Whether a deep run trained up to its epoch cap, from its epochs run (records of earlier
    sweeps also say ``stopped_early`` when the rule fired in the last epoch)."""
    return int(training["epochs_run"]) >= int(training["max_epochs"])


def _caps(cells: list[tuple[dict, dict]]) -> str:
    """The epoch caps: ``20``, or with per-method caps the most common one first, then the others
    with their methods (``20; 40: knngan, knngan_nogan``)."""
    methods: dict[int, set[str]] = defaultdict(set)
    for r, t in cells:
        methods[int(t["max_epochs"])].add(str(r.get("method")))
    count = Counter(int(t["max_epochs"]) for _, t in cells)
    first, *others = sorted(count, key=lambda c: (-count[c], c))
    return "; ".join([str(first), *(f"{c}: {_join(methods[c])}" for c in sorted(others))])


def _training_line(ok: list[dict]) -> str:
    """How many deep cells stopped early, reached the epoch cap, and had their best validation
    epoch near the cap; and how many of those anneal the learning rate to 0 at the cap.

    "Best epoch near the cap": the cap was reached and the best validation epoch lies within the
    last ``patience`` epochs, so the early-stopping rule had not seen the plateau it waits for.
    Under a cosine schedule over ``max_epochs`` that is what the schedule produces (the last epochs
    take the smallest steps), not evidence that a longer budget would help: whether it does is
    measured by training with a doubled cap (the grid's ``budget`` profile).
    """
    cells = [(r, r["training"]) for r in ok if isinstance(r.get("training"), dict)]
    cells = [(r, t) for r, t in cells if "epochs_run" in t and "max_epochs" in t]
    if not cells:
        return ""
    at_cap = [(r, t) for r, t in cells if reached_cap(t)]
    stopped = len(cells) - len(at_cap)
    near = [
        r
        for r, t in at_cap
        if t.get("best_epoch") is not None
        and t["epochs_run"] - 1 - t["best_epoch"]
        < (t.get("early_stopping") or {}).get("patience", 1)
    ]
    annealed = sum(1 for r in near if _schedule(r) == "cosine")
    line = (
        f"{len(cells)} deep cells; {stopped} stopped early on held-out `val/mAP`, {len(at_cap)} "
        f"reached the epoch cap ({_caps(cells)}), {len(near)} of those with their best validation "
        "epoch within the early-stopping patience of the cap"
    )
    if annealed:
        line += (
            f" ({annealed} of them anneal the learning rate to 0 at the cap, cosine schedule, so "
            "the last epochs take the smallest steps; whether a longer budget helps is measured "
            "by the grid's `budget` profile, twice the cap and patience)"
        )
    return line + "."


# -- sections ---------------------------------------------------------------------------------------
def _facts(dataset: str, ok: list[dict], failed: list[dict]) -> list[str]:
    everything = ok + failed
    protos = sorted(
        {
            (
                p.get("name"),
                p.get("k"),
                p.get("split_seed"),
                p.get("n_query"),
                p.get("n_database"),
                p.get("n_train"),
                p.get("data_key"),
            )
            for p in (r.get("protocol") or {} for r in ok)
            if p
        },
        key=str,
    )
    lines = []
    for name, k, split_seed, nq, ndb, ntr, key in protos:
        depth = "all" if k is None else f"{k:,}"
        lines.append(
            f"- Protocol: `{name}` ({_fmt(nq, '{:,}')} queries, {_fmt(ndb, '{:,}')} database "
            f"items, {_fmt(ntr, '{:,}')} training items; split seed {split_seed}; data `{key}`); "
            f"mAP depth {depth}; tie rule `index` (ranked by Hamming distance, then by a seeded "
            "shuffle of the database, PROTOCOL.md); relevant = at least one shared label."
        )
    seeds = {int(r["seed"]) for r in ok}
    profiles = {f"`{_get(r, 'bench.profile')}`" for r in everything if _get(r, "bench.profile")}
    configs = {f"`{_get(r, 'bench.config')}`" for r in everything if _get(r, "bench.config")}
    lines.append(f"- Seeds: {_join(seeds)}. Profile: {_join(profiles)}. Grid: {_join(configs)}.")
    lines.append(f"- Cells: {_cells_line(ok)}")
    devices = {_get(r, "device.name") or "unknown" for r in everything}
    dev_kinds = {_get(r, "device.device") or "cpu" for r in everything}
    lines.append(f"- Hardware: {_join(devices)}; devices used: {_join(dev_kinds)}.")
    dates = sorted(str(r.get("finished_at", ""))[:10] for r in everything if r.get("finished_at"))
    when = (
        "—" if not dates else (dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}")
    )
    commits = {
        str(r.get("git_commit", "unknown"))[:10] + (" (dirty)" if r.get("git_dirty") else "")
        for r in everything
    }
    lines.append(
        f"- Records: {len(ok)} ok, {len(failed)} failed; finished {when} (UTC); "
        f"git {_join(commits)}."
    )
    lines.append(f"- Compute: {_compute_line(everything)}.")
    training = _training_line(ok)
    if training:
        lines.append(f"- Training: {training}")
    synthetic = sorted(
        {f"{r['method']} ({r['tag_source']})" for r in everything if _synthetic_tags(r)}
    )
    if synthetic:
        lines.append(
            "- Synthetic weak tags (the dataset has no user tags; `hashbench/data/tags.py`, marked "
            f"`synthetic tags` in every table): {_join(synthetic)}."
        )
    vers = defaultdict(set)
    for r in everything:
        for lib, v in (r.get("versions") or {}).items():
            if v is not None:
                vers[lib].add(str(v))
    if vers:
        lines.append(
            "- Versions: " + "; ".join(f"{lib} {_join(vers[lib])}" for lib in sorted(vers)) + "."
        )
    return lines


def _cells_line(ok: list[dict]) -> str:
    """Which seeds ran at which code lengths, e.g. ``seed 0 at 8/16/32/48/64 bits; seeds 1, 2 at
    16/32/64 bits`` (where seeds differ by length, a one-seed length's spread is not measured)."""
    by_seed: dict[int, set[int]] = defaultdict(set)
    for r in ok:
        by_seed[int(r["seed"])].add(int(r["bits"]))
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for seed, bits in sorted(by_seed.items()):
        groups[tuple(sorted(bits))].append(seed)
    parts = [
        f"{'seed' if len(seeds) == 1 else 'seeds'} {', '.join(map(str, seeds))} at "
        f"{'/'.join(map(str, bits))} bits"
        for bits, seeds in sorted(groups.items(), key=lambda kv: kv[1])
    ]
    text = "; ".join(parts) if parts else "none"
    if len(groups) > 1:
        text += (
            " (lengths with one seed show no ± std, and their claim intervals cover query "
            "sampling only)"
        )
    return text + "."


def _tables(ok: list[dict]) -> list[str]:
    kinds = _method_kinds(ok)
    order = _order(kinds)
    bits = sorted({int(r["bits"]) for r in ok})
    tables: list[str] = []
    for r in ok:
        for m in _get(r, "bench.metrics") or DEFAULT_TABLES:
            if m not in tables:
                tables.append(m)
    lines: list[str] = []
    for metric in tables:
        values = _values(ok, metric)
        if not values:
            continue
        title = next((map_key(r) for r in ok if map_key(r)), "mAP") if metric == "mAP" else metric
        stats = {key: _mean_std(v) for key, v in values.items()}
        best = {}
        for b in bits:
            shown = [_fmt(stats[(m, b)][0]) for m in order if (m, b) in stats]
            best[b] = max(shown, key=float) if shown else None
        rows = []
        for m in order:
            if not any((m, b) in stats for b in bits):
                continue
            row = [m, kinds[m]]
            for b in bits:
                if (m, b) not in stats:
                    row.append("—")
                    continue
                mean, std = stats[(m, b)]
                text = _fmt(mean) + ("" if std is None else f" ± {_fmt(std)}")
                row.append(f"**{text}**" if _fmt(mean) == best[b] else text)
            rows.append(row)
        lines += ["", f"### {title}", ""]
        lines += _table(["method", "type", *(f"{b} bits" for b in bits)], rows)
    return lines


def _costs(ok: list[dict]) -> list[str]:
    kinds = _method_kinds(ok)
    bits = sorted({int(r["bits"]) for r in ok})
    ref = reference_bits(bits)
    at_ref = [r for r in ok if int(r["bits"]) == ref]
    if not at_ref:
        return []
    columns = [c for c in COST_COLUMNS if any(_get(r, c[0]) is not None for r in at_ref)]
    ks = sorted({_get(r, "times.topk_k") for r in at_ref if _get(r, "times.topk_k") is not None})
    radii = sorted({_get(r, "times.radius") for r in at_ref if _get(r, "times.radius") is not None})
    scopes = sorted({_get(r, "memory.rss_scope") or "process" for r in at_ref})
    rows = []
    for m in _order(kinds):
        mine = [r for r in at_ref if r["method"] == m]
        if not mine:
            continue
        row = [m, kinds[m]]
        for col in columns:
            key, _, fmt = col[:3]
            scale = col[3] if len(col) > 3 else 1.0
            vals = _values(mine, key).get((m, ref), [])
            row.append(_fmt(_mean_std(vals)[0] * scale, fmt) if vals else "—")
        rows.append(row)
    lines = [
        "",
        f"### Cost at {ref} bits",
        "",
        "Mean over seeds. Epochs: training epochs a deep cell ran under the early-stopping rule "
        "on held-out `val/mAP` (best epoch: the checkpoint tested, counted from 0; epoch cap: "
        "the profile's `max_epochs`). Train: wall time of `fit` (validation included) or of the baseline's "
        "fit; encode: database items per second; query: ms per query to encode it and take its "
        f"top-{_join(ks)} from a `flat` Faiss binary index; radius: Hamming-ball (r = "
        f"{_join(radii)}) queries per second; peak RSS per {_join(scopes)} "
        "(`getrusage` maximum resident set).",
        "",
    ]
    return lines + _table(["method", "type", *(c[1] for c in columns)], rows)


def _compute_by_method(everything: list[dict]) -> list[str]:
    """Summed wall time per method over all its cells (ok and failed)."""
    per: dict[str, list[float]] = defaultdict(list)
    for r in everything:
        per[str(r["method"])].append(float(_get(r, "times.total_s") or 0.0))
    if not per:
        return []
    kinds = {str(r["method"]): str(r.get("kind", "?")) for r in everything}
    rows = [
        [m, kinds[m], str(len(t)), _minutes(sum(t)), f"{sum(t) / len(t):,.0f} s"]
        for m, t in sorted(per.items(), key=lambda kv: (kinds[kv[0]] != "deep", kv[0]))
    ]
    total = sum(sum(t) for t in per.values())
    return [
        "",
        "### Compute per method",
        "",
        f"Summed wall time of every recorded cell (all code lengths and seeds): {_minutes(total)}.",
        "",
        *_table(["method", "kind", "cells", "summed wall time", "mean per cell"], rows),
    ]


def _failed(failed: list[dict]) -> list[str]:
    if not failed:
        return []
    rows = []
    for r in sorted(failed, key=lambda r: (r["method"], int(r["bits"]), int(r["seed"]))):
        error = str(r.get("error") or "unknown error").splitlines()[0].replace("|", "\\|")
        if len(error) > 160:
            error = error[:157] + "..."
        rows.append([f"{r['method']} / {r['bits']} bits / seed {r['seed']}", error])
    return ["", "### Failed cells", ""] + _table(["cell", "error"], rows)
