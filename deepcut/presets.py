"""Named presets: sets of :class:`~deepcut.config.SegmenterConfig` values, nothing more.

* ``default``: our own settings (the dataclass defaults): the GNN warm-started from a seeded
  partition (Falcon's on a dense graph, spectral's on a sparse one), trained on the K-way NCut
  relaxation, its argmax and the warm partition rounded to a local NCut optimum
  (:mod:`deepcut.solvers.gnn`).
* ``paper``: DeepCut's exact feature extraction (DINO ViT-S/8 keys, 280 x 280 LANCZOS squash,
  DINO's position-embedding interpolation, interleaved channels, the student network of a full
  checkpoint: :mod:`deepcut.backbones.paper`) and its exact per-image solver (Aflalo et al. 2023, section 3 and the reference
  code): Eq. 9 loss, AdamW lr 1e-3, 10 steps for fg/bg (100 for parts, 10 for the background
  split, as the tasks already do), no balance term, no rounding, every step run. It reproduces
  the reference's behaviour, including its flaw: the head is barely trained after 10 steps and
  for K > 2 it often returns fewer than K clusters (now said in a warning).

``configs/paper/*.yaml`` hold the same values (a test checks that they agree). Values a user
sets explicitly always win over the preset's.
"""
from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "apply_preset", "gnn_preset_params"]

def _paper() -> dict[str, Any]:
    from deepcut.backbones.paper import PAPER_PREPROCESSING  # DeepCut's feature extraction

    return {**PAPER_PREPROCESSING, "loss": "ncut", "lr": 1e-3}


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "paper": _paper(),
}

#: Solver parameters of each preset that are not config fields (GNN only).
_GNN_PARAMS: dict[str, dict[str, Any]] = {
    "default": {},
    "paper": {"balance_weight": 0.0, "polish": False, "tol": 0.0, "warm_steps": 0},
}
#: DeepCut's stage-1 step count: the paper preset's GNN steps when neither task nor user sets it.
PAPER_STEPS = 10


def apply_preset(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (config keys the user set) with the named preset's values filled in."""
    from deepcut.errors import ConfigError

    name = values.get("preset") or "default"
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
    return {**PRESETS[name], **values}


def gnn_preset_params(preset: str | None, steps: int | None) -> dict[str, Any]:
    """Extra :class:`~deepcut.solvers.GNNSolver` parameters of ``preset`` (and its step
    count when ``steps`` is None)."""
    name = preset or "default"
    params = dict(_GNN_PARAMS.get(name, {}))
    if name == "paper" and steps is None:
        params["steps"] = PAPER_STEPS
    return params
