"""How one cell runs: a deep method trained and tested, or a shallow baseline fitted and evaluated.

- **deep** (:func:`run_deep`): the cell's resolved training config is built with
  :func:`hashbench.training.build` (exactly what ``hashbench fit`` builds from the same files and
  flags), trained, and the best checkpoint on ``val/mAP`` is tested
  (``trainer.test(..., ckpt_path="best")``); the metrics are the method's ``test_results``, and the
  packed codes of that test pass (``test_codes``) go into the index whose build and query times are
  recorded (no second encoding pass).
- **baseline** (:func:`run_baseline`): :func:`hashbench.baselines.evaluate.fit_and_evaluate` on
  input features computed once per sweep (:class:`FeatureStore`).

Each returns the record fields of its cell (metrics, curves, protocol, times, device); the sweep
adds the common ones and writes the record.
"""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from hashbench.bench import records as rec
from hashbench.bench.config import BenchConfig, IndexSettings


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when inside it (records stay portable)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


# -- inputs shared by the cells of a sweep ----------------------------------------------------------
class FeatureStore:
    """The baselines' input features of ``train``, ``query`` and ``database``, computed once a sweep.

    From :class:`~hashbench.models.features.FeatureCache` (backbone features are extracted once per
    dataset and cached on disk; ``pixels`` are read from the images), kept in memory for every
    baseline cell of the sweep.
    """

    def __init__(self) -> None:
        self._features: dict[tuple[str, str], dict[str, Any]] = {}

    def get(
        self, datamodule, features: str, pretrained: bool | str
    ) -> tuple[dict[str, Any], float]:
        """The features and the seconds spent on them in this call (0 once they are in memory)."""
        key = (features, str(pretrained))
        if key in self._features:
            return self._features[key], 0.0
        from hashbench.models.features import FeatureCache

        t0 = time.perf_counter()
        cache = FeatureCache(datamodule, features, pretrained)
        self._features[key] = {s: cache.split(s) for s in ("train", "query", "database")}
        return self._features[key], time.perf_counter() - t0


# -- timing -----------------------------------------------------------------------------------------
def index_timing(q_codes, db_codes, bits: int, settings: IndexSettings) -> dict[str, float]:
    """Build a :class:`HammingIndex` over ``db_codes``; time top-k and radius search of ``q_codes``."""
    import numpy as np

    from hashbench.retrieval.index import HammingIndex

    t0 = time.perf_counter()
    index = HammingIndex(bits, settings.kind)  # type: ignore[arg-type]
    index.add(np.ascontiguousarray(db_codes))
    build_s = time.perf_counter() - t0
    k = max(1, min(settings.k, len(db_codes)))
    index.search(q_codes[:1], k)  # warm-up (thread pool)
    t0 = time.perf_counter()
    index.search(q_codes, k)
    topk_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    balls = index.range_search(q_codes, settings.radius)
    radius_s = time.perf_counter() - t0
    n = max(len(q_codes), 1)
    return {
        "index_build_s": build_s,
        "topk_k": k,
        "topk_s": topk_s,
        "topk_qps": n / max(topk_s, 1e-12),
        "radius": settings.radius,
        "radius_s": radius_s,
        "radius_qps": n / max(radius_s, 1e-12),
        "radius_mean_results": float(np.mean([len(ids) for _, ids in balls])) if balls else 0.0,
    }


