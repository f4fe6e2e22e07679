"""The `hashbench` command: help, light startup, and a fit/test smoke run per registered method."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hashbench.cli import LIGHTNING_SUBCOMMANDS, main
from hashbench.methods import METHODS
from tests.fixtures import fixture_data_args, quick_trainer_args

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_subcommands(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in LIGHTNING_SUBCOMMANDS:
        assert name in out


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys; from hashbench.cli import main; main(['--help']);"
        "heavy = [m for m in ('torch', 'lightning', 'faiss', 'pandas') if m in sys.modules];"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def test_unknown_subcommand_exits_2(capsys) -> None:
    assert main(["frobnicate"]) == 2
    assert "unknown subcommand" in capsys.readouterr().err


@pytest.mark.parametrize("key", sorted(METHODS))
def test_fit_then_test_one_step(key: str, fashion_mnist_root: Path, tmp_path: Path) -> None:
    method = ["--config", str(REPO / f"configs/methods/{key}.yaml"), "--model.init_args.bits", "16"]
    assert (
        main(
            ["fit", *method, *fixture_data_args(fashion_mnist_root), *quick_trainer_args(tmp_path)]
        )
        == 0
    )
    ckpts = sorted(tmp_path.rglob("*.ckpt"))
    assert ckpts, "fit wrote no checkpoint"
    best = next(c for c in ckpts if c.name != "last.ckpt")
    assert "valmAP" in best.name
    assert (
        main(
            [
                "test",
                *method,
                *fixture_data_args(fashion_mnist_root),
                *quick_trainer_args(tmp_path),
                "--ckpt_path",
                str(best),
            ]
        )
        == 0
    )


def test_print_config_composes(fashion_mnist_root: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(
            [
                "fit",
                "--config",
                str(REPO / "configs/methods/dsh.yaml"),
                *fixture_data_args(fashion_mnist_root),
                "--model.init_args.bits",
                "64",
                "--print_config",
            ]
        )
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "bits: 64" in out and "FashionMNISTDataModule" in out and "seed_everything: 0" in out


def test_bad_bits_fails_at_configuration(fashion_mnist_root: Path, tmp_path: Path, capsys) -> None:
    argv = [
        "fit",
        "--config",
        str(REPO / "configs/methods/dsh.yaml"),
        "--model.init_args.bits",
        "12",
        *fixture_data_args(fashion_mnist_root),
        *quick_trainer_args(tmp_path),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hashbench fit: error: bits=12 is not a valid code length")
    assert "Union subtypes" not in err and "NoneType" not in err and "Traceback" not in err
    assert not list(tmp_path.rglob("*.ckpt"))  # nothing was trained
    with pytest.raises(ValueError, match="multiple of 8"):
        main([*argv, "--debug"])  # --debug: the exception and its traceback


def test_typed_model_keys() -> None:
    from hashbench.lightning_cli import typed_model_keys

    argv = [
        "--config", "x.yaml", "--model.init_args.rerank", "10", "--model.bits=16",
        "--model.init_args.optim.lr", "0.1", "--model.class_path", "A", "--data.init_args.seed", "1",
    ]  # fmt: skip
    assert typed_model_keys(argv) == [
        "model.init_args.rerank",
        "model.init_args.bits",
        "model.init_args.optim",
    ]


def test_typed_model_flag_beats_checkpoint_hparams(
    fashion_mnist_root: Path, tmp_path: Path
) -> None:
    """Lightning puts the checkpoint's hyper-parameters over the config; a typed flag wins again."""
    from hashbench.lightning_cli import HashbenchCLI

    method = ["--config", str(REPO / "configs/methods/knngan_nogan.yaml")]
    common = [*method, *fixture_data_args(fashion_mnist_root), *quick_trainer_args(tmp_path)]
    assert (
        main(["fit", *common, "--model.init_args.bits", "16", "--model.init_args.rerank", "5"]) == 0
    )
    best = next(c for c in sorted(tmp_path.rglob("*.ckpt")) if c.name != "last.ckpt")
    test = ["test", *common, "--ckpt_path", str(best)]
    assert HashbenchCLI(args=test).model.rerank == 5  # checkpoint over the file's 0
    assert HashbenchCLI(args=[*test, "--model.init_args.rerank", "7"]).model.rerank == 7
    assert HashbenchCLI(args=test).model.bits == 16  # the file says 32: the checkpoint wins
