"""The LightningCLI behind ``train.py``: fit / validate / test / predict from a YAML config.

What it adds to Lightning's CLI:

* ``link_arguments``: the datamodule's backbone settings go to the module (recorded in the
  checkpoint for inference), and ``data.feature_dim`` becomes ``model.in_dim`` once the
  datamodule exists (``apply_on="instantiate"``), so D is never typed twice.
* ``--logger csv|tensorboard|wandb`` with ``--wandb.project/entity/name/tags/mode`` (wandb is
  imported only when chosen; offline runs print how to sync them).
* ``--writer.output_dir`` / ``--writer.overwrite``: where ``predict`` writes label maps, overlays
  and JSON (the :class:`SegmentationWriter` callback, sharded across DDP ranks).
* The resolved config is saved as ``config.yaml`` in the log dir (and into a W&B run).
"""
from __future__ import annotations

from typing import Literal

from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from deepcut.lightning.loggers import WandbOptions, build_logger, finish_wandb
from deepcut.lightning.writer import SegmentationWriter

__all__ = ["DeepCutCLI", "DeepCutSaveConfigCallback"]


class DeepCutSaveConfigCallback(SaveConfigCallback):
    """Saves ``config.yaml`` to the log dir, and into the W&B run when W&B logs."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        from lightning.pytorch.loggers import WandbLogger

        for lg in trainer.loggers:
            if isinstance(lg, WandbLogger):
                import os

                cfg = self.parser.dump(self.config, skip_none=False, format="json")
                import json

                lg.experiment.config.update({"cli": json.loads(cfg)}, allow_val_change=True)
                path = os.path.join(trainer.log_dir or ".", self.config_filename)
                if os.path.isfile(path):
                    lg.experiment.save(path, base_path=os.path.dirname(path), policy="now")


class DeepCutCLI(LightningCLI):
    """``LightningCLI`` with deepcut's links, logger choice and prediction writer."""

    def add_arguments_to_parser(self, parser) -> None:
        for name in ("backbone", "weights", "size", "stride"):
            parser.link_arguments(f"data.{name}", f"model.{name}")
        parser.link_arguments("data.feature_dim", "model.in_dim", apply_on="instantiate")
        parser.add_argument(
            "--logger", type=Literal["csv", "tensorboard", "wandb"] | None, default=None,
            help="experiment logger; wandb options under --wandb.* (default: the trainer's "
                 "own logger setting: TensorBoard if installed, else CSV)")
        parser.add_argument("--wandb", type=WandbOptions, default=WandbOptions(),
                            help="Weights & Biases settings (used with --logger wandb)")
        parser.add_lightning_class_args(SegmentationWriter, "writer")

    def instantiate_trainer(self, **kwargs):
        kind = self._get(self.config_init, "logger")
        if kind is not None:
            root = self._get(self.config_init, "trainer", {}).get("default_root_dir") or "."
            kwargs["logger"] = build_logger(kind, root, self._get(self.config_init, "wandb"))
        return super().instantiate_trainer(**kwargs)

    def _finish(self) -> None:
        from lightning.pytorch.loggers import WandbLogger

        for lg in self.trainer.loggers:
            if isinstance(lg, WandbLogger) and self.trainer.is_global_zero and \
                    lg._experiment is not None:
                finish_wandb(lg.experiment)

    def after_fit(self) -> None:
        ckpt = getattr(self.trainer.checkpoint_callback, "last_model_path", "") or \
            getattr(self.trainer.checkpoint_callback, "best_model_path", "")
        if ckpt and self.trainer.is_global_zero:
            print(f"checkpoint: {ckpt}\nsegment with it: python infer.py IMAGES --checkpoint "
                  f"{ckpt} --out OUT", flush=True)
        self._finish()

    def after_validate(self) -> None:
        self._finish()

    def after_test(self) -> None:
        self._finish()

    def after_predict(self) -> None:
        self._finish()
