"""A benchmark grid: ``benchmarks/<dataset>.yaml`` parsed into a :class:`BenchConfig`.

The format is documented in ``docs/bench.md``: a data config and protocol preset, the methods
(``all`` = every registered deep method and every shallow baseline), code lengths, seeds, the
leaderboard's metric tables, the baselines' input features, the index settings of the timing, and
named training profiles (``default``, ``paper``). Reading a grid imports only the registries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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

#: Keys a profile may hold (:class:`Profile`).
PROFILE_KEYS = (
    "trainer_config",
    "args",
    "method_args",
    "seeds",
    "bits",
    "add_cells",
    "results",
    "kinds",
)

#: Method kinds a profile may keep (``kinds``).
METHOD_KINDS = ("deep", "baseline")

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
        add_cells: more ``(bits, seeds)`` blocks on top of ``bits x seeds`` (e.g. seeds 1-2 at
            16/32/64 bits only, when every seed at every length would cost too much).
        results: the profile's own results folder (``None``: the command's ``--results``), so
            a short profile never touches the committed leaderboard.
        kinds: keep only the methods of these kinds (``deep``, ``baseline``); ``None``: all.

    A profile may also give ``bits``, replacing the benchmark's code lengths.
    """

    name: str
    trainer_config: Path | None = None
    args: dict[str, Any] = field(default_factory=dict)
    method_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    seeds: tuple[int, ...] | None = None
    add_cells: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = ()
    results: str | None = None
    kinds: tuple[str, ...] | None = None


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
        return method_kind(method)

    def grid(self) -> list[tuple[int, int]]:
        """The ``(bits, seed)`` pairs every method runs: ``bits x seeds`` plus the profile's
        ``add_cells`` blocks, sorted."""
        pairs = {(b, s) for b in self.bits for s in self.seeds}
        for bits, seeds in self.profile.add_cells:
            pairs |= {(b, s) for b in bits for s in seeds}
        return sorted(pairs)

    def all_bits(self) -> tuple[int, ...]:
        """Every code length of :meth:`grid`."""
        return tuple(sorted({b for b, _ in self.grid()}))

    def all_seeds(self) -> tuple[int, ...]:
        """Every seed of :meth:`grid`."""
        return tuple(sorted({s for _, s in self.grid()}))

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


def _bits_list(value: Any, what: str, path: Path) -> tuple[int, ...]:
    """A list of code lengths, each checked (:func:`hashbench.retrieval.codes.check_bits`)."""
    from hashbench.retrieval.codes import check_bits

    bits = _as_int_list(value, what, path)
    for b in bits:
        try:
            check_bits(b)
        except ValueError as e:
            raise BenchConfigError(f"{path}: {what}: {e}") from None
    return bits


def _add_cells(value: Any, what: str, path: Path) -> tuple:
    """``[{bits: [...], seeds: [...]}, ...]`` -> ``((bits, seeds), ...)``, checked."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BenchConfigError(f"{path}: `{what}` must be a list of {{bits: [...], seeds: [...]}}")
    blocks = []
    for i, block in enumerate(value):
        if not isinstance(block, dict) or set(block) != {"bits", "seeds"}:
            raise BenchConfigError(
                f"{path}: `{what}[{i}]` must be a mapping with exactly `bits` and `seeds`, "
                f"got {block!r}"
            )
        bits = _bits_list(block["bits"], f"{what}[{i}].bits", path)
        blocks.append((bits, _as_int_list(block["seeds"], f"{what}[{i}].seeds", path)))
    return tuple(blocks)


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

    bits = _bits_list(raw.get("bits", [8, 16, 32, 48, 64]), "bits", path)
    seeds = _as_int_list(raw.get("seeds", [0]), "seeds", path)

    profiles = _mapping(raw.get("profiles"), "profiles", path) or {"default": {}}
    if profile not in profiles:
        raise BenchConfigError(
            f"{path}: no profile {profile!r}; profiles: {', '.join(sorted(profiles))}"
        )
    prof = _mapping(profiles[profile], f"profiles.{profile}", path)
    bad = sorted(set(prof) - set(PROFILE_KEYS))
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
        add_cells=_add_cells(prof.get("add_cells"), f"profiles.{profile}.add_cells", path),
        results=str(prof["results"]) if prof.get("results") else None,
        kinds=_kinds(prof["kinds"], f"profiles.{profile}.kinds", path) if "kinds" in prof else None,
    )
    if prof_obj.kinds is not None:
        methods = tuple(m for m in methods if method_kind(m) in prof_obj.kinds)
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
        bits = _bits_list(prof["bits"], f"profiles.{profile}.bits", path)
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


def method_config_path(cfg: BenchConfig, method: str) -> Path:
    """``configs/methods/<key>.yaml`` of a deep method (or of a variant's base)."""
    return _resolve_path(Path("configs/methods") / f"{cfg.base(method)}.yaml", cfg.path)


def no_data_config(cfg: BenchConfig) -> str:
    """The reason text when a grid's data config file is absent."""
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


def method_kind(method: str) -> str:
    """``baseline`` for a registered shallow baseline, else ``deep`` (methods and variants)."""
    from hashbench.baselines import BASELINES

    return "baseline" if method in BASELINES else "deep"


def _kinds(value: Any, where: str, path: Path) -> tuple[str, ...]:
    """A profile's ``kinds``: a non-empty list of :data:`METHOD_KINDS`."""
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v in METHOD_KINDS for v in value)
    ):
        raise BenchConfigError(
            f"{path}: {where} must be a non-empty list of {', '.join(METHOD_KINDS)}, got {value!r}"
        )
    return tuple(value)
