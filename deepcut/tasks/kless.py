"""k-less segmentation: the number of segments comes from the data (DeepCut section 7, Fig. 6).

``solver="gnn"`` (DeepCut): the GNN is trained with the correlation-clustering loss (Eq. 10) on
the signed CC graph (Eq. 7) with ``K_max`` outputs; K_max is only an upper bound, clusters left
empty are dropped and the labels renumbered 0..K-1. ``alpha`` (``--alpha``) is the
k-sensitivity: a lower alpha repels more pairs and gives more segments. The CC graph is
``W = S - t`` with, by default, ``t = mu + (s - mu) / alpha`` (``mu`` the image's mean pair
similarity, ``s`` its mean self-similarity; :func:`deepcut.graphs.affinity.cc_threshold`), so
one alpha means the same on every image; task parameter ``cc_shift="max"`` gives the paper's
``t = max(S) / alpha``. Default 100 steps (DeepCut's value for multi-segment outputs;
``cfg.steps`` overrides).

That is the GNN's rule (``k_rule="cc"``) on a dense feature graph (ViT features) and under
``--preset paper``. On the ``classic`` backbone's ``local`` graph the GNN's default rule is
``eigengap`` (below), then the GNN cuts the graph into K segments with its NCut loss (warm start
and all): the CC graph there is a dense graph of feature similarities without the local graph's
positions and contours, and asked for more than ``k_max`` segments (measured in
:func:`default_k_rule`). Task parameter ``k_rule`` (``cc`` or ``eigengap``) chooses.

Other solvers cannot find K by themselves, so K is chosen by the **eigengap** of the normalised
Laplacian over ``[2, K_max]`` (the spectral baseline of DeepCut Table 5;
:func:`deepcut.solvers.spectral.eigengap`) of the very graph the solver then cuts into K segments
(the config's graph: ``local`` on ``classic`` features, else the solver's own); ``spectral``
does both in one fit with ``n_clusters="auto"``.

Task parameters: ``k_max`` (default 10, else ``cfg.n_clusters``), ``k_rule`` (above),
``cc_shift`` (``mean``,
default, or ``max``), ``cc_round`` (gnn, dense graphs: round the head's labels to a local optimum
of the discrete CC objective, :func:`deepcut.solvers.cc_rounding.cc_round`; default ``False``.
On 30 BSDS images (classic, 224 px) it raised NMI/ARI/purity 36.2/27.6/66.9 -> 39.7/27.9/69.6
at alpha 3, but the objective there asks for more than k_max segments and K became k_max = 10
on every image; at alpha 10, 33.1/27.3/61.7 -> 35.9/28.7/64.0 with K 4.3 -> 7.6. The soft
``assignment`` stays the head's). The JSON's ``n_clusters`` is the K found; ``extra`` repeats it
with the rule that found it.
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from deepcut.backbones.base import PatchFeatures
from deepcut.config import SegmenterConfig
from deepcut.errors import ConfigError
from deepcut.graphs import build_graph
from deepcut.graphs.affinity import CC_SHIFTS
from deepcut.solvers.base import DegenerateResultWarning
from deepcut.solvers.spectral import eigengap, spectral_embedding
from deepcut.tasks.base import TaskOutput, make_graph, make_solver, register_task, solve

__all__ = ["DEFAULT_K_MAX", "KLESS_STEPS", "K_RULES", "default_k_rule", "kless_task"]

K_RULES = ("cc", "eigengap")
DEFAULT_K_MAX = 10  # DeepCut's CC code uses K=10 as the maximum number of clusters
KLESS_STEPS = 100


def kless_settings(cfg: SegmenterConfig) -> tuple[int, str, bool, str]:
    """``(k_max, cc_shift, cc_round, k_rule)`` from ``cfg.task_params`` (module docstring),
    each checked; ``k_rule`` unset is :func:`default_k_rule`'s."""
    k_max = cfg.task_params.get("k_max") or cfg.n_clusters or DEFAULT_K_MAX
    if isinstance(k_max, bool) or not isinstance(k_max, (int, np.integer)) or k_max < 2:
        raise ConfigError(f"The 'k_max' task parameter must be an int >= 2. Got {k_max!r} instead.")
    k_max = int(k_max)
    shift = cfg.task_params.get("cc_shift", "mean")
    if shift not in CC_SHIFTS:
        raise ConfigError(f"The 'cc_shift' task parameter must be one of {CC_SHIFTS}. "
                          f"Got {shift!r} instead.")
    rounding = cfg.task_params.get("cc_round", False)
    if not isinstance(rounding, bool):
        raise ConfigError(f"The 'cc_round' task parameter must be true or false. "
                          f"Got {rounding!r} instead.")
    rule = cfg.task_params.get("k_rule") or default_k_rule(cfg)
    if rule not in K_RULES:
        raise ConfigError(f"The 'k_rule' task parameter must be one of {K_RULES}. "
                          f"Got {rule!r} instead.")
    if rule == "cc" and cfg.solver != "gnn":
        raise ConfigError(f"The 'k_rule' task parameter 'cc' needs the gnn solver (the CC loss); "
                          f"got solver {cfg.solver!r}: use k_rule 'eigengap'.")
    if rule == "eigengap" and cfg.solver == "gnn" and cfg.loss == "cc":
        raise ConfigError("The 'k_rule' task parameter 'eigengap' cuts the graph into K segments "
                          "with an NCut loss; the CC loss finds K itself: use k_rule 'cc' or "
                          "another loss.")
    return k_max, shift, rounding, rule


