"""The sweep runner: every (method, bits, seed) cell of a benchmark grid, one JSON record each.

A benchmark is a YAML file (``benchmarks/<dataset>.yaml``, format in ``docs/bench.md``): a data
config and protocol preset, the methods (``all`` = every registered deep method and every shallow
baseline), code lengths, seeds, the leaderboard's metric tables, the baselines' input features, the
index settings of the timing, and named training profiles (``default``, ``paper``).

Cells (:class:`Cell`):

- **deep** (a key of :data:`hashbench.methods.METHODS`, or a ``variants`` entry built on one): the
  method trains exactly as ``hashbench fit`` does - :class:`~hashbench.lightning_cli.HashbenchCLI`
  with ``--config configs/methods/<key>.yaml --config <data config> --config <profile trainer
  config>`` and flag overrides - then the best checkpoint (``val/mAP``) is tested
  (``trainer.test(..., ckpt_path="best")``); the metrics come from the method's ``test_results``.
  A callback (:func:`make_test_tap`) times the test pass's encoding and keeps its codes, which go
  into the index whose build and query times are recorded (no second encoding pass).
- **baseline** (a key of :data:`hashbench.baselines.BASELINES`):
  :func:`hashbench.baselines.evaluate.fit_and_evaluate` on features from
  :class:`~hashbench.data.features.FeatureCache`, computed once per sweep and shared by every
  baseline cell, with the same metric groups as the deep methods' test.

Before any work the runner checks the grid (an unknown method or a bad code length stops it at
once), that the data config exists and that the dataset's files are on disk
(:class:`DataMissingError`, naming the expected layout and location). It then resolves every
cell's configuration and hashes it (:func:`hashable_config`, :func:`~hashbench.bench.records.config_hash`):
a cell whose record says ``ok`` with the same hash is skipped, so an interrupted sweep resumes
where it stopped; failed cells and cells whose configuration changed run again. A cell that raises
(or whose configuration does not resolve) is recorded as ``failed`` with its error and traceback,
and the sweep goes on; Ctrl+C stops it, leaving the current cell unrecorded. ``only`` filters the
cells, ``shard=(i, n)`` keeps every n-th cell of the filtered list starting at the i-th
(independent jobs writing disjoint records, merged by the leaderboard).

Resolved: the split seed is the data config's ``seed`` for every cell (the benchmark's ``seeds``
seed training and the baselines' ``random_state``), so the std over seeds is the training
variance on one fixed split.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import shutil
import sys
import time
import traceback
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hashbench.bench import records as rec

#: Top-level keys a benchmark YAML may hold.
BENCH_KEYS = (
    "name",
    "data",
    "protocol",
    "methods",
    "exclude",
    "variants",
    "method_args",
    "bits",
    "seeds",
    "metrics",
    "baselines",
    "index",
    "profiles",
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


#: :class:`~hashbench.retrieval.index.HammingIndex` kinds (not imported here: Faiss is heavy).
INDEX_KINDS = ("flat", "hash", "multihash", "ivf", "hnsw")


class BenchConfigError(ValueError):
    """A benchmark YAML (or a cell's resolved configuration) is invalid; the message says why."""


class DataMissingError(FileNotFoundError):
    """A benchmark's dataset (or its data config) is not on disk; the message names the layout."""


# -- benchmark configuration ------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexSettings:
    """How the encoded database is indexed for the timing (:class:`~hashbench.retrieval.index.HammingIndex`).

    Args:
        kind: index kind (``flat``: exact brute force, GPU when Faiss has one).
        k: top-k of the timed k-NN search (capped at the database size).
        radius: Hamming radius of the timed range search.
    """

    kind: str = "flat"
    k: int = 100
    radius: int = 2


@dataclass(frozen=True)
class Profile:
    """A training profile: the trainer config and overrides every deep cell gets.

    Args:
        name: profile name (``default``, ``paper``, ...).
        trainer_config: a ``configs/trainer/*.yaml`` file (``None``: the CLI's defaults).
        args: dotted ``hashbench fit`` keys -> values for every deep cell
            (e.g. ``trainer.max_epochs: 2``).
        method_args: per method, more dotted overrides (after ``args``).
        seeds: replaces the benchmark's ``seeds`` when given.

    A profile may also give ``bits``, replacing the benchmark's code lengths.
    """

    name: str
    trainer_config: Path | None = None
    args: dict[str, Any] = field(default_factory=dict)
    method_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    seeds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Variant:
    """A named deep cell built on a registered method with extra overrides (e.g. an ablation)."""

    name: str
    base: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchConfig:
    """A parsed ``benchmarks/<dataset>.yaml`` with one profile selected (see ``docs/bench.md``)."""

    path: Path
    name: str
    data_config: Path
    data_args: dict[str, Any]
    protocol: str | None
    layout: str
    methods: tuple[str, ...]
    variants: dict[str, Variant]
    method_args: dict[str, dict[str, Any]]
    bits: tuple[int, ...]
    seeds: tuple[int, ...]
    metrics: tuple[str, ...]
    features: str
    pretrained: bool | str
    index: IndexSettings
    profile: Profile
    skipped: tuple[str, ...] = ()

    def kind(self, method: str) -> str:
        """``deep`` or ``baseline``."""
        from hashbench.baselines import BASELINES

        return "baseline" if method in BASELINES else "deep"

    def base(self, method: str) -> str:
        """The registry key behind ``method`` (itself unless it is a variant)."""
        return self.variants[method].base if method in self.variants else method


def _resolve_path(value: str | os.PathLike, bench_path: Path) -> Path:
    """A path from a benchmark YAML: absolute, else relative to the working directory if it exists
    there, else relative to the repository holding the benchmark (the YAML's folder's parent)."""
    p = Path(value).expanduser()
    if p.is_absolute():
        return p
    if p.exists():
        return p
    repo = bench_path.resolve().parent.parent
    return repo / p if (repo / p).exists() else p


def _as_int_list(value: Any, what: str, path: Path) -> tuple[int, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise BenchConfigError(f"{path}: `{what}` must be a list of integers, got {value!r}")
    return tuple(values)


def _mapping(value: Any, what: str, path: Path) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BenchConfigError(f"{path}: `{what}` must be a mapping, got {value!r}")
    return dict(value)


def load_bench_config(
    path: str | os.PathLike, profile: str = "default", data_root: str | None = None
) -> BenchConfig:
    """Read and check a benchmark YAML; nothing is imported beyond the registries.

    Args:
        path: the YAML file (``benchmarks/<dataset>.yaml``).
        profile: which entry of ``profiles`` to use.
        data_root: replaces the data config's ``root``.

    Raises:
        BenchConfigError: the file is missing, malformed, or names an unknown method or profile.
    """
    from hashbench.baselines import BASELINES
    from hashbench.methods import METHODS
    from hashbench.retrieval.codes import check_bits

    path = Path(path)
    if not path.is_file():
        here = sorted(p.name for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise BenchConfigError(
            f"benchmark config {path} not found"
            + (f"; benchmarks there: {', '.join(here)}" if here else "")
        )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise BenchConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise BenchConfigError(f"{path}: expected a mapping with keys {', '.join(BENCH_KEYS)}")
    unknown = sorted(set(raw) - set(BENCH_KEYS))
    if unknown:
        raise BenchConfigError(
            f"{path}: unknown key(s) {unknown}; allowed: {', '.join(BENCH_KEYS)}"
        )
    data = _mapping(raw.get("data"), "data", path)
    if "config" not in data:
        raise BenchConfigError(f"{path}: `data.config` (a configs/data/*.yaml file) is required")
    data_args = _mapping(data.get("args"), "data.args", path)
    if data_root is not None:
        data_args["root"] = str(data_root)

    variants = {}
    for name, spec in _mapping(raw.get("variants"), "variants", path).items():
        spec = _mapping(spec, f"variants.{name}", path)
        if "base" not in spec:
            raise BenchConfigError(f"{path}: variant {name!r} needs `base` (a registered method)")
        variants[str(name)] = Variant(
            str(name), str(spec["base"]), _mapping(spec.get("args"), f"variants.{name}.args", path)
        )

    skipped = []
    known = {**dict.fromkeys(METHODS), **dict.fromkeys(BASELINES)}
    exclude_raw = raw.get("exclude") or []
    if not isinstance(exclude_raw, list):
        raise BenchConfigError(f"{path}: `exclude` must be a list of method names")
    exclude = {str(m) for m in exclude_raw}
    methods_raw = raw.get("methods", "all")
    if methods_raw == "all":
        names = sorted(set(METHODS) | set(BASELINES) | set(variants))
        for name in list(names):
            if name in variants and variants[name].base not in METHODS:
                skipped.append(
                    f"{name} (its base method {variants[name].base!r} is not registered)"
                )
                names.remove(name)
    elif isinstance(methods_raw, list) and methods_raw:
        names = [str(m) for m in methods_raw]
        bad = [m for m in names if m not in known and m not in variants]
        if bad:
            raise BenchConfigError(
                f"{path}: unknown method(s) {bad}; registered: {', '.join(sorted(known))}"
                + (f"; variants: {', '.join(sorted(variants))}" if variants else "")
            )
        for name in names:
            if name in variants and variants[name].base not in METHODS:
                raise BenchConfigError(
                    f"{path}: variant {name!r} is built on {variants[name].base!r}, which is not "
                    f"a registered deep method ({', '.join(sorted(METHODS))})"
                )
    else:
        raise BenchConfigError(f"{path}: `methods` must be `all` or a list of method names")
    methods = tuple(m for m in dict.fromkeys(names) if m not in exclude)
    if not methods:
        raise BenchConfigError(f"{path}: no methods left to run")

    bits = _as_int_list(raw.get("bits", [8, 16, 32, 48, 64]), "bits", path)
    for b in bits:
        try:
            check_bits(b)
        except ValueError as e:
            raise BenchConfigError(f"{path}: bits: {e}") from None
    seeds = _as_int_list(raw.get("seeds", [0]), "seeds", path)

    profiles = _mapping(raw.get("profiles"), "profiles", path) or {"default": {}}
    if profile not in profiles:
        raise BenchConfigError(
            f"{path}: no profile {profile!r}; profiles: {', '.join(sorted(profiles))}"
        )
    prof = _mapping(profiles[profile], f"profiles.{profile}", path)
    bad = sorted(set(prof) - {"trainer_config", "args", "method_args", "seeds", "bits"})
    if bad:
        raise BenchConfigError(f"{path}: profiles.{profile}: unknown key(s) {bad}")
    trainer_config = prof.get("trainer_config")
    prof_obj = Profile(
        name=profile,
        trainer_config=_resolve_path(trainer_config, path) if trainer_config else None,
        args=_mapping(prof.get("args"), f"profiles.{profile}.args", path),
        method_args={
            str(k): _mapping(v, f"profiles.{profile}.method_args.{k}", path)
            for k, v in _mapping(prof.get("method_args"), "method_args", path).items()
        },
        seeds=_as_int_list(prof["seeds"], f"profiles.{profile}.seeds", path)
        if "seeds" in prof
        else None,
    )
    baselines = _mapping(raw.get("baselines"), "baselines", path)
    index = _mapping(raw.get("index"), "index", path)
    try:
        index_settings = IndexSettings(**index)
    except TypeError as e:
        raise BenchConfigError(f"{path}: index: {e}") from None
    if index_settings.kind not in INDEX_KINDS:
        raise BenchConfigError(
            f"{path}: index.kind {index_settings.kind!r}; one of {', '.join(INDEX_KINDS)}"
        )
    metrics = raw.get("metrics", ["mAP", "mAP@H<=2", "P@H<=2", "P@500"])
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise BenchConfigError(f"{path}: `metrics` must be a list of metric names")
    if "bits" in prof:
        bits = _as_int_list(prof["bits"], f"profiles.{profile}.bits", path)
        for b in bits:
            try:
                check_bits(b)
            except ValueError as e:
                raise BenchConfigError(f"{path}: profiles.{profile}.bits: {e}") from None
    return BenchConfig(
        path=path,
        name=str(raw.get("name") or path.stem),
        data_config=_resolve_path(data["config"], path),
        data_args=data_args,
        protocol=raw.get("protocol"),
        layout=str(data.get("layout") or "").strip(),
        methods=methods,
        variants=variants,
        method_args={
            str(k): _mapping(v, f"method_args.{k}", path)
            for k, v in _mapping(raw.get("method_args"), "method_args", path).items()
        },
        bits=bits,
        seeds=prof_obj.seeds or seeds,
        metrics=tuple(metrics),
        features=str(baselines.get("features", "pixels")),
        pretrained=baselines.get("pretrained", False),
        index=index_settings,
        profile=prof_obj,
        skipped=tuple(skipped),
    )


# -- cells ------------------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Cell:
    """One benchmark cell. Sorted: baselines first (fast), then deep methods; by name, bits, seed."""

    order: int
    method: str
    bits: int
    seed: int
    kind: str

    @property
    def id(self) -> str:
        return f"{self.method}/{self.bits}bits/seed{self.seed}"


def expand_cells(cfg: BenchConfig) -> list[Cell]:
    """Every cell of the grid, in the deterministic order sharding uses."""
    cells = [
        Cell(0 if cfg.kind(m) == "baseline" else 1, m, b, s, cfg.kind(m))
        for m in cfg.methods
        for b in cfg.bits
        for s in cfg.seeds
    ]
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
    for b in bits - set(cfg.bits):
        raise BenchConfigError(f"--only: {b} bits is not in the grid ({list(cfg.bits)})")
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


# -- configuration of a cell ------------------------------------------------------------------------
def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _flags(overrides: dict[str, Any]) -> list[str]:
    out = []
    for key, value in overrides.items():
        out += [f"--{key}", _flag_value(value)]
    return out


def method_config_path(cfg: BenchConfig, method: str) -> Path:
    """``configs/methods/<key>.yaml`` of a deep method (or of a variant's base)."""
    return _resolve_path(Path("configs/methods") / f"{cfg.base(method)}.yaml", cfg.path)


def run_dir(runs_dir: str | os.PathLike, cfg: BenchConfig, cell: Cell) -> Path:
    """Where a deep cell's Lightning logs and checkpoints go."""
    return Path(runs_dir) / cfg.name / cell.method / f"{cell.bits}bits-seed{cell.seed}"


def deep_args(cfg: BenchConfig, cell: Cell, root_dir: Path, progress: bool) -> list[str]:
    """The ``hashbench fit`` arguments of a deep cell (later ones override earlier ones)."""
    args = ["--config", str(method_config_path(cfg, cell.method)), "--config", str(cfg.data_config)]
    if cfg.profile.trainer_config is not None:
        args += ["--config", str(cfg.profile.trainer_config)]
    data = dict(cfg.data_args)
    if cfg.protocol:
        data["protocol"] = cfg.protocol
    args += _flags({f"data.init_args.{k}": v for k, v in data.items()})
    args += _flags(cfg.profile.args)
    if cell.method in cfg.variants:
        args += _flags(cfg.variants[cell.method].args)
    args += _flags(cfg.method_args.get(cell.method, {}))
    args += _flags(cfg.profile.method_args.get(cell.method, {}))
    args += _flags(
        {
            "model.init_args.bits": cell.bits,
            "seed_everything": cell.seed,
            "trainer.default_root_dir": str(root_dir),
            "trainer.enable_progress_bar": progress,
            "trainer.enable_model_summary": False,
        }
    )
    return args


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


def _parse_only_cli():
    from hashbench.lightning_cli import HashbenchCLI

    class _ParseOnly(HashbenchCLI):
        """Parses and validates a ``hashbench fit`` configuration without instantiating it."""

        def _set_seed(self) -> None:
            pass

        def instantiate_classes(self) -> None:
            pass

    return _ParseOnly


def resolve_deep_config(args: list[str]) -> dict:
    """The full resolved ``hashbench fit`` config of ``args`` (parsed and validated, not built).

    Raises:
        BenchConfigError: the arguments do not parse (the parser's message is printed above).
    """
    cli_cls = _parse_only_cli()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
            cli = cli_cls(args=args, run=False)
    except SystemExit as e:
        raise BenchConfigError(
            f"invalid configuration (exit {e.code}; see the message above): {' '.join(args)}"
        ) from None
    return cli.config.as_dict()


def _init_defaults(cls: type) -> dict[str, Any]:
    out = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name != "self" and p.default is not inspect.Parameter.empty:
            out[name] = p.default
    return out


def data_namespace(cfg: BenchConfig) -> tuple[Any, Any]:
    """Parse the data config with the benchmark's overrides -> (parser, namespace).

    Raises:
        DataMissingError: the data config file does not exist.
        BenchConfigError: it does not parse.
    """
    if not cfg.data_config.is_file():
        raise DataMissingError(missing_data_message(cfg, _no_data_config(cfg)))
    from jsonargparse import ActionConfigFile, ArgumentParser

    import hashbench.data  # noqa: F401
    from hashbench.data.base import HashDataModule

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_subclass_arguments(HashDataModule, "data", required=True)
    data = dict(cfg.data_args)
    if cfg.protocol:
        data["protocol"] = cfg.protocol
    argv = ["--config", str(cfg.data_config)]
    argv += _flags({f"data.init_args.{k}": v for k, v in data.items()})
    try:
        ns = parser.parse_args(argv)
    except Exception as e:  # noqa: BLE001 - jsonargparse raises several types
        raise BenchConfigError(f"{cfg.path}: data config {cfg.data_config}: {e}") from None
    return parser, ns


def _no_data_config(cfg: BenchConfig) -> str:
    return (
        f"its data config {cfg.data_config} does not exist in this checkout (the dataset's "
        "DataModule and config are not installed yet)."
    )


def missing_data_message(cfg: BenchConfig, reason: str) -> str:
    """The message of :class:`DataMissingError`: what is missing, the expected layout, the fix."""
    lines = [f"hashbench bench: cannot run {cfg.path} ({cfg.name}): {reason}"]
    if cfg.layout:
        lines += ["", "Expected layout:", *("  " + line for line in cfg.layout.splitlines())]
    lines += ["", "Nothing was run or written."]
    return "\n".join(lines)


def baseline_config(cfg: BenchConfig, cell: Cell, data_cfg: dict) -> dict:
    """The hashed configuration of a baseline cell."""
    from hashbench.baselines import get_baseline

    params = _init_defaults(get_baseline(cell.method))
    params.update(bits=cell.bits, random_state=cell.seed)
    return {
        "kind": "baseline",
        "method": cell.method,
        "params": params,
        "features": cfg.features,
        "pretrained": cfg.pretrained,
        "data": data_cfg,
        "metrics": "as the deep methods' test",
        "ties": "index",
    }


def metric_groups(multi_label: bool) -> tuple[str, ...]:
    """The metric groups of a deep method's test (baselines get the same)."""
    from hashbench.methods.base import TEST_METRICS

    return tuple(m for m in TEST_METRICS if m != "ndcg" or multi_label)


# -- the plan ---------------------------------------------------------------------------------------
@dataclass
class PlannedCell:
    """A cell with its resolved configuration, hash, record path and what the runner will do."""

    cell: Cell
    config: dict
    hash: str
    path: Path
    action: str  # run | skip | rerun (config changed) | retry (failed)
    args: list[str] = field(default_factory=list)
    error: str | None = None  # the configuration does not resolve: the cell is recorded as failed


@dataclass
class SweepReport:
    """What a sweep did."""

    planned: list[PlannedCell]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    leaderboard: Path | None = None
    shared_data_cells: int = 0


class Sweep:
    """A benchmark sweep: plan (configs, hashes, actions) then run.

    Args:
        cfg: the benchmark.
        results: results folder (records under ``<results>/raw/<name>/``).
        runs_dir: where deep cells' Lightning logs and checkpoints go.
        only: ``--only`` tokens.
        shard: ``(i, n)``.
        progress: show progress bars.
        keep_checkpoints: keep the deep cells' checkpoint files after their record is written.
        retry_failed: run cells whose record says ``failed`` again.
    """

    def __init__(
        self,
        cfg: BenchConfig,
        results: str | os.PathLike = "results",
        runs_dir: str | os.PathLike = "runs/bench",
        only: Sequence[str] | None = None,
        shard: tuple[int, int] | None = None,
        progress: bool = True,
        keep_checkpoints: bool = False,
        retry_failed: bool = True,
    ) -> None:
        self.cfg = cfg
        self.results = Path(results)
        self.runs_dir = Path(runs_dir)
        self.progress = progress
        self.keep_checkpoints = keep_checkpoints
        self.retry_failed = retry_failed
        self.cells = select_cells(expand_cells(cfg), parse_only(only, cfg), shard)
        self._datamodule = None
        self._data_cfg: dict | None = None
        self._env: dict | None = None
        self._features: dict[tuple[str, str], dict[str, Any]] = {}
        self._bar: Any = None
        #: deep cells that reused the benchmark DataModule's arrays (see :meth:`_share_data`)
        self.shared_data_cells = 0

    # -- checks -------------------------------------------------------------------------------------
    def check_configs(self) -> None:
        """Deep methods' config files exist (cheap; before anything is imported)."""
        missing = [
            str(method_config_path(self.cfg, m))
            for m in dict.fromkeys(c.method for c in self.cells if c.kind == "deep")
            if not method_config_path(self.cfg, m).is_file()
        ]
        if missing:
            raise BenchConfigError(f"{self.cfg.path}: method config(s) not found: {missing}")
        if not self.cfg.data_config.is_file():
            raise DataMissingError(missing_data_message(self.cfg, _no_data_config(self.cfg)))

    def datamodule(self, load: bool = True):
        """The benchmark's DataModule, built once; ``load`` reads the data and the split."""
        if self._datamodule is None:
            parser, ns = data_namespace(self.cfg)
            self._data_cfg = hashable_config({"data": ns.data.as_dict()})["data"]
            self._datamodule = parser.instantiate_classes(ns).data
        if load:
            from hashbench.data.base import DatasetNotFoundError

            try:
                self._datamodule.prepare_data()
            except DatasetNotFoundError as e:
                raise DataMissingError(
                    missing_data_message(self.cfg, f"the dataset is not on disk: {e}")
                ) from None
        return self._datamodule

    # -- plan ---------------------------------------------------------------------------------------
    def plan(self, load_data: bool = True) -> list[PlannedCell]:
        """Resolve every selected cell's config and hash; decide run / skip / rerun / retry."""
        self.check_configs()
        self.datamodule(load=load_data)
        planned = []
        for cell in self.cells:
            path = rec.record_path(self.results, self.cfg.name, cell.method, cell.bits, cell.seed)
            if cell.kind == "deep":
                args = deep_args(
                    self.cfg, cell, run_dir(self.runs_dir, self.cfg, cell), self.progress
                )
                error = None
                try:
                    fit = hashable_config(resolve_deep_config(args))
                except Exception as e:  # noqa: BLE001 - recorded as a failed cell, sweep goes on
                    error = f"{type(e).__name__}: {e}"
                    fit = {"invalid": error}
                config = {
                    "kind": "deep",
                    "method": cell.method,
                    "base": self.cfg.base(cell.method),
                    "fit": fit,
                }
            else:
                args, error = [], None
                config = baseline_config(self.cfg, cell, self._data_cfg or {})
            digest = rec.config_hash(config)
            old = rec.read_record(path)
            if old is None:
                action = "run"
            elif old.get("status") == "ok":
                action = "skip" if old.get("config_hash") == digest else "rerun"
            else:
                action = "retry" if self.retry_failed else "skip"
            planned.append(PlannedCell(cell, config, digest, path, action, args, error))
        return planned

    # -- run ----------------------------------------------------------------------------------------
    def environment(self) -> dict:
        if self._env is None:
            self._env = {"versions": rec.versions(), "git": rec.git_commit()}
        return self._env

    def run(self, planned: list[PlannedCell] | None = None) -> SweepReport:
        """Run the planned cells that need it; returns the report (records are on disk)."""
        planned = self.plan() if planned is None else planned
        report = SweepReport(planned)
        todo = [p for p in planned if p.action != "skip"]
        report.skipped = [p.cell.id for p in planned if p.action == "skip"]
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(todo),
            desc=f"bench {self.cfg.name}",
            unit="cell",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        self._bar = bar if self.progress else None
        try:
            for p in todo:
                bar.set_description(f"{self.cfg.name} {p.cell.id}")
                bar.set_postfix_str("")
                record = self.run_cell(p)
                rec.write_record(p.path, record)
                report.ran.append(p.cell.id)
                if record["status"] != "ok":
                    report.failed.append(p.cell.id)
                line = _summary_line(record)
                if self.progress:
                    bar.write(line)
                else:
                    print(line, flush=True)
                bar.update(1)
        finally:
            bar.close()
            self._bar = None
            report.shared_data_cells = self.shared_data_cells
        return report

    def run_cell(self, p: PlannedCell) -> dict:
        """Run one cell; an ``Exception`` becomes a ``failed`` record.

        ``KeyboardInterrupt`` and ``SystemExit`` (Lightning turns Ctrl+C during training into
        ``SystemExit(1)``) are not caught: the sweep stops and the cell stays unrecorded.
        """
        base = {
            "record_version": rec.RECORD_VERSION,
            "benchmark": self.cfg.name,
            "dataset": self.cfg.name,
            "method": p.cell.method,
            "kind": p.cell.kind,
            "bits": p.cell.bits,
            "seed": p.cell.seed,
            "cell": p.cell.id,
            "config_hash": p.hash,
            "config": p.config,
            "bench": {
                "config": _display_path(self.cfg.path),
                "profile": self.cfg.profile.name,
                "metrics": list(self.cfg.metrics),
                "index": dataclasses.asdict(self.cfg.index),
            },
            "versions": self.environment()["versions"],
            "git_commit": self.environment()["git"]["commit"],
            "git_dirty": self.environment()["git"]["dirty"],
            "started_at": rec.utc_now(),
        }
        memory = rec.PeakMemory()
        memory.reset()
        t0 = time.perf_counter()
        try:
            if p.error is not None:
                raise BenchConfigError(f"invalid configuration: {p.error}")
            if p.cell.kind == "deep":
                out = self._run_deep(p)
            else:
                out = self._run_baseline(p)
            status, error, tb = "ok", None, None
        except Exception as e:  # noqa: BLE001 - a failed cell must not stop the sweep
            out = {}
            status = "failed"
            error = f"{type(e).__name__}: {e}"
            tb = traceback.format_exc()
        record = {
            **base,
            **out,
            "status": status,
            "error": error,
            "traceback": tb,
            "memory": memory.read(),
            "finished_at": rec.utc_now(),
        }
        record.setdefault("times", {})["total_s"] = time.perf_counter() - t0
        record.setdefault("device", rec.device_info(None))
        return record

    def features(self) -> tuple[dict[str, Any], float]:
        """The baselines' input features of ``train``, ``query`` and ``database``, computed once.

        From :class:`~hashbench.data.features.FeatureCache` (backbone features are extracted once per
        dataset and cached on disk; ``pixels`` are read from the images), kept in memory for every
        baseline cell of the sweep. Returns the features and the seconds spent on them in this call
        (0 once they are in memory).
        """
        key = (self.cfg.features, str(self.cfg.pretrained))
        if key in self._features:
            return self._features[key], 0.0
        from hashbench.data.features import FeatureCache

        t0 = time.perf_counter()
        cache = FeatureCache(self.datamodule(), self.cfg.features, self.cfg.pretrained)
        self._features[key] = {s: cache.split(s) for s in ("train", "query", "database")}
        return self._features[key], time.perf_counter() - t0

    def _run_baseline(self, p: PlannedCell) -> dict:
        """Fit and evaluate a shallow baseline with
        :func:`hashbench.baselines.evaluate.fit_and_evaluate`, on features computed once per sweep.
        """
        from hashbench.baselines import SUPERVISED
        from hashbench.baselines.evaluate import RESULT_EXTRAS, fit_and_evaluate

        dm = self.datamodule()
        x, features_s = self.features()
        name, bits = p.cell.method, p.cell.bits
        result = fit_and_evaluate(
            name,
            bits,
            dm,
            random_state=p.cell.seed,
            metrics=metric_groups(dm.multi_label),
            ties="index",
            split_features=x,
        )
        extras = {k: result.pop(k) for k in RESULT_EXTRAS}
        q_codes, db_codes = extras["query_codes"], extras["database_codes"]
        times = {
            "train_s": extras["fit_s"],
            "features_s": features_s,
            "encode_s": extras["encode_s"],
            "encode_per_s": extras["encode_per_s"],
            "query_encode_s": extras["query_encode_s"],
        }
        times.update(index_timing(q_codes, db_codes, bits, self.cfg.index))
        times["query_ms"] = (
            1000 * (extras["query_encode_s"] + times["topk_s"]) / max(len(q_codes), 1)
        )
        metrics, curves = split_metrics(result)
        return {
            "supervised": name in SUPERVISED,
            "metrics": metrics,
            "curves": curves,
            "protocol": protocol_info(dm),
            "times": times,
            "device": rec.device_info("cpu"),
        }

    def _run_deep(self, p: PlannedCell) -> dict:
        import torch

        from hashbench.lightning_cli import HashbenchCLI
        from hashbench.methods import method_class

        root = run_dir(self.runs_dir, self.cfg, p.cell)
        if root.exists():
            shutil.rmtree(root)  # a killed earlier attempt of this cell
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
            cli = HashbenchCLI(args=p.args, run=False)
        config = hashable_config(cli.config.as_dict())
        if rec.config_hash(config) != rec.config_hash(p.config["fit"]):
            raise RuntimeError("the instantiated config differs from the planned one")
        model, dm, trainer = cli.model, cli.datamodule, cli.trainer
        self._share_data(dm)
        if self._bar is not None:
            trainer.callbacks.append(make_epoch_display(self._bar))
        t0 = time.perf_counter()
        trainer.fit(model, datamodule=dm)
        train_s = time.perf_counter() - t0
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        tap = make_test_tap()
        trainer.callbacks.append(tap)
        t0 = time.perf_counter()
        trainer.test(model, datamodule=dm, ckpt_path="best", verbose=False)
        test_s = time.perf_counter() - t0
        metrics, curves = split_metrics(model.test_results)
        if not metrics:
            raise RuntimeError(f"{p.cell.method}: test produced no metrics")
        device = trainer.strategy.root_device
        if tap.complete(len(dm.split["query"]), len(dm.split["database"])):
            q_codes, db_codes = tap.codes[0], tap.codes[1]
            query_encode_s, encode_s = tap.seconds[0], tap.seconds[1]
            encode_source = "test pass"
        else:  # the method keeps its test codes elsewhere: encode once more
            q_codes, query_encode_s = encode_split(model, dm, "query", device)
            db_codes, encode_s = encode_split(model, dm, "database", device)
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
        times.update(index_timing(q_codes, db_codes, p.cell.bits, self.cfg.index))
        times["query_ms"] = 1000 * (query_encode_s + times["topk_s"]) / max(len(q_codes), 1)
        if not self.keep_checkpoints:
            for ckpt in root.rglob("*.ckpt"):
                ckpt.unlink()
        cls = method_class(self.cfg.base(p.cell.method))
        dev = str(device) if device.type != "cuda" else f"cuda:{device.index or 0}"
        out = {
            "supervised": getattr(cls, "supervised", None),
            "metrics": metrics,
            "curves": curves,
            "protocol": protocol_info(dm),
            "times": times,
            "device": rec.device_info(dev),
            "run_dir": _display_path(root),
            "best_checkpoint": _display_path(Path(best)) if best else None,
            "best_val_mAP": _float(trainer.checkpoint_callback.best_model_score)
            if trainer.checkpoint_callback
            else None,
        }
        tag_source = model.hparams.get("tag_source")  # weakly supervised methods (wsdh)
        if tag_source:
            out["tag_source"] = str(tag_source)
        del cli, model, trainer
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return out

    def _share_data(self, dm) -> None:
        """Give a deep cell's DataModule the already-read dataset arrays and split (same data).

        Only when the class, root, protocol, split seed, image size and every constructor argument
        both record match the benchmark's DataModule (so the same files were read); the
        arrays object is a shallow copy, so a method that replaces one of its fields (tags, say)
        does not change what later cells see.
        """
        shared = self._datamodule
        if shared is None or shared._arrays is None or shared._split is None:
            return
        mine, theirs = dict(dm.hparams), dict(shared.hparams)
        common = {k for k in mine.keys() & theirs.keys() if not k.startswith("_")}
        if (
            type(dm) is type(shared)
            and Path(dm.root).resolve() == Path(shared.root).resolve()
            and dm.protocol == shared.protocol
            and dm.seed == shared.seed
            and dm.image_size == shared.image_size
            and all(mine[k] == theirs[k] for k in common)
        ):
            self.shared_data_cells += 1
            dm._arrays = dataclasses.replace(shared._arrays)
            dm._split = dict(shared._split)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _display_path(path: Path) -> str:
    """``path`` relative to the working directory when inside it (records stay portable)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def split_metrics(result: dict) -> tuple[dict[str, float], dict[str, list]]:
    """Scalar metrics and curves (lists) of a metric dict; other entries are dropped."""
    import numpy as np

    scalars, curves = {}, {}
    for key, value in result.items():
        if isinstance(value, str | bytes) or value is None:
            continue
        try:
            arr = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        except Exception:  # noqa: BLE001 - not numeric (e.g. a fitted object)
            continue
        if arr.dtype == object:
            continue
        if arr.ndim == 0:
            scalars[key] = float(arr)
        else:
            curves[key] = arr.tolist()
    return scalars, curves


def protocol_info(dm) -> dict:
    """The protocol facts a leaderboard states (from the DataModule that produced the numbers)."""
    split = dm.split
    return {
        "name": dm.protocol.name,
        "k": dm.metric_k,
        "split_seed": dm.seed,
        "data_key": dm.key,
        "ties": "index",
        "multi_label": bool(dm.multi_label),
        **{f"n_{s}": int(len(split[s])) for s in split},
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


def make_test_tap():
    """A Lightning callback that times the test pass and keeps the codes it computed.

    After ``trainer.test``: ``seconds[i]`` / ``items[i]`` are the wall time of the test steps
    (encode + metric update; CUDA synchronised) and the item count of test loader ``i``
    (0 = query, 1 = database); ``codes[i]`` are the packed codes the method's test metric
    accumulated, read from the :class:`~hashbench.retrieval.metric.HashRetrievalMetric` state in
    ``on_test_epoch_end`` (Lightning runs callbacks before the module's hook, which drops the
    metric). This saves a second encoding pass over the database; ``complete()`` says whether it
    worked (otherwise the runner encodes again).
    """
    import torch
    from lightning.pytorch.callbacks import Callback

    def sync(pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    class TestTap(Callback):
        def __init__(self) -> None:
            self.seconds: dict[int, float] = defaultdict(float)
            self.items: dict[int, int] = defaultdict(int)
            self.codes: dict[int, Any] = {}
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

        def on_test_epoch_end(self, trainer, pl_module):
            metric = getattr(pl_module, "_metrics", {}).get("test")
            for i, role in enumerate(("query", "database")):
                chunks = getattr(metric, f"{role}_codes", None)
                if chunks:
                    self.codes[i] = torch.cat([c.cpu() for c in chunks]).numpy()

        def complete(self, n_query: int, n_database: int) -> bool:
            return (
                0 in self.codes
                and 1 in self.codes
                and len(self.codes[0]) == self.items[0] == n_query
                and len(self.codes[1]) == self.items[1] == n_database
            )

    return TestTap()


def encode_split(model, dm, split: str, device) -> tuple[Any, float]:
    """Packed codes of one split with ``model`` on ``device`` and the wall time it took."""
    import numpy as np
    import torch

    model = model.to(device).eval()
    chunks = []
    sync = device.type == "cuda"
    with torch.no_grad():
        t0 = time.perf_counter()
        for batch in dm.dataloader(split):
            chunks.append(model.encode(batch["image"].to(device)).cpu())
        if sync:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    codes = torch.cat(chunks).numpy() if chunks else np.zeros((0, model.bits // 8), np.uint8)
    return codes, seconds


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


def _summary_line(record: dict) -> str:
    t = record.get("times", {}).get("total_s", 0.0)
    if record["status"] != "ok":
        return f"  {record['cell']}: FAILED after {t:.1f} s: {record['error']}"
    metrics = record.get("metrics", {})
    key = next((k for k in sorted(metrics) if k.startswith("mAP@") and "H<=" not in k), None)
    value = f"{key} {metrics[key]:.4f}" if key else "no mAP"
    return f"  {record['cell']}: {value} ({t:.1f} s)"


# -- entry points -----------------------------------------------------------------------------------
def run_benchmark(
    config: str | os.PathLike,
    results: str | os.PathLike = "results",
    profile: str = "default",
    only: Sequence[str] | None = None,
    shard: tuple[int, int] | str | None = None,
    dry_run: bool = False,
    data_root: str | None = None,
    runs_dir: str | os.PathLike = "runs/bench",
    progress: bool = True,
    leaderboard: bool = True,
    figures: bool = True,
    keep_checkpoints: bool = False,
    retry_failed: bool = True,
    echo: Callable[[str], None] = print,
) -> SweepReport:
    """Run (or list, with ``dry_run``) a benchmark sweep and regenerate the leaderboard.

    Args:
        config: the benchmark YAML.
        results: results folder.
        profile: training profile of the YAML.
        only: ``--only`` tokens (method names, bit lengths, ``seed=<k>``).
        shard: ``(i, n)`` or ``"i/n"``.
        dry_run: list the cells and what would happen to each; run nothing, write nothing.
        data_root: replaces the data config's ``root``.
        runs_dir: where deep cells' logs and checkpoints go.
        progress: progress bars (cells, and Lightning's per-epoch bar).
        leaderboard: regenerate ``<results>/leaderboard.md`` / ``.csv`` after the sweep.
        figures: also the figures under ``<results>/figures``.
        keep_checkpoints: keep deep cells' checkpoint files.
        retry_failed: run cells recorded as failed again.
        echo: where messages go.

    Raises:
        BenchConfigError: a bad benchmark or cell configuration (nothing was run).
        DataMissingError: the dataset is not on disk (nothing was run).
    """
    if isinstance(shard, str):
        shard = parse_shard(shard)
    cfg = load_bench_config(config, profile, data_root)
    for note in cfg.skipped:
        echo(f"note: skipping {note}")
    sweep = Sweep(
        cfg,
        results,
        runs_dir,
        only,
        shard,
        progress and not dry_run,
        keep_checkpoints,
        retry_failed,
    )
    if dry_run:
        sweep.check_configs()
        planned = sweep.plan(load_data=False)
        echo(f"{cfg.path}: {len(planned)} cells (profile {cfg.profile.name}, results {results})")
        for p in planned:
            note = "" if p.error is None else f"  INVALID CONFIG: {p.error}"
            echo(f"  {p.action:<6} {p.cell.id:<32} {p.cell.kind:<8} config {p.hash}{note}")
        counts = {a: sum(p.action == a for p in planned) for a in ("run", "rerun", "retry", "skip")}
        echo("  " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        return SweepReport(planned)
    planned = sweep.plan()
    counts = {a: sum(p.action == a for p in planned) for a in ("run", "rerun", "retry", "skip")}
    echo(
        f"{cfg.name}: {len(planned)} cells, "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
        + f" (profile {cfg.profile.name})"
    )
    try:
        report = sweep.run(planned)
    except (KeyboardInterrupt, SystemExit):
        echo("\ninterrupted: finished cells are recorded; run the same command again to resume")
        raise
    if leaderboard:
        from hashbench.bench.leaderboard import write_leaderboard

        report.leaderboard = write_leaderboard(results, figures=figures)["markdown"]
        echo(f"leaderboard: {report.leaderboard}")
    if report.failed:
        echo(
            f"{len(report.failed)} cell(s) failed (recorded with their error; a rerun retries "
            f"them): {', '.join(report.failed)}"
        )
    return report


if __name__ == "__main__":  # pragma: no cover
    from hashbench.bench.cli import bench_main

    sys.exit(bench_main(sys.argv[1:]))
