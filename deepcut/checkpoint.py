"""Inference with a dataset-level head: load a Lightning checkpoint, segment with no training.

``train.py fit`` saves Lightning checkpoints whose ``"deepcut"`` block records everything
inference needs: the head's sizes, the segmentation settings it was trained with (backbone,
size, stride, K, loss, graph kind and its parameters, task) and the provenance of the features
(backbone name and weights id). :func:`load_checkpoint` reads the block and the head's weights;
:class:`CheckpointSegmenter` is a :class:`~deepcut.pipeline.Segmenter` whose GNN solver starts
from those weights and runs ``finetune_steps`` optimiser steps (0 = pure inference: one forward
pass in eval mode). Its argmax is then rounded to a local NCut optimum, with the partition of the
GNN's warm-start solver (Falcon's on a dense graph) as one more start, its ids matched to the
head's (:class:`~deepcut.solvers.GNNSolver`, ``warm_start``). Because every image starts from the
same trained head, cluster ids mean the same thing across images.

Example:
    >>> from deepcut.checkpoint import load_segmenter
    >>> seg = load_segmenter("runs/ecssd/checkpoints/last.ckpt")      # doctest: +SKIP
    >>> pred = seg("examples/chelsea.png")                             # doctest: +SKIP
    >>> pred.meta["checkpoint"]["sha256"]                              # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from deepcut.backbones.base import Backbone, PatchFeatures
from deepcut.config import PREPROCESSING_KEYS, SegmenterConfig, default_graph_kind
from deepcut.errors import ConfigError, DeepCutError
from deepcut.pipeline import Prediction, Segmenter

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_TASKS", "CheckpointError", "CheckpointSegmenter",
           "HeadCheckpoint", "inference_spec", "load_checkpoint", "load_segmenter"]

#: Version of the ``"deepcut"`` block in checkpoints.
CHECKPOINT_FORMAT = 1
#: Tasks that make one K-way solve with the head (tasks with several solves of other K cannot).
#: ``kless`` needs a CC-loss head (K = its k_max) and renumbers the segments it finds.
CHECKPOINT_TASKS = ("segment", "clusters", "kless")
#: Settings that define the trained model: a checkpoint fixes them.
#: The preprocessing options (``--resize`` ...) shape the features the head was trained on.
MODEL_KEYS = ("backbone", "stride", "solver", "n_clusters", "loss", "graph", "metric", "alpha",
              "beta", "lam", "radius", "contour", *PREPROCESSING_KEYS)
#: Settings a user may change at inference time.
FREE_KEYS = ("weights", "size", "device", "knn", "dense_max_nodes", "task", "background_rule",
             "refine", "refine_params", "depth", "seed", "lr", "landmarks")


class CheckpointError(DeepCutError):
    """The file is not a deepcut checkpoint, or cannot be used as asked."""


def inference_spec(*, in_dim: int, n_clusters: int, hidden: int, mlp_hidden: int, dropout: float,
                   config: dict[str, Any], backbone: dict[str, Any],
                   trained: dict[str, Any] | None = None,
                   finetune: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``"deepcut"`` block a checkpoint carries (see the module docstring); ``finetune``:
    the training loss's and optimiser's settings (``ortho_weight``, ``weight_decay``) that
    per-image fine-tuning from the head reuses."""
    import deepcut

    cfg = dict(config)
    cfg["graph"] = cfg.get("graph") or default_graph_kind("gnn", cfg.get("loss", "ncut"))
    return {
        "format": CHECKPOINT_FORMAT,
        "deepcut_version": deepcut.__version__,
        "head": {"in_dim": int(in_dim), "n_clusters": int(n_clusters), "hidden": int(hidden),
                 "mlp_hidden": int(mlp_hidden), "dropout": float(dropout)},
        "config": cfg,
        "backbone": dict(backbone),
        "trained": dict(trained or {}),
        "finetune": dict(finetune or {}),
    }


