"""WS-KSH: KSH on the features of the WSDH stage-1 network (seed 002).

Hu Qiyao, Yang Haowen, Wang Jiaxin, Peng Xianlin, Wang Sijia, "Research on image retrieval based on
weakly-supervised deep learning", *J. Northwest Univ. (Natural Science)* 50(5), 2020 (METHODS.md
section 2): the network pretrained on weak tags (WSDH stage 1, eq. 3) provides the image features,
and KSH (Liu, Wang, Ji, Jiang, Chang, "Supervised Hashing with Kernels", CVPR 2012;
:class:`~hashbench.baselines.ksh.KSH`) is fitted on them with the labels.

``fit(X, y)`` and ``encode(X)`` are KSH's, on any feature vectors (the :class:`Hasher` contract).
What differs from ``ksh`` is *which* features: this baseline computes its own from the data with
:meth:`WSKSH.input_features` - the smallest hook that lets a baseline choose its inputs.
:func:`hashbench.baselines.evaluate.fit_and_evaluate` (and so every bench cell) calls it when a
hasher has it, instead of using the grid's ``baselines.features``.

The stage-1 network is the file that the deep method ``wsdh`` (or ``wsdrsch``) writes into its
stage-1 cache, ``<data root>/stage1/<dataset>-<bits>b-<hash>.pt``, with a ``.json`` beside it that
names the data key, bits, backbone, tag source and seed it was trained with. Layering: baselines may
not import ``methods/``, so this module reads that file and rebuilds the backbone with
:func:`hashbench.models.backbones.build_backbone` (the backbone's weights are the ``backbone.*``
entries; the hash head is not used).

Resolved:

- ``stage1="auto"`` takes the cache file whose ``.json`` matches the DataModule's ``key``, ``bits``,
  ``backbone`` and ``random_state`` (the sweep's seed, which seeded the ``wsdh`` cell's training),
  the tag kind ``weak_tags`` (a ``classifier`` stage 1 never stands in for a ``synthetic`` one, nor
  the reverse; user tags match either, as ``wsdh`` uses them whenever a dataset has them) and
  ``stage1_epochs``. Their defaults are ``configs/methods/wsdh.yaml``'s, so a grid's ``ws_ksh`` cell
  takes its own ``wsdh`` cell's stage 1; a profile that changes those for ``wsdh`` must change them
  for ``ws_ksh`` too (``benchmarks/fashion-mnist.yaml``'s ``quick`` does). Among several matches
  (other cleaning or Skip-gram settings), the most recently written. None found is an error
  naming the folder and the fix. A bench sweep runs ``ws_ksh`` after the deep cells
  (:func:`hashbench.baselines.builds_on_deep_method`), so in a grid with both ``ws_ksh`` and
  ``wsdh`` it finds the stage 1 that the ``wsdh`` cell has just cached.
- ``stage1=PATH`` uses that file (a stage-1 cache file or a Lightning checkpoint of ``WSDH``).
- The features are the backbone's output before the hash layer (as ``scripts/wsdh_ksh.py``'s
  ``ws-ksh`` row in docs/methods/wsdh.md), computed in eval mode through the backbone's input
  adapter, like :class:`~hashbench.models.features.FeatureCache`.
- KSH settings are KSH's defaults (300 anchors, 2,000 labelled samples), as the plain ``ksh`` cell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np

from hashbench.baselines.ksh import KSH

SPLITS = ("train", "query", "database")


class Stage1NotFoundError(FileNotFoundError):
    """No WSDH stage-1 file matches the data, bits, backbone and seed of a ``ws_ksh`` cell."""


TAG_KINDS = ("classifier", "synthetic")


def _tags_match(tag_source: object, weak_tags: str | None) -> bool:
    """A stage 1's ``tag_source`` is usable for a ``weak_tags`` kind: not the other weak kind."""
    if weak_tags is None:
        return True
    others = [k for k in TAG_KINDS if k != weak_tags]
    return not any(str(tag_source or "").startswith(k) for k in others)


def find_stage1(
    folder: Path,
    data_key: str,
    bits: int,
    backbone: str,
    seed: int,
    weak_tags: str | None = None,
    stage1_epochs: int | None = None,
) -> Path:
    """The newest stage-1 file in ``folder`` whose ``.json`` facts match.

    ``weak_tags`` / ``stage1_epochs`` of ``None`` match any value.

    Raises:
        Stage1NotFoundError: none matches; the message names the folder and how to make one.
    """
    matches = []
    for facts_path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        weights = facts_path.with_suffix(".pt")
        try:
            facts = json.loads(facts_path.read_text())
        except (OSError, ValueError):
            continue
        want = {"data": data_key, "bits": bits, "backbone": backbone, "seed": seed}
        if stage1_epochs is not None:
            want["stage1_epochs"] = stage1_epochs
        if (
            weights.is_file()
            and all(facts.get(k) == v for k, v in want.items())
            and _tags_match(facts.get("tag_source"), weak_tags)
        ):
            matches.append((weights.stat().st_mtime_ns, weights))
    if not matches:
        raise Stage1NotFoundError(
            f"ws_ksh: no WSDH stage-1 network for data {data_key}, {bits} bits, backbone "
            f"{backbone}, seed {seed}, weak_tags {weak_tags}, stage1_epochs {stage1_epochs} in "
            f"{folder} (files <dataset>-<bits>b-<hash>.pt with a .json "
            "beside them). Train one first: run the wsdh cell of the same grid (a bench rerun then "
            "retries ws_ksh) or `hashbench fit --config configs/methods/wsdh.yaml ... "
            f"--model.init_args.bits {bits} --seed_everything {seed}`; or pass stage1=PATH."
        )
    return max(matches)[1]


