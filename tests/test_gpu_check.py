"""scripts/gpu_check_fit.py (the helper of scripts/gpu_check.sh): the parts that need no GPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures import REPO, load_script

BENCH = REPO / "benchmarks/fashion-mnist.yaml"


@pytest.fixture(scope="module")
def helper():
    return load_script("scripts/gpu_check_fit.py")


def test_batch_limits_as_lightning_takes_them(helper):
    assert helper._number(None) is None and helper._number("") is None
    assert helper._number("5") == 5 and isinstance(helper._number("5"), int)
    assert helper._number("0.25") == 0.25
    assert helper._number("1") == 1.0 and isinstance(helper._number("1"), float)  # all batches
    assert helper.trainer_overrides(2, "gpu", 5, None) == {
        "trainer.max_epochs": 2,
        "trainer.min_epochs": 1,
        "trainer.accelerator": "gpu",
        "trainer.devices": 1,
        "trainer.limit_train_batches": 5,
    }


def test_paper_methods_are_the_profiles_own(helper):
    listed = helper.deep_methods(str(BENCH), "paper", with_method_args=True)
    assert listed == ["pcaegan", "pcwgan"]  # benchmarks/fashion-mnist.yaml's paper method_args
    assert len(helper.deep_methods(str(BENCH), "paper")) > len(listed)


def test_short_bench_yaml_keeps_the_profile_but_its_length(helper, tmp_path):
    from hashbench.bench.config import load_bench_config

    path = tmp_path / "smoke.yaml"
    path.write_text(helper.short_bench_yaml(str(BENCH), "paper", 1, "cpu", "3", None))
    short = load_bench_config(path, "paper")
    full = load_bench_config(BENCH, "paper")
    assert short.profile.args["trainer.max_epochs"] == 1
    assert short.profile.args["trainer.limit_train_batches"] == 3
    assert short.profile.args["trainer.accelerator"] == "cpu"
    assert short.profile.method_args == full.profile.method_args
    assert short.profile.trainer_config == full.profile.trainer_config
    assert short.methods == full.methods and short.grid() == full.grid()
    with pytest.raises(ValueError, match="no profile"):
        helper.short_bench_yaml(str(BENCH), "nope", 1, "cpu", None, None)


def _config(method: str, root: Path) -> dict:
    from hashbench import training

    return training.resolve_config(
        [REPO / f"configs/methods/{method}.yaml", REPO / "configs/data/fashion_mnist.yaml"],
        {"data.init_args.root": str(root)},
    )


def test_portable_overrides_without_weights_or_caches(helper, tmp_path, monkeypatch):
    monkeypatch.setattr(helper, "imagenet_weights_found", lambda backbone: False)
    extra, why = helper.portable_overrides(_config("knngan", tmp_path))
    assert extra == {
        "model.init_args.knn_features": "pixels",
        "model.init_args.knn_pretrained": False,
        "model.init_args.perceptual_pretrained": False,
    }
    assert len(why) == 2
    extra, _ = helper.portable_overrides(_config("knngan_nogan", tmp_path))
    assert "model.init_args.perceptual_pretrained" not in extra  # no perceptual net without GAN
    extra, _ = helper.portable_overrides(_config("wsdh", tmp_path))
    assert extra == {"model.init_args.stage1_cache": None, "model.init_args.weak_tags": "synthetic"}
    assert helper.portable_overrides(_config("dsh", tmp_path)) == ({}, [])


def test_portable_overrides_use_the_caches_when_present(helper, tmp_path, monkeypatch):
    monkeypatch.setattr(helper, "imagenet_weights_found", lambda backbone: False)
    (tmp_path / "features/fashion-mnist").mkdir(parents=True)
    (tmp_path / "features/fashion-mnist/efficientnet_lite0-imagenet.npz").write_bytes(b"")
    (tmp_path / "tags/fashion-mnist").mkdir(parents=True)
    (tmp_path / "tags/fashion-mnist/classifier-efficientnet_lite0-imagenet-top10.npz").write_bytes(
        b""
    )
    extra, _ = helper.portable_overrides(_config("knngan", tmp_path))
    assert extra == {"model.init_args.perceptual_pretrained": False}
    extra, _ = helper.portable_overrides(_config("wsdrsch", tmp_path))
    assert extra == {"model.init_args.stage1_cache": None}


def test_summary_reports_steps_fits_and_failures(helper, tmp_path):
    (tmp_path / "fits").mkdir()
    (tmp_path / "steps.tsv").write_text(
        "env\tpass\t3\t\nfit/dsh\tpass\t9\tok\nfit/dch\tfail\t4\texit 1; boom\n"
        "paper-bench\tskipped\t0\ttime budget spent before it started\n"
    )
    (tmp_path / "env.json").write_text(
        json.dumps(
            {
                "torch": "2.x",
                "cuda_available": True,
                "devices": [{"name": "GPU-X", "memory_gib": 80.0, "capability": "9.0"}],
            }
        )
    )
    ok = {
        "profile": "default",
        "method": "dsh",
        "bits": 32,
        "status": "ok",
        "device": "cuda:0",
        "device_name": "GPU-X",
        "before_fit_start_s": 1.0,
        "before_first_epoch_s": 0.5,
        "epochs": [
            {"epoch": 0, "train_s": 2.0, "train_batches": 40, "val_s": 0.5, "val/mAP": 0.5},
            {"epoch": 1, "train_s": 1.0, "train_batches": 40, "val_s": 0.4, "val/mAP": 0.6},
        ],
        "peak_cuda_mb": 123.4,
        "fit_s": 4.0,
        "deviations": ["stage1_cache null"],
    }
    failed = {"profile": "default", "method": "dch", "status": "failed", "error": "X: boom\nmore"}
    (tmp_path / "fits/default-dsh.json").write_text(json.dumps(ok))
    (tmp_path / "fits/default-dch.json").write_text(json.dumps(failed))
    text = helper.summary(tmp_path)
    assert "GPU-X (80.0 GiB, cc 9.0)" in text
    assert "- steps: 1 fail, 2 pass, 1 skipped" in text
    assert (
        "| default | dsh | 32 | ok | GPU-X | 1.5 | 2.00 / 1.00 | 40 | 25.0 | 0.40 | 0.6000 |"
        in text
    )
    assert "stage1_cache null" in text
    assert "| default | dch | - | failed |" in text and "X: boom |" in text
    assert "Paper-profile bench cells" not in text  # no records: no table


def test_fit_line_names_the_device_and_the_first_error_line(helper):
    ok = {"profile": "default", "method": "dsh", "status": "ok", "total_s": 3.0}
    ok.update(device="cuda:0", device_name="GPU-X", epochs=[{"train_s": 1.234}])
    assert (
        helper.fit_line(ok)
        == "gpu_check fit default/dsh: ok on GPU-X; epoch train s [1.23]; total 3.0 s"
    )
    failed = {"profile": "paper", "method": "pcaegan", "status": "failed", "total_s": 1.0}
    failed["error"] = "RuntimeError: CUDA out of memory\ndetails"
    assert helper.fit_line(failed) == (
        "gpu_check fit paper/pcaegan: failed; epoch train s []; total 1.0 s; "
        "RuntimeError: CUDA out of memory"
    )
