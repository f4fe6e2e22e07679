"""The leaderboard's claims table judges each claim per code length with a paired bootstrap
(``hashbench.bench.claims.claims_section`` on ``hashbench.bench.verdicts``).

Records are built here with per-query values of a known shift, so every expected verdict follows
from the construction: a shift of +0.1 with query noise of 0.05 over 200 queries is far outside any
95% interval around 0; a shift that is exactly 0 on average, with symmetric noise, is not.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from hashbench.bench.claims import QUERIES_ONLY, Claim, claims_section

NQ = 200
#: The queries' own difficulty, shared by every method (the comparison is paired).
BASE = np.random.default_rng(123).uniform(0.2, 0.6, NQ)


def _cell(method: str, bits: int, seed: int, values, kind: str = "deep", **extra) -> dict:
    values = np.asarray(values, dtype=float)
    record = {
        "benchmark": "toy",
        "status": "ok",
        "method": method,
        "kind": kind,
        "bits": bits,
        "seed": seed,
        "metrics": {"mAP@all": float(values.mean())},
        "per_query": {"mAP@all": values.tolist()},
    }
    return record | extra


def _shifted(method: str, bits: int, shift: float, seeds=(0, 1, 2), **extra) -> list[dict]:
    """Runs of ``method`` at ``bits``: the shared query difficulty + ``shift`` + a small seed
    offset (mean 0 over the three seeds) + query noise (sd 0.05, independent per run)."""
    out = []
    for s in seeds:
        rng = np.random.default_rng([bits, s, sum(map(ord, method))])
        offset = 0.004 * (s - 1)
        out.append(_cell(method, bits, s, BASE + shift + offset + rng.normal(0, 0.05, NQ), **extra))
    return out


def _rows(ok: list[dict], *claims: Claim) -> list[dict[str, str]]:
    lines = claims_section(ok, claims)
    table = [line for line in lines if line.startswith("| ")]
    header = [c.strip() for c in table[0].strip("|").split(" | ")]
    return [
        dict(zip(header, (c.strip() for c in line.strip().strip("|").split(" | ")), strict=True))
        for line in table[2:]
    ]


def _lengths(row: dict[str, str]) -> dict[int, str]:
    """``bits -> the text after "<bits>: "`` of the per-length cell."""
    out = {}
    for part in row["per code length"].split("<br>"):
        bits, text = part.split(": ", 1)
        out[int(bits)] = text
    return out


def _verdict(row: dict[str, str]) -> str:
    return row["verdict"].strip("*")


def _interval(text: str) -> tuple[float, float, float]:
    diff, rest = text.split(" [", 1)
    low, high = rest.split("]", 1)[0].split(", ")
    return float(diff), float(low), float(high)


AB = Claim("paper", "a beats b", ("a",), ("b",), bits=(16, 32, 64))


def test_a_win_at_every_length_holds() -> None:
    ok = [r for b in (16, 32, 64) for r in _shifted("a", b, 0.1) + _shifted("b", b, 0.0)]
    (row,) = _rows(ok, AB)
    lengths = _lengths(row)
    assert list(lengths) == [16, 32, 64]
    for text in lengths.values():
        diff, low, high = _interval(text)
        assert 0.09 < diff < 0.11 and low <= diff <= high and low > 0.05
        assert text.endswith(" holds") and QUERIES_ONLY not in text
    assert _verdict(row) == "holds"
    assert row["metric"] == "`mAP@all`" and row["methods"] == "a vs b"


def test_one_clear_loss_fails_although_the_mean_over_lengths_is_a_win() -> None:
    ok = [r for b in (16, 32) for r in _shifted("a", b, 0.3) + _shifted("b", b, 0.0)]
    ok += _shifted("a", 64, -0.1) + _shifted("b", 64, 0.0)  # mean over lengths: about +0.17
    (row,) = _rows(ok, AB)
    lengths = _lengths(row)
    assert lengths[16].endswith(" holds") and lengths[32].endswith(" holds")
    diff, low, high = _interval(lengths[64])
    assert -0.11 < diff < -0.09 and high < 0 and lengths[64].endswith(" fails")
    assert _verdict(row) == "fails"


def _tied(method: str, bits: int, sign: float) -> list[dict]:
    """``b``'s runs plus or minus 0.3 on alternate queries: the same mean, a wide spread."""
    flip = sign * 0.3 * np.where(np.arange(NQ) % 2 == 0, 1.0, -1.0)
    return [
        _cell(method, bits, r["seed"], np.asarray(r["per_query"]["mAP@all"]) + flip)
        for r in _shifted("b", bits, 0.0)
    ]


