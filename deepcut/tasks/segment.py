"""Single-object segmentation (K = 2 by default, any K works) and its box."""
from __future__ import annotations

import numpy as np

from deepcut.backbones.base import PatchFeatures
from deepcut.config import SegmenterConfig
from deepcut.tasks.base import TaskOutput, register_task, solve
from deepcut.tasks.foreground import background_cluster, corner_background
from deepcut.tasks.localize import object_box

__all__ = ["segment_object"]


@register_task("segment")
def segment_object(pf: PatchFeatures, cfg: SegmenterConfig) -> TaskOutput:
    """Cut the patch graph into K clusters; background = the cluster that owns most of the border.

    Output labels: 0 = background, 1 = object (every non-background cluster). The box is that of
    the largest connected foreground component, in original image pixels (CorLoc's prediction).
    """
    k = cfg.n_clusters or 2
    h, w = pf.grid
    solver, _ = solve(pf.flat, cfg, k, grid=(h, w))
    labels = solver.labels_.numpy().reshape(h, w)
    bg = background_cluster(labels) if cfg.background_rule == "border" else \
        corner_background(labels)
    fg = labels != bg
    box = object_box(fg, pf.input_size, pf.image_size, pf.patch_size, pf.stride)
    return TaskOutput(
        patch_labels=fg.astype(np.uint8),
        label_names={0: "background", 1: "object"},
        solver=solver.summary(),
        box=box,
        assignment=solver.assignment_,
        extra={"background_cluster": bg},
    )
