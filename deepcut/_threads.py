"""CPU thread settings the command lines choose for the user (measured: benchmarks/threads.py).

Two findings on a 2-core machine shared with other busy processes (``examples/chelsea.png``,
classic backbone, GNN solver, 10 steps; medians of 3):

* torch's default (2 threads, OpenMP spin-waiting) took 3.9-10.5 s per image against 0.39 s with
  one thread: OpenMP threads spin waiting for each other while the cores are taken by others.
  With ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep instead of spinning) two threads took 0.50-0.57
  s: no collapse. :func:`prefer_passive_waits` sets it (unless the user did) before torch loads.
* The GNN's optimisation steps are many small ops (N ~ 1500 nodes, K = 2): one thread was the
  fastest or within noise of it in every loaded run, and on an idle 2-core machine two threads
  save ~20 ms per image (31 vs 50 ms for 10 steps, GNNSolver's docstring). One thread for the
  steps loses those milliseconds when idle and saves seconds when busy, so it is the default
  (:data:`DEFAULT_STEP_THREADS`); ``DEEPCUT_STEP_THREADS=N`` or ``solver_params.step_threads``
  overrides it. The backbone and the one-off graph products keep torch's threads.
"""
from __future__ import annotations

import os
from typing import Any

__all__ = ["DEFAULT_STEP_THREADS", "apply_step_threads", "prefer_passive_waits", "step_threads"]

#: Threads for the GNN's per-image optimisation steps (see the module docstring).
DEFAULT_STEP_THREADS = 1


def prefer_passive_waits() -> None:
    """``OMP_WAIT_POLICY=PASSIVE`` unless set: idle OpenMP threads sleep instead of spinning.

    Only effective before torch (its OpenMP runtime) is loaded: the CLIs call it first thing.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def step_threads() -> int:
    """``$DEEPCUT_STEP_THREADS`` if set (a positive int), else :data:`DEFAULT_STEP_THREADS`."""
    raw = os.environ.get("DEEPCUT_STEP_THREADS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return DEFAULT_STEP_THREADS


def apply_step_threads(cfg: Any) -> Any:
    """The config with ``solver_params["step_threads"]`` set for the GNN solver, unless given.

    Other solvers are left alone (they take no such parameter). Returns ``cfg`` (changed in
    place: its ``solver_params`` dict gains one key, recorded in the output JSON).
    """
    if getattr(cfg, "solver", None) == "gnn" and "step_threads" not in cfg.solver_params:
        cfg.solver_params["step_threads"] = step_threads()
    return cfg
