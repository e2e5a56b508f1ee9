"""The one solver interface shared by the GNN, spectral and Falcon-style solvers.

A solver follows scikit-learn's estimator contract: ``__init__`` stores keyword-only parameters
verbatim; ``fit(graph, features=None)`` validates them (``_parameter_constraints``), solves, and
sets the fitted attributes below; ``fit_predict`` returns ``labels_``.

Fitted attributes (every solver):
    assignment_: ``(N, K)`` soft assignment, rows sum to 1 (one-hot for hard solvers).
    labels_: ``(N,)`` int64 hard labels.
    n_clusters_: the K actually used (non-empty clusters).
    n_clusters_requested_: the K asked for (None when the solver chose it, e.g. the eigengap).
    warnings_: degenerate results in words (fewer clusters than asked, one cluster); each is
        also issued once as a :class:`DegenerateResultWarning`.
    ncut_: discrete K-way NCut of ``labels_`` on the positive part of the graph (the yardstick).
    n_iter_: iterations / optimiser steps run.
    timings_: seconds per stage, e.g. ``{"solve": 0.01}``.
"""
from __future__ import annotations

import math
import numbers
import time
import warnings
from contextlib import contextmanager
from typing import Any, ClassVar

import torch

from deepcut._validation import ParamsMixin, check_n_clusters
from deepcut.graphs.graph import Graph
from deepcut.losses import cluster_ratios

__all__ = [
    "SOLVERS",
    "BaseSolver",
    "DegenerateResultWarning",
    "create_solver",
    "drop_empty",
    "list_solvers",
    "register_solver",
    "relabel_consecutive",
]

SOLVERS: dict[str, type[BaseSolver]] = {}


def register_solver(name: str):
    """Class decorator: make a solver available to :func:`create_solver` and the CLIs."""

    def deco(cls):
        SOLVERS[name] = cls
        cls.solver_name = name
        return cls

    return deco


def list_solvers() -> list[str]:
    return sorted(SOLVERS)


def create_solver(name: str, **params: Any) -> BaseSolver:
    """Build a registered solver by name; ``None`` values are dropped so defaults stay the source."""
    # Import the built-in solvers lazily so that registering them has no import cycle.
    import deepcut.solvers  # noqa: F401

    if name not in SOLVERS:
        raise ValueError(f"Unknown solver {name!r}; choose one of {list_solvers()}.")
    return SOLVERS[name](**{k: v for k, v in params.items() if v is not None})


def relabel_consecutive(labels: torch.Tensor) -> torch.Tensor:
    """Renumber labels to 0..K'-1 in the order of their sorted ids (drops empty ids)."""
    _, inv = torch.unique(labels, return_inverse=True)
    return inv.reshape(labels.shape)


