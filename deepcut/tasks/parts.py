"""Two-stage part segmentation (DeepCut section 3.4, Fig. 4; reference modes 1 and 2).

Stage 1 is the ``segment`` task itself (K=2 unless ``n_clusters`` is set; background = the
cluster owning most border patches, or the corner vote). Stage 2 builds a **new graph on the
foreground nodes' features only** and cuts it into ``parts`` clusters with the configured solver
(GNN: 100 steps by default, DeepCut's stage-2 value). With ``split_background = b`` the background
nodes get their own graph and are cut into b regions (GNN: 10 steps, DeepCut's stage-3 value).
Why two stages: NCut objectives favour equal-sized clusters, so one K-way cut of the whole image
spends most clusters on the background.

Label bookkeeping (no magic offsets such as the reference's +3 and +K+5):

============================ =================================================================
label                        meaning
============================ =================================================================
0                            background (only without ``split_background``)
1 .. k                       part p = stage-2 cluster p - 1 (ids kept, not renumbered: with
                             the shared seeded GNN init the same id tends to be the same part
                             across images, DeepCut's "implicit classification")
k + 1 .. k + b               background region r = background cluster r - k - 1
============================ =================================================================

``k`` is always the *requested* number of parts, so the numbering is the same for every image.
When the foreground has fewer patches than ``parts`` (or the background fewer than ``b``), K is
reduced to the number of nodes with a :class:`PartsReducedWarning` and the JSON records
``parts_used``; a folder run goes on. Part labels are only ever written on foreground nodes.

Task parameters (``cfg.task_params``): ``parts`` (default 4), ``split_background`` (default
None), ``parts_steps`` (GNN: 100), ``background_steps`` (GNN: 10). ``cfg.n_clusters`` and
``cfg.steps`` stay stage 1's K and steps, as in the ``segment`` task. Every solver works
(``gnn``, ``spectral``, ``falcon``): each stage calls :func:`~deepcut.tasks.base.solve`.
The JSON's top-level ``ncut`` is the parts stage's NCut on the foreground graph; each stage's
yardstick is under ``solver.stages``.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from deepcut.backbones.base import PatchFeatures
from deepcut.config import SegmenterConfig
from deepcut.errors import ConfigError
from deepcut.tasks.base import TaskOutput, register_task, solve
from deepcut.tasks.segment import saliency_mix, segment_object

__all__ = ["PartsReducedWarning", "part_label_names", "parts_task", "split_nodes"]

#: DeepCut's per-stage GNN steps: [stage 1, foreground parts, background] = [10, 100, 10].
PARTS_STEPS = 100
BACKGROUND_STEPS = 10
DEFAULT_PARTS = 4


class PartsReducedWarning(UserWarning):
    """Fewer parts than asked: too few foreground nodes (K reduced), or the solver found fewer."""


def part_label_names(parts: int, split_background: int | None) -> dict[int, str]:
    """Output id -> meaning for ``parts`` parts and an optional background split (module table)."""
    names: dict[int, str] = {} if split_background else {0: "background"}
    names.update({p: f"part {p}" for p in range(1, parts + 1)})
    if split_background:
        names.update({parts + r: f"background {r}" for r in range(1, split_background + 1)})
    return names


def split_nodes(F: torch.Tensor, cfg: SegmenterConfig, k: int, steps: int | None, what: str
                ) -> tuple[np.ndarray, dict[str, Any]]:
    """Cut the nodes ``F: (n, D)`` into at most ``k`` clusters on their own new graph.

    Returns ``(labels (n,) in 0..k-1, solver summary + "k_used")``. ``k`` is reduced to ``n`` with a
    :class:`PartsReducedWarning` when there are fewer nodes; 0 or 1 node(s) or ``k == 1`` need no
    solve (all label 0).
    """
    n = int(F.shape[0])
    k_used = min(k, n)
    if k_used < k:
        warnings.warn(f"{what}: {n} patches for {k} clusters; using {max(k_used, 1)}. Use a "
                      "larger image or a smaller stride for more patches.", PartsReducedWarning,
                      stacklevel=3)
    if k_used < 2:
        return np.zeros(n, dtype=np.int64), {"k_used": max(k_used, 1), "n_clusters": min(n, 1),
                                             "ncut": 0.0, "n_iter": 0, "timings": {}}
    solver, _ = solve(F, cfg, k_used, steps=steps)
    return solver.labels_.numpy().astype(np.int64), {"k_used": k_used, **solver.summary()}


def _check_int(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ConfigError(f"The {name!r} task parameter must be an int >= {lo}. Got {v!r} instead.")
    return int(v)


def parts_settings(cfg: SegmenterConfig) -> tuple[int, int | None, int | None, int | None]:
    """``(parts, split_background, parts_steps, background_steps)`` from ``cfg.task_params``
    (module docstring), each checked; the ``segment`` stage's ``saliency_mix`` too."""
    tp = cfg.task_params
    k = _check_int("parts", tp.get("parts", DEFAULT_PARTS), 1)
    b = tp.get("split_background")
    b = None if b is None else _check_int("split_background", b, 1)
    gnn = cfg.solver == "gnn"
    steps = []
    for name, default in (("parts_steps", PARTS_STEPS), ("background_steps", BACKGROUND_STEPS)):
        v = tp.get(name, default if gnn else None)
        steps.append(None if v is None else _check_int(name, v, 0))
    saliency_mix(cfg)
    return k, b, steps[0], steps[1]