def make_epoch_display(bar):
    """A Lightning callback showing ``epoch e/E`` on the sweep's progress bar (``bar``)."""
    from lightning.pytorch.callbacks import Callback

    class EpochDisplay(Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
            bar.set_postfix_str(f"epoch {trainer.current_epoch + 1}/{total}", refresh=True)

        def on_test_start(self, trainer, pl_module) -> None:
            bar.set_postfix_str("testing the best checkpoint", refresh=True)

    return EpochDisplay()


def make_test_timer():
    """A Lightning callback that times the test pass per loader.

    After ``trainer.test``: ``seconds[i]`` / ``items[i]`` are the wall time of the test steps
    (encode + metric update; CUDA synchronised) and the item count of test loader ``i``
    (0 = query, 1 = database).
    """
    import torch
    from lightning.pytorch.callbacks import Callback

    def sync(pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    class TestTimer(Callback):
        def __init__(self) -> None:
            self.seconds: dict[int, float] = defaultdict(float)
            self.items: dict[int, int] = defaultdict(int)
            self._t0 = 0.0

        def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            sync(pl_module)
            self._t0 = time.perf_counter()

        def on_test_batch_end(
            self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
        ):
            sync(pl_module)
            self.seconds[dataloader_idx] += time.perf_counter() - self._t0
            if isinstance(batch, dict) and "index" in batch:
                self.items[dataloader_idx] += len(batch["index"])

    return TestTimer()


def codes_from_test_pass(model, timer, n_query: int, n_database: int):
    """The test pass's codes and encode times when they cover both splits exactly, else ``None``."""
    codes = getattr(model, "test_codes", {}) or {}
    q, db = codes.get("query"), codes.get("database")
    if q is None or db is None:
        return None
    if not (len(q) == timer.items[0] == n_query and len(db) == timer.items[1] == n_database):
        return None
    return q, db, timer.seconds[0], timer.seconds[1]


def training_summary(trainer, history) -> dict:
    """Epochs run, whether early stopping ended training, the best epoch on ``val/mAP`` with its
    ``val/*`` values, and the per-epoch validation history."""
    from lightning.pytorch.callbacks import EarlyStopping

    best = history.best()
    stopper = next((c for c in trainer.callbacks if isinstance(c, EarlyStopping)), None)
    return {
        "epochs_run": int(trainer.current_epoch),
        "max_epochs": trainer.max_epochs,
        "min_epochs": trainer.min_epochs,
        "early_stopping": None
        if stopper is None
        else {
            "monitor": stopper.monitor,
            "patience": stopper.patience,
            "min_delta": abs(stopper.min_delta),
        },
        # ended before the cap: EarlyStopping's own ``stopped_epoch`` is also set when the rule
        # fires in the last epoch, and a checkpoint restore resets it
        "stopped_early": bool(
            stopper is not None and int(trainer.current_epoch) < trainer.max_epochs
        ),
        "best_epoch": None if best is None else int(best["epoch"]),
        "best_val": None if best is None else {k: v for k, v in best.items() if k != "epoch"},
        "val_history": history.history,
    }


# -- the two kinds of cell --------------------------------------------------------------------------
def run_baseline(cfg: BenchConfig, cell, datamodule, features: FeatureStore) -> dict:
    """Fit and evaluate a shallow baseline on features computed once per sweep."""
    from hashbench.baselines import SUPERVISED
    from hashbench.baselines.evaluate import RESULT_EXTRAS, fit_and_evaluate
    from hashbench.bench.cells import baseline_args
    from hashbench.retrieval.evaluation import (
        DEFAULT_TIES,
        metric_groups,
        protocol_facts,
        split_metrics,
    )

    ties = DEFAULT_TIES
    x, features_s = features.get(datamodule, cfg.features, cfg.pretrained)
    result = fit_and_evaluate(
        cell.method,
        cell.bits,
        datamodule,
        random_state=cell.seed,
        metrics=metric_groups(datamodule.multi_label),
        ties=ties,
        split_features=x,
        per_query=True,
        params=baseline_args(cfg, cell.method),
    )
    extras = {k: result.pop(k) for k in RESULT_EXTRAS}
    hasher = extras["hasher"]
    q_codes, db_codes = extras["query_codes"], extras["database_codes"]
    times = {
        "train_s": extras["fit_s"],
        "features_s": features_s,
        "encode_s": extras["encode_s"],
        "encode_per_s": extras["encode_per_s"],
        "query_encode_s": extras["query_encode_s"],
    }
    times.update(index_timing(q_codes, db_codes, cell.bits, cfg.index))
    times["query_ms"] = 1000 * (extras["query_encode_s"] + times["topk_s"]) / max(len(q_codes), 1)
    metrics, curves = split_metrics(result)
    out = {
        "supervised": cell.method in SUPERVISED,
        "metrics": metrics,
        "curves": curves,
        "per_query": _per_query(result, metrics, datamodule.split["query"]),
        "protocol": protocol_facts(datamodule, ties),
        "times": times,
        "device": rec.device_info("cpu"),
    }
    stage1 = getattr(hasher, "stage1_file_", None)  # ws_ksh: the stage-1 network it read
    if stage1:
        out["stage1_file"] = display_path(Path(stage1))
        source = _stage1_tag_source(Path(stage1))
        if source:
            out["tag_source"] = source
    return out


def _stage1_tag_source(path: Path) -> str | None:
    """The tag source written beside a wsdh stage-1 file (its ``.json`` metadata), if any."""
    import json

    meta = path.with_suffix(".json")
    try:
        return str(json.loads(meta.read_text()).get("tag_source") or "") or None
    except (OSError, ValueError, AttributeError):
        return None


def _per_query(result: dict, metrics: dict, query_ids) -> dict[str, list[float]]:
    """The record's per-query values, queries in dataset-index order, checked against the means."""
    import numpy as np

    order = np.argsort(np.asarray(query_ids), kind="stable")
    values = rec.per_query_values(result)
    out = {}
    for key, vals in values.items():
        arr = np.asarray(vals, dtype=np.float64)[order]
        if key in metrics and abs(float(arr.mean()) - metrics[key]) > 1e-5:
            raise RuntimeError(
                f"per-query {key} averages {arr.mean():.6f}, the metric is {metrics[key]:.6f}"
            )
        out[key] = arr.tolist()
    return out


def run_deep(
    cfg: BenchConfig,
    cell,
    training_config: dict,
    root: Path,
    shared_datamodule=None,
    bar=None,
    keep_checkpoints: bool = False,
) -> tuple[dict, bool]:
    """Train a deep cell, test its best checkpoint, time the index over its codes.

    Args:
        training_config: the cell's resolved config (:func:`hashbench.bench.cells.resolve_deep`).
        root: the run folder (removed first: a killed earlier attempt of the cell).
        shared_datamodule: a DataModule that has already read the data; its arrays and split are
            reused when they are the same data (:meth:`HashDataModule.share_loaded_data`).
        bar: the sweep's progress bar (shows the epoch).

    Returns the record fields and whether the shared data was used.
    """
    import torch

    from hashbench.methods import method_class
    from hashbench.retrieval.evaluation import encode_split, protocol_facts, split_metrics
    from hashbench.training import build, validation_history

    if root.exists():
        shutil.rmtree(root)
    history = validation_history()
    callbacks = [history] if bar is None else [history, make_epoch_display(bar)]
    run = build(training_config, callbacks=callbacks)
    model, dm, trainer = run.model, run.datamodule, run.trainer
    shared = shared_datamodule is not None and dm.share_loaded_data(shared_datamodule)
    t0 = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    train_s = time.perf_counter() - t0
    # before the test: loading the best checkpoint restores the callbacks' state of that epoch
    # (EarlyStopping's stopped_epoch back to 0)
    training = training_summary(trainer, history)
    ckpt = trainer.checkpoint_callback
    best = ckpt.best_model_path if ckpt else ""
    timer = make_test_timer()
    trainer.callbacks.append(timer)
    t0 = time.perf_counter()
    trainer.test(model, datamodule=dm, ckpt_path="best", verbose=False)
    test_s = time.perf_counter() - t0
    metrics, curves = split_metrics(model.test_results)
    if not metrics:
        raise RuntimeError(f"{cell.method}: test produced no metrics")
    # the test metric orders queries by dataset index already (HashRetrievalMetric)
    per_query = _per_query(model.test_results, metrics, sorted(dm.split["query"]))
    device = trainer.strategy.root_device
    found = codes_from_test_pass(model, timer, len(dm.split["query"]), len(dm.split["database"]))
    if found is not None:
        q_codes, db_codes, query_encode_s, encode_s = found
        encode_source = "test pass"
    else:  # the method keeps its test codes elsewhere: encode once more
        q = encode_split(model, dm, "query", device)
        db = encode_split(model, dm, "database", device)
        q_codes, db_codes, query_encode_s, encode_s = q.codes, db.codes, q.seconds, db.seconds
        encode_source = "separate pass"
    times = {
        "train_s": train_s,
        "test_s": test_s,
        "epochs": int(trainer.current_epoch),
        "query_encode_s": query_encode_s,
        "encode_s": encode_s,
        "encode_per_s": len(db_codes) / max(encode_s, 1e-12),
        "encode_source": encode_source,
    }
    times.update(index_timing(q_codes, db_codes, cell.bits, cfg.index))
    times["query_ms"] = 1000 * (query_encode_s + times["topk_s"]) / max(len(q_codes), 1)
    if not keep_checkpoints:
        for path in root.rglob("*.ckpt"):
            path.unlink()
    cls = method_class(cfg.base(cell.method))
    dev = str(device) if device.type != "cuda" else f"cuda:{device.index or 0}"
    out = {
        "supervised": getattr(cls, "supervised", None),
        "metrics": metrics,
        "curves": curves,
        "per_query": per_query,
        "protocol": protocol_facts(dm, model.ties),
        "times": times,
        "device": rec.device_info(dev),
        "run_dir": display_path(root),
        "best_checkpoint": display_path(Path(best)) if best else None,
        "best_val_mAP": _float(ckpt.best_model_score) if ckpt else None,
        "training": training,
    }
    tag_source = model.hparams.get("tag_source")  # weakly supervised methods (wsdh)
    if tag_source:
        out["tag_source"] = str(tag_source)
    stage1 = getattr(model, "record", {}).get("stage1_file")  # wsdh: the stage 1 ws_ksh reads
    if stage1:
        out["stage1_file"] = display_path(Path(stage1))
    del run, model, trainer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out, shared