def drop_empty(assignment: torch.Tensor, labels: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the assignment columns of the ids no node carries and renumber the labels to match.

    ``assignment: (N, K)`` soft rows, ``labels: (N,)`` in ``[0, K)``; returns ``(N, K')`` rows
    renormalised over the ``K'`` used ids (a row with no weight left is its label's one-hot)
    and labels ``0..K'-1`` in id order, so column ``k`` is still label ``k``'s.

    Example:
        >>> S, z = drop_empty(torch.tensor([[0.5, 0.2, 0.3]]), torch.tensor([2]))
        >>> S.tolist(), z.tolist()
        ([[1.0]], [0])
    """
    used = torch.unique(labels)
    z = relabel_consecutive(labels)
    if used.numel() < assignment.shape[1]:
        assignment = assignment[:, used.to(assignment.device)]
        total = assignment.sum(1, keepdim=True)
        onehot = torch.nn.functional.one_hot(z.to(assignment.device), used.numel())
        assignment = torch.where(total > 0, assignment / total.clamp(min=1e-12),
                                 onehot.to(assignment.dtype))
    return assignment, z


def node_features(graph: Graph, features: torch.Tensor, who: str) -> torch.Tensor:
    """``features`` as ``(N, D)``: given as ``(N, D)``, ``(N,)`` or a grid ``(h, w, D)`` with
    ``h * w = N``. Any other shape is refused, naming both sizes: a plain ``reshape(N, -1)``
    would silently fold ``(2N, D)`` into ``(N, 2D)``."""
    f = torch.as_tensor(features)
    rows = f.shape[0] if f.ndim <= 2 else math.prod(f.shape[:-1])
    if f.ndim == 0 or f.numel() == 0 or rows != graph.num_nodes:
        raise ValueError(f"{who}: features must have one row per node, N={graph.num_nodes} "
                         "((N, D), or (h, w, D) with h*w = N); got shape "
                         f"{tuple(f.shape)}.")
    return f.reshape(graph.num_nodes, -1)


class DegenerateResultWarning(UserWarning):
    """A solver returned fewer non-empty clusters than asked (or a single cluster)."""


class BaseSolver(ParamsMixin):
    """Base class: parameter handling, validation, timing and the NCut yardstick."""

    solver_name: ClassVar[str] = ""
    _parameter_constraints: ClassVar[dict[str, list]] = {}
    #: the category of the "fewer clusters than asked" warning (a DegenerateResultWarning)
    _fewer_warning: ClassVar[type[UserWarning]] = DegenerateResultWarning

    def _fewer_message(self, found: int, asked: int) -> str:
        """The one warning line when ``found < asked`` clusters are non-empty."""
        return f"{self.solver_name}: {found} of the {asked} clusters asked for are non-empty"

    def _validate(self, graph: Graph, n_clusters: int | None = None) -> None:
        self._validate_params()
        if not isinstance(graph, Graph):
            raise TypeError(f"{type(self).__name__}.fit expects a deepcut.graphs.Graph, "
                            f"got {type(graph).__name__}.")
        if n_clusters is not None:
            check_n_clusters(graph.num_nodes, n_clusters, type(self).__name__)

    @contextmanager
    def _timer(self, stage: str):
        t0 = time.perf_counter()
        yield
        self.timings_[stage] = self.timings_.get(stage, 0.0) + time.perf_counter() - t0

    def _finish(self, graph: Graph, assignment: torch.Tensor, labels: torch.Tensor,
                ratios: torch.Tensor | None = None) -> None:
        """Set the common fitted attributes from a soft assignment and hard labels.

        ``ratios``: the labels' :func:`~deepcut.losses.cluster_ratios` on ``graph.positive()``
        when the solver already has them (one pass over ``W`` less)."""
        self.assignment_ = assignment
        self.labels_ = labels.long()
        self.n_clusters_ = int(torch.unique(self.labels_).numel())
        k = getattr(self, "n_clusters", None)
        # numpy integers pass parameter validation (Integral) and must count as a K here too
        self.n_clusters_requested_ = (int(k) if isinstance(k, numbers.Integral)
                                      and not isinstance(k, bool) else None)
        self.warnings_ = []
        fewer = None
        if getattr(self, "_k_is_bound", False):  # K_max of a k-less fit: only its bound matters
            if self.n_clusters_ >= self.n_clusters_requested_:
                self.warnings_.append(
                    f"{self.solver_name}: K found = K_max = {self.n_clusters_} (the bound was "
                    "hit: raise k_max or alpha)")
            self.n_clusters_requested_ = None
        elif self.n_clusters_requested_ is not None and \
                self.n_clusters_ < self.n_clusters_requested_:
            fewer = self._fewer_message(self.n_clusters_, self.n_clusters_requested_)
            self.warnings_.append(fewer)
        if self.n_clusters_ < 2 and fewer is None:  # a k-less fit that found one cluster too
            self.warnings_.append(f"{self.solver_name}: one cluster (a trivial cut)")
        with self._timer("ncut"):
            if ratios is None:
                g = graph.positive()
                ratios = cluster_ratios(self.labels_, g.W, g.degree, assume_nonnegative=True)
            self.ncut_ = float(ratios.numel() - ratios.sum())
        # A CC solve does not optimise the positive part's ratios; in a K > 2 cut a small weak
        # cluster is a detail of a many-region answer (the classic backbone's 5-way fg/bg cut),
        # while in a 2-way cut it is the whole foreground.
        if not graph.signed and ratios.numel() == 2:
            self.warnings_ += self._not_segments(ratios)
        for w in self.warnings_:
            warnings.warn(w, self._fewer_warning if w == fewer else DegenerateResultWarning,
                          stacklevel=3)

    def _not_segments(self, ratios: torch.Tensor) -> list[str]:
        """A warning when a side of a 2-way cut has less than half its affinity inside it
        (assoc_k / vol_k < 1/2, Shi and Malik 2000): e.g. a handful of scattered patches as the
        foreground of an unconverged solve. Measured on real photos (classic features), converged cuts keep
        every ratio above 0.78 (fg/bg and K = 6); such a failed one had 0.13."""
        weak = (ratios < 0.5).nonzero().reshape(-1)
        if weak.numel() == 0:
            return []
        ids = torch.unique(self.labels_)
        sizes = torch.bincount(torch.searchsorted(ids, self.labels_), minlength=len(ids))
        k = int(weak[torch.argmin(ratios[weak])])
        n = self.labels_.numel()
        msg = (f"{self.solver_name}: cluster {int(ids[k])} ({int(sizes[k])} of {n} nodes) "
               f"keeps {float(ratios[k]):.2f} of its affinity inside (< 0.5): not a segment "
               f"({weak.numel()} such cluster(s)); more steps or another solver may fix it")
        return [msg]

    def fit(self, graph: Graph, features: torch.Tensor | None = None) -> BaseSolver:
        raise NotImplementedError

    def fit_predict(self, graph: Graph, features: torch.Tensor | None = None) -> torch.Tensor:
        """Fit and return ``labels_: (N,)``."""
        return self.fit(graph, features).labels_

    def summary(self) -> dict[str, Any]:
        """The common yardstick as a JSON-able dict."""
        return {"solver": self.solver_name, "n_clusters": self.n_clusters_,
                "n_clusters_requested": self.n_clusters_requested_,
                "warnings": list(self.warnings_), "ncut": self.ncut_, "n_iter": self.n_iter_,
                "timings": {k: round(v, 6) for k, v in self.timings_.items()}}
