"""`HashbenchCLI`: the LightningCLI behind ``hashbench fit | validate | test | predict``.

Its argument space is :mod:`hashbench.training`'s (the same classes, defaults and extra arguments),
so ``hashbench fit`` and the Python API (:func:`hashbench.training.resolve_config`, used by the
bench) resolve the same files and flags to the same config.

Configs compose: ``--config configs/methods/dsh.yaml --config configs/data/fashion_mnist.yaml
--config configs/trainer/quick.yaml``; later files and flags override earlier ones.

With ``--ckpt_path`` the checkpoint's hyper-parameters replace the model's config (Lightning), and
then the model flags typed on the command line are put back on top: ``hashbench test --config ...
--ckpt_path best.ckpt --model.init_args.rerank 100`` tests with ``rerank = 100``.

Argument errors are raised (``exit_on_error=False``), not printed with the whole usage, so
:func:`hashbench.cli.main` reports them as one message. ``fit`` prints the data and split sizes
before training; ``test`` and ``validate`` print one metric table (the metrics are computed once,
over query against database, so Lightning's one column per dataloader would repeat them).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

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
            parser_kwargs={
                "description": "hashbench: train and evaluate hashing methods",
                "exit_on_error": False,
            },
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

    def before_fit(self) -> None:
        """Refuse a run that cannot give what was asked; say what data and splits it trains on."""
        test_after_fit = self.config[self.subcommand].get("test_after_fit")
        if test_after_fit and self.trainer.max_epochs == 0:
            raise ValueError(
                "--trainer.max_epochs 0 trains nothing, so --test_after_fit true has no best "
                "checkpoint to test: set --trainer.max_epochs 1 or more, or test an existing "
                "checkpoint with `hashbench test ... --ckpt_path PATH`"
            )
        self._print_data()

    def after_fit(self) -> None:
        ckpt = self.trainer.checkpoint_callback
        best = ckpt.best_model_path if ckpt is not None else ""
        if best and self.trainer.is_global_zero:
            print(
                f"\nbest checkpoint (val/mAP={float(ckpt.best_model_score or 0):.4f}): {best}\n"
                f"evaluate it with: hashbench test <same --config files> --ckpt_path {best}"
            )
        if self.config[self.subcommand].get("test_after_fit"):
            if not best:
                raise ValueError(
                    "--test_after_fit: no checkpoint was saved, so there is nothing to test "
                    "(validation never ran: check --trainer.limit_val_batches and "
                    "--trainer.check_val_every_n_epoch)"
                )
            self.test(model=self.model, datamodule=self.datamodule, ckpt_path="best")

    def test(self, verbose: bool = True, **kwargs: Any) -> list[dict[str, float]]:
        """``Trainer.test`` printing one metric table instead of one column per dataloader."""
        results = self.trainer.test(verbose=False, **kwargs)
        if verbose and self.trainer.is_global_zero:
            print(metric_table(results[0] if results else {}, "test"))
        return results

    def validate(self, verbose: bool = True, **kwargs: Any) -> list[dict[str, float]]:
        """``Trainer.validate`` printing one metric table (see :meth:`test`)."""
        results = self.trainer.validate(verbose=False, **kwargs)
        if verbose and self.trainer.is_global_zero:
            print(metric_table(results[0] if results else {}, "validate"))
        return results

    def _print_data(self) -> None:
        from hashbench.data.summary import split_summary

        if self.datamodule is not None and self.trainer.is_global_zero:
            print(split_summary(self.datamodule), flush=True)


def metric_table(metrics: Mapping[str, float], stage: str) -> str:
    """The metrics of one evaluation (query against database) as a two-column table."""
    if not metrics:
        return f"{stage}: no metrics were logged"
    rows = sorted((str(k).split("/dataloader_idx_")[0], float(v)) for k, v in metrics.items())
    width = max(len(f"{stage} metric"), *(len(k) for k, _ in rows))
    rule = "-" * (width + 14)
    lines = [rule, f"{f'{stage} metric':<{width}}  {'query vs db':>12}", rule]
    lines += [f"{k:<{width}}  {v:>12.4f}" for k, v in rows]
    return "\n".join([*lines, rule])


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