def load_backbone(path: str | Path, backbone: str):
    """The backbone of a WSDH stage-1 file (or ``WSDH`` checkpoint) and its feature width, eval."""
    import torch

    from hashbench.models.backbones import build_backbone

    obj = torch.load(path, map_location="cpu", weights_only=True)
    state = obj.get("state_dict", obj)
    own = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    net, dim = build_backbone(backbone, False)
    missing = [k for k in net.state_dict() if k not in own]
    if missing:
        raise ValueError(
            f"{path} is not a WSDH stage-1 file of backbone {backbone!r} ({len(missing)} missing "
            f"weights, e.g. {missing[0]}); pass the stage-1 file of a {backbone} wsdh run"
        )
    net.load_state_dict(own)
    return net.eval(), dim


class WSKSH(KSH):
    """WS-KSH (Hu et al., J. Northwest Univ. 2020): KSH on WSDH stage-1 network features.

    Args:
        bits: code length.
        stage1: ``auto`` (the matching file of the ``wsdh`` stage-1 cache) or a stage-1 file path.
        stage1_dir: the cache folder searched by ``auto``; ``None`` = ``<data root>/stage1``.
        backbone: the stage-1 network's backbone.
        weak_tags: the tag kind of the stage 1 ``auto`` takes (``classifier`` or ``synthetic``,
            as ``wsdh``'s argument; ``None`` = any).
        stage1_epochs: the stage-1 length ``auto`` takes (``None`` = any).
        n_anchors, n_labeled, max_opt_iter, sigma, sigma_rule: KSH's (see :class:`KSH`).
        random_state: KSH's seed; also the seed of the ``wsdh`` run whose stage 1 ``auto`` takes.

    Attributes:
        stage1_file_: the stage-1 file the features came from (set by :meth:`input_features`).
    """

    #: Code outside this module that decides its features (the bench's behaviour fingerprint).
    behaviour_modules = ("hashbench.methods.wsdh",)

    def __init__(
        self,
        bits: int = 32,
        stage1: str = "auto",
        stage1_dir: str | None = None,
        backbone: str = "small_cnn",
        weak_tags: Literal["classifier", "synthetic"] | None = "classifier",
        stage1_epochs: int | None = 10,
        n_anchors: int = 300,
        n_labeled: int = 2000,
        max_opt_iter: int = 500,
        sigma: float | None = None,
        sigma_rule: Literal["mean_distance", "rms_distance"] = "mean_distance",
        random_state: int | None = 0,
    ) -> None:
        super().__init__(bits, n_anchors, n_labeled, max_opt_iter, sigma, sigma_rule, random_state)
        if stage1 != "auto" and not Path(stage1).expanduser().is_file():
            raise FileNotFoundError(
                f"ws_ksh: stage1 file {stage1} not found; give a WSDH stage-1 file (written under "
                "<data root>/stage1 by a wsdh run) or 'auto'"
            )
        self.stage1 = stage1
        self.stage1_dir = stage1_dir
        if weak_tags is not None and weak_tags not in TAG_KINDS:
            raise ValueError(
                f"ws_ksh: weak_tags must be one of {TAG_KINDS} or None, got {weak_tags!r}"
            )
        self.backbone = backbone
        self.weak_tags = weak_tags
        self.stage1_epochs = stage1_epochs

    def stage1_path(self, datamodule) -> Path:
        """The stage-1 file this hasher uses for ``datamodule``."""
        if self.stage1 != "auto":
            return Path(self.stage1).expanduser()
        folder = (
            Path(self.stage1_dir).expanduser()
            if self.stage1_dir is not None
            else datamodule.root / "stage1"
        )
        seed = 0 if self.random_state is None else int(self.random_state)
        return find_stage1(
            folder,
            datamodule.key,
            self.bits,
            self.backbone,
            seed,
            self.weak_tags,
            self.stage1_epochs,
        )

    def input_features(self, datamodule, batch_size: int = 512) -> dict[str, np.ndarray]:
        """The stage-1 network's backbone features of ``train``, ``query`` and ``database``.

        The hook :func:`~hashbench.baselines.evaluate.fit_and_evaluate` calls in place of the
        grid's feature cache.
        """
        import torch
        from torch.utils.data import DataLoader
        from tqdm.auto import tqdm

        from hashbench.data.base import HashDataset
        from hashbench.data.transforms import InputAdapter
        from hashbench.models.backbones import input_spec

        path = self.stage1_path(datamodule)
        net, dim = load_backbone(path, self.backbone)
        model = torch.nn.Sequential(InputAdapter(input_spec(self.backbone)), net).eval()
        out = {}
        with torch.no_grad():
            for split in SPLITS:
                items = np.asarray(datamodule.split[split], dtype=np.int64)
                dataset = HashDataset(datamodule.arrays, items, datamodule.image_size)
                loader = DataLoader(dataset, batch_size=batch_size, num_workers=0)
                feats = np.empty((len(items), dim), np.float32)
                pos = 0
                for batch in tqdm(
                    loader, desc=f"ws_ksh features {split}", leave=False, disable=None
                ):
                    f = model(batch["image"]).flatten(1).float().numpy()
                    feats[pos : pos + len(f)] = f
                    pos += len(f)
                out[split] = feats
        self.stage1_file_ = str(path)
        return out


__all__ = ["Stage1NotFoundError", "WSKSH", "find_stage1", "load_backbone"]
