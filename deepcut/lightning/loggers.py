"""Experiment loggers for ``train.py``: CSV, TensorBoard or Weights & Biases, plus image logging.

``--logger csv|tensorboard|wandb`` picks one; W&B options live in :class:`WandbOptions`
(``--wandb.project``, ``--wandb.entity``, ``--wandb.name``, ``--wandb.tags``, ``--wandb.mode``).
wandb is imported only when it is chosen. In ``offline`` mode nothing touches the network: the
run is written under ``<save_dir>/wandb/offline-run-*`` and ``wandb sync <that dir>`` uploads it
later (printed at the end of the run).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

__all__ = ["WandbOptions", "build_logger", "cluster_overlay", "finish_wandb", "log_images"]


@dataclass
class WandbOptions:
    """Weights & Biases settings.

    Attributes:
        project: W&B project name.
        entity: W&B team or user (None = your default entity).
        name: run name (None = W&B's generated name).
        tags: run tags.
        mode: ``offline`` (write locally, ``wandb sync`` later; needs no network), ``online``
            (stream to the server) or ``disabled`` (log nothing). None = ``$WANDB_MODE``, else
            ``offline``.
        save_dir: folder of the ``wandb/`` run directories (None = the trainer's
            ``default_root_dir``).
    """

    project: str = "deepcut"
    entity: str | None = None
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    mode: Literal["offline", "online", "disabled"] | None = None
    save_dir: str | None = None

    def resolved_mode(self) -> str:
        mode = self.mode or os.environ.get("WANDB_MODE") or "offline"
        return {"dryrun": "offline", "run": "online"}.get(mode, mode)


def build_logger(kind: str, save_dir: str | Path, wandb_options: WandbOptions | None = None):
    """A Lightning logger: ``csv``, ``tensorboard`` or ``wandb``.

    Raises:
        ConfigError: unknown kind, or wandb/tensorboard not installed (with the pip command).
    """
    from deepcut.errors import ConfigError

    save_dir = str(save_dir)
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir)
    if kind == "tensorboard":
        try:
            from lightning.pytorch.loggers import TensorBoardLogger

            return TensorBoardLogger(save_dir)
        except ModuleNotFoundError:
            raise ConfigError("--logger tensorboard needs tensorboard: pip install tensorboard"
                              ) from None
    if kind == "wandb":
        try:
            import wandb  # noqa: F401  (fail here, with the remedy, not mid-run)
        except ModuleNotFoundError:
            raise ConfigError("--logger wandb needs wandb: pip install wandb") from None
        from lightning.pytorch.loggers import WandbLogger

        o = wandb_options or WandbOptions()
        folder = o.save_dir or save_dir
        os.makedirs(folder, exist_ok=True)  # else W&B warns "git root ... does not exist"
        lg = WandbLogger(project=o.project, entity=o.entity, name=o.name,
                         tags=list(o.tags) or None, mode=o.resolved_mode(), save_dir=folder)
        # Lightning always passes anonymous=None, on which recent wandb warns "The anonymous
        # setting has no effect" on every run; the setting is not ours to pass.
        getattr(lg, "_wandb_init", {}).pop("anonymous", None)
        return lg
    raise ConfigError(f"Unknown logger {kind!r}; choose one of ['csv', 'tensorboard', 'wandb'].")


def cluster_overlay(item: dict[str, Any], patch_labels: np.ndarray) -> Image.Image:
    """The image of a batch item with its patch clusters upsampled and blended over it."""
    from deepcut.io.images import load_image
    from deepcut.refine.upsample import upsample_labels
    from deepcut.viz.overlay import overlay

    m = item["meta"]
    image = load_image(item["path"])
    labels = upsample_labels(patch_labels, tuple(m["image_size"]), tuple(m["input_size"]),
                             int(m["patch_size"]), int(m["stride"]))
    return overlay(image, labels, background=None)


def log_images(loggers: list, key: str, images: list[Image.Image], captions: list[str],
               step: int) -> None:
    """Log PIL images to every logger that takes images (PNG files beside a CSV log)."""
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

    for lg in loggers:
        if isinstance(lg, WandbLogger):
            lg.log_image(key=key, images=images, step=step, caption=captions)
        elif isinstance(lg, TensorBoardLogger):
            for i, (im, cap) in enumerate(zip(images, captions)):
                lg.experiment.add_image(f"{key}/{i}_{cap}", np.asarray(im), global_step=step,
                                        dataformats="HWC")
        elif isinstance(lg, CSVLogger):
            from deepcut.io.writers import save_image

            folder = Path(lg.log_dir) / key.replace("/", "_")
            for im, cap in zip(images, captions):
                save_image(im, folder / f"step{step:07d}_{cap}.png")


def finish_wandb(run, file=None) -> str | None:
    """Finish a wandb run; for an offline run print (and return) its folder and the sync command."""
    file = file or sys.stderr
    run_dir = None
    try:
        offline = bool(getattr(run.settings, "_offline", False)) or \
            getattr(run.settings, "mode", "") in ("offline", "dryrun")
        run_dir = str(Path(run.dir).resolve().parent) if getattr(run, "dir", None) else None
    except Exception:  # noqa: BLE001 - a disabled run has no settings worth reading
        offline = False
    run.finish()
    if offline and run_dir:
        from deepcut.lightning.wandb_utils import wait_until_written

        wait_until_written(run_dir)
        print(f"W&B: offline run saved in {run_dir}; upload it with: wandb sync {run_dir}",
              file=file)
        return run_dir
    return None
