"""Tiny datasets written in the real on-disk formats, for tests and CLI smoke runs.

Every generator writes ``n_train_per_class`` training-side and ``n_test_per_class`` test-side items
per class (defaults 60 and 12: enough for the ``tiny`` protocol's 50 train / 10 query per class) and
returns the folder to pass as a DataModule's ``root``. Images are seeded noise with one bright block
per label at a class-dependent grid cell (:func:`pattern_images`), so a model can learn the classes
and a test can check that images and labels stay aligned (:func:`pattern_scores`).

Import as ``from tests.fixtures import make_cifar10`` (``tests/conftest.py`` puts the repository
root on ``sys.path``); the pytest fixtures are in ``tests/conftest.py``.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from hashbench.data.idx import write_idx

IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR10_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
# Written in this (unsorted) order; the loader sorts them: ant, bee, cat, dog, eel, ...
FOLDER_CLASSES = ("eel", "cat", "ant", "dog", "bee", "fox", "gnu", "hen", "ibis", "jay")


# -- images ---------------------------------------------------------------------------------------
def _grid(num_classes: int, size: int) -> tuple[int, int, int]:
    g = math.ceil(math.sqrt(num_classes))
    cell = size // g
    if cell < 4:
        raise ValueError(f"{num_classes} classes need images of at least {4 * g} px, got {size}")
    return g, cell, max(1, cell // 4)


def pattern_images(labels: np.ndarray, size: int, channels: int, seed: int = 0) -> np.ndarray:
    """``uint8 (n, channels, size, size)`` noise images with a bright block per label.

    Class ``c`` owns cell ``c`` of a ``ceil(sqrt(C))`` square grid; its block fills the cell minus
    a margin, jittered by up to one pixel; the background is uniform noise in ``[0, 80)``.

    Args:
        labels: multi-hot ``(n, C)`` labels (or ``(n,)`` class indices, taken as ``C = max + 1``).
        size: image side.
        channels: 1 (grey) or 3 (RGB; each class has its own tint).
        seed: noise seed.
    """
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = np.eye(int(labels.max()) + 1, dtype=np.uint8)[labels]
    n, num_classes = labels.shape
    g, cell, margin = _grid(num_classes, size)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 80, size=(n, channels, size, size), dtype=np.uint8)
    jitter = (
        rng.integers(-1, 2, size=(n, num_classes, 2))
        if margin > 1
        else np.zeros((n, num_classes, 2), dtype=int)
    )
    for i, c in zip(*np.nonzero(labels), strict=True):
        y0 = (c // g) * cell + margin + jitter[i, c, 0]
        x0 = (c % g) * cell + margin + jitter[i, c, 1]
        colour = np.full(channels, 210, dtype=np.uint8)
        if channels == 3:
            colour[c % 3] = 255
            colour[(c + 1) % 3] = 180 + (c * 23) % 70
        images[i, :, y0 : y0 + cell - 2 * margin, x0 : x0 + cell - 2 * margin] = colour[
            :, None, None
        ]
    return images


def pattern_scores(images: np.ndarray, num_classes: int) -> np.ndarray:
    """``(n, C)`` mean brightness of each class's cell core: high where the image has that label."""
    images = np.asarray(images, dtype=np.float64)
    size = images.shape[-1]
    g, cell, margin = _grid(num_classes, size)
    lo, hi = margin + 1, cell - margin - 1
    out = np.empty((len(images), num_classes))
    for c in range(num_classes):
        y, x = (c // g) * cell, (c % g) * cell
        out[:, c] = images[:, :, y + lo : y + hi, x + lo : x + hi].mean(axis=(1, 2, 3))
    return out


def _side_labels(n_per_class: int, num_classes: int) -> np.ndarray:
    """Class indices ``0, 1, ..., C-1, 0, 1, ...``: exactly ``n_per_class`` of each."""
    return np.tile(np.arange(num_classes), n_per_class)


def _multi_hot(
    primary: np.ndarray, num_classes: int, multi_label: bool, rng: np.random.Generator
) -> np.ndarray:
    """One-hot of ``primary``; with ``multi_label`` about 30% also carry ``primary + 1``.

    The extra label never wraps around, so per-class draws (class 0 first) always find
    ``n_per_class`` untaken items of each class.
    """
    y = np.eye(num_classes, dtype=np.uint8)[primary]
    if multi_label:
        extra = (rng.random(len(primary)) < 0.3) & (primary + 1 < num_classes)
        y[np.flatnonzero(extra), primary[extra] + 1] = 1
    return y


def _save_image(path: Path, image: np.ndarray, image_format: str) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    im = Image.fromarray(np.ascontiguousarray(arr))
    if image_format == "jpeg":
        im.save(path, format="JPEG", quality=95)
    else:
        im.save(path, format="PNG")


# -- IDX (Fashion-MNIST, MNIST) --------------------------------------------------------------------
def make_idx_dataset(
    root: str | os.PathLike,
    n_train_per_class: int = 60,
    n_test_per_class: int = 12,
    gz: bool = True,
    num_classes: int = 10,
    seed: int = 0,
) -> Path:
    """Write the four MNIST-format IDX files (28x28 grey) into ``root``; returns ``root``.

    Files: ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
    ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``; labels are class indices.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for k, (side, n) in enumerate((("train", n_train_per_class), ("test", n_test_per_class))):
        y = _side_labels(n, num_classes)
        x = pattern_images(np.eye(num_classes, dtype=np.uint8)[y], 28, 1, seed + k)
        img_name, lab_name = IDX_NAMES[side]
        write_idx(root / (img_name + suffix), x[:, 0])
        write_idx(root / (lab_name + suffix), y.astype(np.uint8))
    return root


# -- CIFAR-10 python pickles -----------------------------------------------------------------------
class _Py2StylePickler(pickle._Pickler):
    """Protocol-2 pickler writing ``bytes`` and ``str`` as Python 2 ``str`` (``BINSTRING``) opcodes.

    That is what the official files hold (they were written by Python 2's cPickle): a Python 3
    reader with ``encoding="bytes"`` gets them back as ``bytes``.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: bytes | str) -> None:
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def cifar_pickle_bytes(obj: object) -> bytes:
    """Pickle like the official files: protocol 2, Python 2 strings, ``numpy.core.multiarray``."""
    buf = io.BytesIO()
    _Py2StylePickler(buf, protocol=2).dump(obj)
    return buf.getvalue().replace(
        b"cnumpy._core.multiarray\n_reconstruct\n", b"cnumpy.core.multiarray\n_reconstruct\n"
    )


def make_cifar10(
    root: str | os.PathLike,
    n_train_per_class: int = 60,
    n_test_per_class: int = 12,
    seed: int = 0,
    nested: bool = True,
    meta: bool = True,
) -> Path:
    """Write CIFAR-10's python pickles; returns the folder to pass as ``root``.

    Writes ``data_batch_1..5`` (the training items spread over them), ``test_batch`` and
    ``batches.meta`` with the official keys (``b"data"`` ``uint8 (n, 3072)`` as R, G, B planes,
    ``b"labels"`` list of ints, ``b"filenames"``, ``b"batch_label"``; ``b"label_names"``).

    Args:
        root: where to write.
        n_train_per_class: training items per class (over the five batches).
        n_test_per_class: test items per class.
        seed: image noise seed.
        nested: write into ``root/cifar-10-batches-py`` (as the archive unpacks), else ``root``.
        meta: write ``batches.meta``.
    """
    root = Path(root)
    folder = root / "cifar-10-batches-py" if nested else root
    folder.mkdir(parents=True, exist_ok=True)
    y_train = _side_labels(n_train_per_class, 10)
    y_test = _side_labels(n_test_per_class, 10)
    x_train = pattern_images(y_train, 32, 3, seed).reshape(len(y_train), 3072)
    x_test = pattern_images(y_test, 32, 3, seed + 1).reshape(len(y_test), 3072)
    batches = [
        (f"data_batch_{i + 1}", f"training batch {i + 1} of 5", part)
        for i, part in enumerate(np.array_split(np.arange(len(y_train)), 5))
    ]
    for name, batch_label, part in [*batches, ("test_batch", "testing batch 1 of 1", None)]:
        x, y = (x_test, y_test) if part is None else (x_train[part], y_train[part])
        obj = {
            b"batch_label": batch_label.encode(),
            b"labels": [int(v) for v in y],
            b"data": np.ascontiguousarray(x, dtype=np.uint8),
            b"filenames": [f"{name}_{i:05d}.png".encode() for i in range(len(y))],
        }
        (folder / name).write_bytes(cifar_pickle_bytes(obj))
    if meta:
        (folder / "batches.meta").write_bytes(
            cifar_pickle_bytes(
                {
                    b"num_cases_per_batch": 10000,
                    b"label_names": [n.encode() for n in CIFAR10_NAMES],
                    b"num_vis": 3072,
                }
            )
        )
    return root


# -- image lists -----------------------------------------------------------------------------------
@dataclass
class ImageListFixture:
    """What :func:`make_image_list` wrote.

    Attributes:
        root: the image folder (pass as ``root``); the lists are in it too.
        train_list: path of the training list (``root/train.txt``).
        test_list: path of the test list (``root/test.txt``).
        list_file: path of a single list with every line (``root/all.txt``).
        paths: side -> relative paths as written in the list (before ``\\`` normalisation).
        labels: side -> multi-hot labels, aligned with ``paths``.
        missing: relative paths (normalised) listed but never written.
    """

    root: Path
    train_list: Path
    test_list: Path
    list_file: Path
    paths: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def make_image_list(
    root: str | os.PathLike,
    n_train_per_class: int = 60,
    n_test_per_class: int = 12,
    num_classes: int = 5,
    image_size: int = 32,
    multi_label: bool = True,
    image_format: Literal["png", "jpeg"] = "png",
    windows_paths: bool = False,
    missing: int = 0,
    seed: int = 0,
) -> ImageListFixture:
    """Write RGB image files and DeepHash-style list files (``path 0 1 0 ...``).

    Images go to ``root/images/<side>/<i>_c<class>.<ext>``; the lists are ``root/train.txt``,
    ``root/test.txt`` and ``root/all.txt`` (both sides in one file).

    Args:
        root: the image folder to create.
        n_train_per_class: training items per (primary) class.
        n_test_per_class: test items per (primary) class.
        num_classes: label vector length.
        image_size: image side in pixels.
        multi_label: about 30% of items also carry the next class's label.
        image_format: ``png`` or ``jpeg``.
        windows_paths: write the list paths with ``\\`` separators.
        missing: extra training lines whose image files are not written (beyond the per-class
            counts, so the ``tiny`` protocol still fits).
        seed: image and label seed.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    ext = "jpg" if image_format == "jpeg" else "png"
    out = ImageListFixture(root, root / "train.txt", root / "test.txt", root / "all.txt")
    lines: dict[str, list[str]] = {}
    for k, (side, n) in enumerate((("train", n_train_per_class), ("test", n_test_per_class))):
        primary = _side_labels(n, num_classes)
        if side == "train" and missing:
            primary = np.concatenate([primary, np.arange(missing) % num_classes])
        y = _multi_hot(primary, num_classes, multi_label, rng)
        images = pattern_images(y, image_size, 3, seed + 1 + k)
        rel = [f"images/{side}/{i:04d}_c{c}.{ext}" for i, c in enumerate(primary)]
        for i, r in enumerate(rel):
            if side == "train" and i >= len(rel) - missing:
                out.missing.append(r)
                continue
            _save_image(root / r, images[i], image_format)
        written = [r.replace("/", "\\") for r in rel] if windows_paths else rel
        lines[side] = [f"{p} {' '.join(map(str, row))}" for p, row in zip(written, y, strict=True)]
        out.paths[side], out.labels[side] = written, y
    out.train_list.write_text("\n".join(lines["train"]) + "\n")
    out.test_list.write_text("\n".join(lines["test"]) + "\n")
    out.list_file.write_text("\n".join(lines["train"] + lines["test"]) + "\n")
    return out


# -- image folders ---------------------------------------------------------------------------------
def make_image_folder(
    root: str | os.PathLike,
    n_train_per_class: int = 60,
    n_test_per_class: int = 12,
    num_classes: int = 5,
    image_size: int = 32,
    layout: Literal["train_test", "flat"] = "train_test",
    image_format: Literal["png", "jpeg"] = "png",
    seed: int = 0,
) -> Path:
    """Write ``root/{train,test}/<class>/<i>.<ext>`` (or ``root/<class>/...`` when ``flat``).

    Class folders are named from :data:`FOLDER_CLASSES` (written out of order); the image pattern
    of a class is its index in *sorted* name order, which is the loader's label index. ``flat``
    puts ``n_train_per_class + n_test_per_class`` images per class in one folder. Returns ``root``.
    """
    if num_classes > len(FOLDER_CLASSES):
        raise ValueError(f"at most {len(FOLDER_CLASSES)} classes")
    root = Path(root)
    names = list(FOLDER_CLASSES[:num_classes])
    index = {name: i for i, name in enumerate(sorted(names))}
    ext = "jpg" if image_format == "jpeg" else "png"
    sides = (
        [("train", n_train_per_class), ("test", n_test_per_class)]
        if layout == "train_test"
        else [("", n_train_per_class + n_test_per_class)]
    )
    for k, (side, n) in enumerate(sides):
        for name in names:
            c = index[name]
            y = np.zeros((n, num_classes), dtype=np.uint8)
            y[:, c] = 1
            images = pattern_images(y, image_size, 3, seed + 100 * k + c)
            for i in range(n):
                _save_image(root / side / name / f"{i:04d}.{ext}", images[i], image_format)
    return root


# -- SVHN -----------------------------------------------------------------------------------------
def make_svhn(
    root: str | os.PathLike,
    n_train_per_class: int = 60,
    n_test_per_class: int = 12,
    seed: int = 0,
) -> Path:
    """Write SVHN's official cropped-digit MATLAB (v5) files; returns the folder to pass as ``root``.

    Writes ``train_32x32.mat`` and ``test_32x32.mat`` with ``X`` ``uint8 (32, 32, 3, N)`` (height,
    width, RGB, image) and ``y`` ``uint8 (N, 1)`` in 1..10, **10 meaning digit 0** (as the real
    files). The image of digit ``d`` carries the pattern of class ``d`` (:func:`pattern_images`),
    so a loader that forgets the 10 -> 0 mapping is caught by :func:`pattern_scores`.

    Args:
        root: where to write.
        n_train_per_class: training items per digit.
        n_test_per_class: test items per digit.
        seed: image noise seed.
    """
    import scipy.io

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for name, n, s in (
        ("train_32x32.mat", n_train_per_class, seed),
        ("test_32x32.mat", n_test_per_class, seed + 1),
    ):
        digits = _side_labels(n, 10)
        images = pattern_images(np.eye(10, dtype=np.uint8)[digits], 32, 3, s)  # (N, 3, 32, 32)
        y = np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]
        x = np.ascontiguousarray(images.transpose(2, 3, 1, 0))  # (32, 32, 3, N)
        scipy.io.savemat(root / name, {"X": x, "y": y}, format="5", do_compression=False)
    return root


# -- command lines for CLI tests on the Fashion-MNIST-format fixture --------------------------------

REPO = Path(__file__).resolve().parents[1]


def load_script(relative: str):
    """A repository script (``benchmarks/*.py``, ``scripts/*.py``) imported as a module."""
    import importlib.util

    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fixture_data_args(root: Path) -> list[str]:
    """`hashbench` flags selecting the tiny Fashion-MNIST fixture at ``root`` (protocol ``tiny``)."""
    return [
        "--config", str(REPO / "configs/data/fashion_mnist.yaml"),
        "--data.init_args.root", str(root),
        "--data.init_args.protocol", "tiny",
        "--data.init_args.download", "false",
        "--data.init_args.batch_size", "32",
    ]  # fmt: skip


def quick_trainer_args(root_dir: Path, train_batches: int = 2) -> list[str]:
    """`hashbench fit` flags for one short CPU epoch writing under ``root_dir``, without a logger."""
    return [
        "--trainer.max_epochs", "1",
        "--trainer.limit_train_batches", str(train_batches),
        "--trainer.accelerator", "cpu",
        "--trainer.default_root_dir", str(root_dir),
        "--trainer.enable_progress_bar", "false",
        "--trainer.logger", "false",
    ]  # fmt: skip


# -- NUS-WIDE (the distributed layout) --------------------------------------------------------------
#: the first concepts of NUS-WIDE's Concepts81.txt (the fixture uses the first ``num_concepts``,
#: then ``concept<k>``).
NUS_CONCEPTS = ("airport", "animal", "beach", "bear", "birds", "boats", "book", "bridge")
NUS_NOISE_TAGS = ("nikon", "canon", "2008", "me")


@dataclass
class NUSWIDEFixture:
    """What :func:`make_nus_wide` wrote.

    Attributes:
        root: the dataset folder (pass as ``root``); images under ``root/Flickr``.
        concepts: concept names in ``Concepts81.txt`` order.
        rel_paths: every ``Imagelist.txt`` entry mapped to ``<category>/<file>`` (listed order).
        labels: ``(n_listed, C)`` labels in listed order.
        tags: tag list of each listed image.
        missing: indices (listed order) whose image file was not written.
        unlabelled: indices of images written with no concept.
        test: indices on the official test side.
    """

    root: Path
    concepts: list[str]
    rel_paths: list[str]
    labels: np.ndarray
    tags: list[list[str]]
    missing: list[int]
    unlabelled: list[int]
    test: list[int]


def make_nus_wide(
    root: str | os.PathLike,
    per_concept: tuple[int, ...] | int = 90,
    num_concepts: int = 6,
    test_every: int = 6,
    image_size: int = 32,
    missing: int = 3,
    unlabelled: int = 2,
    link_images: bool = False,
    bow: bool = True,
    seed: int = 0,
) -> NUSWIDEFixture:
    """Write a tiny NUS-WIDE in the distributed layout (see :mod:`hashbench.data.nus_wide`).

    ``per_concept`` images have concept ``c`` as primary label (about 30% also carry ``c + 1``);
    every ``test_every``-th image is on the official test side (``TestImagelist.txt``); ``missing``
    extra listed images are never written; ``unlabelled`` extra images carry no concept. Tags: the
    concept names of the image, a related word ``<concept>_x``, and with probability 0.5 a noise tag
    (:data:`NUS_NOISE_TAGS`). ``Imagelist.txt`` holds Windows paths
    ``C:\\ImageData\\Flickr\\<category>\\<i>_<photo id>.jpg``. ``link_images`` writes one JPEG per
    concept and hard-links the rest (fast, for large split-size fixtures). ``bow`` writes
    ``BoW_int.dat`` (500 counts per image, concept-dependent).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    concepts = [
        NUS_CONCEPTS[k] if k < len(NUS_CONCEPTS) else f"concept{k}" for k in range(num_concepts)
    ]
    counts = (per_concept,) * num_concepts if isinstance(per_concept, int) else per_concept
    primary = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    primary = primary[rng.permutation(len(primary))]
    y = _multi_hot(primary, num_concepts, True, rng)
    n_lab = len(y)
    y = np.concatenate([y, np.zeros((unlabelled + missing, num_concepts), np.uint8)])
    y[n_lab + unlabelled :, 0] = 1  # the missing ones carry a label (so they would be kept)
    n = len(y)
    cat = [concepts[int(primary[i])] if i < n_lab else "misc" for i in range(n)]
    ids = rng.choice(10**9, size=n, replace=False) + 10**9
    rel = [f"{cat[i]}/{i:04d}_{ids[i]}.jpg" for i in range(n)]
    tags: list[list[str]] = []
    for i in range(n):
        t = [concepts[c] for c in np.flatnonzero(y[i])] + [f"{cat[i]}_x"]
        if rng.random() < 0.5:
            t.append(NUS_NOISE_TAGS[rng.integers(len(NUS_NOISE_TAGS))])
        tags.append(t)
    missing_idx = list(range(n_lab + unlabelled, n))
    flickr = root / "Flickr"
    if link_images:
        protos = pattern_images(np.eye(num_concepts + 1, dtype=np.uint8), image_size, 3, seed)
        proto_paths = []
        for c in range(num_concepts + 1):
            p = root / "_proto" / f"{c}.jpg"
            _save_image(p, protos[c], "jpeg")
            proto_paths.append(p)
        for i in range(n):
            if i in missing_idx:
                continue
            dst = flickr / rel[i]
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(proto_paths[int(primary[i]) if i < n_lab else num_concepts], dst)
    else:
        images = pattern_images(y, image_size, 3, seed + 1)
        for i in range(n):
            if i not in missing_idx:
                _save_image(flickr / rel[i], images[i], "jpeg")
    win = [f"C:\\ImageData\\Flickr\\{r.replace('/', chr(92))}" for r in rel]
    test = [i for i in range(n) if i % test_every == 0]
    test_set = set(test)
    (root / "ImageList").mkdir(parents=True, exist_ok=True)
    (root / "ImageList/Imagelist.txt").write_text("\n".join(win) + "\n")
    (root / "ImageList/TrainImagelist.txt").write_text(
        "\n".join(w for i, w in enumerate(win) if i not in test_set) + "\n"
    )
    (root / "ImageList/TestImagelist.txt").write_text("\n".join(win[i] for i in test) + "\n")
    (root / "ConceptsList").mkdir(parents=True, exist_ok=True)
    (root / "ConceptsList/Concepts81.txt").write_text("\n".join(concepts) + "\n")
    label_dir = root / "Groundtruth/AllLabels"
    label_dir.mkdir(parents=True, exist_ok=True)
    for c, name in enumerate(concepts):
        (label_dir / f"Labels_{name}.txt").write_text("\n".join(map(str, y[:, c])) + "\n")
    tag_dir = root / "NUS_WID_Tags"
    tag_dir.mkdir(parents=True, exist_ok=True)
    (tag_dir / "All_Tags.txt").write_text(
        "\n".join(f"{ids[i]}      {' '.join(tags[i])}" for i in range(n)) + "\n"
    )
    vocab = sorted({t for ts in tags for t in ts})
    (tag_dir / "Final_Tag_List.txt").write_text("\n".join(vocab) + "\n")
    (tag_dir / "TagList1k.txt").write_text("\n".join(vocab) + "\n")
    index = {t: k for k, t in enumerate(vocab)}
    m = np.zeros((n, len(vocab)), dtype=np.uint8)
    for i, ts in enumerate(tags):
        m[i, [index[t] for t in ts]] = 1
    (tag_dir / "AllTags1k.txt").write_text("\n".join("\t".join(map(str, r)) for r in m) + "\n")
    if bow:
        (root / "Low_Level_Features").mkdir(parents=True, exist_ok=True)
        words = rng.poisson(1.0, size=(n, 500))
        for c in range(num_concepts):
            words[y[:, c] > 0, c * 20 : c * 20 + 20] += 5
        (root / "Low_Level_Features/BoW_int.dat").write_text(
            "\n".join(" ".join(map(str, r)) for r in words) + "\n"
        )
    return NUSWIDEFixture(
        root, concepts, rel, y, tags, missing_idx, list(range(n_lab, n_lab + unlabelled)), test
    )
