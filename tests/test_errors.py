"""What a user sees when something is wrong: one message and an exit code, no traceback (unless
asked), Ctrl+C as 130, a metric table without repeated columns, split sizes before training, and
documentation that stays inside the repository."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hashbench.bench import cli as bench_cli
from hashbench.cli import main
from tests.fixtures import fixture_data_args, make_image_folder, quick_trainer_args

REPO = Path(__file__).resolve().parents[1]
DSH = ["--config", str(REPO / "configs/methods/dsh.yaml"), "--model.init_args.bits", "16"]


def _one_block(err: str, subcommand: str) -> str:
    """The error block: starts with ``hashbench <sub>: error:``, no traceback; returns it."""
    start = err.index(f"hashbench {subcommand}: error: ")
    block = err[start:]
    assert "Traceback" not in err and 'File "' not in err
    assert block.rstrip().endswith("HASHBENCH_DEBUG=1 shows the traceback)")
    return block


def test_missing_data_is_one_message(tmp_path: Path, capfd) -> None:
    argv = ["fit", *DSH, "--config", str(REPO / "configs/data/image_folder.yaml")]
    argv += ["--data.init_args.root", str(tmp_path / "nowhere"), *quick_trainer_args(tmp_path)]
    assert main(argv) == 2
    block = _one_block(capfd.readouterr().err, "fit")
    assert "nowhere does not exist" in block and "<root>/<class>/<image files>" in block


def test_unknown_method_config_lists_the_methods(fashion_mnist_root: Path, capfd) -> None:
    argv = ["fit", "--config", str(REPO / "configs/methods/foo.yaml")]
    assert main([*argv, *fixture_data_args(fashion_mnist_root)]) == 2
    block = _one_block(capfd.readouterr().err, "fit")
    assert "foo.yaml does not exist" in block and "dsh" in block and "knngan" in block


def test_unknown_option_is_one_message(fashion_mnist_root: Path, capfd) -> None:
    argv = ["fit", *DSH, "--model.init_args.bitz", "16", *fixture_data_args(fashion_mnist_root)]
    assert main(argv) == 2
    block = _one_block(capfd.readouterr().err, "fit")
    assert "Option 'bitz' is not accepted" in block and "hashbench fit --help" in block
    assert "usage:" not in block and "NoneType" not in block


def test_zero_epochs_with_test_after_fit_says_why(
    fashion_mnist_root: Path, tmp_path: Path, capfd
) -> None:
    argv = ["fit", *DSH, *fixture_data_args(fashion_mnist_root), *quick_trainer_args(tmp_path)]
    assert main([*argv, "--trainer.max_epochs", "0", "--test_after_fit", "true"]) == 2
    block = _one_block(capfd.readouterr().err, "fit")
    assert "--trainer.max_epochs 0 trains nothing" in block and "ModelCheckpoint" not in block


def test_debug_environment_variable_shows_the_traceback(
    fashion_mnist_root: Path, monkeypatch
) -> None:
    monkeypatch.setenv("HASHBENCH_DEBUG", "1")
    with pytest.raises(ValueError, match="multiple of 8"):
        main(
            [
                "baseline",
                "--baseline",
                "lsh",
                "--bits",
                "12",
                *fixture_data_args(fashion_mnist_root),
            ]
        )


def test_a_bug_keeps_its_traceback(monkeypatch) -> None:
    import hashbench.commands as commands

    def broken(argv):
        raise RuntimeError("a bug")

    monkeypatch.setattr(commands, "encode_main", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["encode"])


def test_fit_prints_split_sizes_and_one_test_table(
    fashion_mnist_root: Path, tmp_path: Path, capfd
) -> None:
    argv = ["fit", *DSH, *fixture_data_args(fashion_mnist_root), *quick_trainer_args(tmp_path)]
    assert main([*argv, "--test_after_fit", "true"]) == 0
    out = capfd.readouterr().out
    summary = out.index("720 images, 10 classes, 28 px")
    assert re.search(r"split: train 500, .*query 100, database 620", out)
    assert summary < out.index("best checkpoint")  # before training ends
    assert "DataLoader 0" not in out and "DataLoader 1" not in out
    table = [line for line in out.splitlines() if line.startswith("test/mAP@all")]
    assert len(table) == 1 and len(table[0].split()) == 2  # one value column


# -- Ctrl+C ----------------------------------------------------------------------------------------


@pytest.fixture
def sigint_default():
    """Python's own Ctrl+C handler, whatever the test runner inherited (a job started in the
    background of a non-interactive shell starts with SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _lightning_style(*args, **kwargs):
    """A real SIGINT, handled as Lightning handles a Ctrl+C during training: caught, exit(1)."""
    try:
        signal.raise_signal(signal.SIGINT)
        time.sleep(30)  # the handler interrupts this at once
        raise AssertionError("no KeyboardInterrupt")  # pragma: no cover
    except KeyboardInterrupt:
        sys.exit(1)