@register_task("kless", params=("k_max", "cc_shift", "cc_round", "k_rule"),
               check=kless_settings)
def kless_task(pf: PatchFeatures, cfg: SegmenterConfig) -> TaskOutput:
    """Segments with K found from the data; labels 0..K-1 (no background); see the module doc."""
    k_max, shift, rounding, rule = kless_settings(cfg)
    h, w = pf.grid
    F = pf.flat
    if rule == "cc":
        t0 = time.perf_counter()
        g = build_graph(F.to(cfg.device), "cc", metric=cfg.metric, alpha=cfg.alpha, knn=cfg.knn,
                        dense_max_nodes=cfg.dense_max_nodes, grid=(h, w), cc_shift=shift)
        solver = _fit(make_solver(cfg, k_max, cfg.steps or KLESS_STEPS, loss="cc",
                                  drop_empty=True), g, F, cfg, time.perf_counter() - t0)
        if rounding:
            _round_cc(solver, g, k_max)
    elif cfg.solver == "spectral":
        solver, _ = solve(F, cfg, "auto", grid=(h, w), k_max=min(k_max, F.shape[0] - 1))
    else:
        t0 = time.perf_counter()
        g = make_graph(F, cfg, grid=(h, w))  # the graph the solver cuts: K from its spectrum
        k = _eigengap_k(g, cfg, min(k_max, F.shape[0] - 1))
        solver = _fit(make_solver(cfg, k), g, F, cfg, time.perf_counter() - t0)
    labels = np.unique(solver.labels_.numpy(), return_inverse=True)[1].reshape(h, w)
    K = int(labels.max()) + 1
    summary = solver.summary()
    if rule == "eigengap" and K >= k_max:  # the CC path's solver says this itself
        msg = f"kless: K found = k_max = {K} (the bound was hit: raise k_max)"
        warnings.warn(msg, DegenerateResultWarning, stacklevel=2)
        summary["warnings"] = [*summary.get("warnings", []), msg]
    return TaskOutput(
        patch_labels=labels.astype(np.int64),
        label_names={i: f"segment {i}" for i in range(K)},
        solver=summary,
        assignment=solver.assignment_,
        extra={"k_found": K, "k_max": k_max, "k_rule": rule,
               "alpha": cfg.alpha if rule == "cc" else None,
               "cc_shift": shift if rule == "cc" else None,
               "cc_round": rounding if rule == "cc" else None},
    )


def default_k_rule(cfg: SegmenterConfig) -> str:
    """``cc`` for the GNN on a dense feature graph and under ``--preset paper`` (DeepCut's
    k-less), else ``eigengap``. On the ``local`` graph (the ``classic`` backbone's) the CC graph,
    a dense graph of feature similarities without the local graph's positions and contours,
    asked for more than ``k_max`` segments: on the first 30 BSDS test images (224 px, ``k_max``
    10) the CC GNN gave NMI/ARI 36.2/27.6 at K 9.33, K by the local graph's eigengap and the GNN's
    NCut cut 53.2/42.3 at K 7.37 (spectral: 53.8/41.8), in 0.4x the time."""
    if cfg.solver != "gnn":
        return "eigengap"
    return "cc" if cfg.preset == "paper" or cfg.graph_kind != "local" else "eigengap"


def _round_cc(solver, graph, k_max: int) -> None:
    """Replace the CC head's labels by their :func:`~deepcut.solvers.cc_rounding.cc_round`
    local optimum of the discrete CC objective (dense graphs; a sparse one is left as is)."""
    from deepcut.losses import discrete_ncut
    from deepcut.solvers.cc_rounding import cc_round

    if graph.is_sparse:
        return
    t0 = time.perf_counter()
    z = cc_round(graph.W, solver.labels_, k_max)
    g = graph.positive()
    solver.labels_ = z
    solver.n_clusters_ = int(z.max()) + 1
    solver.ncut_ = discrete_ncut(z.to(g.W.device), g.W, g.degree, assume_nonnegative=True)
    solver.timings_["cc_round"] = time.perf_counter() - t0
    # the bound warning follows the rounded K, not the head's
    hit = f"{solver.solver_name}: K found = K_max"
    solver.warnings_ = [m for m in solver.warnings_ if not m.startswith(hit)]
    if solver.n_clusters_ >= k_max:
        msg = f"{hit} = {solver.n_clusters_} after CC rounding (the bound was hit: raise k_max " \
              "or alpha)"
        warnings.warn(msg, DegenerateResultWarning, stacklevel=3)
        solver.warnings_.append(msg)


def _fit(solver, graph, F, cfg: SegmenterConfig, t_graph: float):
    """Fit ``solver`` on ``graph`` with node features ``F: (N, D)``; timings as :func:`solve`'s."""
    solver.fit(graph, F.to(cfg.device))
    solver.timings_ = {"graph": t_graph, **solver.timings_}
    return solver


def _eigengap_k(graph, cfg: SegmenterConfig, k_max: int) -> int:
    """K by the largest eigengap of ``graph``'s normalised Laplacian over ``[2, k_max]``."""
    lam, _, _ = spectral_embedding(graph, k_max + 1, random_state=cfg.seed)
    return eigengap(lam, k_max)
