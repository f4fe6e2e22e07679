"""`HashbenchCLI`: the LightningCLI behind ``hashbench fit | validate | test | predict``.

Configs compose: ``--config configs/methods/dsh.yaml --config configs/data/fashion_mnist.yaml
--config configs/trainer/quick.yaml``; later files and flags override earlier ones.
"""

from __future__ import annotations

from lightning.pytorch.cli import LightningCLI

from hashbench.data.base import HashDataModule
from hashbench.methods import import_all
from hashbench.methods.base import HashingMethod

TRAINER_DEFAULTS = {
    "trainer.max_epochs": 30,
    "trainer.num_sanity_val_steps": 0,
    "trainer.default_root_dir": "runs",
    "trainer.log_every_n_steps": 10,
}


class HashbenchCLI(LightningCLI):
    """LightningCLI over every registered :class:`HashingMethod` and :class:`HashDataModule`."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        import_all()
        import hashbench.data  # noqa: F401 - registers the dataset modules for short names

        super().__init__(
            HashingMethod,
            HashDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            seed_everything_default=0,
            args=args,
            run=run,
            parser_kwargs={"description": "hashbench: train and evaluate hashing methods"},
        )

    def add_arguments_to_parser(self, parser) -> None:
        parser.set_defaults(TRAINER_DEFAULTS)
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="after `fit`, run `test` on the best checkpoint (val/mAP)",
        )

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
