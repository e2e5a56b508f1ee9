"""Task registry and the shared helpers every task uses (graph + solver from the config)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from deepcut.backbones.base import PatchFeatures
from deepcut.config import SegmenterConfig
from deepcut.graphs import Graph, LandmarkGraph, build_graph, fit_on_landmarks
from deepcut.solvers import BaseSolver

__all__ = [
    "TASKS",
    "TASK_PARAMS",
    "TaskOutput",
    "check_task_params",
    "list_tasks",
    "make_graph",
    "make_solver",
    "prefitted",
    "register_task",
    "solve",
]

TASKS: dict[str, Callable[[PatchFeatures, SegmenterConfig], TaskOutput]] = {}
#: each task's ``task_params`` keys, and the check of their values (None: none) run by
#: :meth:`SegmenterConfig.validate` before any image: a typo or a value out of range is one
#: error up front, not a failure per image
TASK_PARAMS: dict[str, tuple[frozenset[str], Callable[[SegmenterConfig], Any] | None]] = {}


def register_task(name: str, params: tuple[str, ...] = (),
                  check: Callable[[SegmenterConfig], Any] | None = None):
    """Function decorator: ``fn(features: PatchFeatures, config) -> TaskOutput``.

    ``params``: the ``task_params`` keys the task reads (any other key is refused);
    ``check(config)``: raises :class:`~deepcut.errors.ConfigError` on a bad value."""

    def deco(fn):
        TASKS[name] = fn
        TASK_PARAMS[name] = (frozenset(params), check)
        return fn

    return deco


def check_task_params(cfg: SegmenterConfig) -> None:
    """Check ``cfg.task_params`` against its task: a key no task reads (a typo) is an error; a
    key of another task (a config file's, run with another ``--task``) is one warning line and
    is not used; the task's own values go through its check."""
    import warnings

    import deepcut.tasks  # noqa: F401  (registers the built-in tasks)
    from deepcut.errors import ConfigError

    allowed, check = TASK_PARAMS.get(cfg.task, (None, None))
    if allowed is None:  # a task registered without the registry's bookkeeping
        return
    extra = set(cfg.task_params) - allowed
    if extra:
        known = set().union(*(keys for keys, _ in TASK_PARAMS.values()))
        typos = sorted(extra - known)
        if typos:
            takes = f"it takes {sorted(allowed)}" if allowed else "it takes none"
            raise ConfigError(f"unknown task parameter(s) {typos} for task {cfg.task!r}; "
                              f"{takes}.")
        owners = sorted(t for t, (keys, _) in TASK_PARAMS.items() if keys & extra)
        # from this one place, so it is said once per process though a command validates its
        # config more than once (the caller's line differs each time)
        warnings.warn(f"task parameter(s) {sorted(extra)} belong to task(s) {owners}, not to "
                      f"{cfg.task!r}: not used", UserWarning, stacklevel=1)
    if check is not None:
        check(cfg)


def list_tasks() -> list[str]:
    import deepcut.tasks  # noqa: F401  (registers the built-in tasks)

    return sorted(TASKS)


@dataclass
class TaskOutput:
    """What a task returns: labels on the patch grid plus what they mean.

    Attributes:
        patch_labels: ``(h, w)`` int labels in output numbering (0 = background where it applies).
        label_names: id -> meaning, e.g. ``{0: "background", 1: "object"}``.
        solver: the solver's yardstick dict (``n_clusters``, ``ncut``, ``n_iter``, ``timings``).
        box: ``(x0, y0, x1, y1)`` in original image pixels (end exclusive), or None.
        assignment: ``(N, K)`` soft assignment of the main solve, or None.
        pixel_labels: ``(H, W)`` labels when the task refines them itself, else None.
        extra: task-specific results (e.g. hierarchy levels), JSON-able.
    """

    patch_labels: np.ndarray
    label_names: dict[int, str]
    solver: dict[str, Any]
    box: tuple[int, int, int, int] | None = None
    assignment: torch.Tensor | None = None
    pixel_labels: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def make_graph(F: torch.Tensor, cfg: SegmenterConfig, kind: str | None = None,
               grid: tuple[int, int] | None = None, landmarks: bool = False) -> Graph:
    """The graph of ``kind`` (default: the config's) on ``F: (N, D)`` or ``(h, w, D)``.

    ``grid`` is the ``(h, w)`` patch grid of flat ``F``; the ``local`` graph needs it (a grid-less
    call, e.g. on a subset of patches, falls back to the NCut graph). ``landmarks``: above
    ``cfg.dense_max_nodes`` nodes return the landmark graph of ``cfg.landmarks`` (fit it with
    :func:`deepcut.graphs.fit_on_landmarks`); otherwise an N-node kNN graph there.
    """
    kind = kind or cfg.graph_kind
    if kind == "local" and grid is None and F.dim() != 3:
        kind = "ncut"
    return build_graph(F.to(cfg.device), kind, metric=cfg.metric,
                       alpha=cfg.alpha, beta=cfg.beta, lam=cfg.lam, knn=cfg.knn,
                       dense_max_nodes=cfg.dense_max_nodes, grid=grid, radius=cfg.radius,
                       landmarks=cfg.landmarks if landmarks else None, seed=cfg.seed,
                       contour=cfg.contour)


def make_solver(cfg: SegmenterConfig, n_clusters: int, steps: int | None = None,
                **overrides: Any) -> BaseSolver:
    """A solver from the config; GNN-only options are passed only to the GNN solver."""
    from deepcut.solvers import SOLVERS

    # sklearn-style solvers take ``random_state``; the GNN solver calls it ``seed``.
    seed_key = "seed" if "seed" in SOLVERS[cfg.solver]._parameter_constraints else "random_state"
    params: dict[str, Any] = {seed_key: cfg.seed}
    if cfg.solver == "gnn":
        from deepcut.presets import gnn_preset_params

        steps = steps if steps is not None else cfg.steps
        params.update(gnn_preset_params(cfg.preset, steps))
        params.update(loss=cfg.loss, lr=cfg.lr, device=cfg.device)
        if steps is not None:
            params["steps"] = steps
    elif "device" in SOLVERS[cfg.solver]._parameter_constraints:  # Falcon runs on the device
        params["device"] = cfg.device
    # an unset config field (None) leaves the solver's default; in solver_params (and the
    # tasks' overrides) None is a value the user chose, e.g. warm_start=None: no warm start
    params = {k: v for k, v in params.items() if v is not None}
    params.update(cfg.solver_params)
    params.update(overrides)
    return SOLVERS[cfg.solver](n_clusters=n_clusters, **params)


def solve(F: torch.Tensor, cfg: SegmenterConfig, n_clusters: int, steps: int | None = None,
          grid: tuple[int, int] | None = None, kind: str | None = None,
          **overrides: Any) -> tuple[BaseSolver, Graph]:
    """Build the graph on ``F: (N, D)`` and fit a solver; returns the fitted solver and graph."""
    import time

    fits = _PREFIT.get()
    if fits is not None and not overrides:  # solved already, with other images' heads
        hit = fits.pop(prefit_key(F, n_clusters, steps, kind), None)
        if hit is not None:
            return hit
    t0 = time.perf_counter()
    g = make_graph(F, cfg, kind=kind, grid=grid, landmarks=True)
    t_graph = time.perf_counter() - t0
    solver = make_solver(cfg, n_clusters, steps, **overrides)
    if isinstance(g, LandmarkGraph):  # large image: solve on the landmarks, extend to all nodes
        fit_on_landmarks(solver, g, F.reshape(g.num_total, -1).to(cfg.device))
    else:
        solver.fit(g, F.reshape(g.num_nodes, -1).to(cfg.device))
    solver.timings_ = {"graph": t_graph, **solver.timings_}
    return solver, g


_PREFIT: ContextVar[dict | None] = ContextVar("deepcut_prefit", default=None)


def prefit_key(F: torch.Tensor, n_clusters: int, steps: int | None = None,
               kind: str | None = None) -> tuple:
    """The key under which :func:`prefitted` finds a solve of features ``F`` (their storage)."""
    return (F.data_ptr(), tuple(F.shape), n_clusters, steps, kind)


@contextmanager
def prefitted(fits: dict[tuple, tuple[BaseSolver, Graph]]) -> Iterator[None]:
    """Within the block, :func:`solve` returns ``fits[prefit_key(F, ...)]`` (once each) instead
    of solving again: how :meth:`deepcut.Segmenter.predict_features_batch` hands a task the
    solvers of heads trained together (:mod:`deepcut.solvers.batched`)."""
    token = _PREFIT.set(fits)
    try:
        yield
    finally:
        _PREFIT.reset(token)
