"""Bad weak-tag input as a user meets it (issue #20): through `hashbench fit` and `hashbench bench`.

- the classifier tag source without the EfficientNet-Lite0 weights names the extra to install and
  the label-derived alternative (``weak_tags: synthetic``);
- a NUS-WIDE tag file whose line count differs from the image list names both counts and the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hashbench.cli import main
from tests.fixtures import (
    REPO,
    fixture_data_args,
    make_idx_dataset,
    make_nus_wide,
    quick_trainer_args,
)


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int | None, str]:
    """``hashbench <argv>``: (exit code or ``None`` when it raised, the error text shown)."""
    try:
        rc = main(argv)
    except Exception as e:  # noqa: BLE001 - a traceback is shown: its last line is the message
        return None, f"{type(e).__name__}: {e}"
    captured = capsys.readouterr()
    return rc, captured.err + captured.out


def test_fit_without_classifier_weights_names_the_extra_and_synthetic_tags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import hashbench.models.backbones as bb

    def no_weights(name, weights_dir=None):
        raise FileNotFoundError(f"ImageNet weights for backbone {name!r} not found")

    monkeypatch.setattr(bb, "find_weights", no_weights)
    root = make_idx_dataset(tmp_path / "fmnist", gz=True, seed=4)  # no tags: classifier source
    args = [
        "fit",
        "--config", str(REPO / "configs/methods/wsdh.yaml"),
        "--model.init_args.bits", "16",
        "--model.init_args.weak_tags", "classifier",
        "--model.init_args.stage1_cache", str(tmp_path / "stage1"),
        *fixture_data_args(root),
        *quick_trainer_args(tmp_path / "out"),
    ]  # fmt: skip
    rc, msg = _run(args, capsys)
    assert rc == 2  # a user error: one message, exit 2, no traceback
    assert "Traceback" not in msg
    assert "pip install -e '.[efficientnet]'" in msg  # the extra to install
    assert "weak_tags synthetic" in msg and "label-derived" in msg  # the alternative, marked
    assert "not found" in msg  # the cause
    assert not list((root / "tags").rglob("*.npz"))  # no half-made prediction cache
    assert not list((tmp_path / "stage1").glob("*.pt"))  # stage 1 never ran


def _nus_grid(path: Path, root: Path) -> Path:
    import yaml

    from tests.bench.conftest import TINY_PROFILE

    grid = yaml.safe_load((REPO / "benchmarks/nus-wide.yaml").read_text())
    grid["data"]["config"] = str(REPO / grid["data"]["config"])
    grid["data"]["args"] = {"root": str(root), "image_size": 32, "num_workers": 0}
    grid.update(protocol="tiny", methods=["wsdh"], bits=[16], seeds=[0])
    grid["baselines"] = {"features": "pixels", "pretrained": False}
    grid["profiles"] = {"default": TINY_PROFILE}
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


@pytest.mark.parametrize("change", [-2, 3])
def test_bench_tag_file_line_count_names_both_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture, change: int
) -> None:
    fx = make_nus_wide(tmp_path / "nus", per_concept=10, num_concepts=3, missing=0, bow=False)
    tags = fx.root / "NUS_WID_Tags/All_Tags.txt"
    n_images = len([x for x in (fx.root / "ImageList/Imagelist.txt").read_text().splitlines() if x])
    lines = tags.read_text().splitlines()
    lines = lines[:change] if change < 0 else lines + lines[:change]
    tags.write_text("\n".join(lines) + "\n")
    grid = _nus_grid(tmp_path / "grid.yaml", fx.root)
    argv = ["bench", "--config", str(grid), "--results", str(tmp_path / "results")]
    argv += ["--runs_dir", str(tmp_path / "runs"), "--progress", "false"]
    rc, msg = _run(argv, capsys)
    assert rc != 0
    assert f"has {n_images + change} lines" in msg and f"lists {n_images} images" in msg
    assert str(tags) in msg and "Imagelist.txt" in msg
    assert not list((tmp_path / "results").rglob("*.json.gz"))  # nothing was recorded
