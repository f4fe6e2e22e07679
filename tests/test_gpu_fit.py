"""`hashbench fit` + test of every registered method on a CUDA device (marked ``gpu``).

The CPU twin is ``tests/test_cli.py::test_fit_then_test_one_step``; this one runs the same short
fit with ``--trainer.accelerator gpu`` and tests the best checkpoint on the device, so a tensor left
on the wrong device in a training, validation or test step fails here. Skipped without CUDA.
ImageNet weights are not assumed: the k-NN features are pixels, the perceptual net random and the
weak tags label-derived (what those arguments change is not what this test is about).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hashbench.cli import main
from hashbench.methods import METHODS
from tests.fixtures import REPO, fixture_data_args, quick_trainer_args

pytestmark = pytest.mark.gpu

#: Per method class, the arguments that keep a fit off ImageNet weight files.
NO_WEIGHTS = {
    "KNNGAN": {
        "knn_features": "pixels",
        "knn_pretrained": "false",
        "perceptual_pretrained": "false",
    },
    "WSDH": {"weak_tags": "synthetic", "stage1_epochs": "1", "stage1_cache": "null"},
}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("key", sorted(METHODS))
def test_fit_then_test_on_cuda(key: str, fashion_mnist_root: Path, tmp_path: Path) -> None:
    if not _cuda():
        pytest.skip("needs a CUDA device")
    method = ["--config", str(REPO / f"configs/methods/{key}.yaml"), "--model.init_args.bits", "16"]
    cls = METHODS.path(key).rsplit(".", 1)[-1]
    for name, value in NO_WEIGHTS.get(cls, {}).items():
        method += [f"--model.init_args.{name}", value]
    args = [
        *method,
        *fixture_data_args(fashion_mnist_root),
        *quick_trainer_args(tmp_path),
        "--trainer.accelerator",
        "gpu",
        "--trainer.devices",
        "1",
    ]
    assert main(["fit", *args, "--test_after_fit", "true"]) == 0
    best = [c for c in tmp_path.rglob("*.ckpt") if c.name != "last.ckpt"]
    assert best, "fit wrote no best checkpoint"
