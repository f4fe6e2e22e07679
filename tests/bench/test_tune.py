"""`hashbench tune`: ranks by held-out val/mAP only, resumes, writes the table and chosen config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hashbench.bench import tune as T
from hashbench.cli import main
from tests.fixtures import REPO

DSH = REPO / "configs/methods/dsh.yaml"
DATA = REPO / "configs/data/fashion_mnist.yaml"


def _argv(root: Path, tmp_path: Path, *grid: str) -> list[str]:
    return [
        "tune",
        "--config", str(DSH),
        "--data", str(DATA),
        "--trainer", "none",
        *(a for g in grid for a in ("--grid", g)),
        "--bits", "16",
        "--max_epochs", "2",
        "--set", f"data.init_args.root={root}",
        "--set", "data.init_args.protocol=tiny",
        "--set", "data.init_args.download=false",
        "--set", "data.init_args.batch_size=32",
        "--set", "trainer.limit_train_batches=2",
        "--set", "trainer.accelerator=cpu",
        "--set", "trainer.logger=false",
        "--report", str(tmp_path / "report"),
        "--out", str(tmp_path / "tuned" / "dsh.yaml"),
        "--runs_dir", str(tmp_path / "runs"),
        "--progress", "false",
    ]  # fmt: skip


def test_tune_ranks_on_validation_and_resumes(
    fashion_mnist_root: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    from hashbench.data.base import HashDataModule

    seen: list[str] = []
    original = HashDataModule.dataloader

    def spy(self, split, train=False):
        seen.append(split)
        return original(self, split, train)

    monkeypatch.setattr(HashDataModule, "dataloader", spy)
    argv = _argv(fashion_mnist_root, tmp_path, "alpha=0.0,0.5", "optim.lr=[0.001]")
    assert main(argv) == 0
    assert set(seen) == {"train", "val_query", "val_database"}  # never query nor database
    table = (tmp_path / "report" / "tune.md").read_text()
    assert "| rank | alpha | optim.lr | val/mAP (mean) |" in table
    records = sorted((tmp_path / "report" / "records").glob("*.json"))
    assert len(records) == 2
    rows = [
        line for line in table.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")
    ]
    scores = [float(r.split("|")[4]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    chosen = yaml.safe_load((tmp_path / "tuned" / "dsh.yaml").read_text())
    winner = rows[0].split("|")[2].strip()
    assert chosen["model"]["init_args"]["alpha"] == float(winner)
    assert chosen["model"]["class_path"] == "hashbench.methods.dsh.DSH"
    assert (tmp_path / "report" / "tune.csv").read_text().startswith("rank,alpha,optim.lr,")

    def no_training(*args, **kwargs):
        raise AssertionError("a recorded candidate must not be trained again")

    monkeypatch.setattr(T, "run_candidate", no_training)
    assert main(argv) == 0
    assert "2 recorded, 0 to train" in capsys.readouterr().out


def test_unknown_argument_lists_the_method_arguments(tmp_path: Path, capsys) -> None:
    assert main(_argv(tmp_path, tmp_path, "no_such=1,2")) == 2
    err = capsys.readouterr().err
    assert "hashbench.methods.dsh.DSH has no argument 'no_such'" in err
    assert "margin" in err and "alpha" in err


def test_empty_grid_and_bad_items(tmp_path: Path, capsys) -> None:
    assert main(_argv(tmp_path, tmp_path)) == 2
    assert "empty grid" in capsys.readouterr().err
    with pytest.raises(T.TuneError, match="expected name=value"):
        T.parse_grid(["margin"])
    with pytest.raises(T.TuneError, match="no values"):
        T.parse_grid(["margin="])


def test_grid_and_list_modes() -> None:
    grid = T.parse_grid(["margin=8,16", "optim.lr=[0.1, 0.01]", "trainer.max_epochs=3"])
    assert grid == {
        "model.init_args.margin": [8, 16],
        "model.init_args.optim.lr": [0.1, 0.01],
        "trainer.max_epochs": [3],
    }
    assert len(T.candidates(grid)) == 4
    paired = T.candidates({"a.b": [1, 2], "a.c": [3, 4]}, mode="list")
    assert [c.as_dict() for c in paired] == [{"a.b": 1, "a.c": 3}, {"a.b": 2, "a.c": 4}]
    with pytest.raises(T.TuneError, match="one length"):
        T.candidates({"a.b": [1, 2], "a.c": [3]}, mode="list")