@dataclass
class HeadCheckpoint:
    """A trained head and what it was trained on.

    Attributes:
        spec: the ``"deepcut"`` block (``head``, ``config``, ``backbone``, ``trained``).
        head_state: ``state_dict`` of a :class:`~deepcut.nn.GNNHead`.
        path: the checkpoint file, if read from one.
        sha256: first 16 hex digits of the file's sha256.
    """

    spec: dict[str, Any]
    head_state: dict[str, torch.Tensor]
    path: str | None = None
    sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        """``<file name>@sha256:<16 hex>`` (or ``in-memory``)."""
        if self.path is None:
            return "in-memory"
        return f"{Path(self.path).name}@sha256:{self.sha256}"

    def provenance(self) -> dict[str, Any]:
        """What an output JSON records about the checkpoint."""
        return {"path": self.path, "id": self.ident, "sha256": self.sha256,
                "format": self.spec.get("format"), "head": self.spec["head"],
                "backbone": self.spec["backbone"], "trained": self.spec.get("trained", {})}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def load_checkpoint(path: str | Path) -> HeadCheckpoint:
    """Read the head and its ``"deepcut"`` block from a Lightning ``.ckpt`` file.

    The file is read with ``torch.load(weights_only=True)``: no code in it is executed.

    Raises:
        CheckpointError: missing file, not a checkpoint, or no ``"deepcut"`` block (not written
            by ``train.py``), or weights that do not fit the recorded head.
    """
    from deepcut.nn.head import GNNHead

    p = Path(path).expanduser()
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # torch's advice to retry unsafely is not repeated
        found = re.search(r"GLOBAL (\S+)", str(e))
        what = f" (a pickled {found.group(1)})" if found else ""
        raise CheckpointError(f"{p}: refused: it holds Python objects{what} that loading could "
                              "run code from; only plain checkpoints of tensors (as train.py "
                              "writes) are read") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file gets one line
        raise CheckpointError(f"{p}: not a readable checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(ckpt, dict) or "deepcut" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"{p}: not a deepcut checkpoint (no 'deepcut' block); train one "
                              "with `python train.py fit --config configs/<name>.yaml`")
    spec = ckpt["deepcut"]
    if not isinstance(spec, dict) or not isinstance(ckpt["state_dict"], dict):
        raise CheckpointError(f"{p}: malformed checkpoint: its 'deepcut' block and state_dict "
                              "must be mappings")
    if spec.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{p}: checkpoint format {spec.get('format')!r}, this deepcut "
                              f"reads format {CHECKPOINT_FORMAT}")
    _check_spec(p, spec)
    state = {k[len("head."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("head.")}
    h = spec["head"]
    head = GNNHead(h["in_dim"], h["n_clusters"], h["hidden"], h["mlp_hidden"], h["dropout"])
    try:
        head.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{p}: head weights do not match the recorded head {h}: "
                              f"{str(e).splitlines()[0]}") from None
    return HeadCheckpoint(spec=spec, head_state=state, path=str(p), sha256=_sha256(p),
                          extra={"epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step")})


def _check_spec(path: Path, spec: dict[str, Any]) -> None:
    """One :class:`CheckpointError` for a ``"deepcut"`` block that lacks what loading reads."""
    head_keys = ("in_dim", "n_clusters", "hidden", "mlp_hidden", "dropout")
    for key in ("head", "config", "backbone"):
        if not isinstance(spec.get(key), dict):
            raise CheckpointError(f"{path}: malformed checkpoint: its 'deepcut' block has no "
                                  f"{key!r} mapping")
    missing = [k for k in head_keys if not isinstance(spec["head"].get(k), (int, float))]
    if missing:
        raise CheckpointError(f"{path}: malformed checkpoint: its head record lacks {missing}")


def _weights_match(recorded: str, built: str) -> bool:
    """Same weights: equal ids, or the same file hash under another file name."""
    if recorded == built:
        return True
    if recorded.startswith("file:") and built.startswith("file:"):
        return recorded.rsplit("@", 1)[-1] == built.rsplit("@", 1)[-1]
    return False


class CheckpointSegmenter(Segmenter):
    """A :class:`Segmenter` whose GNN head comes from a trained checkpoint.

    Args:
        checkpoint: a :class:`HeadCheckpoint` (see :func:`load_checkpoint`).
        finetune_steps: optimiser steps per image from the checkpoint (0 = inference only).
        backbone: an already built backbone (must match the recorded one), or a backbone name
            (then it must equal the checkpoint's).
        **overrides: inference settings to change (``size``, ``device``, ``weights`` for a
            moved weights file, ``task`` among :data:`CHECKPOINT_TASKS`, ``background_rule``,
            ``refine``, ``knn``, ``seed``, ``lr`` of fine-tuning). Settings that define the
            trained model (backbone, stride, K, loss, graph) raise if they differ.

    Raises:
        ConfigError: an override contradicts the checkpoint, or a task that cannot use it.
    """

    def __init__(self, checkpoint: HeadCheckpoint, *, finetune_steps: int = 0,
                 backbone: Backbone | str | None = None, **overrides: Any) -> None:
        if isinstance(backbone, str):  # a name, as the config key: checked like other overrides
            overrides["backbone"], backbone = backbone, None
        self.checkpoint = checkpoint
        self.finetune_steps = int(finetune_steps)
        if self.finetune_steps < 0:
            raise ConfigError(f"finetune_steps must be >= 0. Got {finetune_steps} instead.")
        super().__init__(checkpoint_config(checkpoint, finetune_steps, overrides),
                         backbone=backbone)
        self._checked = False

    @property
    def backbone(self) -> Backbone:
        """The backbone, checked once against the one the head was trained on.

        Raises:
            CheckpointError: other weights or feature size, or a random-init training backbone
                (its features cannot be rebuilt; cached features still work with
                :meth:`predict_features`).
        """
        rec = self.checkpoint.spec["backbone"]
        rec_id = str(rec.get("weights_id"))
        if not self._checked and rec_id.startswith("random-init"):
            raise CheckpointError(
                f"checkpoint {self.checkpoint.ident} was trained on a random-init backbone "
                f"({rec.get('name')}); its features cannot be rebuilt for inference. Train with "
                "pretrained weights (or the weight-free 'classic' backbone).")
        bb = super().backbone
        if not self._checked:
            if bb.feature_dim != self.checkpoint.spec["head"]["in_dim"] or (
                    rec_id != "unknown" and not _weights_match(rec_id, str(bb.weights_id))):
                raise CheckpointError(
                    f"checkpoint {self.checkpoint.ident} was trained on {rec.get('name')} "
                    f"features (weights {rec.get('weights_id')}, D={rec.get('feature_dim')}); "
                    f"this backbone is {bb.name} (weights {bb.weights_id}, D={bb.feature_dim}). "
                    "Pass the same weights with --weights.")
            self._checked = True
        return bb

    def predict_features(self, pf: PatchFeatures, image: Image.Image | None = None,
                         depth=None) -> Prediction:
        pred = super().predict_features(pf, image=image, depth=depth)
        pred.meta["config"] = self.config_record()
        pred.meta["checkpoint"] = {**self.checkpoint.provenance(),
                                   "finetune_steps": self.finetune_steps}
        return pred

    def config_record(self) -> dict[str, Any]:
        """The config as JSON-able values: the head's weights become the checkpoint id."""
        d = self.config.to_dict()
        sp = dict(d.get("solver_params") or {})
        if "init_state" in sp:
            sp["init_state"] = f"checkpoint:{self.checkpoint.ident}"
        d["solver_params"] = sp
        return d


