"""``hashbench encode`` and ``hashbench search``: codes on disk and real queries against an index.

encode: a checkpoint + a dataset split -> ``<out>/<split>.codes.npy`` (packed ``uint8``),
``<out>/<split>.ids.npy`` (dataset positions), ``<out>/<split>.faissb`` (a :class:`HammingIndex`
with those ids) and ``<out>/<split>.json`` (what made them).

search: a checkpoint + an index + query images (files) or a split's query ids -> the top-k (or every
item within ``--radius``) with Hamming distance, dataset id, labels and image path where known.

Provenance: encode records in the index's sidecar (:attr:`HammingIndex.provenance`) what made the
codes (the method class and a fingerprint of the checkpoint's weights, or the baseline), the bit
length and the data (its key and a fingerprint of its items). search refuses an index whose record
differs from its checkpoint and its dataset (the checkpoint's, or ``--config``'s), since codes of
another model or ids of another dataset give wrong neighbours without any error. An index without
a record (an older one) is searched with a warning.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from hashbench.files import atomic_path
from hashbench.retrieval.evaluation import encode_split


def _data_parser(prog: str, description: str, ckpt: bool = True):
    from jsonargparse import ActionConfigFile, ArgumentParser

    from hashbench.data.base import HashDataModule

    parser = ArgumentParser(prog=prog, description=description, exit_on_error=False)
    parser.add_argument(
        "--config",
        action=ActionConfigFile,
        help="a data config such as configs/data/fashion_mnist.yaml",
    )
    parser.add_subclass_arguments(
        HashDataModule,
        "data",
        required=False,
        help="the dataset (default: the one the checkpoint was trained on)",
    )
    if ckpt:
        parser.add_argument(
            "--ckpt", type=str, required=True, help="checkpoint written by `hashbench fit`"
        )
    return parser


def _datamodule(cfg, ckpt: str):
    """The DataModule from ``--data``/``--config``, else the one recorded in the checkpoint."""
    import torch
    from jsonargparse import ArgumentParser

    from hashbench.data.base import HashDataModule

    data = cfg.get("data")
    if data is None:
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        hp = dict(saved.get("datamodule_hyper_parameters") or {})
        if "_class_path" not in hp:
            raise SystemExit(f"{ckpt} records no dataset: pass --config configs/data/<name>.yaml")
        data = {
            "class_path": hp.pop("_class_path"),
            "init_args": {k: v for k, v in hp.items() if not k.startswith("_")},
        }
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(HashDataModule, "data")
    return parser.instantiate_classes(parser.parse_object({"data": data})).data


def _save_atomic(path: Path, write) -> None:
    with atomic_path(path) as tmp:
        write(str(tmp))


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


def model_fingerprint(model) -> str:
    """A digest of a model's weights (names, dtypes, shapes, bytes): equal for the same checkpoint."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def data_fingerprint(dm) -> str:
    """A digest of what a dataset id means: every item's image (pixels, or the path below the
    root), labels and side, and the class names. Another dataset, or the same one read with other
    files or labels, gives another digest; moving the dataset folder does not."""
    arrays = dm.arrays
    digest = hashlib.sha256()
    digest.update(json.dumps(list(arrays.class_names)).encode())
    digest.update(np.ascontiguousarray(arrays.labels).tobytes())
    digest.update("\n".join(map(str, arrays.source)).encode())
    if isinstance(arrays.images, np.ndarray):
        digest.update(np.ascontiguousarray(arrays.images).tobytes())
    else:
        root = str(dm.root)
        digest.update("\n".join(str(p).removeprefix(root) for p in arrays.images).encode())
    return digest.hexdigest()[:16]


def describe_source(prov: dict) -> str:
    """``"DSH (16 bits, weights 1a2b...) from runs/best.ckpt"`` or ``"baseline lsh (32 bits)"``."""
    if prov.get("kind") == "baseline":
        return f"baseline {prov.get('baseline')} ({prov.get('bits')} bits)"
    ckpt = f" from {prov['ckpt']}" if prov.get("ckpt") else ""
    return (
        f"{prov.get('method')} ({prov.get('bits')} bits, weights {prov.get('model_fingerprint')})"
        f"{ckpt}"
    )


