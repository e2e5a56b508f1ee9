"""The LightningCLI behind ``train.py``: fit / validate / test / predict from a YAML config.

What it adds to Lightning's CLI:

* ``link_arguments``: the datamodule's backbone settings go to the module (recorded in the
  checkpoint for inference), and ``data.feature_dim`` becomes ``model.in_dim`` once the
  datamodule exists (``apply_on="instantiate"``), so D is never typed twice.
* ``--logger csv|tensorboard|wandb`` with ``--wandb.project/entity/name/tags/mode`` (wandb is
  imported only when chosen; offline runs print how to sync them).
* ``--writer.output_dir`` / ``--writer.overwrite``: where ``predict`` writes label maps, overlays
  and JSON (the :class:`SegmentationWriter` callback, sharded across DDP ranks).
* The resolved config is saved as ``config.yaml`` in the log dir; with W&B, in the run's own
  folder ``<save_dir>/<project>/<run id>/`` beside its checkpoints, and a copy in the W&B run
  (``files/cli_config.yaml``), so a later run never rewrites an earlier run's record.
* Checkpoints: the latest epoch and ``last.ckpt`` (a :class:`ModelCheckpoint` with
  ``save_last=True`` unless the config brings its own).
* :func:`quiet_lightning`: no advertising tips, no ``log_every_n_steps`` warning on small folders.
* User errors are one line, never a traceback: a deepcut error (no images, bad weights, an invalid
  value) prints ``error: <message>`` and an option the parser rejects prints its error line
  instead of the whole usage. The log dir (``--trainer.default_root_dir``) and the prediction
  folder are test-written before any work.

Exit status: 0 done; 1 done, but some images were skipped (each reported on one line naming it);
2 a fatal error (bad option or config, no usable image, unwritable output folder, bad weights).
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from deepcut.cli.common import one_line
from deepcut.errors import DeepCutError
from deepcut.lightning.loggers import WandbOptions, build_logger, finish_wandb
from deepcut.lightning.writer import SegmentationWriter

__all__ = ["DeepCutArgumentParser", "DeepCutCLI", "DeepCutSaveConfigCallback", "quiet_lightning",
           "wandb_run_dir"]


class _DropTips(logging.Filter):
    """Drops Lightning's "💡 Tip: ... try installing litlogger/litmodels" advertising lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg)


def quiet_lightning() -> None:
    """Silence Lightning messages that tell a deepcut user nothing actionable.

    - the litlogger / litmodels tips (printed on every run);
    - "The number of training batches (N) is smaller than the logging interval": small folders
      have few batches per epoch, and the epoch metrics are logged anyway;
    - a Lightning-internal ``LeafSpec`` deprecation, torch_geometric's ``torch.jit.script``
      deprecation, and LightningCLI's note on ``args`` given from Python.
    """
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in log.filters):
            log.addFilter(_DropTips())
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    # torch_geometric's import-time torch.jit.script deprecation (not actionable by a user), and
    # LightningCLI's note when main(argv) is called from Python with a list != sys.argv.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated")
    warnings.filterwarnings("ignore", message=r".*LightningCLI's args parameter is intended.*")


def wandb_run_dir(lg) -> str:
    """``<save_dir>/<project>/<run id>``: a W&B run's own folder, where Lightning also puts its
    ``checkpoints/`` (``trainer.log_dir`` is ``save_dir``, shared by every run)."""
    return os.path.join(lg.save_dir or ".", str(lg.name), str(lg.version))


