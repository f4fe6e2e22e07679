"""The cells of a grid and the configuration each one resolves to.

A cell is one (method, bits, seed) of a :class:`~hashbench.bench.config.BenchConfig`. Its
configuration is what decides its numbers, and its hash decides whether a record is still valid:

- a **deep** cell resolves through :func:`hashbench.training.resolve_config` - the method config,
  the grid's data config, the profile's trainer config, then typed overrides (data arguments and
  protocol, profile / variant / method arguments, ``bits`` and ``seed_everything``): exactly what
  ``hashbench fit`` with the same files and flags resolves to;
- a **baseline** cell is the estimator's constructor defaults with ``bits`` and ``random_state``,
  the grid's input features and the resolved data config.

:func:`hashable_config` drops the keys of :data:`HASH_EXCLUDE` (where things are written and how
progress is shown, not what is computed) before hashing.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hashbench.bench import records as rec
from hashbench.bench.config import (
    BenchConfig,
    BenchConfigError,
    DataMissingError,
    method_config_path,
    missing_data_message,
    no_data_config,
)

#: Keys of the resolved ``hashbench fit`` config left out of a cell's hash: where things are
#: written and how progress is shown, not what is computed.
HASH_EXCLUDE = (
    "config",
    "test_after_fit",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.logger",
    "data.init_args.root",
    "data.init_args.num_workers",
    "data.init_args.download",
    "data.init_args.eval_batch_size",
)


@dataclass(frozen=True, order=True)
class Cell:
    """One benchmark cell. Sorted: baselines first (fast), then deep methods, then baselines built on
    a deep method's output; by name, bits, seed."""

    order: int
    method: str
    bits: int
    seed: int
    kind: str

    @property
    def id(self) -> str:
        return f"{self.method}/{self.bits}bits/seed{self.seed}"


def _order(cfg: BenchConfig, method: str) -> int:
    """0: shallow baselines (fast); 1: deep methods; 2: baselines built on a deep method's output
    (an ``input_features`` hook, e.g. ``ws_ksh`` on ``wsdh``'s stage 1), after the deep cells."""
    if cfg.kind(method) != "baseline":
        return 1
    from hashbench.baselines import builds_on_deep_method

    return 2 if builds_on_deep_method(method) else 0


def expand_cells(cfg: BenchConfig) -> list[Cell]:
    """Every cell of the grid, in the deterministic order sharding uses."""
    cells = [Cell(_order(cfg, m), m, b, s, cfg.kind(m)) for m in cfg.methods for b, s in cfg.grid()]
    return sorted(cells)


def parse_only(
    tokens: Sequence[str] | None, cfg: BenchConfig
) -> tuple[set[str], set[int], set[int]]:
    """``--only`` tokens -> (methods, bits, seeds) filters; each empty set means "all".

    A token is a method name, a bit length (``32`` or ``32bits``) or ``seed=<k>``; several tokens
    may be given comma-separated. Unknown tokens are an error listing the choices.
    """
    methods: set[str] = set()
    bits: set[int] = set()
    seeds: set[int] = set()
    for tok in (t.strip() for item in tokens or [] for t in str(item).split(",")):
        if not tok:
            continue
        low = tok.lower()
        if low.startswith("seed="):
            seeds.add(int(low[5:]))
        elif low.removesuffix("bits").isdigit():
            bits.add(int(low.removesuffix("bits")))
        elif tok in cfg.methods:
            methods.add(tok)
        else:
            raise BenchConfigError(
                f"--only: {tok!r} is neither a method of {cfg.path} ({', '.join(cfg.methods)}), "
                "a bit length (e.g. 32) nor seed=<k>"
            )
    for b in bits - set(cfg.all_bits()):
        raise BenchConfigError(f"--only: {b} bits is not in the grid ({list(cfg.all_bits())})")
    return methods, bits, seeds


