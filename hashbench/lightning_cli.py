"""`HashbenchCLI`: the LightningCLI behind ``hashbench fit | validate | test | predict``.

Its argument space is :mod:`hashbench.training`'s (the same classes, defaults and extra arguments),
so ``hashbench fit`` and the Python API (:func:`hashbench.training.resolve_config`, used by the
bench) resolve the same files and flags to the same config.

Configs compose: ``--config configs/methods/dsh.yaml --config configs/data/fashion_mnist.yaml
--config configs/trainer/quick.yaml``; later files and flags override earlier ones.

With ``--ckpt_path`` the checkpoint's hyper-parameters replace the model's config (Lightning), and
then the model flags typed on the command line are put back on top: ``hashbench test --config ...
--ckpt_path best.ckpt --model.init_args.rerank 100`` tests with ``rerank = 100``.
"""

from __future__ import annotations

import sys

from lightning.pytorch.cli import LightningCLI

from hashbench import training
from hashbench.training import TRAINER_DEFAULTS

__all__ = ["TRAINER_DEFAULTS", "HashbenchCLI", "typed_model_keys"]


class HashbenchCLI(LightningCLI):
    """LightningCLI over every registered :class:`HashingMethod` and :class:`HashDataModule`."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        self._argv = list(sys.argv[1:] if args is None else args)
        model_class, data_class = training.register_classes()
        super().__init__(
            model_class,
            data_class,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            seed_everything_default=0,
            args=args,
            run=run,
            parser_kwargs={"description": "hashbench: train and evaluate hashing methods"},
        )

    def add_arguments_to_parser(self, parser) -> None:
        training.add_arguments(parser)

    def _parse_ckpt_path(self) -> None:
        """Checkpoint hyper-parameters over config files and defaults; typed model flags over both."""
        subcommand = self.config.get("subcommand")
        before = self.config.clone() if subcommand else None
        super()._parse_ckpt_path()
        if before is None:
            return
        for key in typed_model_keys(self._argv):
            full = f"{subcommand}.{key}"
            if full in before and full in self.config:
                self.config[full] = before[full]

    def after_fit(self) -> None:
        ckpt = self.trainer.checkpoint_callback
        if ckpt is not None and ckpt.best_model_path and self.trainer.is_global_zero:
            print(
                f"\nbest checkpoint (val/mAP={float(ckpt.best_model_score or 0):.4f}): "
                f"{ckpt.best_model_path}\n"
                "evaluate it with: hashbench test <same --config files> "
                f"--ckpt_path {ckpt.best_model_path}"
            )
        if self.config[self.subcommand].get("test_after_fit"):
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path="best")


def typed_model_keys(argv: list[str]) -> list[str]:
    """``model.init_args.<name>`` of each ``--model.[init_args.]<name>[.<sub>][=v]`` flag in ``argv``.

    A nested flag (``--model.init_args.optim.lr``) names its top-level argument (``optim``), whose
    value as parsed from the command line and config files is what is restored.
    """
    keys = []
    for token in argv:
        if not token.startswith("--model."):
            continue
        parts = token[2:].split("=", 1)[0].split(".")[1:]
        if parts and parts[0] == "init_args":
            parts = parts[1:]
        if parts and parts[0] not in ("class_path", "dict_kwargs"):
            key = f"model.init_args.{parts[0]}"
            if key not in keys:
                keys.append(key)
    return keys