class DeepCutSaveConfigCallback(SaveConfigCallback):
    """Saves ``config.yaml`` to the run's log dir, and into the W&B run when W&B logs."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        from lightning.pytorch.loggers import WandbLogger

        if any(isinstance(lg, WandbLogger) for lg in trainer.loggers):
            # trainer.log_dir would be W&B's save_dir, shared by all runs: save_config writes
            # the file into this run's own folder instead.
            self.save_to_log_dir = False
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer, pl_module, stage: str) -> None:
        from lightning.pytorch.loggers import WandbLogger

        for lg in trainer.loggers:
            if isinstance(lg, WandbLogger):
                run = lg.experiment
                cfg = self.parser.dump(self.config, skip_none=False, format="json")
                run.config.update({"cli": json.loads(cfg)}, allow_val_change=True)
                folder = wandb_run_dir(lg)
                os.makedirs(folder, exist_ok=True)
                path = os.path.join(folder, self.config_filename)
                self.parser.save(self.config, path, skip_none=False, overwrite=True,
                                 multifile=self.multifile)
                if getattr(run, "dir", None):
                    # A copy inside the run's files/ (wandb.save of an outside file would make
                    # a symlink to it, and files/config.yaml is W&B's own run config).
                    copy = os.path.join(run.dir, "cli_config.yaml")
                    shutil.copyfile(path, copy)
                    run.save(copy, base_path=run.dir, policy="now")


#: ``ckpt_path`` values Lightning resolves itself (not file names)
_LIGHTNING_CKPT_NAMES = frozenset({"best", "last", "hpc", "registry"})


class DeepCutArgumentParser(LightningArgumentParser):
    """jsonargparse's parser, whose errors are one line with a pointer to ``--help`` (instead of
    the full usage, 80+ lines for ``fit``, before the error)."""

    def error(self, message: str, ex: Exception | None = None):
        try:
            from jsonargparse._common import debug_mode_active
        except ImportError:  # pragma: no cover - another jsonargparse layout
            def debug_mode_active() -> bool:
                return False
        if not self.exit_on_error or debug_mode_active():
            return super().error(message, ex)  # raises: jsonargparse is trying alternatives
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        sys.stderr.write(f"error: {one_line(message)} (see {prog} --help)\n")
        self.exit(2)


class DeepCutCLI(LightningCLI):
    """``LightningCLI`` with deepcut's links, logger choice and prediction writer; user errors are
    one line (see the module docstring for the exit status)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("parser_class", DeepCutArgumentParser)
        try:
            super().__init__(*args, **kwargs)
        except DeepCutError as e:
            print(f"error: {one_line(str(e))}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        except pickle.UnpicklingError as e:  # --ckpt_path read with weights_only=True
            found = re.search(r"GLOBAL (\S+)", str(e))
            what = f" (a pickled {found.group(1)})" if found else ""
            print(f"error: checkpoint {self._ckpt_path()} refused: it holds Python objects{what} "
                  "that loading could run code from", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    def _ckpt_path(self) -> str:
        try:
            return str(self.config[self.config["subcommand"]]["ckpt_path"])
        except Exception:  # noqa: BLE001 - only for the message
            return "(--ckpt_path)"

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

    def _parse_ckpt_path(self) -> None:
        """Lightning's: with ``--ckpt_path`` the model's settings are the checkpoint's, over the
        ones given. Each given one that this replaces is said on one warning line."""
        sub = self.config.get("subcommand")
        given = self._model_settings(sub)
        super()._parse_ckpt_path()
        now = self._model_settings(sub)
        changed = sorted(k for k in given if k in now and given[k] != now[k])
        if changed:
            said = ", ".join(f"{k}={given[k]!r} -> {now[k]!r}" for k in changed)
            print(f"warning: --ckpt_path restores the model settings it was trained with: "
                  f"{said} (for another task or inference option use `infer.py IMAGES "
                  f"--checkpoint CKPT`)", file=sys.stderr, flush=True)

    def _model_settings(self, sub: str | None) -> dict[str, Any]:
        try:
            model = (self.config[sub] if sub else self.config).get("model")
            return dict(model.as_dict() if hasattr(model, "as_dict") else model or {})
        except Exception:  # noqa: BLE001 - only for the warning
            return {}

    def parse_arguments(self, parser, args) -> None:
        super().parse_arguments(parser, args)
        # Check the one required setting before seeding, backbones and trainers print anything.
        from deepcut.errors import ConfigError

        sub = self.config.get("subcommand")
        cfg = self.config.get(sub) if sub else self.config
        data = cfg.get("data") if cfg is not None else None
        if data is not None and data.get("root") is None and data.get("predict_root") is None:
            raise ConfigError("no images: pass --data.root DIR (a folder of images, or the root "
                              "of the dataset named by --data.dataset)")
        ckpt = cfg.get("ckpt_path") if cfg is not None else None
        # Lightning's own names ("last", "best", ...) and URLs are resolved by Lightning
        if ckpt is not None and str(ckpt) not in _LIGHTNING_CKPT_NAMES and "://" not in str(ckpt) \
                and not os.path.isfile(ckpt):
            raise ConfigError(f"--ckpt_path {ckpt}: no such checkpoint file")

    def instantiate_trainer(self, **kwargs):
        from lightning.pytorch.callbacks import ModelCheckpoint

        trainer_cfg = self._get(self.config_init, "trainer", {}) or {}
        given = trainer_cfg.get("callbacks") or []
        given = list(given) if isinstance(given, list) else [given]
        kind = self._get(self.config_init, "logger")
        if self.config.get("subcommand") == "predict":
            # nothing to checkpoint or log: no new version folder per run, and no checkpoint
            # callback to warn that the loaded checkpoint's folder is not this run's
            if kind is None and trainer_cfg.get("logger") is None:
                kwargs["logger"] = False
            kwargs["enable_checkpointing"] = False
        elif trainer_cfg.get("enable_checkpointing", True) is not False and \
                not any(isinstance(c, ModelCheckpoint) for c in given):
            # Lightning's default callback plus last.ckpt, the stable name README and infer use.
            kwargs["callbacks"] = [*given, ModelCheckpoint(save_last=True)]
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

    def _check_writable(self, folder) -> None:
        from deepcut.io.folders import check_out_dir, clean_stale_parts

        if self.trainer.is_global_zero:
            clean_stale_parts(check_out_dir(folder))

    def _exit_after_skips(self) -> None:
        """Exit status 1 when images were skipped (reported by ``prepare_data``, or not
        written by the prediction writer), as infer.py."""
        skipped = list(getattr(self.datamodule, "skipped", None) or [])
        for cb in getattr(self.trainer, "callbacks", None) or []:
            if isinstance(cb, SegmentationWriter):
                skipped += cb.failed
        if skipped:
            print(f"{len(skipped)} image(s) skipped (see the lines above); exit status 1",
                  file=sys.stderr, flush=True)
            raise SystemExit(1)

    def before_fit(self) -> None:
        self._check_writable(self.trainer.default_root_dir)

    def before_predict(self) -> None:
        writer = next((cb for cb in self.trainer.callbacks
                       if isinstance(cb, SegmentationWriter)), None)
        self._check_writable(writer._out(self.trainer) if writer is not None
                             else Path(self.trainer.default_root_dir))

    def after_fit(self) -> None:
        ckpt = getattr(self.trainer.checkpoint_callback, "last_model_path", "") or \
            getattr(self.trainer.checkpoint_callback, "best_model_path", "")
        if ckpt and self.trainer.is_global_zero:
            print(f"checkpoint: {ckpt}\nsegment with it: python infer.py IMAGES --checkpoint "
                  f"{ckpt} --out OUT", flush=True)
        self._finish()
        self._exit_after_skips()

    def after_validate(self) -> None:
        self._finish()
        self._exit_after_skips()

    def after_test(self) -> None:
        self._finish()
        self._exit_after_skips()

    def after_predict(self) -> None:
        self._finish()
        self._exit_after_skips()
