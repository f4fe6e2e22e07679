"""The seed papers' claims, read from ``benchmarks/claims.yaml``, and the leaderboard's claims table.

A claim compares two groups of methods on one metric (:class:`Claim`); the claims are data, so
adding a method or a claim edits the YAML file only (its header and ``docs/bench.md`` give the
format). :func:`load_claims` validates a file and expands the symbolic groups
(:data:`SYMBOLIC_GROUPS`); :func:`claims_section` renders the table from the ok records of one
benchmark.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hashbench.bench.plots import map_key
from hashbench.bench.tables import _mean_std, _signed, _table, _values


@dataclass(frozen=True)
class Claim:
    """A claim of a seed paper, checked on the records as ``a`` against ``b``.

    The measured difference at a code length is ``min(mean of each method in a) - max(mean of each
    method in b)`` (the worst of ``a`` against the best of ``b``), over the code lengths where both
    sides have records (or only ``bits``); the claim holds when the mean of those differences is
    above ``min_diff``. A claim whose methods have no records is "not measured".

    Args:
        source: which paper makes it.
        statement: the claim in words.
        a: the methods claimed better.
        b: the methods claimed worse.
        metric: ``mAP`` (the preset's depth) or a metric key (``P@500``, ``mAP@H<=2``...).
        bits: restrict to these code lengths (``None``: every common one).
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
def claims_section(ok: list[dict], claims: Sequence[Claim]) -> list[str]:
    """The ``### Claims`` lines of one benchmark's ok records (nothing when there is no claim)."""
    if not claims:
        return []
    rows = []
    for claim in claims:
        values_a = _values(ok, claim.metric)
        per_bits = []
        bits = sorted({int(r["bits"]) for r in ok})
        for b in bits if claim.bits is None else [b for b in claim.bits if b in bits]:
            a = [_mean_std(values_a[(m, b)])[0] for m in claim.a if (m, b) in values_a]
            o = [_mean_std(values_a[(m, b)])[0] for m in claim.b if (m, b) in values_a]
            if a and o:
                per_bits.append((b, min(a) - max(o)))
        metric = (
            next((map_key(r) for r in ok if map_key(r)), "mAP")
            if claim.metric == "mAP"
            else claim.metric
        )
        if not per_bits:
            diff_text, held, detail = "—", "not measured", "—"
        else:
            mean_diff = math.fsum(d for _, d in per_bits) / len(per_bits)
            diff_text = _signed(mean_diff)
            wins = sum(d > claim.min_diff for _, d in per_bits)
            ok_claim = mean_diff > claim.min_diff
            held = "yes" if ok_claim else "no"
            if ok_claim and claim.max_diff is not None and mean_diff > claim.max_diff:
                held = "yes (more than stated)"
            detail = ", ".join(f"{b}: {_signed(d)}" for b, d in per_bits)
            detail += f" ({wins}/{len(per_bits)} code lengths)"
        rows.append(
            [
                claim.source,
                claim.statement,
                f"`{metric}`",
                " vs ".join("/".join(side) for side in (claim.a, claim.b)),
                diff_text,
                detail,
                held,
            ]
        )
    lines = [
        "",
        "### Claims",
        "",
        "Measured difference: the worst method of the first group minus the best of the second, "
        "averaged over the code lengths both have (per code length beside it); a claim holds when "
        'that mean exceeds the difference it states (0 for "beats").',
        "",
    ]
    return lines + _table(
        ["source", "claim", "metric", "methods", "difference", "per bits", "held"], rows
    )
