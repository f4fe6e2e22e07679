"""Held-out validation end to end: nothing a method trains on - the training loader, knngan's KNN
graph, wsdh's tag pipeline, a baseline's fit - ever holds a val_query (or query) item."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hashbench.data.cifar10 import CIFAR10DataModule
from hashbench.data.fashion_mnist import FashionMNISTDataModule


def _train_indices(dm) -> np.ndarray:
    dm.setup("fit")
    seen = [batch["index"].numpy() for batch in dm.train_dataloader()]
    return np.concatenate(seen)


@pytest.mark.parametrize("kind", ["fashion-mnist", "cifar10"])
def test_no_training_batch_holds_a_held_out_item(
    kind: str, fashion_mnist_root: Path, cifar10_root: Path
) -> None:
    if kind == "fashion-mnist":
        dm = FashionMNISTDataModule(str(fashion_mnist_root), protocol="tiny", download=False)
    else:
        dm = CIFAR10DataModule(str(cifar10_root), protocol="tiny", download=False)
    dm.batch_size = 16
    seen = _train_indices(dm)
    split = dm.split
    assert len(np.intersect1d(seen, split["val_query"])) == 0
    assert len(np.intersect1d(seen, split["query"])) == 0
    assert set(np.unique(seen)) <= set(split["train"])
    # and the validation loaders are the held-out set against val_database
    val_q, val_db = dm.val_dataloader()
    got_q = np.concatenate([b["index"].numpy() for b in val_q])
    np.testing.assert_array_equal(np.sort(got_q), split["val_query"])
    got_db = np.concatenate([b["index"].numpy() for b in val_db])
    np.testing.assert_array_equal(np.sort(got_db), split["val_database"])


def test_knngan_builds_its_graph_from_train_only(fashion_mnist_root: Path) -> None:
    from hashbench.methods.knngan import KNNGAN

    dm = FashionMNISTDataModule(str(fashion_mnist_root), protocol="tiny", download=False)
    model = KNNGAN(bits=16, knn_features="pixels", knn_pretrained=False, lambda1=0.0, lambda2=0.0)
    model.build_neighbourhood_from(dm)
    np.testing.assert_array_equal(model.train_index.numpy(), dm.split["train"])
    assert len(np.intersect1d(model.train_index.numpy(), dm.split["val_query"])) == 0


def test_baselines_fit_on_train_only(fashion_mnist_root: Path, monkeypatch) -> None:
    from hashbench.baselines.evaluate import fit_and_evaluate
    from hashbench.baselines.itq import ITQ

    dm = FashionMNISTDataModule(str(fashion_mnist_root), protocol="tiny", download=False)
    fitted = {}
    original = ITQ.fit

    def spy(self, X, y=None):
        fitted["n"] = len(X)
        return original(self, X, y)

    monkeypatch.setattr(ITQ, "fit", spy)
    fit_and_evaluate("itq", 16, dm)
    assert fitted["n"] == len(dm.split["train"])