def _plain(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("run", [_plain, _lightning_style])
def test_ctrl_c_on_bench_exits_130_not_1(monkeypatch, run, sigint_default) -> None:
    import hashbench.bench.sweep as sweep

    monkeypatch.setattr(sweep, "run_benchmark", run)
    assert bench_cli.bench_main(["--config", "benchmarks/fashion-mnist.yaml"]) == 130
    assert main(["bench", "--config", "benchmarks/fashion-mnist.yaml"]) == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_ctrl_c_during_fit_exits_130(monkeypatch, sigint_default) -> None:
    import hashbench.lightning_cli as lightning_cli

    monkeypatch.setattr(lightning_cli, "HashbenchCLI", _lightning_style)
    assert main(["fit"]) == 130


# -- make, documentation ----------------------------------------------------------------------------


def test_make_train_with_an_unknown_method_lists_the_methods() -> None:
    done = subprocess.run(
        ["make", "-n", "train", "METHOD=foo"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "unknown METHOD=foo" in done.stderr and "dsh" in done.stderr and "wsdh" in done.stderr


def test_nus_wide_layout_texts_name_the_flickr_folder() -> None:
    import yaml

    from hashbench.data.nus_wide import LAYOUT

    layout = yaml.safe_load((REPO / "benchmarks/nus-wide.yaml").read_text())["data"]["layout"]
    for text in (layout, LAYOUT):
        assert "Flickr/<category>/" in text
        assert "images/" not in text.replace("<image>", "")


def test_exit_codes_are_documented() -> None:
    readme = (REPO / "README.md").read_text()
    bench = (REPO / "docs/bench.md").read_text()
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 130 |"):
        assert code in readme
    assert "130 when interrupted" in bench and "HASHBENCH_DEBUG=1" in readme


def _markdown_links(text: str) -> list[str]:
    inline = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    reference = re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", text, flags=re.MULTILINE)
    return inline + reference


def test_documentation_links_stay_inside_the_repository() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    outside = []
    for page in pages:
        for target in _markdown_links(page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor on the page
            path = (page.parent / target.split("#")[0]).resolve()
            if REPO.resolve() not in path.parents and path != REPO.resolve():
                outside.append(f"{page.relative_to(REPO)}: {target}")
    assert not outside, outside
    assert "../shared" not in "".join(p.read_text(encoding="utf-8") for p in pages)


# -- bring your own data ----------------------------------------------------------------------------


def test_dsh_learns_an_image_folder_with_the_default_config(tmp_path: Path, capfd) -> None:
    """configs/data/image_folder.yaml as shipped (native size, machine workers) on 5-class, 32 px
    pattern images: four epochs clearly beat chance (mAP about 0.2 for 5 balanced classes)."""
    root = make_image_folder(tmp_path / "images", seed=5)
    argv = ["fit", "--config", str(REPO / "configs/methods/dsh.yaml")]
    argv += ["--config", str(REPO / "configs/data/image_folder.yaml")]
    argv += ["--data.init_args.root", str(root), *quick_trainer_args(tmp_path / "runs")]
    argv += ["--trainer.max_epochs", "4", "--trainer.limit_train_batches", "1.0"]
    assert main([*argv, "--test_after_fit", "true"]) == 0
    out = capfd.readouterr().out
    assert "360 images, 5 classes, 32 px" in out
    value = float(re.search(r"^test/mAP@all\s+([0-9.]+)", out, flags=re.MULTILINE).group(1))
    assert value > 0.5, out[-2000:]
