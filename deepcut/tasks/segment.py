"""Single-object segmentation (K = 2 by default, any K works) and its box."""
from __future__ import annotations

import numpy as np

from deepcut.backbones.base import PatchFeatures
from deepcut.config import SegmenterConfig
from deepcut.tasks.base import TaskOutput, register_task, solve
from deepcut.tasks.foreground import (
    SALIENCY_K,
    SALIENCY_MIX,
    background_cluster,
    corner_background,
    salient_mask,
)
from deepcut.tasks.localize import object_box

__all__ = ["cut_k", "segment_object"]


def cut_k(cfg: SegmenterConfig, backbone: str | None) -> int:
    """K of the segment task's cut: ``cfg.n_clusters``, else 5 for the saliency rule and 2."""
    rule = cfg.background_rule_for(backbone)
    return cfg.n_clusters or (SALIENCY_K if rule == "saliency" else 2)


def saliency_mix(cfg: SegmenterConfig) -> float:
    """The ``saliency_mix`` task parameter (the cluster mean's weight), a number in [0, 1]."""
    from deepcut.errors import ConfigError

    v = cfg.task_params.get("saliency_mix", SALIENCY_MIX)
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
            or not 0 <= v <= 1:
        raise ConfigError(f"The 'saliency_mix' task parameter must be a number in [0, 1]. "
                          f"Got {v!r} instead.")
    return float(v)


@register_task("segment", params=("saliency_mix",), check=saliency_mix)
def segment_object(pf: PatchFeatures, cfg: SegmenterConfig) -> TaskOutput:
    """Cut the patch graph into K clusters and sort them into object and background.

    The background rule is ``cfg.background_rule`` (None: ``saliency`` for the ``classic``
    backbone, ``border`` for the ViTs; :meth:`SegmenterConfig.background_rule_for`):

    * ``border``: background = the cluster that owns most of the border (K = 2 by default);
    * ``corners``: DeepCut's 4-corner vote;
    * ``saliency``: a K-way cut (K = :data:`~deepcut.tasks.foreground.SALIENCY_K` = 5 by
      default) and the robust-background saliency map of the patches
      (:mod:`deepcut.tasks.saliency`); object = the patches whose saliency, averaged with their
      cluster's mean saliency, passes Otsu's threshold (:func:`~deepcut.tasks.foreground.
      salient_mask`; task parameter ``saliency_mix``, the cluster mean's weight, default 0.5).

    Output labels: 0 = background, 1 = object. The box is that of the
    largest connected foreground component, in original image pixels (CorLoc's prediction).
    """
    rule = cfg.background_rule_for(pf.backbone)
    k = cut_k(cfg, pf.backbone)
    h, w = pf.grid
    solver, _ = solve(pf.flat, cfg, k, grid=(h, w))
    labels = solver.labels_.numpy().reshape(h, w)
    extra: dict = {"background_rule": rule}
    if rule == "saliency":
        from deepcut.tasks.saliency import saliency_map

        sal = saliency_map(pf.flat, (h, w))["saliency"]
        mix = saliency_mix(cfg)
        fg, threshold, means = salient_mask(labels, sal, k, mix)
        present = np.bincount(labels.reshape(-1), minlength=k) > 0
        # background clusters: those with no object patch
        bg_ids = [int(c) for c in np.flatnonzero(present & (np.bincount(
            labels[fg], minlength=k) == 0))]
        extra.update(background_cluster=bg_ids[0] if len(bg_ids) == 1 else bg_ids,
                     cluster_saliency=[round(float(m), 6) if p else -1.0
                                       for m, p in zip(means, present)],
                     saliency_threshold=round(float(threshold), 6))
    else:
        bg = background_cluster(labels) if rule == "border" else corner_background(labels)
        fg = labels != bg
        extra["background_cluster"] = bg
    box = object_box(fg, pf.input_size, pf.image_size, pf.patch_size, pf.stride)
    names = {0: "background", 1: "object"}
    return TaskOutput(
        patch_labels=fg.astype(np.uint8),
        # only the labels present: a one-cluster cut has no object (it is said as degenerate)
        label_names={int(i): names[int(i)] for i in np.unique(fg.astype(np.uint8))},
        solver=solver.summary(),
        box=box,
        assignment=solver.assignment_,
        extra=extra,
    )
