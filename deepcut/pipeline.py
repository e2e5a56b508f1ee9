"""The end-to-end pipeline: image -> backbone -> graph -> solver -> task -> pixel labels.

Example:
    >>> from deepcut import Segmenter
    >>> seg = Segmenter(backbone="classic", seed=0)           # doctest: +SKIP
    >>> pred = seg("examples/chelsea.png")                     # doctest: +SKIP
    >>> pred.labels.shape, pred.box, pred.ncut                 # doctest: +SKIP
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import deepcut
from deepcut.backbones.base import Backbone, ImageLike, PatchFeatures, as_rgb_image
from deepcut.config import SegmenterConfig
from deepcut.errors import ConfigError, ImageReadError
from deepcut.graphs.local import contour_edges
from deepcut.tasks.base import TASKS, TaskOutput
from deepcut.tasks.hierarchy import nested_level

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
    image: Image.Image | None = field(default=None, repr=False)

    def overlay(self, image: ImageLike | None = None, alpha: float = 0.5) -> Image.Image:
        """The overlay ``infer.py`` writes: label colours, borders and the box over the image.

        ``image`` defaults to the RGB image this prediction was made from (set when the
        Segmenter was called on an image; pass it after ``predict_features``).
        """
        from deepcut.viz.overlay import overlay

        im = self.image if image is None else as_rgb_image(image)
        if im is None:
            raise ConfigError("this prediction holds no image (made by predict_features): "
                              "pass overlay(image)")
        bg = 0 if self.label_names.get(0) == "background" else None
        return overlay(im, self.overlay_labels, alpha=alpha, box=self.box, background=bg)

    @property
    def overlay_labels(self) -> np.ndarray:
        """``(H, W)`` labels the overlay shows: the task's choice (hierarchy: a readable level,
        ``extra["overlay_level"]``), else :attr:`labels`."""
        shown = getattr(self.task_output, "overlay_labels", None)
        return self.labels if shown is None else shown

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


#: Tasks that solve once, ``solve(pf.flat, cfg, cfg.n_clusters or 2, grid=pf.grid)``: their
#: GNN heads can be trained together by :meth:`Segmenter.predict_features_batch`.
_HEAD_BATCH_TASKS = ("segment", "clusters")


def _precision(cfg: SegmenterConfig) -> str | None:
    """The ViT forward precision: ``auto`` is bf16 autocast on CUDA, float32 elsewhere; None
    for non-ViT backbones (``classic`` takes no such option)."""
    p = cfg.precision
    if p == "auto":
        p = "bf16" if str(cfg.device).startswith("cuda") else "fp32"
    return None if cfg.backbone == "classic" else p


def _nonnegative(x: float) -> float:
    """NCut is >= 0; float error leaves ``-0.0`` or ``-1e-9`` on one-cluster cuts."""
    return x if x > 0.0 or math.isnan(x) else 0.0  # NaN (no value) stays NaN


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
                                              resize=c.resize, resample=c.resample,
                                              pos_embed=c.pos_embed, dino_head=c.dino_head,
                                              channel_layout=c.channel_layout,
                                              stride=c.stride, device=c.device,
                                              precision=_precision(c))
        return self._backbone

    def features(self, image: ImageLike) -> PatchFeatures:
        """Patch features of an image; refuses images smaller than one patch."""
        image = as_rgb_image(image)
        bb = self.backbone
        if min(image.size) < bb.patch_size:
            raise ImageReadError(
                f"image is {image.width}x{image.height} px, smaller than one "
                f"{bb.patch_size} px patch of backbone {bb.name!r}")
        return bb(image)

    def __call__(self, image: ImageLike,
                 depth: np.ndarray | str | Path | None = None) -> Prediction:
        """Segment one image: a PIL image (any mode), a path, a numpy ``(H, W, 3)`` uint8 array
        or a ``(3, H, W)`` tensor (uint8, or float in 0..1).

        ``depth``: for ``refine="dream"``, an ``(H, W)`` depth map or its file; when None and
        the config names a ``depth`` folder, the map with the image's stem is read from it
        (which needs the image as a path).
        """
        t0 = time.perf_counter()
        name = str(image) if isinstance(image, (str, Path)) else None
        image = as_rgb_image(image)
        depth = self._depth(depth, name, image.size)
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        pf = self.features(image)
        t_bb = time.perf_counter() - t0
        pred = (self.predict_features(pf, image=image) if depth is None
                else self.predict_features(pf, image=image, depth=depth))
        pred.timings = {"load": t_load, "backbone": t_bb, **pred.timings}
        if name is not None:
            pred.meta["image"] = name
        pred.image = image
        return pred

    def _depth(self, depth, name: str | None, size: tuple[int, int]) -> np.ndarray | None:
        """The depth map for one image: given, read from a file, or looked up in the folder."""
        from deepcut.io.depth import depth_for, load_depth

        if depth is None and self.config.depth is not None:
            if name is None:
                raise ConfigError("the config names a depth folder but the image was given as "
                                  "pixels: pass depth=... or call the Segmenter on the path.")
            return depth_for(self.config.depth, name, size)
        if isinstance(depth, (str, Path)):
            return load_depth(depth, size)
        return depth

    def predict_features(self, pf: PatchFeatures, image: Image.Image | None = None,
                         depth: np.ndarray | None = None) -> Prediction:
        """Run graph, solver, task and refinement on precomputed features (``image``: the RGB
        image they come from, needed by ``refine="pamr"``, ``"bilateral"`` and ``"dream"``;
        ``depth``: an ``(H, W)`` depth map for ``"dream"``)."""
        cfg = self.config
        cfg = cfg.resolved(pf.backbone)  # the backbone's own graph, also what the JSON records
        task = TASKS[cfg.task]
        t0 = time.perf_counter()
        with contour_edges(pf.extra.get("edges")):  # the local graph's contour cue, if any
            out = task(pf, cfg)
        t_task = time.perf_counter() - t0
        st = out.solver.get("timings", {})
        t_graph = float(st.get("graph", 0.0))
        t0 = time.perf_counter()
        if out.pixel_labels is not None:
            labels = out.pixel_labels
        else:
            labels = self.refine(out.patch_labels, pf, image, depth)
            levels = getattr(out, "level_patch_labels", None)
            if levels and cfg.refine != "nearest":  # hierarchy: every level refined alike
                finest = max(levels)
                if out.extra.get("nested"):
                    # Refining each level on its own would move coarse boundaries off the fine
                    # ones: map the refined finest level through the (nested) tree instead.
                    out.level_labels = {k: nested_level(labels, levels[finest], lab)
                                        for k, lab in levels.items()}
                else:
                    out.level_labels = {k: labels if k == finest else
                                        self.refine(lab, pf, image, depth)
                                        for k, lab in levels.items()}
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
            # max(., 0): a one-cluster cut is 0, not the -0.0000 of rounding error.
            ncut=_nonnegative(float(out.solver.get("ncut", float("nan")))),
            timings={"graph": t_graph, "solve": max(t_task - t_graph, 0.0), "upsample": t_up},
            meta=meta,
            extra=out.extra,
            task_output=out,
        )

    def predict_batch(self, images: list[ImageLike]) -> list[Prediction]:
        """Segment several images; with the GNN solver their heads train together.

        The same predictions as ``[self(im) for im in images]`` (same labels; NCut and losses
        equal to float rounding), faster where one head cannot fill the device: see
        :meth:`predict_features_batch`. Images need not share a size.
        """
        t0 = time.perf_counter()
        names = [str(im) if isinstance(im, (str, Path)) else None for im in images]
        rgb = [as_rgb_image(im) for im in images]
        depths = [self._depth(None, n, im.size) for n, im in zip(names, rgb)]
        t_load = (time.perf_counter() - t0) / max(len(images), 1)
        pfs, t_bb = [], []
        for im in rgb:
            t0 = time.perf_counter()
            pfs.append(self.features(im))
            t_bb.append(time.perf_counter() - t0)
        preds = self.predict_features_batch(pfs, rgb, depths)
        for pred, name, im, tb in zip(preds, names, rgb, t_bb):
            pred.timings = {"load": t_load, "backbone": tb, **pred.timings}
            if name is not None:
                pred.meta["image"] = name
            pred.image = im
        return preds

    def predict_features_batch(self, pfs: list[PatchFeatures],
                               images: list[Image.Image | None] | None = None,
                               depths: list[np.ndarray | None] | None = None
                               ) -> list[Prediction]:
        """:meth:`predict_features` on several images, GNN heads trained together.

        With ``solver="gnn"`` and a one-solve task (``segment``, ``clusters``) the graphs are
        built per image, the heads are trained at once by
        :meth:`~deepcut.solvers.GNNSolver.fit_many` (:mod:`deepcut.solvers.batched`: the same
        labels as one image at a time), then each image's task and refinement run as usual on
        its fitted solver. A large image (above ``dense_max_nodes``) is solved on its landmarks
        alone, as one image at a time solves it. Other solvers and tasks run image by image.
        """
        from deepcut.graphs import LandmarkGraph, fit_on_landmarks
        from deepcut.tasks.base import make_graph, make_solver, prefit_key, prefitted

        n = len(pfs)
        images = list(images) if images is not None else [None] * n
        depths = list(depths) if depths is not None else [None] * n
        cfg = self.config
        fits: dict = {}
        solved = [0.0] * n  # seconds each prefitted solve took (outside its task's timer)
        from deepcut.tasks.segment import cut_k

        # the K each image's task will ask for: the heads are fitted at it, or solved again
        ks = {cut_k(cfg, pf.backbone) if cfg.task == "segment" else cfg.n_clusters or 2
              for pf in pfs}
        if cfg.solver == "gnn" and cfg.task in _HEAD_BATCH_TASKS and n > 1 and len(ks) == 1 \
                and len({pf.features.shape[-1] for pf in pfs}) == 1:
            k = ks.pop()
            fitted, batch = [], []  # (image, solver, graph, graph seconds); (image, graph, s)
            for i, pf in enumerate(pfs):
                t0 = time.perf_counter()
                with contour_edges(pf.extra.get("edges")):  # as the one-image solve builds it
                    g = make_graph(pf.flat, cfg.resolved(pf.backbone), grid=pf.grid,
                                   landmarks=True)
                tg = time.perf_counter() - t0
                if isinstance(g, LandmarkGraph):  # a large image: its landmarks, on its own
                    fitted.append((i, fit_on_landmarks(make_solver(cfg, k), g,
                                                       pf.flat.to(cfg.device)), g, tg))
                else:
                    batch.append((i, g, tg))
            if batch:
                solvers = make_solver(cfg, k).fit_many(
                    [g for _, g, _ in batch], [pfs[i].flat.to(cfg.device) for i, _, _ in batch])
                fitted += [(i, s, g, tg) for (i, g, tg), s in zip(batch, solvers)]
            for i, s, g, tg in fitted:
                solved[i] = sum(s.timings_.values())
                s.timings_ = {"graph": tg, **s.timings_}
                fits[prefit_key(pfs[i].flat, k)] = (s, g)
        with prefitted(fits):
            preds = [self.predict_features(pf, image=im) if d is None else
                     self.predict_features(pf, image=im, depth=d)
                     for pf, im, d in zip(pfs, images, depths)]
        for pred, t in zip(preds, solved):
            pred.timings["solve"] += t
        return preds

    def refine(self, patch_labels: np.ndarray, pf: PatchFeatures, image: Image.Image | None,
               depth: np.ndarray | None = None) -> np.ndarray:
        """``(H, W)`` pixel labels of ``patch_labels: (h, w)`` by ``config.refine``
        (:func:`deepcut.refine.refine_labels`, with ``config.refine_params``)."""
        from deepcut.refine.interface import IMAGE_GUIDED, refine_labels

        method = self.config.refine
        if image is None and method in IMAGE_GUIDED:
            raise ConfigError(f"refine={method!r} refines the labels along the image: "
                              "pass predict_features(pf, image=...) or call the Segmenter "
                              "on the image.")
        return refine_labels(method, image if image is not None else pf.image_size,
                             np.asarray(patch_labels), pf.input_size, pf.patch_size, pf.stride,
                             depth=depth, features=pf.features if method == "centres" else None,
                             **self.config.refine_params)
