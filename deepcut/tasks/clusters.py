"""K-way clusters as the solver numbers them: DeepCut's "implicit classification" across images."""
from __future__ import annotations

import numpy as np

from deepcut.backbones.base import PatchFeatures
from deepcut.config import SegmenterConfig
from deepcut.tasks.base import TaskOutput, register_task, solve
from deepcut.tasks.foreground import background_cluster

__all__ = ["cluster_labels"]


@register_task("clusters", params=())
def cluster_labels(pf: PatchFeatures, cfg: SegmenterConfig) -> TaskOutput:
    """K-way cluster labels as the solver numbers them (no background merging, no box).

    With a dataset-level head (``CheckpointSegmenter``) ids are not renumbered, so cluster ``k``
    is the same learnt concept in every image (DeepCut's "implicit classification"). The
    background cluster by the border rule is reported in ``extra``.
    """
    k = cfg.n_clusters or 2
    h, w = pf.grid
    solver, _ = solve(pf.flat, cfg, k, grid=(h, w))
    labels = solver.labels_.numpy().reshape(h, w)
    ids = sorted(int(i) for i in np.unique(labels))
    return TaskOutput(
        patch_labels=labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.int64),
        label_names={i: f"cluster_{i}" for i in ids},
        solver=solver.summary(),
        box=None,
        assignment=solver.assignment_,
        extra={"background_cluster": background_cluster(labels), "clusters": ids},
    )