def _trained_value(spec: dict[str, Any], key: str) -> Any:
    """The value a setting left unset (None) at training resolved to on the backbone: its
    stride, or its own preprocessing (``--stride 8`` is no contradiction of a stride-8 head)."""
    if spec["config"].get(key) is not None:
        return spec["config"][key]
    bb = spec["backbone"]
    if key == "stride":
        return bb.get("stride")
    return (bb.get("preprocessing") or {}).get(key)


def checkpoint_config(checkpoint: HeadCheckpoint, finetune_steps: int = 0,
                      overrides: dict[str, Any] | None = None) -> SegmenterConfig:
    """The :class:`SegmenterConfig` of inference with ``checkpoint`` (see CheckpointSegmenter)."""
    spec = checkpoint.spec
    task_params: dict[str, Any] = {}
    base = {k: v for k, v in spec["config"].items()
            if k in SegmenterConfig.__dataclass_fields__}
    base.setdefault("contour", None)  # heads saved before the contour cue were trained without
    base["solver"] = "gnn"
    base["backbone"] = spec["backbone"].get("name", base.get("backbone"))
    base["n_clusters"] = spec["head"]["n_clusters"]
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key in MODEL_KEYS:
            if value != base.get(key) and value != _trained_value(spec, key):
                raise ConfigError(
                    f"{key}={value!r} contradicts the checkpoint, which was trained with "
                    f"{key}={base.get(key)!r}; drop the option or train another head.")
        elif key in FREE_KEYS:
            base[key] = value
        elif key == "task_params":
            task_params = dict(value or {})
        elif key in ("steps", "solver_params"):
            if value:
                raise ConfigError(f"{key} cannot be set with a checkpoint; use finetune_steps "
                                  "for per-image steps from the trained head.")
        else:
            raise ConfigError(f"Unknown config key {key!r}.")
    if base.get("task", "segment") not in CHECKPOINT_TASKS:
        raise ConfigError(
            f"task {base.get('task')!r} cannot use a dataset-level head (it solves several "
            f"graphs with other K); choose one of {list(CHECKPOINT_TASKS)}.")
    if base.get("task") == "kless":
        if base.get("loss") != "cc":
            raise ConfigError("task 'kless' needs a head trained with loss='cc' (configs/"
                              f"kless.yaml); this one used loss={base.get('loss')!r}.")
        k_max = task_params.get("k_max", base["n_clusters"])
        if k_max != base["n_clusters"]:
            raise ConfigError(f"k_max={k_max} contradicts the checkpoint, whose head has "
                              f"K_max={base['n_clusters']} outputs.")
        task_params["k_max"] = k_max
    elif task_params:
        raise ConfigError(f"task parameters {sorted(task_params)} do not apply to task "
                          f"{base.get('task')!r} with a checkpoint.")
    base["task_params"] = task_params
    h = spec["head"]
    base["steps"] = finetune_steps
    base["solver_params"] = {
        "init_state": checkpoint.head_state, "steps": finetune_steps, "hidden": h["hidden"],
        "mlp_hidden": h["mlp_hidden"], "dropout": h["dropout"],
        "drop_empty": False,  # keep the head's cluster ids: they mean the same on every image
        # fine-tuning optimises the loss the head was trained with (older checkpoints: defaults)
        **{k: v for k, v in (spec.get("finetune") or {}).items()
           if k in ("ortho_weight", "weight_decay")},
    }
    return SegmenterConfig.from_dict(base)


def load_segmenter(path: str | Path, *, finetune_steps: int = 0,
                   **overrides: Any) -> CheckpointSegmenter:
    """:func:`load_checkpoint` then :class:`CheckpointSegmenter`."""
    return CheckpointSegmenter(load_checkpoint(path), finetune_steps=finetune_steps, **overrides)