def test_overlapping_is_inconclusive_and_a_partial_win_is_mixed() -> None:
    ok = [r for b in (16, 32, 64) for r in _tied("a", b, 1.0) + _shifted("b", b, 0.0)]
    (row,) = _rows(ok, AB)
    for text in _lengths(row).values():
        diff, low, high = _interval(text)
        assert abs(diff) < 1e-9 and low < 0 < high and text.endswith(" inconclusive")
    assert _verdict(row) == "inconclusive"
    ok = [r for r in ok if not (r["method"] == "a" and r["bits"] == 16)] + _shifted("a", 16, 0.2)
    (row,) = _rows(ok, AB)
    assert _lengths(row)[16].endswith(" holds") and _verdict(row) == "mixed"


def test_a_missing_length_is_shown_not_measured_not_dropped() -> None:
    ok = [r for b in (16, 32, 64) for r in _shifted("a", b, 0.1)]
    ok += [r for b in (16, 32) for r in _shifted("b", b, 0.0)]  # no b at 64
    (row,) = _rows(ok, AB)
    lengths = _lengths(row)
    assert list(lengths) == [16, 32, 64]
    assert lengths[64] == "not measured (no records: b)"
    assert lengths[16].endswith(" holds") and lengths[32].endswith(" holds")
    assert _verdict(row) == "mixed"  # it holds at every length *measured*, not at every length
    # a length the benchmark never ran is listed too
    (row,) = _rows(ok, Claim("paper", "a beats b", ("a",), ("b",), bits=(8, 16)))
    assert _lengths(row)[8] == "not measured (no records: a, b)"
    # without a list of lengths: every length either side has records for
    (row,) = _rows(ok, Claim("paper", "a beats b", ("a",), ("b",)))
    assert list(_lengths(row)) == [16, 32, 64] and _lengths(row)[64].startswith("not measured")
    (row,) = _rows(ok, Claim("paper", "c beats b", ("c",), ("b",), bits=(16,)))
    assert _verdict(row) == "not measured"


def test_one_seed_on_a_side_is_marked_queries_only() -> None:
    ok = _shifted("a", 16, 0.1, seeds=(0,)) + _shifted("b", 16, 0.0)
    ok += _shifted("a", 32, 0.1) + _shifted("b", 32, 0.0)
    lines = claims_section(ok, [AB])
    (row,) = _rows(ok, AB)
    lengths = _lengths(row)
    assert f"]{QUERIES_ONLY} holds" in lengths[16]
    assert QUERIES_ONLY not in lengths[32]
    footnote = [line for line in lines if line.startswith(f"- {QUERIES_ONLY}")]
    assert footnote and "query sampling only" in footnote[0]


def test_no_per_query_values_no_interval() -> None:
    ok = [r for b in (16, 32, 64) for r in _shifted("a", b, 0.1) + _shifted("b", b, 0.0)]
    for r in ok:
        if r["method"] == "a" and r["bits"] == 32:
            del r["per_query"]  # an older record: the mean alone
    (row,) = _rows(ok, AB)
    lengths = _lengths(row)
    assert lengths[32] == "not measured (no per-query values: a)"
    assert "[" not in lengths[32]
    assert _verdict(row) == "mixed"


def test_stated_difference_and_range() -> None:
    ok = [r for b in (16, 32) for r in _shifted("a", b, 0.1) + _shifted("b", b, 0.0)]
    ranged = Claim("p", "a beats b by 2-6%", ("a",), ("b",), min_diff=0.02, max_diff=0.06)
    (row,) = _rows(ok, ranged)
    assert row["metric"] == "`mAP@all`, by +0.020 to +0.060"
    assert all(t.endswith(" holds (more than stated)") for t in _lengths(row).values())
    assert _verdict(row) == "holds (more than stated)"
    within = Claim("p", "a beats b by 5-20%", ("a",), ("b",), min_diff=0.05, max_diff=0.2)
    (row,) = _rows(ok, within)
    assert _verdict(row) == "holds" and "more than stated" not in row["per code length"]
    too_much = Claim("p", "a beats b by 0.2", ("a",), ("b",), min_diff=0.2)
    (row,) = _rows(ok, too_much)
    assert row["metric"] == "`mAP@all`, by at least +0.200" and _verdict(row) == "fails"


