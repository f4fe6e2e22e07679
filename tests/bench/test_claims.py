"""The claims file (``benchmarks/claims.yaml``), its loader and the leaderboard's claims table."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hashbench.baselines import BASELINES, SUPERVISED
from hashbench.bench import claims as claims_mod
from hashbench.bench.claims import (
    SYMBOLIC_GROUPS,
    Claim,
    ClaimsError,
    default_claims_file,
    load_claims,
)
from hashbench.bench.leaderboard import render_markdown
from hashbench.methods import METHODS

from .test_bench_leaderboard import _record

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "benchmarks" / "claims.yaml"


def _claim_rows(md: str) -> dict[str, str]:
    """Claim statement -> its table row (the first benchmark's section)."""
    part = md.split("### Claims\n", 1)[1].split("\n###", 1)[0].split("\n## ", 1)[0]
    lines = [line for line in part.splitlines() if line.startswith("| ")][2:]  # header, ---
    return {line.split("|")[2].strip(): line for line in lines}


def _held(row: str) -> str:
    """The claim's verdict (the column after the per-length cells)."""
    return row.split(" | ")[5].strip("* ")


def _pq(record: dict) -> dict:
    """``record`` with per-query values of its metrics over 10 queries: the mean +-0.05 on
    alternate queries, the same pattern for every record (paired differences are constant)."""
    offsets = [0.05 if i % 2 == 0 else -0.05 for i in range(10)]
    record["per_query"] = {k: [v + o for o in offsets] for k, v in record["metrics"].items()}
    return record


# -- the shipped file -------------------------------------------------------------------------------
def test_shipped_claims_load_and_name_registered_methods() -> None:
    assert default_claims_file() == SHIPPED
    claims = load_claims(SHIPPED)
    assert len(claims) >= 8 and all(isinstance(c, Claim) for c in claims)
    variants = set()  # grid variants (ablations built on a registered method) may be named too
    for grid in sorted(SHIPPED.parent.glob("*.yaml")):
        if grid != SHIPPED:
            variants |= set((yaml.safe_load(grid.read_text()) or {}).get("variants") or {})
    known = set(METHODS) | set(BASELINES) | variants
    for claim in claims:
        for method in claim.a + claim.b:
            assert method in known, f"{claim.statement!r} names unregistered {method!r}"
    text = SHIPPED.read_text()
    for group in ("a", "b"):  # the symbolic groups it names are known ones
        for line in text.splitlines():
            if line.strip().startswith(f"{group}: ") and "@" in line:
                assert line.split(": ", 1)[1].strip().strip("\"'") in SYMBOLIC_GROUPS, line


def test_shipped_supervised_claim_expands_from_the_baseline_registry() -> None:
    claims = {c.statement: c for c in load_claims(SHIPPED)}
    sup = claims["supervised baselines beat unsupervised ones"]
    shallow = {k for k in BASELINES if k != "ws_ksh"}  # ws_ksh rests on wsdh: its own claim
    assert sup.a == tuple(sorted(SUPERVISED & shallow))
    assert sup.b == tuple(sorted(shallow - SUPERVISED))
    assert "ws_ksh" not in sup.a + sup.b
    assert claims["`dhih` beats every other method"].bits is None  # every length
    ws = claims["WS- pretraining improves DSH by 2-6% (Precision@500)"]
    assert (ws.metric, ws.min_diff, ws.max_diff, ws.bits) == ("P@500", 0.02, 0.06, (8, 16, 32, 64))
    pc = claims["PC-AEGAN and PC-WGAN beat DHN, KSH, SDH and ITQ-CCA (mAP@H<=2)"]
    assert pc.bits == (16, 32, 48, 64) and pc.a == ("pcaegan", "pcwgan")


def test_former_constant_still_importable() -> None:
    from hashbench.bench.leaderboard import CLAIMS

    assert CLAIMS == load_claims(SHIPPED)


# -- the table --------------------------------------------------------------------------------------
def test_claims_held_not_held_and_not_measured() -> None:
    records = []
    for b, (sup, unsup) in {16: (0.7, 0.5), 32: (0.72, 0.52)}.items():
        records += [_record("sdh", b, 0, sup), _record("ksh", b, 0, sup + 0.01)]
        records += [_record("itq_cca", b, 0, sup + 0.02)]
        for i, m in enumerate(["lsh", "itq", "pcah", "sh", "sph"]):
            records += [_record(m, b, 0, unsup - 0.02 * i)]
    records += [_record("dhih", 32, 0, 0.60, kind="deep")]  # below SDH (0.72) at 32 bits
    records += [
        _record("wsdh", 16, 0, 0.84 * 4, kind="deep"),
        _record("dsh", 16, 0, 0.80 * 4, kind="deep"),
    ]
    records = [_pq(r) for r in records]
    md = render_markdown(records, figures=False)
    claims = _claim_rows(md)
    assert len(claims) == len(load_claims(SHIPPED))
    sup_row = claims["supervised baselines beat unsupervised ones"]
    assert "itq_cca/ksh/sdh vs itq/lsh/pcah/sh/sph" in sup_row
    # one seed each: the interval covers the queries only, and every query moves by +0.200
    assert "16: +0.200 [+0.200, +0.200]† holds<br>32: +0.200 [+0.200, +0.200]† holds" in sup_row
    assert _held(sup_row) == "holds"
    dhih_row = claims["`dhih` beats every other method"]
    # every length is listed; at 16 bits dhih and 10 of its comparators have no records
    assert "16: not measured (no records: dhih, dpsh, dhn and 8 more)<br>32: " in dhih_row
    assert _held(dhih_row) == "not measured"  # dhih's comparators were not all run
    itq_row = claims["ITQ beats LSH and PCAH"]
    assert "16: -0.020 [-0.020, -0.020]† fails" in itq_row and _held(itq_row) == "fails"
    ws_row = claims["WS- pretraining improves DSH by 2-6% (Precision@500)"]
    assert "`P@500`, by +0.020 to +0.060" in ws_row
    assert "8: not measured (no records: wsdh, dsh)<br>16: +0.040 [+0.040, +0.040]† holds" in ws_row
    assert _held(ws_row) == "mixed"  # holds at 16 bits, not measured at 8, 32 and 64
    assert _held(claims["PC-AEGAN beats PC-WGAN (mAP@H<=2)"]) == "not measured"
    # records without per-query values (older ones): no interval is invented
    plain = render_markdown([{**r, "per_query": {}} for r in records], figures=False)
    sup_plain = _claim_rows(plain)["supervised baselines beat unsupervised ones"]
    assert "16: not measured (no per-query values: itq_cca, ksh, sdh and 5 more)" in sup_plain
    assert _held(sup_plain) == "not measured"


def test_signed_difference_keeps_the_sign_of_a_tiny_loss() -> None:
    from hashbench.bench.tables import _signed

    assert _signed(0.0123) == "+0.012"
    assert _signed(-0.0123) == "-0.012"
    assert _signed(-0.00048) == "-0.0005"
    assert _signed(0.0002) == "+0.0002"
    assert _signed(0.0) == "+0.000"
    assert _signed(-0.0) == "+0.000"


def test_a_claim_added_to_a_file_changes_the_table_without_code(tmp_path: Path) -> None:
    records = [_pq(_record("itq", b, s, 0.55 + 0.1 * s)) for b in (16, 32) for s in (0, 1)]
    records += [_pq(_record("lsh", b, 0, 0.3)) for b in (16, 32)]
    extra = tmp_path / "claims.yaml"
    extra.write_text(
        SHIPPED.read_text()
        + "\n- source: a new paper\n"
        + '  statement: "ITQ beats LSH by 0.1 to 0.2 at 16 bits"\n'
        + "  a: itq\n  b: [lsh]\n  bits: [16]\n  min_diff: 0.1\n  max_diff: 0.2\n"
    )
    before = render_markdown(records, figures=False)
    after = render_markdown(records, figures=False, claims_file=extra)
    assert "a new paper" not in before
    rows = _claim_rows(after)
    assert len(rows) == len(_claim_rows(before)) + 1
    row = rows["ITQ beats LSH by 0.1 to 0.2 at 16 bits"]
    # itq's seeds give +0.25 and +0.35 (every query alike): the interval's low end is above 0.2
    assert (
        "| `mAP@all`, by +0.100 to +0.200 | itq vs lsh | 16: +0.300 [+0.250, +0.350]† holds" in row
    )
    assert "(more than stated) | **holds (more than stated)** |" in row
    assert list(rows)[-1] == "ITQ beats LSH by 0.1 to 0.2 at 16 bits"  # the file's order
    # everything but the new row is unchanged
    assert after.replace(row + "\n", "") == before
    only = tmp_path / "only.yaml"
    only.write_text("- {source: x, statement: only claim, a: [itq], b: [lsh]}\n")
    assert list(_claim_rows(render_markdown(records, claims_file=only))) == ["only claim"]
    empty = tmp_path / "empty.yaml"
    empty.write_text("# no claims yet\n")
    no_claims = render_markdown(records, claims_file=empty)
    assert "### Claims" not in no_claims and no_claims == render_markdown(records, claims_file=[])


def test_no_claims_file_no_claims_section(tmp_path: Path, monkeypatch) -> None:
    """An installed package without the repository: the section is left out, no error."""
    records = [_record("itq", 16, 0, 0.5), _record("lsh", 16, 0, 0.4)]
    with_claims = render_markdown(records, figures=False)
    assert "### Claims" in with_claims
    monkeypatch.setattr(claims_mod, "default_claims_file", lambda: tmp_path / "absent.yaml")
    without = render_markdown(records, figures=False)
    assert "### Claims" not in without and "### Cost at 16 bits" in without
    from hashbench.bench.leaderboard import CLAIMS

    assert CLAIMS == ()
    with pytest.raises(FileNotFoundError):  # a file named explicitly must exist
        render_markdown(records, claims_file=tmp_path / "absent.yaml")


# -- bad files --------------------------------------------------------------------------------------
GOOD = "- source: s\n  statement: the claim\n  a: [itq]\n  b: [lsh]\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + "  min_dif: 0.1\n", r"claim 1 \('the claim'\): unknown key 'min_dif' \(allowed: "),
        (GOOD + "- source: s\n  a: [itq]\n  b: [lsh]\n", r"claim 2: missing field 'statement'"),
        ("- source: s\n  statement: t\n  a: [itq]\n", r"claim 1 \('t'\): missing field 'b'"),
        ("- source: s\n  statement: [t\n", r"not valid YAML at line 3, column 1: expected ','"),
        ("- a: b\n\tc: d\n", r"not valid YAML at line 2, column 1: found character '\\t'"),
        ("source: s\nstatement: t\n", r"expected a list of claims"),
        ("- just a string\n", r"claim 1: expected a mapping"),
        (GOOD + "  bits: 32\n", r"'bits' must be 'all' or a list of positive code lengths"),
        (GOOD + "  min_diff: lots\n", r"'min_diff' must be a number"),
        (GOOD + "  min_diff: 0.2\n  max_diff: 0.1\n", r"'max_diff' \(0.1\) is below 'min_diff'"),
        (GOOD.replace("[lsh]", "[]"), r"'b' must be a method key or a non-empty list"),
        (GOOD.replace("[lsh]", '"@deep"'), r"unknown group '@deep' in 'b' \(known: @supervised"),
        (GOOD.replace("[lsh]", "[lsh, 3]"), r"'b' holds 3, not a method key"),
        (GOOD + "  metric: ''\n", r"'metric' must be a non-empty string"),
    ],
)
def test_bad_claims_file_is_a_clear_one_line_error(tmp_path: Path, text: str, expected) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(text)
    with pytest.raises(ClaimsError, match=expected) as info:
        load_claims(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    with pytest.raises(ClaimsError, match=expected):  # the leaderboard says the same
        render_markdown([_record("itq", 16, 0, 0.5)], claims_file=path)


def test_loader_defaults_and_single_keys(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(GOOD.replace("[itq]", "itq") + "  bits: all\n  min_diff: 0\n")
    (claim,) = load_claims(path)
    assert claim == Claim("s", "the claim", ("itq",), ("lsh",))
    assert isinstance(claim.min_diff, float)