def provenance_mismatch(recorded: dict, current: dict) -> list[str]:
    """What differs between an index's recorded provenance and the checkpoint + data at hand."""
    problems = []
    if recorded.get("kind") != current["kind"] or recorded.get("model_fingerprint") != current.get(
        "model_fingerprint"
    ):
        problems.append(
            f"its codes were made by {describe_source(recorded)}, not by this checkpoint, "
            f"{describe_source(current)}"
        )
    elif recorded.get("bits") != current["bits"]:
        problems.append(f"it holds {recorded.get('bits')}-bit codes, not {current['bits']}-bit")
    if recorded.get("data_fingerprint") != current["data_fingerprint"]:
        problems.append(
            f"it was encoded from dataset {recorded.get('dataset')} (fingerprint "
            f"{recorded.get('data_fingerprint')}), not {current['dataset']} (fingerprint "
            f"{current['data_fingerprint']})"
        )
    return problems


def encode_main(argv: list[str]) -> int:
    """``hashbench encode``: codes of a split on disk, with a Faiss index over them.

    The codes come from a checkpoint (``--ckpt``) or from a shallow baseline fitted on the
    ``train`` split's features (``--baseline NAME --bits B --features pixels|<backbone>``).
    """
    parser = _data_parser(
        "hashbench encode", "encode a dataset split to packed binary codes", ckpt=False
    )
    parser.add_argument(
        "--ckpt", type=str | None, default=None, help="checkpoint written by `hashbench fit`"
    )
    parser.add_argument(
        "--baseline",
        type=str | None,
        default=None,
        help="instead of --ckpt: fit this shallow baseline on `train` (needs --config)",
    )
    parser.add_argument("--bits", type=int, default=32, help="code length of --baseline")
    parser.add_argument("--features", type=str, default="pixels", help="features of --baseline")
    parser.add_argument(
        "--split",
        type=str,
        default="database",
        help="train | val_query | val_database | query | database",
    )
    parser.add_argument("--out", type=str, default="codes", help="output folder")
    parser.add_argument(
        "--index",
        type=str,
        default="flat",
        help="Faiss index kind: flat | hash | multihash | ivf | hnsw",
    )
    parser.add_argument("--batch_size", type=int, default=512)
    parser.add_argument("--device", type=str, default="cpu")
    cfg = parser.parse_args(argv)
    if (cfg.ckpt is None) == (cfg.baseline is None):
        raise SystemExit("hashbench encode: give either --ckpt PATH or --baseline NAME")

    from hashbench.retrieval.index import HammingIndex

    if cfg.ckpt is not None:
        from hashbench.methods import load_method

        model = load_method(cfg.ckpt)
        dm = _datamodule(cfg, cfg.ckpt)
        dm.eval_batch_size = cfg.batch_size
        source = method_source(model, cfg.ckpt)
        encoded = encode_split(model, dm, cfg.split, cfg.device, progress=True)
        codes, ids = encoded.codes, encoded.ids
        bits = model.bits
    else:
        from hashbench.baselines import SUPERVISED
        from hashbench.baselines.evaluate import make_baseline
        from hashbench.models.features import FeatureCache

        if cfg.get("data") is None:
            raise SystemExit("hashbench encode --baseline: give the dataset with --config")
        dm = _datamodule(cfg, "")
        cache = FeatureCache(dm, cfg.features)
        hasher = make_baseline(cfg.baseline, cfg.bits)
        hasher.fit(cache.split("train"), dm.labels("train") if cfg.baseline in SUPERVISED else None)
        codes, ids = hasher.encode(cache.split(cfg.split)), dm.split[cfg.split]
        bits = cfg.bits
        source = {
            "kind": "baseline",
            "baseline": cfg.baseline,
            "features": cfg.features,
            "method": cfg.baseline,
            "bits": bits,
        }
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    index = HammingIndex(bits, kind=cfg.index)
    index.add(codes, ids)
    index.provenance = {
        **source,
        "dataset": dm.key,
        "data_fingerprint": data_fingerprint(dm),
        "split": cfg.split,
    }
    index.save(out / f"{cfg.split}.faissb")
    _save_atomic(out / f"{cfg.split}.codes.npy", lambda p: _save_npy(p, codes))
    _save_atomic(out / f"{cfg.split}.ids.npy", lambda p: _save_npy(p, ids))
    meta = {**index.provenance, "n": int(len(ids)), "index": cfg.index}
    _save_atomic(
        out / f"{cfg.split}.json", lambda p: Path(p).write_text(json.dumps(meta, indent=2))
    )
    print(
        f"wrote {len(ids)} codes of {bits} bits: {out / (cfg.split + '.codes.npy')}, "
        f"index {out / (cfg.split + '.faissb')}"
    )
    return 0


