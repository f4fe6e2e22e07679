"""The seed papers' claims, read from ``benchmarks/claims.yaml``, and the leaderboard's claims table.

A claim compares two groups of methods on one metric (:class:`Claim`); the claims are data, so
adding a method or a claim edits the YAML file only (its header and ``docs/bench.md`` give the
format). :func:`load_claims` validates a file and expands the symbolic groups
(:data:`SYMBOLIC_GROUPS`); :func:`judge` judges a claim on the ok records of one benchmark
per code length with :mod:`hashbench.bench.verdicts`, and :func:`claims_section` renders the table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from hashbench.bench.plots import map_key
from hashbench.bench.tables import _signed, _table, reached_cap
from hashbench.bench.verdicts import LengthVerdict, judge_claim, judge_length


@dataclass(frozen=True)
class Claim:
    """A claim of a seed paper, checked on the records as ``a`` against ``b``.

    The claim is judged per code length (``bits``, or every length either side has records for),
    then as a whole, on the records' per-query values (:func:`judge`; ``docs/protocol.md``,
    "Judging a claim"): at a length the difference ``min(mean of each method in a) - max(mean of
    each method in b)`` (the worst of ``a`` against the best of ``b``) with a 95% paired-bootstrap
    interval, compared with ``min_diff``. Never an average over code lengths.

    Args:
        source: which paper makes it.
        statement: the claim in words.
        a: the methods claimed better.
        b: the methods claimed worse.
        metric: ``mAP`` (the preset's depth) or a metric key (``P@500``, ``mAP@H<=2``...).
        bits: judge at these code lengths (``None``: every length either side has records for).
        min_diff: the difference the claim states at least (``0``: "beats").
        max_diff: the stated upper end, when the claim gives a range.
    """

    source: str
    statement: str
    a: tuple[str, ...]
    b: tuple[str, ...]
    metric: str = "mAP"
    bits: tuple[int, ...] | None = None
    min_diff: float = 0.0
    max_diff: float | None = None


class ClaimsError(ValueError):
    """A claims file that cannot be read: one line naming the file and the bad entry."""


def _shallow_baselines() -> set[str]:
    """The shallow baselines proper: not those built on a deep method's network (``ws_ksh`` needs
    ``wsdh``'s stage 1, marked by an ``input_features`` hook), which their own claims cover."""
    from hashbench.baselines import BASELINES, builds_on_deep_method

    return {k for k in BASELINES if not builds_on_deep_method(k)}


def _supervised_baselines() -> tuple[str, ...]:
    from hashbench.baselines import SUPERVISED

    return tuple(sorted(SUPERVISED & _shallow_baselines()))


def _unsupervised_baselines() -> tuple[str, ...]:
    from hashbench.baselines import SUPERVISED

    return tuple(sorted(_shallow_baselines() - SUPERVISED))


#: Symbolic groups a claim may name instead of method keys, expanded (sorted) from the registries.
SYMBOLIC_GROUPS: dict[str, Callable[[], tuple[str, ...]]] = {
    "@supervised_baselines": _supervised_baselines,
    "@unsupervised_baselines": _unsupervised_baselines,
}

_REQUIRED = ("source", "statement", "a", "b")
_KEYS = tuple(f.name for f in fields(Claim))


def default_claims_file() -> Path:
    """``benchmarks/claims.yaml`` of the repository holding the ``hashbench`` package."""
    import hashbench

    return Path(hashbench.__file__).resolve().parents[1] / "benchmarks" / "claims.yaml"


def load_claims(path: str | os.PathLike) -> tuple[Claim, ...]:
    """The claims of a YAML file, in the file's order (an empty file: none).

    Raises:
        FileNotFoundError: no such file.
        ClaimsError: bad YAML, or an entry with an unknown key, a missing field or a bad value; the
            one-line message names the file and the entry.
    """
    import yaml

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ClaimsError(f"{path}: not valid YAML{_yaml_problem(e)}") from None
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ClaimsError(
            f"{path}: expected a list of claims (one mapping per claim), got {type(data).__name__}"
        )
    return tuple(_claim(path, i, entry) for i, entry in enumerate(data, start=1))


def _yaml_problem(error: Exception) -> str:
    """`` at line L, column C: <problem> (<context>)`` of a YAML error, on one line."""
    mark = getattr(error, "problem_mark", None)
    where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    text = problem + (f" ({context})" if context else "")
    return f"{where}: {' '.join(text.split())}"


def _claim(path: Path, index: int, entry: Any) -> Claim:
    where = f"{path}: claim {index}"
    if not isinstance(entry, dict):
        raise ClaimsError(f"{where}: expected a mapping of {', '.join(_KEYS)}, got {entry!r}")
    if isinstance(entry.get("statement"), str):
        where += f" ({entry['statement']!r})"

    def bad(problem: str) -> ClaimsError:
        return ClaimsError(f"{where}: {problem}")

    unknown = [str(k) for k in entry if k not in _KEYS]
    if unknown:
        raise bad(f"unknown key {', '.join(map(repr, unknown))} (allowed: {', '.join(_KEYS)})")
    missing = [k for k in _REQUIRED if entry.get(k) is None]
    if missing:
        raise bad(f"missing field {', '.join(map(repr, missing))}")
    for key in ("source", "statement", "metric"):
        if key in entry and not (isinstance(entry[key], str) and entry[key].strip()):
            raise bad(f"{key!r} must be a non-empty string, got {entry[key]!r}")
    groups = {side: _group(entry[side], bad, side) for side in ("a", "b")}
    bits = entry.get("bits", "all")
    if bits == "all" or bits is None:
        bits = None
    elif isinstance(bits, list) and bits and all(_is_int(b) and b > 0 for b in bits):
        bits = tuple(bits)
    else:
        raise bad(f"'bits' must be 'all' or a list of positive code lengths, got {bits!r}")
    diffs = {}
    for key in ("min_diff", "max_diff"):
        value = entry.get(key)
        if value is not None and not (_is_number(value) and math.isfinite(value)):
            raise bad(f"{key!r} must be a number, got {value!r}")
        diffs[key] = None if value is None else float(value)
    min_diff = 0.0 if diffs["min_diff"] is None else diffs["min_diff"]
    if diffs["max_diff"] is not None and diffs["max_diff"] < min_diff:
        raise bad(f"'max_diff' ({diffs['max_diff']}) is below 'min_diff' ({min_diff})")
    return Claim(
        source=entry["source"],
        statement=entry["statement"],
        a=groups["a"],
        b=groups["b"],
        metric=entry.get("metric", "mAP"),
        bits=bits,
        min_diff=min_diff,
        max_diff=diffs["max_diff"],
    )


def _group(value: Any, bad: Callable[[str], ClaimsError], side: str) -> tuple[str, ...]:
    """A method key, a list of them, or a symbolic group: the method keys, in order."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise bad(f"{side!r} must be a method key or a non-empty list of them, got {value!r}")
    out: list[str] = []
    for item in items:
        if not (isinstance(item, str) and item.strip()):
            raise bad(f"{side!r} holds {item!r}, not a method key")
        if item.startswith("@"):
            if item not in SYMBOLIC_GROUPS:
                raise bad(
                    f"unknown group {item!r} in {side!r} (known: {', '.join(SYMBOLIC_GROUPS)})"
                )
            out += SYMBOLIC_GROUPS[item]()
        else:
            out.append(item)
    return tuple(out)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def default_claims() -> tuple[Claim, ...]:
    """The repository's claims (:func:`default_claims_file`); none when the file is absent."""
    path = default_claims_file()
    return load_claims(path) if path.is_file() else ()


def resolve_claims(
    claims_file: str | os.PathLike | Sequence[Claim] | None = None,
) -> tuple[Claim, ...]:
    """``None``: the repository's claims (none without the file); a path: that file's claims
    (which must exist); a sequence of :class:`Claim`: those."""
    if claims_file is None:
        return default_claims()
    if isinstance(claims_file, str | os.PathLike):
        return load_claims(claims_file)
    return tuple(claims_file)


def __getattr__(name: str) -> Any:
    if name == "CLAIMS":  # the former constant: the repository's claims, read on access
        return default_claims()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- the leaderboard section ------------------------------------------------------------------------
#: Resamples of the bootstrap at each code length, and its fixed seed (the table is reproducible).
N_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
#: The mark of an interval that covers queries only (a side has one seed at that length).
QUERIES_ONLY = "†"


@dataclass(frozen=True)
class LengthResult:
    """A claim at one code length: the verdict of :func:`~hashbench.bench.verdicts.judge_length`
    (``not measured`` when a side has no usable values, with ``why``), whether its interval covers
    queries only (a side with one seed), and whether it lies above a stated range."""

    verdict: LengthVerdict
    why: str = ""
    queries_only: bool = False
    more_than_stated: bool = False


@dataclass(frozen=True)
class ClaimResult:
    """A claim judged on one benchmark's records: per code length, then as a whole."""

    claim: Claim
    metric: str
    lengths: tuple[LengthResult, ...]
    verdict: str


def _metric_key(ok: list[dict], metric: str) -> str:
    """The record metric key a claim's ``metric`` names (``mAP``: the preset's ``mAP@k``)."""
    if metric != "mAP":
        return metric
    return next((k for k in map(map_key, ok) if k), "mAP")


def _claim_lengths(ok: list[dict], claim: Claim) -> list[int]:
    """The claim's code lengths, or every length either side has records for."""
    if claim.bits is not None:
        return sorted(set(claim.bits))
    methods = set(claim.a) | set(claim.b)
    return sorted({int(r["bits"]) for r in ok if r["method"] in methods})


class _PerQuery:
    """(method, bits) -> the ``(n_seeds, n_queries)`` per-query values of one metric, read once."""

    def __init__(self, ok: list[dict]) -> None:
        self.records: dict[tuple[str, int], list[dict]] = {}
        for r in sorted(ok, key=lambda r: (r["method"], int(r["bits"]), int(r["seed"]))):
            self.records.setdefault((r["method"], int(r["bits"])), []).append(r)
        self._cache: dict[tuple[str, int, str], np.ndarray | str] = {}

    def get(self, method: str, bits: int, key: str) -> np.ndarray | str:
        """The values, or why there are none: ``no records``, ``no per-query values`` or
        ``per-query values of unequal length`` (seeds that answered different query sets)."""
        if (method, bits, key) not in self._cache:
            self._cache[(method, bits, key)] = self._read(method, bits, key)
        return self._cache[(method, bits, key)]

    def _read(self, method: str, bits: int, key: str) -> np.ndarray | str:
        records = self.records.get((method, bits))
        if not records:
            return "no records"
        rows = [(r.get("per_query") or {}).get(key) for r in records]
        rows = [np.asarray(v, dtype=np.float64) for v in rows if v is not None and len(v)]
        if not rows:
            return "no per-query values"
        if len({len(v) for v in rows}) != 1:
            return "per-query values of unequal length"
        return np.stack(rows)


def judge(ok: list[dict], claim: Claim, per_query: _PerQuery | None = None) -> ClaimResult:
    """Judge ``claim`` on one benchmark's ok records as ``docs/protocol.md`` ("Judging a claim")
    says: per code length, a 95% paired-bootstrap interval (:mod:`hashbench.bench.verdicts`) on the
    records' ``per_query`` values, then the claim from the per-length verdicts."""
    per_query = per_query or _PerQuery(ok)
    key = _metric_key(ok, claim.metric)
    methods = list(dict.fromkeys([*claim.a, *claim.b]))
    out = []
    for bits in _claim_lengths(ok, claim):
        runs, missing = {}, {}
        for m in methods:
            values = per_query.get(m, bits, key)
            if isinstance(values, str):
                missing[m] = values
            else:
                runs[m] = values
        seeds = {m: int(runs[m].shape[0]) if m in runs else 0 for m in methods}
        why = ""
        if missing:
            reasons = {}
            for m, reason in missing.items():
                reasons.setdefault(reason, []).append(m)
            why = "; ".join(f"{reason}: {_names(ms)}" for reason, ms in reasons.items())
        elif len({v.shape[1] for v in runs.values()}) != 1:
            why = "different query sets"
        if why:
            verdict = LengthVerdict(bits, None, None, None, "not measured", seeds)
            out.append(LengthResult(verdict, why=why))
            continue
        verdict = judge_length(
            bits,
            runs,
            claim.a,
            claim.b,
            claim.min_diff,
            n_resamples=N_RESAMPLES,
            seed=BOOTSTRAP_SEED,
        )
        above = (
            claim.max_diff is not None and verdict.low is not None and verdict.low > claim.max_diff
        )
        out.append(
            LengthResult(
                verdict,
                queries_only=min(seeds.values()) == 1,
                more_than_stated=above,
            )
        )
    verdict = judge_claim([r.verdict for r in out])
    measured = [r for r in out if r.verdict.verdict != "not measured"]
    if verdict == "holds" and measured and all(r.more_than_stated for r in measured):
        verdict = "holds (more than stated)"
    return ClaimResult(claim, key, tuple(out), verdict)


def _names(methods: Sequence[str]) -> str:
    if len(methods) <= 4:
        return ", ".join(methods)
    return f"{', '.join(methods[:3])} and {len(methods) - 3} more"


def _length_cell(r: LengthResult) -> str:
    v = r.verdict
    if v.verdict == "not measured":
        return f"{v.bits}: not measured" + (
            f" ({r.why})" if r.why and r.why != "no records" else ""
        )
    mark = QUERIES_ONLY if r.queries_only else ""
    text = f"{v.bits}: {_signed(v.diff)} [{_signed(v.low)}, {_signed(v.high)}]{mark} {v.verdict}"
    return text + (" (more than stated)" if r.more_than_stated else "")


def _stated(claim: Claim) -> str:
    """The difference a claim states, when it states one (``, by +0.020 to +0.060``)."""
    if claim.max_diff is not None:
        return f", by {_signed(claim.min_diff)} to {_signed(claim.max_diff)}"
    return f", by at least {_signed(claim.min_diff)}" if claim.min_diff else ""


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _epochs(ok: list[dict], methods: Sequence[str], lengths: Sequence[int]) -> str:
    """Per method of one side, over its records at the claim's lengths: mean epochs run / mean
    best epoch (``training``; older records: ``times.epochs`` / ``?``), how many runs stopped at
    the epoch cap rather than early; ``-`` for the shallow baselines, grouped."""
    lengths = set(lengths)
    groups: dict[str, list[str]] = {}
    for m in methods:
        records = [r for r in ok if r["method"] == m and int(r["bits"]) in lengths]
        groups.setdefault(_method_epochs(records), []).append(m)
    return ", ".join(f"{'/'.join(ms)} {text}" for text, ms in groups.items())


def _method_epochs(records: list[dict]) -> str:
    if not records:
        return "no records"
    if all(r.get("kind") == "baseline" for r in records):
        return "-"
    run, best, capped, caps = [], [], 0, set()
    for r in records:
        t = r.get("training") or {}
        n = t.get("epochs_run", (r.get("times") or {}).get("epochs"))
        if isinstance(n, int | float):
            run.append(float(n))
        if isinstance(t.get("best_epoch"), int | float):
            best.append(float(t["best_epoch"]))
        if isinstance(t.get("max_epochs"), int | float):
            caps.add(int(t["max_epochs"]))
            capped += isinstance(n, int | float) and reached_cap({**t, "epochs_run": n})
    text = f"{_number(sum(run) / len(run)) if run else '?'}"
    text += f" / {_number(sum(best) / len(best)) if best else '?'}"
    notes = [f"cap {'/'.join(str(c) for c in sorted(caps))}"] if caps else []
    notes += [f"at cap {capped}/{len(records)}"] if capped else []
    return text + (f" ({', '.join(notes)})" if notes else "")


def _inputs(record: dict) -> str:
    """What a cell rests on that may differ from its paper: the backbone and its weights, the
    baselines' input features, a kNN graph's features, a reduced setting, generated tags."""
    config = record.get("config") or {}
    parts = []
    if record.get("kind") == "deep":
        args = ((config.get("fit") or {}).get("model") or {}).get("init_args") or {}
        if "backbone" in args:
            parts.append(f"{args['backbone']} ({_weights(args.get('pretrained', False))})")
        if "knn_features" in args:
            parts.append(f"kNN on {args['knn_features']}")
        if args.get("setting") not in (None, "paper"):
            parts.append(f"{args['setting']} setting")
    elif "features" in config:
        pretrained = config.get("pretrained")
        parts.append(
            str(config["features"]) + ("" if not pretrained else f" ({_weights(pretrained)})")
        )
    tags = record.get("tag_source")
    if tags and str(tags) != "user":
        parts.append(f"tags: {tags}")
    return ", ".join(parts)


def _weights(pretrained: Any) -> str:
    if pretrained is True:
        return "ImageNet weights"
    return "random init" if not pretrained else str(pretrained)


def _substitutes(ok: list[dict], methods: Sequence[str], lengths: Sequence[int]) -> str:
    """The inputs of both sides (:func:`_inputs`), methods grouped by what they rest on."""
    lengths = set(lengths)
    groups: dict[str, list[str]] = {}
    for m in methods:
        seen = sorted(
            {_inputs(r) for r in ok if r["method"] == m and int(r["bits"]) in lengths} - {""}
        )
        if seen:
            groups.setdefault(" / ".join(seen), []).append(m)
    if len(groups) == 1 and sum(map(len, groups.values())) == len(methods):
        return next(iter(groups))
    return "; ".join(f"{text}: {', '.join(ms)}" for text, ms in groups.items()) or "-"


#: The rule, in words, above the table.
RULE = [
    "Each claim is judged at each code length it names (or, without a list, at every length "
    "either side has records for), never on an average over lengths. At a length, the difference "
    "is the worst method of the first group minus the best of the second (each method's metric "
    "averaged over its seeds and the test queries), shown with a 95% interval from a paired "
    f"bootstrap ({N_RESAMPLES:,} resamples, fixed seed): each resample redraws the test queries, "
    "the same draw for every method, and each method's seeds, from the records' per-query "
    "values.",
    "",
    "- At a length: **holds** when the interval's lower end is above the difference the claim "
    'states (0 for "beats"), **fails** when its upper end is below it, **inconclusive** when it '
    "contains it, **not measured** when a side has no records or no per-query values there; "
    '"more than stated" when the lower end is above the upper end of a stated range.',
    "- The claim: **holds** when it holds at every length, **fails** when it fails at any, "
    "**mixed** when it holds at some and fails at none, **inconclusive** when it holds at none "
    "and fails at none, **not measured** when no length is measured.",
    f"- {QUERIES_ONLY} a side has one seed at that length: the interval covers query sampling "
    "only, not the spread over seeds.",
    "- Epochs: per deep method, the mean epochs run / mean best epoch (validation mAP) over its "
    'runs at those lengths, "cap" its epoch cap, "at cap" the runs that reached it without '
    "stopping early; "
    "`-` for the shallow baselines. Inputs: what each side rests on (backbone and its weights, the "
    "baselines' features, generated tags, reduced settings), where it may differ from the paper.",
]


def claims_section(ok: list[dict], claims: Sequence[Claim], note: str = "") -> list[str]:
    """The ``### Claims`` lines of one benchmark's ok records (nothing when there is no claim);
    ``note``, when given, is a paragraph under the heading."""
    if not claims:
        return []
    per_query = _PerQuery(ok)
    rows = []
    for claim in claims:
        result = judge(ok, claim, per_query)
        lengths = [r.verdict.bits for r in result.lengths]
        rows.append(
            [
                claim.source,
                claim.statement,
                f"`{result.metric}`" + _stated(claim),
                " vs ".join("/".join(side) for side in (claim.a, claim.b)),
                "<br>".join(map(_length_cell, result.lengths)) or "no records",
                f"**{result.verdict}**",
                _epochs(ok, claim.a, lengths),
                _epochs(ok, claim.b, lengths),
                _substitutes(ok, list(dict.fromkeys([*claim.a, *claim.b])), lengths),
            ]
        )
    header = ["source", "claim", "metric", "methods", "per code length", "verdict"]
    header += ["epochs A (run / best)", "epochs B (run / best)", "inputs"]
    return ["", "### Claims", "", *([note, ""] if note else []), *RULE, "", *_table(header, rows)]
