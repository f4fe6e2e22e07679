"""The Python training API (hashbench.training): same config as `hashbench fit`, typed overrides,
seeded builds, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hashbench import training
from tests.fixtures import REPO, fixture_data_args, quick_trainer_args

METHOD = REPO / "configs/methods/dsh.yaml"
DATA = REPO / "configs/data/fashion_mnist.yaml"
TRAINER = REPO / "configs/trainer/default.yaml"


def _overrides(root: Path, tmp_path: Path) -> dict:
    return {
        "data.init_args.root": str(root),
        "data.init_args.protocol": "tiny",
        "data.init_args.download": False,
        "data.init_args.batch_size": 32,
        "trainer.max_epochs": 1,
        "trainer.limit_train_batches": 2,
        "trainer.accelerator": "cpu",
        "trainer.default_root_dir": str(tmp_path),
        "trainer.enable_progress_bar": False,
        "trainer.logger": False,
        "model.init_args.bits": 16,
        "seed_everything": 3,
    }


def _without_config_key(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "config"}


def test_resolves_to_what_hashbench_fit_resolves(fashion_mnist_root: Path, tmp_path: Path) -> None:
    """The bench's API and the CLI share one argument space: the same inputs, the same dict."""
    from hashbench.lightning_cli import HashbenchCLI

    argv = [
        "--config", str(METHOD),
        *fixture_data_args(fashion_mnist_root),
        "--config", str(TRAINER),
        *quick_trainer_args(tmp_path),
        "--model.init_args.bits", "16",
        "--seed_everything", "3",
    ]  # fmt: skip
    cli = HashbenchCLI(args=argv, run=False)
    api = training.resolve_config([METHOD, DATA, TRAINER], _overrides(fashion_mnist_root, tmp_path))
    assert _without_config_key(api) == _without_config_key(cli.config.as_dict())
    assert api["config"] == [str(METHOD), str(DATA), str(TRAINER)]


def test_overrides_are_typed_values_applied_in_order(tmp_path: Path) -> None:
    config = training.resolve_config(
        [METHOD, DATA],
        {"model.init_args.bits": 64, "trainer.max_epochs": 2, "model.init_args.optim.lr": 0.5},
    )
    assert config["model"]["init_args"]["bits"] == 64
    assert config["trainer"]["max_epochs"] == 2
    assert config["model"]["init_args"]["optim"]["lr"] == 0.5
    assert config["model"]["init_args"]["optim"]["name"] == "adam"  # the rest of `optim` stays
    later = training.resolve_config(
        [METHOD, DATA],
        {"model.init_args.optim": {"name": "sgd", "lr": 0.1}, "model.init_args.optim.lr": 0.7},
    )
    assert later["model"]["init_args"]["optim"]["name"] == "sgd"
    assert later["model"]["init_args"]["optim"]["lr"] == 0.7


def test_trainer_defaults_apply_without_a_trainer_config() -> None:
    config = training.resolve_config([METHOD, DATA])
    for dotted, value in training.TRAINER_DEFAULTS.items():
        assert config["trainer"][dotted.split(".", 1)[1]] == value


def test_bad_inputs_name_the_file_or_the_key(tmp_path: Path) -> None:
    with pytest.raises(training.TrainingConfigError, match="nope.yaml not found"):
        training.resolve_config([tmp_path / "nope.yaml"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(training.TrainingConfigError, match="bad.yaml: not valid YAML"):
        training.resolve_config([bad])
    with pytest.raises(training.TrainingConfigError, match="override model.init_args.no_such_arg"):
        training.resolve_config([METHOD, DATA], {"model.init_args.no_such_arg": 1})
    with pytest.raises(training.TrainingConfigError, match="override model.init_args.bits"):
        training.resolve_config([METHOD, DATA], {"model.init_args.bits": "many"})


def test_build_is_seeded_and_uses_the_config(fashion_mnist_root: Path, tmp_path: Path) -> None:
    config = training.resolve_config([METHOD, DATA], _overrides(fashion_mnist_root, tmp_path))
    a = training.build(config)
    b = training.build(config)
    assert a.model.bits == 16 and a.trainer.max_epochs == 1
    assert a.datamodule.protocol.name == "tiny"
    for (name, pa), (_, pb) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert torch.equal(pa, pb), name  # same seed_everything, same initial weights
    other = training.build({**config, "seed_everything": 4})
    assert not all(
        torch.equal(pa, pb)
        for pa, pb in zip(a.model.parameters(), other.model.parameters(), strict=True)
    )


def test_build_trains(fashion_mnist_root: Path, tmp_path: Path) -> None:
    run = training.build(
        training.resolve_config([METHOD, DATA], _overrides(fashion_mnist_root, tmp_path))
    )
    run.trainer.fit(run.model, datamodule=run.datamodule)
    assert run.trainer.current_epoch == 1
    assert run.trainer.checkpoint_callback.best_model_score is not None


def test_build_refuses_lightning_optimizer_groups(fashion_mnist_root: Path, tmp_path: Path) -> None:
    config = training.resolve_config([METHOD, DATA], _overrides(fashion_mnist_root, tmp_path))
    config["optimizer"] = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}}
    with pytest.raises(training.TrainingConfigError, match="model.init_args.optim"):
        training.build(config)


def test_data_config_alone_matches_the_training_config(fashion_mnist_root: Path) -> None:
    overrides = {"data.init_args.root": str(fashion_mnist_root), "data.init_args.protocol": "tiny"}
    data = training.resolve_data_config(DATA, overrides)
    full = training.resolve_config([METHOD, DATA], overrides)
    assert data == full["data"]
    dm = training.build_datamodule(data)
    assert type(dm).__name__ == "FashionMNISTDataModule" and dm.protocol.name == "tiny"


def test_nest() -> None:
    assert training.nest({"a.b.c": 1, "a.d": 2, "e": 3}) == {"a": {"b": {"c": 1}, "d": 2}, "e": 3}
    assert training.nest({"a": 1, "a.b": 2}) == {"a": {"b": 2}}
