"""The Python training API: a resolved config -> (model, DataModule, Trainer), used by the CLI and
the bench alike.

A training configuration is what ``hashbench fit`` takes: a method config, a data config, a trainer
config (YAML files, later ones overriding earlier ones) and typed overrides::

    from hashbench import training

    config = training.resolve_config(
        ["configs/methods/dsh.yaml", "configs/data/fashion_mnist.yaml", "configs/trainer/default.yaml"],
        {"model.init_args.bits": 32, "trainer.max_epochs": 6, "seed_everything": 0},
    )
    run = training.build(config)          # seeds, then instantiates model, DataModule and Trainer
    run.trainer.fit(run.model, datamodule=run.datamodule)

``resolve_config`` parses and validates with the same argument space as ``hashbench fit`` (the
classes' constructor signatures, through jsonargparse) and returns plain data; nothing is built.
Overrides are values, not command-line strings: ``{"model.init_args.bits": 32}`` is merged as the
integer 32. :class:`~hashbench.lightning_cli.HashbenchCLI` declares its extra arguments and trainer
defaults through :func:`add_arguments`, so both faces resolve a config to the same dictionary (a test
checks this).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Trainer defaults of ``hashbench fit`` (a trainer config or an override replaces them).
TRAINER_DEFAULTS: dict[str, Any] = {
    "trainer.max_epochs": 30,
    "trainer.num_sanity_val_steps": 0,
    "trainer.default_root_dir": "runs",
    "trainer.log_every_n_steps": 10,
}

#: The default of ``seed_everything`` (the training seed; the split seed is the data config's).
DEFAULT_SEED = 0


class TrainingConfigError(ValueError):
    """A training configuration does not parse or validate; the message says which key and why."""


@dataclass
class TrainingRun:
    """The objects one training run needs, built from a resolved config by :func:`build`."""

    config: dict[str, Any]
    model: Any  # hashbench.methods.base.HashingMethod
    datamodule: Any  # hashbench.data.base.HashDataModule
    trainer: Any  # lightning.pytorch.Trainer


def validation_history():
    """A Lightning callback keeping ``val/*`` after every validation: ``.history`` is a list of
    ``{"epoch": e, "val/mAP": ...}`` (epoch counted from 0, as checkpoint names do)."""
    from lightning.pytorch.callbacks import Callback

    class ValidationHistory(Callback):
        def __init__(self) -> None:
            self.history: list[dict[str, float]] = []

        def on_validation_end(self, trainer, pl_module) -> None:
            if trainer.sanity_checking:
                return
            values = {
                k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")
            }
            if values:
                self.history.append({"epoch": int(trainer.current_epoch), **values})

        def best(self, monitor: str = "val/mAP") -> dict[str, float] | None:
            """The entry with the highest ``monitor`` (the first of equals), or ``None``."""
            scored = [h for h in self.history if monitor in h]
            return max(scored, key=lambda h: h[monitor]) if scored else None

    return ValidationHistory()


def add_arguments(parser) -> None:
    """The arguments and defaults hashbench adds to Lightning's (shared by the CLI and this module)."""
    parser.set_defaults(TRAINER_DEFAULTS)
    parser.add_argument(
        "--test_after_fit",
        type=bool,
        default=False,
        help="after `fit`, run `test` on the best checkpoint (val/mAP)",
    )


def register_classes() -> tuple[type, type]:
    """Import every registered method and dataset (short class names resolve); the two base classes."""
    import hashbench.data  # noqa: F401 - registers the dataset modules for short names
    from hashbench.data.base import HashDataModule
    from hashbench.methods import import_all
    from hashbench.methods.base import HashingMethod

    import_all()
    return HashingMethod, HashDataModule


@functools.cache
def build_parser():
    """A parser with ``hashbench fit``'s argument space (no subcommands); built once."""
    from jsonargparse import ActionConfigFile
    from lightning.pytorch import Trainer
    from lightning.pytorch.cli import LightningArgumentParser, LRSchedulerTypeTuple
    from torch.optim import Optimizer

    model_cls, data_cls = register_classes()
    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_argument("-c", "--config", action=ActionConfigFile)
    parser.add_argument("--seed_everything", type=bool | int, default=DEFAULT_SEED)
    parser.add_lightning_class_args(Trainer, "trainer")
    parser.add_lightning_class_args(model_cls, "model", subclass_mode=True)
    parser.add_lightning_class_args(data_cls, "data", subclass_mode=True)
    add_arguments(parser)
    parser.add_optimizer_args((Optimizer,))
    parser.add_lr_scheduler_args(LRSchedulerTypeTuple)
    return parser


def nest(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b.c": 1}`` -> ``{"a": {"b": {"c": 1}}}`` (later keys win; a scalar is replaced)."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, last = key.split(".")
        node = out
        for p in parents:
            child = node.get(p)
            if not isinstance(child, dict):
                child = node[p] = {}
            node = child
        node[last] = value
    return out


def _read_yaml(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise TrainingConfigError(f"config file {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise TrainingConfigError(f"{path}: not valid YAML ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TrainingConfigError(
            f"{path}: expected a mapping of config keys, got {type(data).__name__}"
        )
    return data


def _apply_overrides(parser, ns, overrides: Mapping[str, Any] | None):
    """``ns`` with each dotted override merged in order as a typed value (validated one by one)."""
    for key, value in (overrides or {}).items():
        try:
            ns = parser.parse_object(nest({key: value}), cfg_base=ns, defaults=False)
        except Exception as e:  # noqa: BLE001 - jsonargparse raises several types
            raise TrainingConfigError(f"override {key}={value!r}: {e}") from None
    return ns


def resolve_config(
    configs: Sequence[str | os.PathLike],
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The full resolved training config of ``configs`` + ``overrides``, validated, as plain data.

    Args:
        configs: YAML files in the ``hashbench fit --config`` format, applied in order.
        overrides: dotted keys -> typed values (``{"trainer.max_epochs": 6}``), applied last in order.

    Raises:
        TrainingConfigError: a file is missing or a key or value does not validate.
    """
    parser = build_parser()
    paths = [Path(c) for c in configs]
    for p in paths:
        _read_yaml(p)  # a missing or malformed file gets a short error naming it
    try:
        # Config files load exactly as `hashbench fit --config a --config b` loads them.
        ns = parser.parse_args([arg for p in paths for arg in ("--config", str(p))])
    except Exception as e:  # noqa: BLE001 - jsonargparse raises several types
        raise TrainingConfigError(f"{', '.join(map(str, paths))}: {e}") from None
    return _apply_overrides(parser, ns, overrides).as_dict()


def seed_everything(config: Mapping[str, Any]) -> int | None:
    """Seed Python, numpy and torch (and dataloader workers) as ``hashbench fit`` does."""
    from lightning.pytorch import seed_everything as _seed

    seed = config.get("seed_everything", DEFAULT_SEED)
    if seed is False:
        return None
    return _seed(None if seed is True else seed, workers=True)


def build(config: Mapping[str, Any], callbacks: Sequence[Any] = ()) -> TrainingRun:
    """Seed, then build the model, the DataModule and the Trainer of a resolved ``config``.

    Args:
        config: from :func:`resolve_config`.
        callbacks: extra Lightning callbacks for the Trainer (after the config's own).

    Raises:
        TrainingConfigError: the config sets ``optimizer`` / ``lr_scheduler`` (hashbench methods
            configure their optimiser with ``model.init_args.optim``).
    """
    for key in ("optimizer", "lr_scheduler"):
        if config.get(key) is not None:
            raise TrainingConfigError(
                f"`{key}` is set; hashbench methods take their optimiser settings from "
                "model.init_args.optim (see configs/methods/*.yaml)"
            )
    parser = build_parser()
    ns = parser.parse_object({k: v for k, v in config.items() if k != "config"}, defaults=True)
    seed_everything(config)
    init = parser.instantiate_classes(ns)
    trainer_args = dict(init["trainer"])
    extra = trainer_args.get("callbacks") or []
    trainer_args["callbacks"] = [*(extra if isinstance(extra, list) else [extra]), *callbacks]
    from lightning.pytorch import Trainer

    trainer = Trainer(**trainer_args)
    return TrainingRun(dict(config), init["model"], init["data"], trainer)


@functools.cache
def _data_parser():
    from jsonargparse import ActionConfigFile, ArgumentParser

    _, data_cls = register_classes()
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("-c", "--config", action=ActionConfigFile)
    parser.add_subclass_arguments(data_cls, "data", required=True)
    return parser


def resolve_data_config(
    config: str | os.PathLike, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``data`` part of a training config alone: ``{"class_path": ..., "init_args": {...}}``.

    Args:
        config: a data config (``configs/data/*.yaml``; other top-level keys are ignored).
        overrides: dotted keys under ``data.`` -> typed values.

    Raises:
        TrainingConfigError: the file is missing or does not validate.
    """
    path = Path(config)
    raw = _read_yaml(path)
    parser = _data_parser()
    try:
        ns = parser.parse_object({"data": raw.get("data")})
    except Exception as e:  # noqa: BLE001 - jsonargparse raises several types
        raise TrainingConfigError(f"{path}: {e}") from None
    return _apply_overrides(parser, ns, overrides).data.as_dict()


def build_datamodule(data: Mapping[str, Any]):
    """The DataModule of a resolved ``data`` config (from :func:`resolve_data_config`)."""
    parser = _data_parser()
    return parser.instantiate_classes(parser.parse_object({"data": dict(data)})).data