@register_task("parts", params=("parts", "split_background", "parts_steps", "background_steps",
                                "saliency_mix"), check=parts_settings)
def parts_task(pf: PatchFeatures, cfg: SegmenterConfig) -> TaskOutput:
    """fg/bg (the ``segment`` task), then parts on a new foreground graph; see the module doc."""
    k, b, parts_steps, bg_steps = parts_settings(cfg)

    # Stage 1: exactly the segment task (its K, steps, background rule and box).
    stage1 = segment_object(pf, cfg)
    fg = np.asarray(stage1.patch_labels).astype(bool)  # (h, w)
    flat_fg = fg.reshape(-1)
    F = pf.flat

    # Stage 2: a new graph on the foreground nodes only.
    labels = np.zeros(flat_fg.shape, dtype=np.int64)
    fg_idx = np.flatnonzero(flat_fg)
    part, s_parts = split_nodes(F[torch.from_numpy(fg_idx)], cfg, k, parts_steps, "parts")
    labels[fg_idx] = part + 1
    stages = {"fgbg": stage1.solver, "parts": s_parts}

    # Optional stage 3: the background on its own graph, numbered after the parts.
    if b:
        bg_idx = np.flatnonzero(~flat_fg)
        reg, s_bg = split_nodes(F[torch.from_numpy(bg_idx)], cfg, b, bg_steps, "background")
        labels[bg_idx] = k + 1 + reg
        stages["background"] = s_bg

    present = np.unique(labels)
    n_labels = int(present.size)
    names = {i: n for i, n in part_label_names(k, b).items() if i in set(present.tolist())}
    found = int(s_parts["n_clusters"])
    warn = [w for s in stages.values() for w in s.get("warnings", [])]
    if found < k and fg_idx.size >= k:
        msg = f"parts: {found} of the {k} parts asked for were found"
        warnings.warn(msg, PartsReducedWarning, stacklevel=2)
        warn.append(msg)
    timings = {"graph": sum(float(s.get("timings", {}).get("graph", 0.0)) for s in stages.values())}
    for name, s in stages.items():
        timings.update({f"{name}/{t}": v for t, v in s.get("timings", {}).items()})
    return TaskOutput(
        patch_labels=labels.reshape(fg.shape),
        label_names=names,
        solver={"solver": cfg.solver, "n_clusters": n_labels,
                "n_clusters_requested": k + (b or 1), "warnings": warn, "ncut": s_parts["ncut"],
                "n_iter": s_parts["n_iter"], "timings": timings,
                "stages": {n: {kk: v for kk, v in s.items() if kk != "timings"}
                           for n, s in stages.items()}},
        box=stage1.box,
        assignment=stage1.assignment,
        extra={"parts_requested": k, "parts_used": s_parts["k_used"],
               "parts_found": s_parts["n_clusters"],
               "split_background": b, "n_foreground_patches": int(fg_idx.size),
               "background_cluster": stage1.extra.get("background_cluster"),
               "stage_steps": {"fgbg": cfg.steps, "parts": parts_steps, "background": bg_steps}},
    )

