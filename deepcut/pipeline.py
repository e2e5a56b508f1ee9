"""The end-to-end pipeline: image -> backbone -> graph -> solver -> task -> pixel labels.

Example:
    >>> from deepcut import Segmenter
    >>> seg = Segmenter(backbone="classic", seed=0)           # doctest: +SKIP
    >>> pred = seg("examples/chelsea.png")                     # doctest: +SKIP
    >>> pred.labels.shape, pred.box, pred.ncut                 # doctest: +SKIP
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import deepcut
from deepcut.backbones.base import Backbone, PatchFeatures
from deepcut.config import SegmenterConfig
from deepcut.errors import ConfigError, ImageReadError
from deepcut.io.images import load_image
from deepcut.refine.upsample import upsample_labels
from deepcut.tasks.base import TASKS, TaskOutput

__all__ = ["Prediction", "Segmenter"]


@dataclass
class Prediction:
    """One image's result.

    Attributes:
        labels: ``(H, W)`` integer pixel labels at the original image size.
        patch_labels: ``(h, w)`` labels on the patch grid.
        label_names: id -> meaning.
        box: ``(x0, y0, x1, y1)`` in image pixels, end exclusive (``segment`` task), or None.
        n_clusters: K the solver used (non-empty clusters).
        ncut: discrete K-way NCut of the solver's labelling (the common yardstick).
        timings: seconds per stage: backbone, graph, solve, upsample.
        meta: provenance (backbone, weights id, grid, sizes, config, version).
        extra: task-specific results.
    """

    labels: np.ndarray
    patch_labels: np.ndarray
    label_names: dict[int, str]
    box: tuple[int, int, int, int] | None
    n_clusters: int
    ncut: float
    timings: dict[str, float]
    meta: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    task_output: TaskOutput | None = None

    def record(self) -> dict[str, Any]:
        """JSON-able summary (what ``infer.py`` writes next to the label map)."""
        return {
            **{k: self.meta[k] for k in ("image", "image_size", "input_size", "grid", "backbone",
                                         "weights_id", "seed", "deepcut_version") if k in self.meta},
            "task": self.meta["config"]["task"],
            "n_clusters": self.n_clusters,
            "ncut": self.ncut,
            "box": list(self.box) if self.box is not None else None,
            "label_names": {str(k): v for k, v in self.label_names.items()},
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
            "solver": self.meta.get("solver", {}),
            "extra": self.extra,
            "config": self.meta["config"],
        }


class Segmenter:
    """Configured once, called on many images (like SAM's predictor).

    Args:
        config: a :class:`SegmenterConfig`; keyword overrides are applied on top of it.
        backbone: an already built :class:`Backbone` (skips ``config.backbone`` resolution), or
            a backbone name (then the same as ``config.backbone``).
    """

    def __init__(self, config: SegmenterConfig | None = None, *, backbone: Backbone | None = None,
                 **overrides: Any) -> None:
        cfg = config or SegmenterConfig()
        if isinstance(backbone, str):  # a name is a config value, not a built backbone
            overrides["backbone"] = backbone
            backbone = None
        if overrides:
            if overrides.get("preset"):  # the preset's values, then the caller's
                from deepcut.presets import PRESETS

                overrides = {**PRESETS.get(overrides["preset"], {}), **overrides}
            cfg = SegmenterConfig.from_dict({**cfg.to_dict(), **overrides})
        self.config = cfg.validate()
        self._backbone = backbone

    @property
    def backbone(self) -> Backbone:
        """The backbone, resolved on first use (``auto`` may fall back to ``classic``)."""
        if self._backbone is None:
            from deepcut.backbones import resolve_backbone

            c = self.config
            self._backbone = resolve_backbone(c.backbone, weights=c.weights, size=c.size,
                                              stride=c.stride, device=c.device)
        return self._backbone

    def features(self, image: Image.Image) -> PatchFeatures:
        """Patch features of an RGB image; refuses images smaller than one patch."""
        bb = self.backbone
        if min(image.size) < bb.patch_size:
            raise ImageReadError(
                f"image is {image.width}x{image.height} px, smaller than one "
                f"{bb.patch_size} px patch of backbone {bb.name!r}")
        return bb(image)

    def __call__(self, image: Image.Image | str | Path) -> Prediction:
        """Segment one image (a PIL image in any mode, or a path)."""
        t0 = time.perf_counter()
        name = None
        if not isinstance(image, Image.Image):
            name = str(image)
            image = load_image(image)
        else:
            from deepcut.io.images import to_rgb

            image = to_rgb(image)
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        pf = self.features(image)
        t_bb = time.perf_counter() - t0
        pred = self.predict_features(pf, image=image)
        pred.timings = {"load": t_load, "backbone": t_bb, **pred.timings}
        if name is not None:
            pred.meta["image"] = name
        return pred

    def predict_features(self, pf: PatchFeatures, image: Image.Image | None = None) -> Prediction:
        """Run graph, solver, task and upsampling on precomputed features (``image``: the RGB
        image they come from, needed by ``refine="pamr"`` and ``"bilateral"``)."""
        cfg = self.config
        task = TASKS[cfg.task]
        t0 = time.perf_counter()
        out = task(pf, cfg)
        t_task = time.perf_counter() - t0
        st = out.solver.get("timings", {})
        t_graph = float(st.get("graph", 0.0))
        t0 = time.perf_counter()
        if out.pixel_labels is not None:
            labels = out.pixel_labels
        elif cfg.refine == "centres":
            from deepcut.refine.centres import assign_by_centres

            labels = assign_by_centres(pf.features, out.patch_labels, pf.image_size)
        elif cfg.refine in ("pamr", "bilateral"):
            from deepcut.refine import bilateral_labels, pamr_labels

            if image is None:
                raise ConfigError(f"refine={cfg.refine!r} refines the labels along the image: "
                                  "pass predict_features(pf, image=...) or call the Segmenter "
                                  "on the image.")
            refine = pamr_labels if cfg.refine == "pamr" else bilateral_labels
            labels = refine(image, np.asarray(out.patch_labels), pf.input_size, pf.patch_size,
                            pf.stride)
        else:
            labels = upsample_labels(out.patch_labels, pf.image_size, pf.input_size,
                                     pf.patch_size, pf.stride)
        labels = np.asarray(labels)
        labels = labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16)
        t_up = time.perf_counter() - t0
        meta = {
            "image_size": list(pf.image_size),
            "input_size": list(pf.input_size),
            "grid": list(pf.grid),
            "backbone": pf.backbone,
            "weights_id": pf.weights_id,
            "patch_size": pf.patch_size,
            "stride": pf.stride,
            "seed": cfg.seed,
            "deepcut_version": deepcut.__version__,
            "config": cfg.to_dict(),
            "solver": {k: v for k, v in out.solver.items()},
        }
        return Prediction(
            labels=labels,
            patch_labels=np.asarray(out.patch_labels),
            label_names=out.label_names,
            box=out.box,
            n_clusters=int(out.solver.get("n_clusters", 0)),
            ncut=float(out.solver.get("ncut", float("nan"))),
            timings={"graph": t_graph, "solve": max(t_task - t_graph, 0.0), "upsample": t_up},
            meta=meta,
            extra=out.extra,
            task_output=out,
        )
