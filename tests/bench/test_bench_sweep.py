"""End to end: a two-method, two-bit, one-seed sweep on the tiny Fashion-MNIST fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hashbench.bench import records as rec
from hashbench.bench.config import load_bench_config
from hashbench.bench.records import config_hash, load_records

from .conftest import SweepRun

CELLS = {"dsh/8bits/seed0", "dsh/16bits/seed0", "itq/8bits/seed0", "itq/16bits/seed0"}


def test_sweep_writes_one_record_per_cell(bench_sweep: SweepRun) -> None:
    assert bench_sweep.rc == 0, bench_sweep.output
    raw = bench_sweep.results / "raw" / "fashion-mnist"
    files = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file())
    assert files == [
        "default/dsh/16bits-seed0.json.gz",
        "default/dsh/8bits-seed0.json.gz",
        "default/itq/16bits-seed0.json.gz",
        "default/itq/8bits-seed0.json.gz",
    ]
    records = load_records(bench_sweep.results)
    assert {r["cell"] for r in records} == CELLS
    for r in records:
        assert r["status"] == "ok" and r["error"] is None
        assert r["config_hash"] == config_hash(r["config"])
        assert set(r["versions"]) >= {"python", "torch", "lightning", "faiss", "hashbench"}
        assert r["git_commit"]  # a sha or "unknown"
        assert r["device"]["device"] == "cpu" and r["device"]["cpu_count"] >= 1
        assert r["protocol"]["name"] == "tiny" and r["protocol"]["n_query"] == 100
        # PROTOCOL.md metrics and curves (lists, one PR point per radius 0..b)
        for key in ("mAP@all", "mAP@H<=2", "P@H<=2", "R@H<=2", "F1@H<=2", "P@500", "AUC"):
            assert 0.0 <= r["metrics"][key] <= 1.0, key
        assert len(r["curves"]["pr_curve/precision"]) == r["bits"] + 1
        assert isinstance(r["curves"]["P@N_curve"], list)
        t = r["times"]
        for key in ("train_s", "encode_per_s", "index_build_s", "topk_qps", "radius_qps"):
            assert t[key] > 0, key
        assert t["topk_k"] == 50 and t["radius"] == 2
        assert r["memory"]["peak_rss_mb"] > 0 and r["memory"]["cuda_peak_mb"] is None
        assert r["started_at"] <= r["finished_at"]


def test_deep_cell_trained_as_hashbench_fit(bench_sweep: SweepRun) -> None:
    r = rec.read_record(bench_sweep.results / "raw/fashion-mnist/default/dsh/16bits-seed0.json.gz")
    assert r["times"]["encode_source"] == "test pass"  # codes and timing from trainer.test
    fit = r["config"]["fit"]
    assert fit["model"]["class_path"] == "hashbench.methods.dsh.DSH"
    assert fit["model"]["init_args"]["bits"] == 16
    assert fit["seed_everything"] == 0
    assert fit["trainer"]["max_epochs"] == 1 and fit["trainer"]["limit_train_batches"] == 2
    assert fit["data"]["init_args"]["protocol"] == "tiny"
    assert "root" not in fit["data"]["init_args"]  # where the data is does not change the hash
    assert r["times"]["epochs"] == 1 and r["best_val_mAP"] is not None
    assert not list(bench_sweep.runs.rglob("*.ckpt")), "checkpoints are removed by default"


def test_baseline_cell(bench_sweep: SweepRun) -> None:
    r = rec.read_record(bench_sweep.results / "raw/fashion-mnist/default/itq/8bits-seed0.json.gz")
    assert r["kind"] == "baseline" and r["supervised"] is False
    assert r["config"]["params"]["bits"] == 8 and r["config"]["params"]["random_state"] == 0
    assert r["config"]["features"] == "pixels"


def test_leaderboard_tables_and_figures(bench_sweep: SweepRun) -> None:
    md = (bench_sweep.results / "leaderboard.md").read_text()
    for heading in (
        "## fashion-mnist",
        "### mAP@all",
        "### mAP@H<=2",
        "### P@H<=2",
        "### P@500",
        "### Cost at 16 bits",
        "### Claims",
        "### Figures",
    ):
        assert heading in md, heading
    assert "| method | type | 8 bits | 16 bits |" in md
    assert "| dsh | deep |" in md and "| itq | shallow, unsup. |" in md
    assert "**" in md  # the best per column
    assert "tie rule `index`" in md and "Hardware:" in md and "finished 20" in md
    assert "not measured" in md  # claims about methods without records
    csv_text = (bench_sweep.results / "leaderboard.csv").read_text()
    assert csv_text.startswith(
        "benchmark,profile,method,kind,bits,quantity,n,mean,std,seeds,tag_source\n"
    )
    assert "fashion-mnist,default,dsh,deep,16,mAP@all,1," in csv_text
    figures = sorted((bench_sweep.results / "figures").glob("*.png"))
    assert [f.name for f in figures] == [
        "fashion-mnist-map-vs-bits.png",
        "fashion-mnist-map-vs-query-time.png",
        "fashion-mnist-pr-16bits.png",
        "fashion-mnist-precision-at-n-16bits.png",
    ]
    for f in figures:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size < 200_000
        assert f"figures/{f.name}" in md


def test_mean_over_seeds_matches_records(bench_sweep: SweepRun) -> None:
    records = [r for r in load_records(bench_sweep.results) if r["method"] == "itq"]
    md = (bench_sweep.results / "leaderboard.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| itq |"))
    by_bits = {r["bits"]: r["metrics"]["mAP@all"] for r in records}
    for b in (8, 16):
        assert f"{by_bits[b]:.3f}" in row
    assert np.isfinite(list(by_bits.values())).all()


def test_dry_run_lists_cells_and_writes_nothing(
    bench_sweep: SweepRun, tmp_path: Path, capsys
) -> None:
    from .conftest import bench

    assert bench(bench_sweep.grid, tmp_path / "fresh", tmp_path / "runs", "--dry_run", "true") == 0
    out = capsys.readouterr().out
    for cell in CELLS:
        assert cell in out
    assert "4 missing" in out
    assert not (tmp_path / "fresh").exists() and not (tmp_path / "runs").exists()
    # against the recorded sweep every cell is up to date
    assert bench(bench_sweep.grid, bench_sweep.results, tmp_path / "runs", "--dry_run") == 0
    out = capsys.readouterr().out
    assert "4 cells - 4 recorded, 0 missing, 0 stale" in out and "nothing to compute" in out


def test_changed_config_reruns_only_affected_cells(
    bench_sweep: SweepRun, tmp_path: Path, capsys
) -> None:
    from .conftest import bench, write_grid

    grid = write_grid(
        tmp_path / "grid.yaml",
        bench_sweep.root,
        ["dsh", "itq"],
        [8, 16],
        profile_args={"trainer.limit_train_batches": 1},
    )
    assert bench(grid, bench_sweep.results, tmp_path / "runs", "--dry_run") == 0
    out = capsys.readouterr().out
    lines = {line.split()[1]: line.split()[0] for line in out.splitlines() if "bits/seed" in line}
    assert lines == {
        "dsh/8bits/seed0": "stale",
        "dsh/16bits/seed0": "stale",
        "itq/8bits/seed0": "skip",
        "itq/16bits/seed0": "skip",
    }
    cfg = load_bench_config(grid)
    assert cfg.profile.args["trainer.limit_train_batches"] == 1


def test_baseline_cells_match_fit_and_evaluate(bench_sweep: SweepRun, tmp_path: Path) -> None:
    """The sweep's baseline path (features computed once per sweep) gives fit_and_evaluate's numbers."""
    from hashbench.baselines.evaluate import fit_and_evaluate
    from hashbench.bench.sweep import Sweep
    from hashbench.data.fashion_mnist import FashionMNISTDataModule
    from hashbench.retrieval.evaluation import metric_groups

    from .conftest import write_grid

    grid = write_grid(tmp_path / "grid.yaml", bench_sweep.root, ["sdh", "itq"], [16])
    sweep = Sweep(load_bench_config(grid), tmp_path / "results", tmp_path / "runs", progress=False)
    records = {p.cell.method: sweep.run_cell(p) for p in sweep.plan()}
    dm = FashionMNISTDataModule(str(bench_sweep.root), protocol="tiny", download=False)
    dm.prepare_data()
    for name in ("sdh", "itq"):
        ref = fit_and_evaluate(
            name, 16, dm, "pixels", False, random_state=0, metrics=metric_groups(False)
        )
        got = records[name]
        assert got["status"] == "ok", got["error"]
        for key, value in got["metrics"].items():
            assert value == pytest.approx(ref[key], abs=1e-12), (name, key)
        assert got["curves"]["pr_curve/precision"] == pytest.approx(ref["pr_curve/precision"])
    assert records["sdh"]["supervised"] is True
    assert records["sdh"]["times"]["features_s"] == 0.0  # computed once, by the first cell (itq)
    itq_sweep = rec.read_record(
        bench_sweep.results / "raw/fashion-mnist/default/itq/16bits-seed0.json.gz"
    )
    assert itq_sweep["metrics"] == pytest.approx(records["itq"]["metrics"], abs=1e-12)


def testcodes_from_test_pass_equal_a_separate_encoding(
    fashion_mnist_root: Path, tmp_path: Path
) -> None:
    import lightning as L
    import torch

    from hashbench.bench.executors import codes_from_test_pass, make_test_timer
    from hashbench.data.fashion_mnist import FashionMNISTDataModule
    from hashbench.methods.dsh import DSH
    from hashbench.retrieval.evaluation import encode_split

    dm = FashionMNISTDataModule(str(fashion_mnist_root), protocol="tiny", download=False)
    torch.manual_seed(0)
    model = DSH(bits=16)
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    timer = make_test_timer()
    trainer.callbacks.append(timer)
    trainer.test(model, datamodule=dm, verbose=False)
    n_q, n_db = len(dm.split["query"]), len(dm.split["database"])
    found = codes_from_test_pass(model, timer, n_q, n_db)
    assert found is not None
    q = encode_split(model, dm, "query", torch.device("cpu"))
    db = encode_split(model, dm, "database", torch.device("cpu"))
    np.testing.assert_array_equal(found[0], q.codes)
    np.testing.assert_array_equal(found[1], db.codes)
    np.testing.assert_array_equal(np.sort(q.ids), np.sort(dm.split["query"]))
    assert found[2] > 0 and found[3] > 0
    assert codes_from_test_pass(model, timer, n_q + 1, n_db) is None


def test_rewritten_records_do_not_make_the_checkout_dirty(tmp_path) -> None:
    import subprocess

    from hashbench.bench.records import git_commit

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "cell.json.gz").write_text("old")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    assert git_commit(tmp_path)["dirty"] is False
    (tmp_path / "results" / "cell.json.gz").write_text("new")  # a sweep rewrote a record
    assert git_commit(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path)["dirty"] is True
