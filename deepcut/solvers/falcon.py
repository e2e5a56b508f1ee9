r"""Falcon-style K-way NCut: fractional alternating cut with a monotone proximal hard step.

**Which Falcon this is.** The official code (KordingLab/Falcon) was not available. This module
implements the formulation of arXiv 2504.05613 **v1** ("Fractional Alternating Cut with
Overcoming minima": quadratic transform of the K ratios, alternating updates, soft assignment,
dynamic affinity reweighting, mask generation by partition centres), with the hard step made
monotone in the way the ICLR 2026 version describes ("Fast Proximal Linearization of Normalized
Cuts": volume-weighted gradient scores, row-wise one-hot proximal updates with inertia,
backtracking so that the NCut never gets worse). The update rule below was derived by us from
the quadratic transform of Falcon section 3.3 (Eqs. 13-16; the transform of its Appendix B.1)
and the proximal step of the ICLR 2026 abstract; it is not verified against either paper's code.

**Objective.** With one-hot (or soft) ``X: (N, K)``, ``d = W 1``, ``vol_k = d^T x_k`` and
``assoc_k = x_k^T W x_k``, maximise :math:`\sum_k assoc_k / vol_k` (i.e. minimise the discrete
NCut ``K - sum_k assoc_k / vol_k``). The quadratic transform
:math:`A/B = \max_y 2y\sqrt{A} - y^2 B` with its closed-form optimum ``y_k = sqrt(assoc_k)/vol_k``
makes the objective linear in ``X`` for fixed ``y``; substituting ``y`` gives the per-node score

.. math:: s_{ik} = \frac{2 (W x_k)_i}{vol_k} - \frac{d_i\, assoc_k}{vol_k^2}
          = \frac{\partial}{\partial x_{ik}} \sum_k \frac{assoc_k}{vol_k},

so one iteration costs one ``W @ X`` product (``O(N^2 K)`` dense, ``O(nnz K)`` sparse) and no
eigendecomposition. The auxiliary ``y`` never needs to be stored.

**Hard mode** (``mode="hard"``, default). ``argmax_k s_ik`` is the batch step of weighted kernel
k-means with kernel ``D^-1 W D^-1`` and weights ``d`` (Dhillon, Guan & Kulis 2004). Its argmax
alone does *not* guarantee a lower NCut (``W`` is not positive semi-definite; on bipartite-like
graphs every node follows the other side and the cut grows, see ``tests/test_solvers.py``).
The proximal step adds an inertia ``rho`` for keeping the current label:

.. math:: \tilde s_{ik} = s_{ik} + \rho\, d_i (2[z_i = k] - 1) / vol_k,

which is exactly the kernel k-means step on ``W + rho D`` (the diagonal regulariser Falcon's
``lambda * diag(d)`` also adds). Because ``D^-1/2 W D^-1/2`` has eigenvalues in [-1, 1],
``W + D`` is PSD and at ``rho = 1`` the step is a true kernel k-means step, which cannot lower
the objective while no cluster empties. Each iteration tries ``rho = inertia`` first (plain
argmax by default) and, when the objective would drop, backtracks ``rho -> max(2 rho, 1/16)``
up to 1; an accepted step halves ``rho`` for the next iteration; if even ``rho = 1`` is
rejected (a cluster would empty at a loss, or rounding) the solver stops. A candidate is
accepted only if the fixed-K objective ``sum_k assoc_k / vol_k`` (empty clusters count 0) does
not decrease. That test never rewards emptying a cluster, and since an empty cluster is never
refilled (its score is ``-inf``), it also makes the discrete NCut ``K' - sum_k assoc_k/vol_k``
(``K'`` non-empty clusters; ``ncut_history_``) non-increasing by construction. Only the changed
rows update ``W @ X`` (``W[changed]^T @ delta``), so late iterations are cheap; for dense ``W``
the full product with a one-hot ``X`` is a row ``index_add`` (``O(N^2)``, not ``O(N^2 K)``;
on a sparse CSR ``W`` the changed rows' stored edges, ``O(their degree)``).

**Exact moves** (``exact_moves=True``, default; :mod:`deepcut.solvers.local_moves`). The score
``s_ik`` is the objective's gradient: it drops the terms of order ``d_i / vol_k`` and the
self-loop ``W_ii`` of moving node ``i``, so the proximal steps stop where single-node moves
still gain (a few nodes of almost every fixed point on dense image graphs; more on 16k-node
kNN graphs). Each run therefore ends with batches of the moves of positive *exact* gain
(``(2 (W x_b)_i + W_ii - d_i r_b) / (vol_b + d_i)`` to join ``b``, ``r_b = assoc_b / vol_b``,
plus the matching term to leave), every gaining node to its best cluster at once, cut to the
better-gaining half while the batch would lose (linked nodes' moves interact), until no move
gains: the result is a local optimum under single-node moves, which the proximal steps alone
do not give. Measured against the hard steps alone on the 40 dense graphs of
``benchmarks/ncut_yardstick.py`` (N = 1820, one thread), K = 2 / 4 / 8 / 16: NCut lower on
62 / 88 / 95 / 100% (never higher; by 0.01-0.1%, up to 2% on small graphs) for 10 / 22 / 29 /
37% more solve time; on the 16k-node sparse graphs of 6 SOD images at K = 2 / 8 / 27: lower on
4 / 6 / 6 of 6 (median 0.0123 -> 0.0116, 0.4136 -> 0.4060, 4.141 -> 4.081) for 1.1 / 1.9 /
1.5x the time; 1.2 / 1.6 / 1.6x once only the nodes that can gain are scored
(``local_moves._candidates``, same labels). The GNN's rounding ends the same way.

**Soft mode** (``mode="soft"``; Falcon v1 Table 2, "+ Soft Assignment"): ``X <- softmax(s~ / T)``
with the scores made dimensionless, ``s~_ik = s_ik * (sum(d) / K) / d_i`` (a node whose edges
all fall in one average-size cluster scores about +1 there and -1 elsewhere), so the temperature
``T`` does not depend on the graph size. ``ncut_history_`` then holds the *soft* NCut
``K - sum_k x_k^T W x_k / d^T x_k``; it is not guaranteed monotone.

**Dynamic affinity reweighting** (Falcon v1 Eq. 19, soft mode, off by default): after each
update, ``W_t = W * exp(-(1 - cos(x_i, x_j))^2 / gamma)`` with ``x_i`` the current soft
assignment rows, and the degrees recomputed. It is applied to the *input* ``W`` each time (not
compounded, which would drive cut edges to 0 geometrically): the dense ``W`` is reweighted in
``O(N^2 K)``, a sparse kNN graph on its stored edges in ``O(nnz K)``. With one-hot rows (hard
mode) the factor is 1 inside a cluster and ``exp(-1/gamma)`` across, i.e. only more inertia,
which froze the labels at once in our tests; hard mode therefore rejects ``reweight_gamma``.

**Multilevel initialisation** (``init="multilevel"``, default). The eigenvector-free,
multilevel way of Graclus (Dhillon, Guan & Kulis, PAMI 2007), whose refinement step is exactly
the hard step above: (1) over-segment the nodes into ``m = max(64, 4K)`` groups by cosine
k-means on the node features (random seeds, 5 Lloyd steps fitted on at most 4096 nodes, then
every node assigned once; on sparse kNN graphs the features are first smoothed by 2 random-walk
steps ``(D^-1 W)^2 F``; features wider than 32 are randomly projected to 32 dimensions);
(2) coarsen: ``W_c = A^T W A`` with ``A`` the ``(N, m)`` group indicator, from the one product
``W A`` (one pass over ``W``; the only one of the initialisation); (3) cut the small coarse graph:
its K-way spectral embedding is one exact ``m x m`` eigendecomposition, ``n_init`` seeded k-means
runs on it (for K = 2 instead: the sweep cut, the best of the ``m - 1`` threshold splits of the
second eigenvector) are each refined by the hard steps on ``W_c`` and ranked by their objective
(assoc and vol add up over groups, so the coarse objective *is* the fine one of the lifted labels;
an empty cluster is first filled with the node whose move gains the most);
(4) lift the ``n_refine = 2`` best distinct coarse partitions to the nodes and refine each with
the hard steps on ``W``, starting from ``W onehot(z) = (W A) onehot(c)`` without another pass;
the lowest NCut wins. No ``N x N`` eigenproblem is solved. Why two: the best coarse objective
is not always the best after the fine refinement. On 40 dense SOD + BSDS graphs (N = 1820,
``benchmarks/ncut_yardstick.py``'s) the best coarse partition alone was <= scikit-learn's
``SpectralClustering`` on 88% at K = 8 and 97% at K = 16; refining the two best, 97% and 100%
(never above the one, by construction; same at K = 4, one start at K = 2), for 25-40% more
solve time at K >= 8. More k-means runs on the coarse graph instead (``n_init = 6, 10``)
helped at K = 8 but were above the default on 22-35% of the graphs at K = 8 and 16.
Against the K-way spectral baseline on the same graphs (the graphs of ``benchmarks/solvers.py``
for 12 SOD images, N = 1225, 3025, 4761 dense and 16384 sparse, K = 2, 8, 27) it reached an equal
or lower NCut on 141 of 144 image graphs, the k-means start below on 121: both on all 108 dense
ones, but on the sparse 16k-node graphs the k-means start lost to spectral on 7, 9 and 7 of 12
images at K = 2, 8, 27 (multilevel: 1, 1, 1, the worst by 1.4%), and it costs 3 passes over
``W`` on dense graphs for K <= 3.

**Restarts** (``n_restarts``; ``None``: 8 on a dense graph, 1 on a sparse one). The
multilevel start is a local method, and its over-segmentation decides which basin it refines:
on the 60 dense SOD + BSDS graphs of ``benchmarks/ncut_yardstick.py`` (N = 1820) a second
restart lowered the NCut on 3 / 10 / 34 / 30 of them at K = 2 / 4 / 8 / 16, and the GNNs
warm-started from one run or from spectral's partition found lower optima on 7-62% of them.
Each restart therefore draws its own over-segmentation and coarse cuts from the one seeded
generator (the first is the single run's), every distinct lifted start is refined, and the run
that uses the most clusters, then has the lowest NCut, wins (as between the ``n_refine``
starts): the result is never above the single run's NCut unless the single run emptied a
cluster that a restart keeps. With ``beta`` the runs are ranked on the graph Falcon builds, and
``ncut_`` is measured on the input graph. A start whose hard steps end where an earlier one's
did is not polished again. At or below every other solver of the yardstick (the GNNs, spectral,
scikit-learn), K = 2 / 4 / 8 / 16, with 1 / 2 / 4 / 8 restarts: 93 / 97 / 100 / 100%,
75 / 80 / 87 / 93%, 38 / 68 / 87 / 95%, 52 / 70 / 85 / 90%, for 1 / 1.6-2.0 / 3.1-3.8 /
6.7-8.2x the solve time (0.02-0.03 s -> 0.13-0.25 s at K = 4-16, one thread). On 16k-node
32-NN graphs of 6 SOD images 8 restarts lowered the NCut on 5 / 3 / 6 of 6 at K = 2 / 8 / 27
(median 4.081 -> 4.031 at K = 27) for 0.04 -> 0.31, 0.09 -> 0.90 and 0.27 -> 1.96 s, which a
large image pays on every fit: the default there stays one run. The GNN's warm start takes
one run (:mod:`deepcut.solvers.gnn`).

**Defaults and their sources.** ``n_clusters=2``. ``init="multilevel"`` (above).
``init="kmeans"`` (the default of a public third-party reimplementation): greedy k-means++ then
cosine Lloyd on the L2-normalised, centred node features, ``n_init=3`` runs, keeping the one with
the best NCut objective on the graph (one run merged two planted blocks in our tests). The runs
may use features smoothed along the graph by ``t`` random-walk steps, ``(D^-1 W)^t F`` (graph
filtering as in SGC, Wu et al. 2019; features wider than 32, e.g. ViT keys, are first randomly
projected to 32 dimensions, so each step is one pass over ``W``): on sparse kNN graphs ``t = 4``;
on dense graphs ``t = 0, 1, 3`` for K <= 3 (plain k-means found the balanced 2-way split, a poor
local optimum, on 3 of 4 images where ``t = 3`` found the lower NCut of the unbalanced one) and
``t = 0`` for larger K (smoothing did not lower the NCut there and costs a pass over ``W`` per
step). Without features, both inits cluster a random-walk
sketch ``(D^-1 W)^2 Omega``. ``init="random"`` is offered but is a poor start
for a local method. Hard mode runs to a fixed point: ``tol=0`` on the relative gain of the
objective and ``max_iter=100`` (the longest run on the 40 dense graphs above took 46 iterations
at K = 16, the median 4 / 8 / 16 / 18.5 at K = 2 / 4 / 8 / 16). Late steps move a handful of
nodes and update only their rows, so the stop that an earlier default made at a relative gain
of 1e-4 saved little time (5-18% on those graphs, 15-40% on sparse 16k-node ones) and left
NCut on the table: running on lowered it on 42 / 75 / 78 / 82% of the graphs at K = 2 / 4 / 8 /
16 (never raised it; by at most 1.4%), and the GNN's rounding,
which continues the same steps from Falcon's partition, was beating Falcon mostly by finishing
its run. Soft mode: ``max_iter=30`` (the reimplementation runs 15 soft iterations) and
``tol=1e-4`` on the relative change of ``X``. ``temperature=0.01`` on the
dimensionless scores: on dense image graphs at K=27, 0.1 collapsed the 27 clusters to 8-13 and
0.03 to 20-27, 0.01 kept all 27. ``reweight_gamma=None`` (the reimplementation uses 0.5).
``beta=None``: the graph is used as given; set ``beta`` (DiffCut uses 10, the reimplementation
4.5; Falcon v1's own value is not legible in our copy of the paper) and ``lam`` (try 0 or 0.1)
to have the solver build the Falcon affinity from the features itself.

Empty clusters are dropped and the labels renumbered (one :class:`EmptyClusterWarning` per fit).
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import ClassVar

import torch
import torch.nn.functional as Fn

from deepcut._validation import Interval, Options
from deepcut.graphs.affinity import falcon_graph, knn_graph
from deepcut.graphs.graph import Graph, edge_list
from deepcut.seeding import torch_generator
from deepcut.solvers.base import (
    BaseSolver,
    DegenerateResultWarning,
    drop_empty,
    node_features,
    register_solver,
    relabel_consecutive,
)
from deepcut.solvers.local_moves import (
    _EPS,
    _HARD_MAX_ITER,
    _HARD_TOL,
    _diagonal,
    _fill_empty,
    _hard_steps,
    _polish,
    _product,
    _ratios,
    _stats,
)
from deepcut.solvers.spectral import _sym_mm, _to_csr, split_ncuts

__all__ = ["EmptyClusterWarning", "FalconCut", "falcon_cut"]

_SMOOTH_DIM = 32  # features wider than this are randomly projected before graph smoothing
_COARSE_MIN = 64  # nodes of the multilevel init's coarse graph (at least; 4 K when larger)
_OVERSEG_ITER = 5  # Lloyd steps of its over-segmentation: the hard steps fix what they miss
_OVERSEG_SAMPLE = 4096  # nodes its centres are fitted on (all nodes are then assigned once)
_SOFT_MAX_ITER, _SOFT_TOL = 30, 1e-4
_RESTARTS_DENSE, _RESTARTS_SPARSE = 8, 1  # default multilevel restarts (docstring, "Restarts")


class EmptyClusterWarning(DegenerateResultWarning):
    """Some of the K clusters ended up empty; they were dropped and the labels renumbered."""


# --------------------------------------------------------------------------------------------
# Initialisation
# --------------------------------------------------------------------------------------------
def _spherical_kmeans(X: torch.Tensor, K: int, gen: torch.Generator, n_iter: int = 20,
                      plusplus: bool = True) -> torch.Tensor:
    """Labels ``(N,)`` of cosine k-means, seeded by greedy k-means++ (or ``K`` random rows).

    Greedy k-means++ (Arthur & Vassilvitskii 2007; scikit-learn's default): each new centre is
    the best of ``2 + log K`` candidates drawn with probability proportional to the squared
    (chordal) distance to the nearest chosen centre. Its ``K`` sequential draws cost more than
    the Lloyd steps when ``K`` is large (an over-segmentation), hence ``plusplus=False``.
    """
    X = Fn.normalize(X.float(), dim=1)
    N = X.shape[0]
    if not plusplus:
        # centres fitted on a seeded subsample, then one assignment of every row
        perm = torch.randperm(N, generator=gen).to(X.device)
        sub = X[perm[:_OVERSEG_SAMPLE]] if N > _OVERSEG_SAMPLE else X
        C = _lloyd_centres(sub, X[perm[:K]], n_iter)
        return (X @ C.T).argmax(1)
    n_trials = 2 + int(math.log(K))
    first = int(torch.randint(N, (1,), generator=gen))
    chosen = [first]
    best = (2.0 - 2.0 * (X @ X[first])).clamp(min=0)  # squared chordal distance to nearest
    for _ in range(1, K):
        if float(best.sum()) <= 0:
            cand = torch.randint(N, (n_trials,), generator=gen)
        else:
            cand = torch.multinomial(best, n_trials, replacement=True, generator=gen)
        dist = (2.0 - 2.0 * (X[cand] @ X.T)).clamp(min=0)  # (trials, N)
        pot = torch.minimum(dist, best[None, :]).sum(1)
        j = int(torch.argmin(pot))
        chosen.append(int(cand[j]))
        best = torch.minimum(best, dist[j])
    return _lloyd(X, X[torch.tensor(chosen, device=X.device)], n_iter)


def _lloyd(X: torch.Tensor, C: torch.Tensor, n_iter: int) -> torch.Tensor:
    """Labels ``(N,)`` after cosine Lloyd iterations on unit rows ``X: (N, D)`` from
    ``C: (K, D)``."""
    return (X @ _lloyd_centres(X, C, n_iter).T).argmax(1)


def _lloyd_centres(X: torch.Tensor, C: torch.Tensor, n_iter: int) -> torch.Tensor:
    """Centres ``(K, D)`` after at most ``n_iter`` cosine Lloyd iterations from ``C``."""
    K, D = C.shape
    z = (X @ C.T).argmax(1)
    for _ in range(n_iter):
        S = torch.zeros(K, D, dtype=X.dtype, device=X.device).index_add_(0, z, X)
        keep = S.norm(dim=1) > 0
        C = torch.where(keep[:, None], Fn.normalize(S, dim=1), C)  # empty: keep old centre
        z_new = (X @ C.T).argmax(1)
        if torch.equal(z_new, z):
            break
        z = z_new
    return C


def _sketch(W: torch.Tensor, d: torch.Tensor, K: int, gen: torch.Generator, sparse: bool
            ) -> torch.Tensor:
    """``(D^-1 W)^2 Omega``: a random-walk sketch whose rows are alike within a cluster."""
    m = max(2 * K, 8)
    Y = torch.randn(W.shape[0], m, generator=gen).to(W.device)
    return _smooth(W, d, Y, 2, sparse)


def _smooth(W: torch.Tensor, d: torch.Tensor, Y: torch.Tensor, steps: int, sparse: bool,
            centre: bool = True) -> torch.Tensor:
    """``(D^-1 W)^steps Y``: graph-filtered node signals (SGC, Wu et al. 2019), centred."""
    dinv = 1.0 / d.clamp(min=_EPS)
    for _ in range(steps):
        Y = dinv[:, None] * (torch.sparse.mm(W, Y) if sparse else _sym_mm(W, Y))
    return Y - Y.mean(0) if centre else Y


# --------------------------------------------------------------------------------------------
# Multilevel initialisation (the hard steps are in deepcut.solvers.local_moves)
# --------------------------------------------------------------------------------------------
def _canonical(z: torch.Tensor, K: int) -> torch.Tensor:
    """Labels renamed in order of first appearance (equal partitions become equal tensors)."""
    n = z.numel()
    first = torch.full((K,), n, dtype=torch.long, device=z.device).scatter_reduce_(
        0, z, torch.arange(n, device=z.device), "amin")
    rename = torch.empty(K, dtype=torch.long, device=z.device)
    rename[first.argsort()] = torch.arange(K, device=z.device)
    return rename[z]


def _first_time(z: torch.Tensor, K: int, seen: list[torch.Tensor]) -> bool:
    """Whether the partition ``z: (N,)`` is none of ``seen`` (canonical labels), which then
    records it: a repeated start or fixed point need not be refined again."""
    c = _canonical(z, K)
    if any(torch.equal(c, s) for s in seen):
        return False
    seen.append(c)
    return True


def _coarse_cuts(Wc: torch.Tensor, K: int, gen: torch.Generator, n_init: int, kmeans_iter: int,
                 hard: dict, keep: int = 1) -> list[torch.Tensor]:
    """The ``keep`` best distinct K-way labellings ``(m,)`` of the small dense coarse graph
    ``Wc: (m, m)``, best first.

    The coarse graph is small (``m`` in the tens to hundreds), so its K-way spectral embedding
    is one exact ``eigh`` of an ``m x m`` matrix (microseconds, unlike the ``N x N`` problem);
    ``n_init`` seeded k-means runs on the row-normalised embedding (for K = 2: the sweep cut of
    the second eigenvector instead) are each refined by the hard steps on ``Wc`` and ranked by
    (clusters used, objective); ties keep the run order.
    """
    dc = Wc.sum(1)
    di = dc.clamp(min=_EPS).rsqrt()
    M = (di[:, None] * Wc * di[None, :]).double()
    _mu, U = torch.linalg.eigh(0.5 * (M + M.T))
    V = U[:, -K:].to(Wc.dtype) * di[:, None]  # generalised eigenvectors D^-1/2 u
    found, seen = [], []  # found: (key, canonical labels, labels)
    for _ in range(1 if K == 2 else n_init):
        if K == 2:
            c = _sweep_cut(Wc, dc, V[:, 0])  # exact over the threshold cuts: no restarts
        else:
            c = _spherical_kmeans(V.cpu(), K, gen, kmeans_iter).to(Wc.device)
        c = _canonical(_fill_empty(Wc, dc, c, K), K)
        if not _first_time(c, K, seen):
            continue  # the same partition again: its refinement is known
        c, P, *_ = _hard_steps(Wc, dc, c, K, False, **hard)
        key = (int(torch.unique(c).numel()), _stats(P, c, dc, K)[2])  # all K used, then obj
        cc = _canonical(c, K)
        if not any(torch.equal(cc, f[1]) for f in found):
            found.append((key, cc, c))
    found.sort(key=lambda f: f[0], reverse=True)  # stable: equal keys keep the run order
    return [f[2] for f in found[:keep]]


def _sweep_cut(W: torch.Tensor, d: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Labels ``(m,)`` of the lowest 2-way NCut among the ``m - 1`` splits of the nodes sorted
    by ``v`` (the sweep cut of spectral partitioning; all evaluated in one ``W @ X``)."""
    m = v.numel()
    if m < 2:  # one coarse node (e.g. constant features): no split to sweep
        return torch.zeros(m, dtype=torch.long, device=v.device)
    rank = torch.empty(m, dtype=torch.long, device=v.device)
    rank[v.argsort()] = torch.arange(m, device=v.device)
    X = (rank[:, None] <= torch.arange(m - 1, device=v.device)[None, :]).to(W.dtype)  # (m, m-1)
    return X[:, int(split_ncuts(W @ X, X, d).argmin())].long()


# --------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------
@register_solver("falcon")
class FalconCut(BaseSolver):
    """Falcon-style fractional alternating K-way NCut (module docstring for the method).

    Args:
        n_clusters: K (an upper bound: empty clusters are dropped).
        mode: ``hard`` (monotone proximal one-hot steps) or ``soft`` (tempered softmax).
        init: ``multilevel`` (over-segment, cut the coarse graph, lift; module docstring),
            ``kmeans`` (on the node features, or a graph sketch), ``spectral``
            (:class:`~deepcut.solvers.spectral.SpectralNCut` K-way labels), ``random``, or a
            ``(N,)`` tensor of initial labels in ``[0, K)``.
        max_iter: iteration cap (``None``: 100 in hard mode, 30 in soft mode).
        tol: stop when the relative gain of the objective (hard) or the relative change of the
            soft assignment (soft) is at most this (``None``: 0 in hard mode, i.e. run to a
            fixed point, module docstring; 1e-4 in soft mode).
        temperature: softmax temperature on the dimensionless scores (soft mode).
        inertia: initial proximal weight ``rho`` of the hard step (0: try plain argmax first).
        max_backtrack: inertia increases tried per hard iteration before declaring convergence.
        reweight_gamma: scale ``gamma`` of the dynamic affinity reweighting (soft mode only);
            ``None``: off.
        beta: if set, solve on ``falcon_graph(features, beta, lam)`` built here from the
            features (kNN with the input graph's k when the input graph is sparse, 32 when it
            does not record one, as the ``local`` graph) instead of on the input graph; ``ncut_``
            is still measured on the input graph.
        lam: ``lambda`` of the diagonal regulariser when ``beta`` is set (refused without it).
        kmeans_iter: Lloyd iterations of the k-means initialisation.
        n_init: k-means runs of the initialisation (``multilevel``: on the coarse spectral
            embedding, K > 2 only, as K = 2 takes the sweep cut; ``kmeans`` with features: on
            the node features); the one with the best NCut objective on the graph is kept.
        smooth_steps: random-walk smoothing steps ``t`` (``(D^-1 W)^t F``) of the features
            before k-means: an int, or (``kmeans``) a tuple cycled over the ``n_init`` runs;
            ``None``: ``multilevel``: 2 on sparse graphs, 0 on dense ones; ``kmeans``: ``(4,)``
            on sparse graphs, on dense ones ``(0, 1, 3)`` for K <= 3 else ``(0,)``.
        n_coarse: nodes ``m`` of the multilevel coarse graph (``None``: ``max(64, 4K)``;
            capped at N).
        n_refine: ``multilevel``, hard mode: the best distinct coarse partitions lifted to the
            nodes and each refined by the hard steps; the lowest NCut wins (1: the best coarse
            partition alone).
        n_restarts: ``multilevel``, hard mode: draw this many over-segmentations (each with its
            own coarse cuts, from the one seeded generator) and refine the ``n_refine`` starts
            of each; the run with the most clusters, then the lowest NCut, wins (module
            docstring, "Restarts").
            The solve costs about ``n_restarts`` times as much. ``None``: 8 on a dense graph,
            1 on a sparse one (the fitted ``n_restarts_``).
        exact_moves: hard mode: finish each run with batches of single-node moves of positive
            exact gain until none is left (module docstring, "Exact moves").
        random_state: seed of the initialisation.
        device: torch device.

    Fitted attributes (besides those of :class:`~deepcut.solvers.base.BaseSolver`):
        ncut_history_: NCut after the initialisation and after each iteration, then after each
            batch of exact moves, on the solve graph (discrete and non-increasing in hard mode;
            soft NCut in soft mode).
        n_backtracks_: rejected hard steps.
        n_exact_batches_: accepted batches of exact single-node moves (hard mode).
        converged_: whether the stop test (not ``max_iter``) ended the loop.
        init_labels_: ``(N,)`` labels of the initialisation (with ``n_refine > 1`` or restarts:
            the lifted start whose refinement won).
        n_restarts_: the multilevel restarts that ran (1 for another init or soft mode, and at
            K = 2 on a graph no larger than the coarse graph, where every restart is the same).

    Example:
        >>> from deepcut.graphs import falcon_graph
        >>> F = torch.cat([torch.randn(20, 8) + 3, torch.randn(20, 8) - 3])
        >>> labels = FalconCut(2).fit_predict(falcon_graph(F), F)
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "n_clusters": [Interval(Integral, 2, None, closed="left")],
        "mode": [Options({"hard", "soft"})],
        "init": [Options({"multilevel", "kmeans", "spectral", "random"}), torch.Tensor],
        "max_iter": [Interval(Integral, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "inertia": [Interval(Real, 0, None, closed="left")],
        "max_backtrack": [Interval(Integral, 0, None, closed="left")],
        "reweight_gamma": [Interval(Real, 0, None, closed="neither"), None],
        "beta": [Interval(Real, 0, None, closed="neither"), None],
        "lam": [Interval(Real, 0, None, closed="left")],
        "kmeans_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "smooth_steps": [Interval(Integral, 0, None, closed="left"), tuple, None],
        "n_coarse": [Interval(Integral, 2, None, closed="left"), None],
        "n_refine": [Interval(Integral, 1, None, closed="left")],
        "n_restarts": [Interval(Integral, 1, None, closed="left"), None],
        "exact_moves": ["boolean"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
    }

    def __init__(self, n_clusters: int = 2, *, mode: str = "hard", init="multilevel",
                 max_iter: int | None = None, tol: float | None = None,
                 temperature: float = 0.01,
                 inertia: float = 0.0, max_backtrack: int = 6,
                 reweight_gamma: float | None = None, beta: float | None = None,
                 lam: float = 0.0, kmeans_iter: int = 20, n_init: int = 3,
                 smooth_steps: int | tuple[int, ...] | None = None,
                 n_coarse: int | None = None, n_refine: int = 2, n_restarts: int | None = None,
                 exact_moves: bool = True, random_state: int | None = 0,
                 device: str = "cpu") -> None:
        self.n_clusters = n_clusters
        self.mode = mode
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.temperature = temperature
        self.inertia = inertia
        self.max_backtrack = max_backtrack
        self.reweight_gamma = reweight_gamma
        self.beta = beta
        self.lam = lam
        self.kmeans_iter = kmeans_iter
        self.n_init = n_init
        self.smooth_steps = smooth_steps
        self.n_coarse = n_coarse
        self.n_refine = n_refine
        self.n_restarts = n_restarts
        self.exact_moves = exact_moves
        self.random_state = random_state
        self.device = device

    # ---------------------------------------------------------------------------------------
    def _validate_params(self) -> None:
        """Each value, then the settings that only work together (checked before any graph,
        so a pipeline refuses them once, not on every image)."""
        super()._validate_params()
        if self.lam and self.beta is None:
            raise ValueError("lam needs beta: it regularises the graph FalconCut builds from "
                             "the features, and with beta=None the input graph is cut as it is.")
        if self.n_restarts is not None and self.n_restarts > 1 and (
                self.mode != "hard" or not self._multilevel):
            raise ValueError("n_restarts needs init='multilevel' and mode='hard' (the restarts "
                             "draw new over-segmentations; init='kmeans' has n_init).")
        if self.reweight_gamma is not None and self.mode == "hard":
            raise ValueError("reweight_gamma needs mode='soft': on one-hot rows the reweighting "
                             "only adds inertia (module docstring).")

    def _solve_graph(self, graph: Graph, features: torch.Tensor | None) -> Graph:
        if self.beta is None:
            return graph.positive()
        if features is None:
            raise ValueError("FalconCut with beta set builds its graph from node features; "
                             "pass features (N, D) to fit, or leave beta=None.")
        if graph.is_sparse:
            k = int(graph.params.get("knn", 32))
            return knn_graph(features, k=k, kind="falcon", beta=self.beta, lam=self.lam,
                             grid=graph.grid)
        return falcon_graph(features, beta=self.beta, lam=self.lam, grid=graph.grid)

    def _initial_labels(self, graph: Graph, W: torch.Tensor, d: torch.Tensor, sparse: bool,
                        features: torch.Tensor | None) -> torch.Tensor:
        N, K = graph.num_nodes, self.n_clusters
        gen = torch_generator(self.random_state)
        if isinstance(self.init, torch.Tensor):
            z = self.init.reshape(-1).long().cpu()
            if z.numel() != N or (z.numel() and (int(z.min()) < 0 or int(z.max()) >= K)):
                raise ValueError(f"init labels must have shape ({N},) with values in [0, {K}); "
                                 f"got shape {tuple(self.init.shape)}.")
            return z
        if self.init == "random":
            return torch.randint(K, (N,), generator=gen)
        if self.init == "spectral":
            from deepcut.solvers.spectral import SpectralNCut

            return SpectralNCut(K, random_state=self.random_state).fit(graph).labels_
        if self.init == "multilevel":
            return self._multilevel_labels(W, d, sparse, features, gen)
        if features is None:
            return _spherical_kmeans(_sketch(W, d, K, gen, sparse).cpu(), K, gen,
                                     self.kmeans_iter)
        default = (4,) if sparse else ((0, 1, 3) if K <= 3 else (0,))
        smoothed = self._smoothed_features(W, d, sparse, features, gen, default)
        best, best_obj = None, -float("inf")
        for r in range(self.n_init):  # keep the run with the best NCut objective on the graph
            z = _spherical_kmeans(smoothed[r % len(smoothed)], K, gen,
                                  self.kmeans_iter).to(W.device)
            if self.n_init == 1:
                return z
            P = _product(W, z, K, sparse)
            obj = _stats(P, z, d, K)[2]
            if best is None or obj > best_obj:
                best, best_obj, self._init_product = z, obj, P
        return best

    def _schedule(self, default: tuple[int, ...]) -> tuple[int, ...]:
        if self.smooth_steps is None:
            return default
        if isinstance(self.smooth_steps, Integral):
            return (int(self.smooth_steps),)
        return tuple(int(t) for t in self.smooth_steps)

    def _smoothed_features(self, W: torch.Tensor, d: torch.Tensor, sparse: bool,
                           features: torch.Tensor, gen: torch.Generator,
                           default: tuple[int, ...], project: bool = False
                           ) -> list[torch.Tensor]:
        """Centred ``(D^-1 W)^t F`` for each ``t`` of the smoothing schedule (cpu ``(N, r)``).

        Features wider than ``_SMOOTH_DIM`` are first multiplied by a seeded Gaussian
        projection when smoothing (each step then costs ``N^2 r``, not ``N^2 D``) or when
        ``project`` (k-means into many clusters then costs ``N m r``).
        """
        N = W.shape[0]
        schedule = self._schedule(default)
        X = Fn.normalize(features.reshape(N, -1).float().to(W.device), dim=1)
        r = _SMOOTH_DIM
        if (project or max(schedule) > 0) and X.shape[1] > r:
            R = torch.randn(X.shape[1], r, generator=gen).to(X.device)
            Xs = X @ R / math.sqrt(r)
            if project:
                X = Xs
        else:
            Xs = X
        smoothed, done, Y = {}, 0, Xs
        for t in sorted(set(schedule)):
            if t == 0:
                smoothed[0] = (X - X.mean(0)).cpu()
                continue
            Y = _smooth(W, d, Y, t - done, sparse, centre=False)
            done = t
            smoothed[t] = (Y - Y.mean(0)).cpu()
        return [smoothed[t] for t in schedule]

    def _multilevel_labels(self, W: torch.Tensor, d: torch.Tensor, sparse: bool,
                           features: torch.Tensor | None, gen: torch.Generator) -> torch.Tensor:
        """Over-segment, solve the coarse graph, lift (module docstring, "Multilevel"), once
        per restart; the first start is returned, the others wait in ``_more_starts``."""
        starts, seen = [], []
        for _ in range(self.n_restarts_):
            starts += [(z, P) for z, P in self._lifted_starts(W, d, sparse, features, gen)
                       if _first_time(z, self.n_clusters, seen)]  # a repeated start: no new run
        self._init_product = starts[0][1]
        self._more_starts = starts[1:]
        return starts[0][0]

    @property
    def _multilevel(self) -> bool:
        return isinstance(self.init, str) and self.init == "multilevel"

    def _restarts_to_run(self, n_nodes: int, sparse: bool) -> int:
        """``n_restarts_``: the asked or default restarts of the multilevel hard mode, else 1;
        also 1 at K = 2 on a graph no larger than the coarse graph, where the coarse graph is
        the graph and its sweep cut is exact, so every restart would solve the same problem."""
        if self.mode != "hard" or not self._multilevel or (
                self.n_clusters == 2 and self._coarse_size() >= n_nodes):
            return 1
        if self.n_restarts is not None:
            return int(self.n_restarts)
        return _RESTARTS_SPARSE if sparse else _RESTARTS_DENSE

    def _coarse_size(self) -> int:
        """Nodes ``m`` of the coarse graph before the cap at N."""
        return self.n_coarse if self.n_coarse is not None else max(_COARSE_MIN,
                                                                   4 * self.n_clusters)

    def _lifted_starts(self, W: torch.Tensor, d: torch.Tensor, sparse: bool,
                       features: torch.Tensor | None, gen: torch.Generator
                       ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(z: (N,), W onehot(z): (N, K))`` of the best coarse cuts of one over-segmentation
        drawn from ``gen``, best first."""
        N, K = W.shape[0], self.n_clusters
        m = min(N, self._coarse_size())
        if m == N:
            a = torch.arange(N, device=W.device)  # tiny graph: the coarse graph is the graph
        else:
            if features is None:
                Y = _sketch(W, d, K, gen, sparse).cpu()
            else:
                Y = self._smoothed_features(W, d, sparse, features, gen,
                                            (2,) if sparse else (0,), project=True)[0]
            a = relabel_consecutive(_spherical_kmeans(Y, m, gen, min(self.kmeans_iter,
                                                                     _OVERSEG_ITER),
                                                      plusplus=False)).to(W.device)
            m = int(a.max()) + 1
        Pm = _product(W, a, m, sparse)  # W @ onehot(a): the one pass over W of the init
        Wc = torch.zeros(m, m, dtype=Pm.dtype, device=Pm.device).index_add_(0, a, Pm)
        cs = _coarse_cuts(0.5 * (Wc + Wc.T), K, gen, self.n_init, self.kmeans_iter,
                          self._hard_params(), keep=self.n_refine if self.mode == "hard" else 1)
        # W @ onehot(c[a]) = Pm @ onehot(c): each fine solve starts without another pass
        return [(c[a], torch.zeros(N, K, dtype=Pm.dtype, device=Pm.device).index_add_(1, c, Pm))
                for c in cs]

    # ---------------------------------------------------------------------------------------
    _fewer_warning = EmptyClusterWarning

    def _fewer_message(self, found: int, asked: int) -> str:
        return (f"{self.solver_name}: {asked - found} of the {asked} clusters ended up empty; "
                f"they were dropped and the labels renumbered to 0..{found - 1}")

    def fit(self, graph: Graph, features: torch.Tensor | None = None) -> FalconCut:
        """Solve on ``graph`` (``features: (N, D)`` feed the k-means init / the ``beta`` graph)."""
        z, X, ratios = self._solve(graph, features)
        with self._timer("finish"):
            X, z = drop_empty(X, z)  # one warning line, from _finish
        self._finish(graph, X.cpu(), z.cpu(), ratios)
        return self

    def summary(self) -> dict:
        """The common yardstick plus ``n_restarts``: the multilevel restarts that ran."""
        return {**super().summary(), "n_restarts": self.n_restarts_}

    def partition(self, graph: Graph, features: torch.Tensor | None = None) -> torch.Tensor:
        """The labels ``(N,)`` of :meth:`fit` before its empty-cluster check, NCut and
        assignment (one O(N^2) pass less on a dense graph): for a caller that scores the
        partition itself, such as the GNN's warm start. Sets ``timings_``, ``init_labels_``
        and the hard mode's ``ncut_history_``."""
        return self._solve(graph, features)[0].long().cpu()

    def _solve(self, graph: Graph, features: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(z: (N,), X: (N, K), ratios)``: the labels, the soft (or one-hot) assignment and,
        in hard mode on the input graph (``beta=None``), the labels' cluster ratios read off
        the final ``W onehot(z)`` (else None: :meth:`_finish` computes them)."""
        self._validate(graph, self.n_clusters)
        if features is not None:
            features = node_features(graph, features, "FalconCut.fit")
        self.timings_ = {}
        with self._timer("graph"):
            g = self._solve_graph(graph, features).to(self.device)
            sparse = g.is_sparse
            W = g.W.float()
            if sparse:
                W = _to_csr(W)
            else:
                W = W.contiguous()
            d = g.degree.float().to(self.device)
        self._init_product, self._more_starts = None, []
        self.n_restarts_ = self._restarts_to_run(g.num_nodes, sparse)
        with self._timer("init"):
            z0 = self._initial_labels(g, W, d, sparse, features).to(self.device)
        self.init_labels_ = z0.cpu()
        with self._timer("solve"):
            if self.mode == "hard":
                z, X, P = self._hard(W, d, z0, sparse)
            else:
                (z, X), P = self._soft(W, d, z0, sparse), None
        self._init_product, self._more_starts = None, []  # not fitted attributes: free them
        if P is not None and self.beta is None:  # solve graph = graph.positive(); O(N)
            return z, X, _ratios(P, z, d, self.n_clusters).cpu()
        return z, X, None

    def _hard(self, W: torch.Tensor, d: torch.Tensor, z: torch.Tensor, sparse: bool
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Hard steps from ``z`` and from each further lifted start, each finished by exact
        single-node moves (``exact_moves``; once per distinct partition the hard steps reach,
        as restarts often meet); the run that uses the most clusters, then ends at
        the lowest NCut, wins (the first on ties). Returns ``(z, onehot(z), W onehot(z))``."""
        K = self.n_clusters
        hard = self._hard_params()
        diag = _diagonal(W, sparse) if self.exact_moves else None

        starts = [(z, self._init_product), *self._more_starts]  # P = W @ onehot(z) when known
        seen: list[torch.Tensor] = []  # each polished run's labels after its hard steps

        def run(z0: torch.Tensor, P0: torch.Tensor | None) -> tuple | None:
            z, P, history, n_back, converged, n_iter = _hard_steps(W, d, z0, K, sparse, P=P0,
                                                                   **hard)
            if len(starts) > 1 and not _first_time(z, K, seen):
                return None  # an earlier start's hard steps ended here: its polish is known
            n_exact = 0
            if self.exact_moves:
                z, P, more, n_exact = _polish(W, d, z, K, sparse, P=P, diag=diag,
                                              max_iter=hard["max_iter"])
                history = history + more[1:]
            return z, history, n_back, converged, n_iter, n_exact, P

        runs = [run(z0, P0) for z0, P0 in starts]
        # a run's history ends at the NCut of the labels it returns
        i = 0 if len(runs) == 1 else max(
            (j for j, r in enumerate(runs) if r is not None),
            key=lambda j: (int(torch.unique(runs[j][0]).numel()), -runs[j][1][-1], -j))
        (z, self.ncut_history_, self.n_backtracks_, self.converged_, self.n_iter_,
         self.n_exact_batches_, P) = runs[i]
        self.init_labels_ = starts[i][0].cpu()
        return z, Fn.one_hot(z, K).float(), P

    def _hard_params(self) -> dict:
        return {"inertia": self.inertia,
                "max_iter": _HARD_MAX_ITER if self.max_iter is None else self.max_iter,
                "max_backtrack": self.max_backtrack,
                "tol": _HARD_TOL if self.tol is None else self.tol}

    # ---------------------------------------------------------------------------------------
    def _soft(self, W: torch.Tensor, d: torch.Tensor, z: torch.Tensor, sparse: bool
              ) -> tuple[torch.Tensor, torch.Tensor]:
        K = self.n_clusters
        X = Fn.one_hot(z, K).float()
        Wt, dt = W, d
        if sparse:
            row, col, ev = edge_list(W)
            ei = torch.stack([row, col])
        self.ncut_history_ = []
        self.n_backtracks_ = 0
        self.n_exact_batches_ = 0
        self.converged_ = False
        it = 0
        max_iter = _SOFT_MAX_ITER if self.max_iter is None else self.max_iter
        tol = _SOFT_TOL if self.tol is None else self.tol
        for it in range(1, max_iter + 1):
            P = torch.sparse.mm(Wt, X) if sparse else _sym_mm(Wt, X)  # the one W @ X per iteration
            vol = (dt @ X).clamp(min=_EPS * float(dt.sum()))
            assoc = (X * P).sum(0)
            self.ncut_history_.append(float(K - (assoc / vol).sum()))
            S = 2.0 * P / vol - dt[:, None] * (assoc / vol.pow(2))
            S = S * (float(dt.sum()) / K) / dt.clamp(min=_EPS)[:, None]  # dimensionless
            X_new = torch.softmax(S / self.temperature, dim=1)
            change = float((X_new - X).norm() / X.norm().clamp(min=_EPS))
            X = X_new
            if self.reweight_gamma:
                Xn = Fn.normalize(X, dim=1)
                if sparse:
                    cos = (Xn[ei[0]] * Xn[ei[1]]).sum(1)
                    vals = ev * torch.exp(-(1 - cos).pow(2) / self.reweight_gamma)
                    Wt = _to_csr(torch.sparse_coo_tensor(ei, vals, W.shape,
                                                         check_invariants=False))
                    dt = torch.zeros_like(d).index_add_(0, ei[0], vals)
                else:
                    E = torch.exp(-(1 - Xn @ Xn.T).pow(2) / self.reweight_gamma)
                    Wt = W * E
                    dt = Wt.sum(1)
            if change < tol:
                self.converged_ = True
                break
        self.n_iter_ = it
        # the returned X's soft NCut: the loop recorded each iterate before its update
        P = torch.sparse.mm(Wt, X) if sparse else _sym_mm(Wt, X)
        vol = (dt @ X).clamp(min=_EPS * float(dt.sum()))
        self.ncut_history_.append(float(K - ((X * P).sum(0) / vol).sum()))
        return X.argmax(1), X


def falcon_cut(graph: Graph, n_clusters: int = 2, features: torch.Tensor | None = None,
               **params) -> torch.Tensor:
    """Functional face of :class:`FalconCut`: returns ``labels: (N,)``.

    Example:
        >>> from deepcut.graphs import falcon_graph
        >>> F = torch.cat([torch.randn(20, 8) + 3, torch.randn(20, 8) - 3])
        >>> falcon_cut(falcon_graph(F), 2, F).unique().numel()
        2
    """
    return FalconCut(n_clusters, **params).fit_predict(graph, features)