def method_source(model, ckpt: str) -> dict:
    """The provenance of codes made by a trained method (see :func:`provenance_mismatch`)."""
    cls = type(model)
    return {
        "kind": "method",
        "method": cls.__name__,
        "class_path": f"{cls.__module__}.{cls.__qualname__}",
        "model_fingerprint": model_fingerprint(model),
        "ckpt": str(ckpt),
        "bits": int(model.bits),
    }


def check_index(index, index_path: str, model, ckpt: str, dm) -> None:
    """Refuse an index made by another model, at another bit length or from other data.

    Raises:
        ValueError: one line naming the index and the checkpoint and what differs.
    """
    if index.provenance is None:
        print(
            f"hashbench search: warning: {index_path} records no provenance (written before "
            f"hashbench recorded it), so it cannot be checked to hold codes of {ckpt} for "
            f"{dm.key}; re-encode it with `hashbench encode --ckpt {ckpt}` to have it checked",
            file=sys.stderr,
        )
        if index.bits != model.bits:
            raise ValueError(
                f"{index_path} holds {index.bits}-bit codes but {ckpt} makes {model.bits}-bit "
                f"codes: encode the database with this checkpoint (hashbench encode --ckpt {ckpt})"
            )
        return
    current = {
        **method_source(model, ckpt),
        "dataset": dm.key,
        "data_fingerprint": data_fingerprint(dm),
    }
    problems = provenance_mismatch(index.provenance, current)
    if problems:
        raise ValueError(
            f"index {index_path} does not belong to checkpoint {ckpt}: {'; '.join(problems)}. "
            f"Encode the database with this checkpoint (hashbench encode --ckpt {ckpt} "
            "--split database --out DIR, with the same --config as search), or search with the "
            "checkpoint and dataset that made the index"
        )


