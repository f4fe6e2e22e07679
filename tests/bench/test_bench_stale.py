"""Stale records: the behaviour fingerprint, the stale reasons and ``--rerun``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashbench.bench import records as rec
from hashbench.bench.fingerprint import changed_modules, closure, fingerprint, source_digest
from hashbench.bench.sweep import stale_reason

from .conftest import SweepRun, bench, copy_results

CODE = '''"""Module docstring."""


def f(x):
    """Doc."""
    return x + 1  # a comment
'''


def test_source_digest_ignores_docs_comments_and_layout_not_code() -> None:
    same = CODE.replace('"""Doc."""', '"""Another doc."""').replace("# a comment", "")
    same = same.replace("return x + 1", "return (x\n            + 1)")
    assert source_digest(same) == source_digest(CODE)
    assert source_digest(CODE.replace("x + 1", "x + 2")) != source_digest(CODE)
    assert source_digest(CODE.replace('    """Doc."""\n', "")) == source_digest(CODE)


def test_fingerprint_follows_imports_inside_the_behaviour_packages() -> None:
    mods = closure(("hashbench.methods.knngan",))
    # direct and lazy imports of knngan.py, and what they import in turn
    for name in (
        "hashbench.methods.knngan",
        "hashbench.methods.base",
        "hashbench.losses.knn",
        "hashbench.models.gan",
        "hashbench.models.features",
        "hashbench.optim.rmsprop_nesterov",
    ):
        assert name in mods
    # exact metrics, the bench and the registries are outside it
    assert not any(m.startswith(("hashbench.retrieval", "hashbench.bench")) for m in mods)
    assert "hashbench.methods" not in mods and "hashbench.methods.dsh" not in mods
    # ws_ksh declares the deep method whose stage-1 network it reads
    from hashbench.baselines.ws_ksh import WSKSH

    ws = closure(("hashbench.baselines.ws_ksh", *WSKSH.behaviour_modules))
    assert "hashbench.methods.wsdh" in ws and "hashbench.baselines.ksh" in ws


def test_changed_modules_and_stale_reasons() -> None:
    new = fingerprint(("hashbench.methods.dsh",))
    old = {"sha": "x", "modules": dict(new["modules"])}
    old["modules"]["hashbench.methods.dsh"] = "0" * 12
    del old["modules"]["hashbench.losses.base"]
    assert changed_modules(old, new) == ["hashbench.losses.base", "hashbench.methods.dsh"]
    config = {"kind": "deep", "fit": {"trainer": {"max_epochs": 20}}, "code": new}
    assert stale_reason({**config, "code": old}, config) == (
        "code changed: hashbench.losses.base, hashbench.methods.dsh"
    )
    other = {**config, "fit": {"trainer": {"max_epochs": 30}}}
    assert stale_reason(other, config) == "config changed: fit.trainer.max_epochs"


def test_a_record_made_by_other_code_is_stale_and_rerun_recomputes(
    bench_sweep: SweepRun, tmp_path: Path, capsys
) -> None:
    results = copy_results(bench_sweep, tmp_path / "results")
    path = results / "raw/fashion-mnist/default/dsh/8bits-seed0.json.gz"
    record = rec.read_record(path)
    record["config"]["code"]["modules"]["hashbench.methods.dsh"] = "0" * 12
    record["config_hash"] = rec.config_hash(record["config"])
    rec.write_record(path, record)
    assert bench(bench_sweep.grid, results, tmp_path / "runs", "--dry_run") == 0
    out = capsys.readouterr().out
    assert "1 stale" in out and "code changed: hashbench.methods.dsh" in out
    assert "3 recorded" in out
    assert bench(bench_sweep.grid, results, tmp_path / "runs", "--dry_run", "--rerun", "true") == 0
    out = capsys.readouterr().out
    assert "4 to compute (--rerun)" in out or "4 to recompute (--rerun)" in out


def test_records_keep_per_query_values_whose_mean_is_the_metric(bench_sweep: SweepRun) -> None:
    for method, bits in (("dsh", 16), ("itq", 8)):
        r = rec.read_record(
            bench_sweep.results / f"raw/fashion-mnist/default/{method}/{bits}bits-seed0.json.gz"
        )
        n_query = r["protocol"]["n_query"]
        assert {"mAP@all", "mAP@H<=2", "P@H<=2", "R@H<=2"} <= set(r["per_query"])
        for key, values in r["per_query"].items():
            assert len(values) == n_query
            assert abs(float(np.mean(values)) - r["metrics"][key]) < 1e-5, key
        assert r["config"]["code"]["sha"] == fingerprint_of(r)


def fingerprint_of(record: dict) -> str:
    """The current fingerprint of the modules a record's fingerprint lists (same code: same sha)."""
    return fingerprint(tuple(record["config"]["code"]["modules"]))["sha"]


def test_training_summary_sees_an_early_stop_after_the_checkpoint_restore() -> None:
    """Testing the best checkpoint restores EarlyStopping's state of that epoch (stopped_epoch 0);
    a run that ended before its cap still counts as stopped early."""
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import EarlyStopping

    from hashbench.bench.executors import training_summary

    stopper = EarlyStopping(monitor="val/mAP", mode="max", patience=5)
    history = SimpleNamespace(best=lambda: {"epoch": 12, "val/mAP": 0.5}, history=[])

    def trainer(epochs: int) -> SimpleNamespace:
        return SimpleNamespace(
            callbacks=[stopper], current_epoch=epochs, max_epochs=20, min_epochs=5
        )

    assert stopper.stopped_epoch == 0
    assert training_summary(trainer(18), history)["stopped_early"] is True
    assert training_summary(trainer(20), history)["stopped_early"] is False
    assert training_summary(trainer(18), history)["best_epoch"] == 12
    stopper.stopped_epoch = 19  # the rule fired in the last epoch: the run still reached its cap
    assert training_summary(trainer(20), history)["stopped_early"] is False
