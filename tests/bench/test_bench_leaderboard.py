"""Leaderboard maths on hand-made records: mean ± std, bold, cost table, CSV.

The claims table and its file: ``test_claims.py``.
"""

from __future__ import annotations

import math

from hashbench.bench.leaderboard import render_csv, render_markdown


def _record(method: str, bits: int, seed: int, m: float, kind: str = "baseline", **extra) -> dict:
    sup = {"sdh": True, "ksh": True, "itq_cca": True}.get(
        method, False if kind == "baseline" else None
    )
    return {
        "benchmark": "toy",
        "status": "ok",
        "method": method,
        "kind": kind,
        "supervised": sup,
        "bits": bits,
        "seed": seed,
        "cell": f"{method}/{bits}bits/seed{seed}",
        "metrics": {"mAP@all": m, "mAP@H<=2": m / 2, "P@H<=2": m / 3, "P@500": m / 4},
        "protocol": {
            "name": "toy-proto",
            "k": None,
            "split_seed": 0,
            "n_query": 10,
            "n_database": 90,
            "n_train": 50,
            "data_key": "toy/toy-proto-seed0",
        },
        "times": {
            "train_s": 1.0,
            "encode_per_s": 1000.0,
            "query_ms": 0.5,
            "topk_qps": 10.0,
            "radius_qps": 5.0,
            "index_build_s": 0.001,
            "topk_k": 100,
            "radius": 2,
        },
        "memory": {"peak_rss_mb": 100.0, "rss_scope": "cell", "cuda_peak_mb": None},
        "device": {"device": "cpu", "name": "Toy CPU (2 cores)"},
        "finished_at": f"2026-01-0{1 + seed}T00:00:00Z",
        "bench": {
            "profile": "default",
            "config": "benchmarks/toy.yaml",
            "metrics": ["mAP", "mAP@H<=2", "P@H<=2", "P@500"],
        },
        "git_commit": "abcdef1234567890",
        **extra,
    }


def _rows(md: str, section: str) -> dict[str, str]:
    part = md.split(f"### {section}\n", 1)[1].split("\n###", 1)[0]
    lines = [line for line in part.splitlines() if line.startswith("| ")][2:]  # header, ---
    return {line.split("|")[1].strip(): line for line in lines}


def test_mean_std_and_bold() -> None:
    records = [
        _record("sdh", 32, 0, 0.70),
        _record("sdh", 32, 1, 0.74),
        _record("itq", 32, 0, 0.40),
        _record("itq", 32, 1, 0.44),
        _record("dsh", 32, 0, 0.80, kind="deep"),
    ]
    md = render_markdown(records, figures=False)
    rows = _rows(md, "mAP@all")
    std = math.sqrt(((0.70 - 0.72) ** 2 + (0.74 - 0.72) ** 2) / 1)
    assert f"0.720 ± {std:.3f}" in rows["sdh"]
    assert "**0.800**" in rows["dsh"] and "**" not in rows["itq"]
    assert list(rows) == ["dsh", "itq", "sdh"]  # deep first, then by name
    assert "Seeds: 0, 1." in md and "finished 2026-01-01 to 2026-01-02 (UTC)" in md
    assert "Toy CPU (2 cores)" in md
    costs = _rows(md, "Cost at 32 bits")
    assert "| 1.00 | 1,000 | 1.00 | 0.500 |" in costs["sdh"]


def test_cost_table_shows_epochs_run_best_epoch_and_cap_of_deep_cells() -> None:
    def deep(seed: int, run: int, best: int) -> dict:
        r = _record("dsh", 32, seed, 0.8, kind="deep")
        r["times"]["epochs"] = run
        r["training"] = {
            "epochs_run": run,
            "best_epoch": best,
            "max_epochs": 20,
            "early_stopping": {"patience": 5},
        }
        return r

    md = render_markdown([deep(0, 20, 18), deep(1, 12, 6), _record("itq", 32, 0, 0.4)], False)
    costs = _rows(md, "Cost at 32 bits")
    # epochs (20 + 12) / 2, best epoch (18 + 6) / 2, cap 20; the baseline has none of them
    assert "| dsh | deep | 16.0 | 12.0 | 20 |" in costs["dsh"]
    assert "| itq | shallow, unsup. | — | — | — |" in costs["itq"]
    # seed 0 reached the cap with its best at epoch 18 of 0-19 (inside patience 5 of the cap)
    assert (
        "- Training: 2 deep cells; 1 stopped early on held-out `val/mAP`, 1 reached the epoch "
        in md
    )
    assert "cap (20), 1 of those with their best validation epoch within" in md
    assert "anneal the learning rate" not in md  # these records name no schedule


def test_training_line_counts_cells_that_anneal_to_the_cap() -> None:
    def deep(seed: int, schedule: str) -> dict:
        r = _record("dsh", 32, seed, 0.8, kind="deep")
        r["training"] = {
            "epochs_run": 20,
            "best_epoch": 19,
            "max_epochs": 20,
            "early_stopping": {"patience": 5},
        }
        r["config"] = {"fit": {"model": {"init_args": {"optim": {"schedule": schedule}}}}}
        return r

    md = render_markdown([deep(0, "cosine"), deep(1, "none"), deep(2, "cosine")], False)
    assert "3 reached the epoch cap (20), 3 of those with their best validation epoch" in md
    assert "(2 of them anneal the learning rate to 0 at the cap" in md