def read_query_image(path: str, channels: int, size: tuple[int, int]) -> np.ndarray:
    """An image file as ``uint8 (C, H, W)`` with the dataset's channels and size."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB").resize(size[::-1], Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except OSError as e:
        raise SystemExit(f"query image {path} cannot be read: {e}") from e
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def search_main(argv: list[str]) -> int:
    """``hashbench search``: top-k or Hamming-ball results for query images or query ids."""
    parser = _data_parser("hashbench search", "search an index with query images or ids")
    parser.add_argument(
        "--index", type=str, required=True, help="index file from `hashbench encode`"
    )
    parser.add_argument("--image", type=list[str], default=[], help="query image file(s)")
    parser.add_argument(
        "--query_ids",
        type=list[int],
        default=[],
        help="dataset ids of query items (e.g. from the `query` split)",
    )
    parser.add_argument("--k", type=int, default=10, help="results per query")
    parser.add_argument(
        "--radius",
        type=int | None,
        default=None,
        help="return every item within this Hamming distance (inclusive) instead",
    )
    parser.add_argument("--json", type=bool, default=False, help="print JSON instead of a table")
    cfg = parser.parse_args(argv)
    if not cfg.image and not cfg.query_ids:
        raise SystemExit("hashbench search: give --image PATH ... or --query_ids ID ...")

    import torch

    from hashbench.methods import load_method
    from hashbench.retrieval.index import HammingIndex

    model = load_method(cfg.ckpt)
    dm = _datamodule(cfg, cfg.ckpt)
    index = HammingIndex.load(cfg.index)
    check_index(index, cfg.index, model, cfg.ckpt, dm)
    arrays = dm.arrays
    n = len(arrays.labels)
    bad = [q for q in cfg.query_ids if not 0 <= q < n]
    if bad:
        raise ValueError(
            f"--query_ids {bad}: {dm.key} has dataset ids 0 to {n - 1}; take ids from the "
            f"query split (e.g. {dm.split['query'][:3].tolist()})"
        )
    names, images = [], []
    sample = dm.dataset("database").image(int(dm.split["database"][0]))
    for path in cfg.image:
        names.append(path)
        images.append(read_query_image(path, sample.shape[0], sample.shape[1:]))
    for qid in cfg.query_ids:
        names.append(f"id {qid}")
        images.append(dm.dataset("database").image(int(qid)))
    with torch.no_grad():
        codes = model.encode(torch.from_numpy(np.stack(images))).numpy()
    if cfg.radius is None:
        dist, ids = index.search(codes, cfg.k)
        results = [(d[i >= 0], i[i >= 0]) for d, i in zip(dist, ids, strict=True)]
    else:
        results = index.range_search(codes, cfg.radius)
    paths = None if isinstance(arrays.images, np.ndarray) else arrays.images
    beyond = [int(i) for _, found in results for i in found if i >= n]
    if beyond:
        raise ValueError(
            f"{cfg.index} answers dataset id {beyond[0]}, but {dm.key} has ids 0 to {n - 1}: "
            f"the index was not encoded from this dataset; re-encode it with --ckpt {cfg.ckpt}"
        )

    def describe(i: int) -> dict:
        labels = [arrays.class_names[c] for c in np.flatnonzero(arrays.labels[i])]
        row = {"id": int(i), "labels": labels}
        if paths is not None:
            row["path"] = str(paths[i])
        return row

    report = [
        {
            "query": name,
            "results": [
                {"distance": int(d), **describe(i)} for d, i in zip(dist, ids, strict=True)
            ],
        }
        for name, (dist, ids) in zip(names, results, strict=True)
    ]
    if cfg.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    for q in report:
        print(f"query {q['query']}: {len(q['results'])} results")
        print(f"  {'rank':>4}  {'dist':>4}  {'id':>7}  labels")
        for rank, r in enumerate(q["results"], 1):
            where = f"  {r['path']}" if "path" in r else ""
            print(f"  {rank:>4}  {r['distance']:>4}  {r['id']:>7}  {', '.join(r['labels'])}{where}")
    return 0


def baseline_main(argv: list[str]) -> int:
    """``hashbench baseline``: fit a shallow baseline on ``train`` and evaluate it."""
    from hashbench.baselines import BASELINES

    parser = _data_parser(
        "hashbench baseline", "fit and evaluate a shallow hashing baseline", ckpt=False
    )
    parser.add_argument("--baseline", type=str, required=True, help=", ".join(BASELINES))
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument(
        "--features",
        type=str,
        default="pixels",
        help="pixels, or a backbone name (features from the feature cache)",
    )
    parser.add_argument(
        "--pretrained",
        type=bool | str,
        default=False,
        help="backbone weights for --features (true = ImageNet, or a file)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the baseline's random_state")
    parser.add_argument("--json", type=bool, default=False, help="print JSON instead of a table")
    cfg = parser.parse_args(argv)
    if cfg.get("data") is None:
        raise SystemExit(
            "hashbench baseline: give the dataset, e.g. --config configs/data/fashion_mnist.yaml"
        )
    from hashbench.baselines.evaluate import fit_and_evaluate, scalar_metrics
    from hashbench.data.summary import split_summary
    from hashbench.retrieval.codes import check_bits

    check_bits(cfg.bits)
    dm = _datamodule(cfg, "")
    print(split_summary(dm), file=sys.stderr if cfg.json else sys.stdout, flush=True)
    result = scalar_metrics(
        fit_and_evaluate(cfg.baseline, cfg.bits, dm, cfg.features, cfg.pretrained, cfg.seed)
    )
    if cfg.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{cfg.baseline} {cfg.bits} bits on {dm.key} ({cfg.features} features)")
    for key, value in result.items():
        print(f"  {key:<14} {value:.4f}")
    return 0