def test_groups_worst_of_a_against_best_of_b() -> None:
    ok = [r for r in _shifted("a1", 16, 0.3) + _shifted("a2", 16, 0.1)]
    ok += _shifted("b1", 16, 0.0) + _shifted("b2", 16, -0.2)
    (row,) = _rows(ok, Claim("p", "as beat bs", ("a1", "a2"), ("b1", "b2"), bits=(16,)))
    diff, _, _ = _interval(_lengths(row)[16])
    assert 0.09 < diff < 0.11  # a2 (+0.1) against b1 (0.0)
    assert row["methods"] == "a1/a2 vs b1/b2"


def test_epochs_and_inputs_of_both_sides() -> None:
    deep_config = {"fit": {"model": {"init_args": {"backbone": "small_cnn", "pretrained": False}}}}
    ok = []
    for b in (16, 32):
        for s, r in enumerate(_shifted("a", b, 0.1)):
            r["training"] = {
                "epochs_run": 10 + s,
                "best_epoch": 7 + s,
                "max_epochs": 12,
                "stopped_early": True,  # also for the run that reached the cap (rule fired last)
            }
            r["config"] = deep_config
            r["tag_source"] = "synthetic (label-derived)"
            ok.append(r)
        ok += _shifted("b", b, 0.0, kind="baseline", config={"features": "pixels"})
        ok += _shifted("c", b, -0.1, kind="baseline", config={"features": "pixels"})
    (row,) = _rows(ok, Claim("p", "a beats b, c", ("a",), ("b", "c"), bits=(16, 32)))
    # a: epochs 10, 11, 12 (mean 11), best 7, 8, 9 (mean 8); the third run reached the cap
    assert row["epochs A (run / best)"] == "a 11 / 8 (cap 12, at cap 2/6)"
    assert row["epochs B (run / best)"] == "b/c -"
    assert row["inputs"] == (
        "small_cnn (random init), tags: synthetic (label-derived): a; pixels: b, c"
    )
    # older records: the epoch count of the times, no best epoch
    old = [r | {"training": None, "times": {"epochs": 4}} for r in ok if r["method"] == "a"]
    old += [r for r in ok if r["method"] != "a"]
    (row,) = _rows(old, Claim("p", "a beats b", ("a",), ("b",), bits=(16,)))
    assert row["epochs A (run / best)"] == "a 4 / ?"


def test_rule_is_explained_and_never_an_average() -> None:
    lines = claims_section([], [AB])
    text = "\n".join(lines)
    assert "### Claims" in text and "paired" in text and "95%" in text
    for word in ("**holds**", "**fails**", "**mixed**", "**inconclusive**", "**not measured**"):
        assert word in text
    assert "never on an average over lengths" in text
    assert claims_section([], []) == []


def test_deterministic_and_fast_at_the_sweeps_size() -> None:
    """A sweep's size (21 methods x 5 lengths x 3 seeds x 1,000 queries, 15 claims of up to 21
    methods): the same lines on every call; the bound on time is loose (a shared 2-core box)."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.6, 1000)
    methods = [f"m{i:02d}" for i in range(21)]
    ok = [
        _cell(m, b, s, base + 0.01 * i + rng.normal(0, 0.1, 1000))
        for i, m in enumerate(methods)
        for b in (8, 16, 32, 48, 64)
        for s in (0, 1, 2)
    ]
    claims = [Claim("p", f"claim {i}", (methods[i],), tuple(methods[:i])) for i in range(1, 14)]
    claims += [Claim("p", "all", (methods[-1],), tuple(methods[:-1]))] * 2
    start = time.perf_counter()
    first = claims_section(ok, claims)
    elapsed = time.perf_counter() - start
    assert first == claims_section(ok, claims)
    assert elapsed < 60, f"claims section took {elapsed:.1f} s"


@pytest.mark.parametrize("seeds", [(0,), (0, 1, 2)])
def test_identical_methods_give_a_zero_width_interval_on_queries(seeds) -> None:
    """Paired over queries: two methods with the same per-query pattern, shifted by a constant,
    give that constant as the whole interval when each has one seed."""
    ok = [_cell("a", 16, s, BASE + 0.05) for s in seeds] + [_cell("b", 16, 0, BASE)]
    (row,) = _rows(ok, Claim("p", "a beats b", ("a",), ("b",), bits=(16,)))
    diff, low, high = _interval(_lengths(row)[16])
    assert (
        diff == pytest.approx(0.05) and low == pytest.approx(0.05) and high == pytest.approx(0.05)
    )
    assert QUERIES_ONLY in _lengths(row)[16]  # b has one seed