def select_cells(
    cells: list[Cell],
    only: tuple[set[str], set[int], set[int]] | None = None,
    shard: tuple[int, int] | None = None,
) -> list[Cell]:
    """Cells kept by the ``--only`` filters, then shard ``i`` of ``n`` (every n-th, from the i-th)."""
    if only is not None:
        methods, bits, seeds = only
        cells = [
            c
            for c in cells
            if (not methods or c.method in methods)
            and (not bits or c.bits in bits)
            and (not seeds or c.seed in seeds)
        ]
    if shard is not None:
        i, n = shard
        if not (1 <= i <= n):
            raise BenchConfigError(f"--shard {i}/{n}: expected 1 <= i <= n")
        cells = cells[i - 1 :: n]
    return cells


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)`` (``None`` stays ``None``)."""
    if text in (None, ""):
        return None
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise BenchConfigError(f"--shard {text!r}: expected i/n, e.g. 1/4") from None
    if not (1 <= i <= n):
        raise BenchConfigError(f"--shard {text}: expected 1 <= i <= n")
    return i, n


def run_dir(runs_dir: str | os.PathLike, cfg: BenchConfig, cell: Cell) -> Path:
    """Where a deep cell's Lightning logs and checkpoints go."""
    return Path(runs_dir) / cfg.name / cell.method / f"{cell.bits}bits-seed{cell.seed}"