def test_failed_records_listed_and_csv_sorted() -> None:
    records = [
        _record("itq", 8, 0, 0.5),
        {
            "benchmark": "toy",
            "status": "failed",
            "method": "dsh",
            "kind": "deep",
            "bits": 8,
            "seed": 0,
            "cell": "dsh/8bits/seed0",
            "error": "ValueError: bad | thing\nmore",
            "finished_at": "2026-01-01T00:00:00Z",
        },
    ]
    md = render_markdown(records, figures=False)
    failed = md[md.index("### Failed cells") :]
    assert "ValueError: bad \\| thing" in failed and "more" not in failed
    assert "1 ok, 1 failed" in md
    csv_text = render_csv(records)
    lines = csv_text.splitlines()
    assert lines[0] == "benchmark,profile,method,kind,bits,quantity,n,mean,std,seeds,tag_source"
    assert "toy,default,itq,baseline,8,mAP@all,1,0.5,,0," in lines
    assert all(",dsh," not in line for line in lines)  # failed cells have no numbers
    assert render_csv(list(reversed(records))) == csv_text


def test_no_records() -> None:
    assert "No records yet" in render_markdown([], figures=False)


def test_synthetic_tags_marked_in_every_table_and_csv() -> None:
    tag = "synthetic:class-words+noise(k=4,rate=0.3,seed=0)"
    records = [
        _record("wsdh", 8, 0, 0.7, kind="deep", tag_source=tag),
        _record("dsh", 8, 0, 0.6, kind="deep"),
    ]
    md = render_markdown(records)
    for section in ("mAP@all", "mAP@H<=2", "P@H<=2", "P@500", "Cost at 8 bits"):
        rows = _rows(md, section)
        assert "synthetic tags" in rows["wsdh"], section
        assert "synthetic tags" not in rows["dsh"], section
    assert f"wsdh ({tag})" in md
    assert tag in render_csv(records)
    user = [_record("wsdh", 8, 0, 0.7, kind="deep", tag_source="user")]
    assert "synthetic tags" not in render_markdown(user)


def test_every_benchmark_and_profile_keeps_its_section() -> None:
    """A run of another grid or profile adds its section; nothing with records is dropped."""

    def at(record: dict, benchmark: str, profile: str) -> dict:
        return {**record, "benchmark": benchmark, "bench": {"profile": profile}}

    records = [
        at(_record("itq", 16, 0, 0.40), "toy", "default"),
        at(_record("itq", 16, 0, 0.61), "toy", "paper"),
        at(_record("lsh", 32, 0, 0.22), "other", "default"),
    ]
    md = render_markdown(records, figures=False)
    titles = [line for line in md.splitlines() if line.startswith("## ")]
    assert titles == ["## other", "## toy", "## toy, profile `paper`"]
    toy, paper = md.split("## toy\n")[1].split("## toy, profile `paper`")
    assert "0.400" in toy and "0.610" not in toy and "0.610" in paper
    csv_lines = render_csv(records).splitlines()
    assert any(line.startswith("toy,paper,itq,baseline,16,mAP@all,1,0.61,") for line in csv_lines)
    assert any(line.startswith("other,default,lsh,") for line in csv_lines)


def test_header_states_which_seeds_ran_at_which_lengths() -> None:
    records = [_record("itq", b, 0, 0.5) for b in (8, 16, 32)]
    records += [_record("itq", 16, s, 0.5) for s in (1, 2)]
    md = render_markdown(records, figures=False)
    assert "- Cells: seed 0 at 8/16/32 bits; seeds 1, 2 at 16 bits (lengths with one seed" in md
    one = render_markdown([_record("itq", 8, 0, 0.5), _record("itq", 8, 1, 0.5)], figures=False)
    assert "- Cells: seeds 0, 1 at 8 bits." in one


def test_training_line_names_per_method_caps() -> None:
    def deep(method: str, seed: int, cap: int) -> dict:
        r = _record(method, 32, seed, 0.8, kind="deep")
        r["training"] = {"epochs_run": cap, "best_epoch": cap - 1, "max_epochs": cap}
        return r

    records = [deep("dsh", 0, 20), deep("dsh", 1, 20), deep("dhn", 0, 20), deep("knngan", 0, 40)]
    records += [deep("knngan_nogan", 0, 40), deep("pcaegan", 0, 30)]
    md = render_markdown(records, False)
    # the most common cap first, then the others with the methods that have them
    assert "6 reached the epoch cap (20; 30: pcaegan; 40: knngan, knngan_nogan)" in md


def test_claims_of_another_profile_say_they_are_not_the_verdicts() -> None:
    from hashbench.bench.claims import Claim

    def at(record: dict, profile: str) -> dict:
        return {**record, "bench": {"profile": profile}}

    records = [
        at(_record(m, 16, 0, v), p)
        for p in ("default", "budget")
        for m, v in (("itq", 0.5), ("lsh", 0.3))
    ]
    claim = Claim("p", "itq beats lsh", ("itq",), ("lsh",), bits=(16,))
    md = render_markdown(records, figures=False, claims_file=[claim])
    default, budget = md.split("## toy, profile `budget`")
    assert "### Claims" in default and "### Claims" in budget
    assert "records only" not in default
    assert "Judged on the `budget` profile's records only" in budget
