"""Shared pytest fixtures: tiny generated datasets in the real on-disk formats (tests/fixtures.py).

The ``*_root`` fixtures are session-scoped and shared: treat them as read-only (DataModules may
write ``splits/`` under them). A test that corrupts or deletes files must generate its own copy
with the ``make_*`` functions in ``tmp_path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from tests.fixtures import (  # noqa: E402
    ImageListFixture,
    make_cifar10,
    make_idx_dataset,
    make_image_folder,
    make_image_list,
)


@pytest.fixture(scope="session")
def fashion_mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fashion-MNIST-format IDX files (gzip), 60 train + 12 test per class, 10 classes."""
    return make_idx_dataset(tmp_path_factory.mktemp("fashion-mnist"), gz=True, seed=1)


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MNIST-format IDX files (uncompressed), 60 train + 12 test per class, 10 classes."""
    return make_idx_dataset(tmp_path_factory.mktemp("mnist"), gz=False, seed=2)


@pytest.fixture(scope="session")
def cifar10_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding ``cifar-10-batches-py`` (60 train + 12 test per class)."""
    return make_cifar10(tmp_path_factory.mktemp("cifar10"), seed=3)


@pytest.fixture(scope="session")
def image_list_dataset(tmp_path_factory: pytest.TempPathFactory) -> ImageListFixture:
    """Multi-label (5 labels) PNG images with ``train.txt`` / ``test.txt`` / ``all.txt`` lists."""
    return make_image_list(tmp_path_factory.mktemp("image-list"), seed=4)


@pytest.fixture(scope="session")
def image_list_root(image_list_dataset: ImageListFixture) -> Path:
    """Root of :func:`image_list_dataset`; the lists ``train.txt``, ``test.txt``, ``all.txt``."""
    return image_list_dataset.root


@pytest.fixture(scope="session")
def image_folder_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``root/{train,test}/<class>/*.png``, 5 classes, 60 train + 12 test per class."""
    return make_image_folder(tmp_path_factory.mktemp("image-folder"), seed=5)


@pytest.fixture(scope="session")
def svhn_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SVHN ``train_32x32.mat`` / ``test_32x32.mat`` (60 train + 12 test per digit; 10 = digit 0)."""
    from tests.fixtures import make_svhn

    return make_svhn(tmp_path_factory.mktemp("svhn"), seed=6)


@pytest.fixture(scope="session")
def nus_wide_dataset(tmp_path_factory: pytest.TempPathFactory):
    """Tiny NUS-WIDE in the distributed layout: 6 concepts x 90 images, 3 missing, 2 unlabelled."""
    from tests.fixtures import make_nus_wide

    return make_nus_wide(tmp_path_factory.mktemp("nus-wide"), seed=7)