def _drop(config: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    node = config
    for p in parents:
        node = node.get(p) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(last, None)


def hashable_config(config: dict) -> dict:
    """A resolved config without the keys of :data:`HASH_EXCLUDE` (JSON-ready)."""
    config = json.loads(rec.canonical_json(config))
    for key in HASH_EXCLUDE:
        _drop(config, key)
    return config


# -- deep cells -------------------------------------------------------------------------------------
def data_overrides(cfg: BenchConfig) -> dict[str, Any]:
    """The grid's data arguments (and protocol) as dotted training-config overrides."""
    data = dict(cfg.data_args)
    if cfg.protocol:
        data["protocol"] = cfg.protocol
    return {f"data.init_args.{k}": v for k, v in data.items()}


def deep_sources(
    cfg: BenchConfig, cell: Cell, root_dir: Path, progress: bool
) -> tuple[list[Path], dict[str, Any]]:
    """The config files and typed overrides of a deep cell (later ones win), as ``hashbench fit``
    would take them: ``--config <method> --config <data> --config <profile trainer>`` and flags."""
    files = [method_config_path(cfg, cell.method), cfg.data_config]
    if cfg.profile.trainer_config is not None:
        files.append(cfg.profile.trainer_config)
    overrides = data_overrides(cfg)
    overrides.update(cfg.profile.args)
    if cell.method in cfg.variants:
        overrides.update(cfg.variants[cell.method].args)
    overrides.update(cfg.method_args.get(cell.method, {}))
    overrides.update(cfg.profile.method_args.get(cell.method, {}))
    overrides.update(
        {
            "model.init_args.bits": cell.bits,
            "seed_everything": cell.seed,
            "trainer.default_root_dir": str(root_dir),
            "trainer.enable_progress_bar": progress,
            "trainer.enable_model_summary": False,
        }
    )
    return files, overrides


def resolve_deep(cfg: BenchConfig, cell: Cell, root_dir: Path, progress: bool) -> dict:
    """The full resolved training config of a deep cell (validated, nothing built).

    Raises:
        hashbench.training.TrainingConfigError: it does not resolve.
    """
    from hashbench.training import resolve_config

    return resolve_config(*deep_sources(cfg, cell, root_dir, progress))


#: The keys of a deep cell's resolved config that :func:`deep_sources` sets per cell (the rest is
#: the same for every cell of a method).
PER_CELL_KEYS = ("model.init_args.bits", "seed_everything", "trainer.default_root_dir")


def patch_cell(template: dict, cell: Cell, root_dir: Path) -> dict:
    """The resolved config of ``cell`` from the resolved config of another cell of the same method
    and profile: a copy with :data:`PER_CELL_KEYS` replaced (what :func:`resolve_deep` gives,
    without parsing again; ``tests/bench/test_bench_config.py`` checks both agree)."""
    config = copy.deepcopy(template)
    config["model"]["init_args"]["bits"] = cell.bits
    config["seed_everything"] = cell.seed
    config["trainer"]["default_root_dir"] = str(root_dir)
    return config


def deep_cell_config(cfg: BenchConfig, cell: Cell, training_config: dict) -> dict:
    """The hashed configuration of a deep cell."""
    from hashbench.data.protocols import SPLIT_VERSION

    fit = hashable_config(training_config)
    modules = tuple(
        str(part["class_path"]).rpartition(".")[0]
        for part in (fit.get("model"), fit.get("data"))
        if isinstance(part, dict) and "class_path" in part
    )
    return {
        "kind": "deep",
        "method": cell.method,
        "base": cfg.base(cell.method),
        "fit": fit,
        "split_layout": SPLIT_VERSION,
        "code": code_fingerprint(modules),
    }


def code_fingerprint(modules: tuple[str, ...]) -> dict:
    """The behaviour fingerprint of a cell's method and data modules
    (:func:`hashbench.bench.fingerprint.fingerprint`)."""
    from hashbench.bench.fingerprint import fingerprint

    return fingerprint(modules)


# -- the data ---------------------------------------------------------------------------------------
def resolve_data(cfg: BenchConfig) -> dict:
    """The grid's resolved data config (``{"class_path": ..., "init_args": {...}}``).

    Raises:
        DataMissingError: the data config file does not exist.
        BenchConfigError: it does not parse.
    """
    if not cfg.data_config.is_file():
        raise DataMissingError(missing_data_message(cfg, no_data_config(cfg)))
    from hashbench.training import TrainingConfigError, resolve_data_config

    try:
        return resolve_data_config(cfg.data_config, data_overrides(cfg))
    except TrainingConfigError as e:
        raise BenchConfigError(f"{cfg.path}: data config {cfg.data_config}: {e}") from None


# -- baseline cells ---------------------------------------------------------------------------------
def _init_defaults(cls: type) -> dict[str, Any]:
    out = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name != "self" and p.default is not inspect.Parameter.empty:
            out[name] = p.default
    return out


def baseline_args(cfg: BenchConfig, method: str) -> dict[str, Any]:
    """A baseline's constructor arguments from the grid's and the profile's ``method_args``
    (plain argument names, e.g. ``{stage1_epochs: 1}``; ``bits`` and ``random_state`` come from
    the cell)."""
    out = dict(cfg.method_args.get(method, {}))
    out.update(cfg.profile.method_args.get(method, {}))
    return out


def baseline_config(cfg: BenchConfig, cell: Cell, data_cfg: dict) -> dict:
    """The hashed configuration of a baseline cell (the tie rule is the evaluation default)."""
    from hashbench.baselines import get_baseline
    from hashbench.data.protocols import SPLIT_VERSION
    from hashbench.retrieval.evaluation import DEFAULT_TIES

    estimator = get_baseline(cell.method)
    params = _init_defaults(estimator)
    given = baseline_args(cfg, cell.method)
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise BenchConfigError(
            f"{cfg.path}: method_args of baseline {cell.method!r} name unknown constructor "
            f"arguments {unknown}; its arguments: {sorted(params)}"
        )
    params.update(given)
    params.update(bits=cell.bits, random_state=cell.seed)
    modules = (estimator.__module__, *getattr(estimator, "behaviour_modules", ()))
    if isinstance(data_cfg, dict) and "class_path" in data_cfg:
        modules += (str(data_cfg["class_path"]).rpartition(".")[0],)
    return {
        "kind": "baseline",
        "method": cell.method,
        "estimator": {"class_path": f"{estimator.__module__}.{estimator.__qualname__}"},
        "params": params,
        "features": cfg.features,
        "pretrained": cfg.pretrained,
        "data": data_cfg,
        "metrics": "as the deep methods' test",
        "ties": DEFAULT_TIES,
        "split_layout": SPLIT_VERSION,
        "code": code_fingerprint(modules),
    }
