"""DeepCut's per-image GNN solver: a GCN+MLP head trained on one graph with a graph-cut loss.

Every image starts from the same seeded initialisation (kept in memory, not in a ``model.pt`` in
the working directory as the reference code does); this keeps cluster ids fairly consistent across
images, DeepCut's "implicit classification". The final assignment is taken in eval mode (no
dropout) *after* the last optimiser step, which fixes the reference's one-step lag.

Work that does not depend on the weights is done once per image: the normalised propagation
``A_hat X`` (one N x N x D product) and the degrees. A cut-loss step then costs one N x N x K
product (``W S``; its backward never reads W again, :func:`deepcut.losses._assoc`) plus small
dense layers.

**Two settings.** ``GNNSolver.PAPER`` is DeepCut's (Eq. 9 loss, 10 steps, AdamW lr 1e-3 from the
seeded init, argmax of the eval-mode softmax). Measured on 10 SOD graphs (classic features,
cosine NCut graph, N = 1820) it leaves the head barely trained: K = 2 NCut 0.158 against
spectral's 0.147, and at K = 4 and 8 it returned fewer than K clusters on 10 of 10 graphs.
The default starts from a **warm start**: a seeded partition from a classic solver (``"auto"``:
:class:`~deepcut.solvers.falcon.FalconCut`'s on a dense graph, from one multilevel run,
``n_restarts=1``; the spectral NCut partition of
:class:`~deepcut.solvers.spectral.SpectralNCut` on a sparse one), each of whose clusters first
takes the id the seeded head prefers for it (Hungarian matching on the head's mean
log-probabilities over the cluster), so the shared init still names the clusters and ids stay
comparable across images. The head is fitted to it for at most ``warm_steps = 10`` cross-entropy
steps (fewer once its argmax agrees with the partition on 98% of a step's rows, ``warm_fit``),
each on a seeded random quarter of the nodes (``warm_batch``: the same NCut on the yardstick's
graphs and the same BSDS K = 6 regions, NMI/ARI 53.7/43.8 against 53.7/43.6 on every node, for a
quarter of the head's work in those steps), then trained on the true K-way relaxation
(:func:`~deepcut.losses.soft_ncut_loss`, a sum of ratios) for 2 steps, AdamW at lr 0.03. (10 steps
and four k-means rounding starts, an earlier default, gave median NCuts within 0.1% on the 60 dense
SOD + BSDS graphs of ``benchmarks/ncut_yardstick.py`` at K = 2-16, at 11-17x Falcon's solve time
against 7-11x with 5 steps, and 5.7-9.4x with the mini-batched warm start.) Why Falcon's partition
on dense graphs and 2 NCut steps: on 40 dense SOD + BSDS graphs (one quiet thread) Falcon's
partition costs half of spectral's (0.5-0.7 since Falcon refines two starts) and the GNN is then
never above Falcon's NCut (it was on 25-53% of them from spectral's) and at or below spectral's on
97.5-100%, with the same median NCut at K = 2-16; a cut-loss step costs about four cross-entropy
steps (8 ms against 2 ms at N = 1820: every node, and one pass over W), and with 2 of them the
head's rounded argmax still beats the rounded warm partition on 20 / 30 / 5% of the graphs at K = 2
/ 8 / 16 (5 steps: 18 / 35 / 8%; 6 cross-entropy + 3 NCut steps, the same time: 12 / 20 / 2%).
Why one Falcon run, not :class:`~deepcut.solvers.falcon.FalconCut`'s default 8 restarts:
with them the GNN's median solve on the yardstick's graphs took 0.17 / 0.31 s at K = 4 / 8
against 0.05 / 0.06 s (and the checkpoint path, which rounds from the same partition, would pay
the same), so the solver that wants the lowest NCut at any cost is Falcon itself.
Falcon's runs end at a local optimum (hard steps to a fixed point, then exact single-node moves),
so rounding its partition again changes nothing and the head's argmax is what the GNN adds: on
the 60 graphs of ``benchmarks/ncut_yardstick.py`` its NCut was below Falcon's on 3 / 18 / 25 / 5%
at K = 2 / 4 / 8 / 16 and equal on the rest (32 / 47 / 40 / 7% before the exact moves). BSDS
K = 6 regions on the sparse ``local`` graph (40 images) and SOD fg/bg (40) scored the same with 2, 3
or 5 steps (NMI 55.9 / 55.8 / 55.8, IoU 52.5 / 52.6 / 52.5); Falcon's partition stays off the local
graph, where its BSDS regions score lower (NMI 54.1 against spectral's 56.6, ``docs/RESULTS.md``).
Why: from the seeded init alone the head's partition is a function of (one-hop smoothed)
features, and on the sparse ``local`` graph two same-coloured regions that are not adjacent
cannot be told apart: on 12 BSDS graphs (classic, local graph, K = 6) its NCut was 5.7x
spectral's (median) even after 200 steps. Warm-started, it is 0.82x spectral's, and on 24 dense
SOD/BSDS graphs its NCut was <= spectral's on 100% at K = 2-16 and <= Falcon's on 71-88% (from
the seeded init, 30 steps: 83-100% and 46-79%) in about 0.75x the time. Without a warm start
(``warm_start=None``; a checkpoint's ``init_state`` is its own) the head trains 30 steps with a
balance term ``balance_weight * K * (log K - H(mean_i S_i))`` annealed linearly to 0 over the
steps, which keeps clusters alive early (without it the K = 8 argmax used all 8 clusters on 0-4
of 10 graphs); annealing lets the last steps optimise the cut alone. The argmax
is then *rounded* to a local optimum of the discrete NCut: clusters left empty are filled with
the node whose move gains the most, and monotone proximal hard steps (the weighted kernel
k-means moves of :mod:`deepcut.solvers.falcon`) move nodes while the NCut decreases; exact
single-node moves then finish the winning start (:mod:`deepcut.solvers.local_moves`), so no
single node move lowers the result's NCut. The warm
partition (and, without a warm start, four seeded k-means partitions of the head's node
embeddings, its last hidden layer: ``n_init``) are rounded the same way and the lowest NCut
wins (the argmax wins ties), so the result is never worse than the warm start rounded; their
ids are matched to the argmax's.
Rounding never renames clusters, so the shared seeded init still keeps ids consistent across
images; ``raw_labels_`` / ``raw_ncut_`` keep the head's own argmax and its NCut (reported by
``benchmarks/ncut_yardstick.py``).
"""
from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any, ClassVar

import torch

from deepcut._validation import Interval, Options
from deepcut.graphs.graph import Graph
from deepcut.losses import cc_loss, deepcut_ncut_loss, discrete_ncut, soft_ncut_loss
from deepcut.nn.head import GNNHead, gcn_propagate
from deepcut.seeding import seeded
from deepcut.solvers.base import (
    BaseSolver,
    drop_empty,
    node_features,
    register_solver,
)
from deepcut.solvers.rounding import match_ids, round_to_local_optimum

__all__ = ["GNNSolver", "balance_loss", "gnn_cut", "match_ids"]


@contextmanager
def _num_threads(n: int | None):
    """Temporarily run torch's CPU ops with ``n`` threads (no change when ``n`` is None)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(min(n, old))
    try:
        yield
    finally:
        torch.set_num_threads(old)


@register_solver("gnn")
class GNNSolver(BaseSolver):
    """Per-image DeepCut solver.

    Args:
        n_clusters: K (for ``loss="cc"`` an upper bound: empty clusters are dropped).
        loss: ``soft_ncut`` (sum-of-ratios K-way NCut, default), ``ncut`` (DeepCut Eq. 9,
            MinCutPool form; the paper's) or ``cc`` (correlation clustering, Eq. 10; needs the
            signed CC graph).
        steps: at most this many cut-loss optimiser steps (None: 2 after a warm start, else 30;
            DeepCut: 10 for fg/bg, 100 for parts).
        lr: AdamW learning rate (default 0.03; 1e-3 in DeepCut).
        balance_weight: weight of the balance term ``K (log K - H(mean_i S_i))`` added to the
            NCut losses (0 = off, DeepCut's setting); ignored for ``cc``, where K is found, and
            after a warm start, whose K clusters are alive from the first step.
        polish: round the argmax to a local optimum of the discrete NCut (fill empty clusters,
            monotone hard steps, exact single-node moves; module docstring). Not applied to
            ``cc``.
        n_init: with ``polish``, also round this many seeded k-means partitions of the head's
            node embeddings (its last hidden layer; cluster ids matched to the argmax's by the
            Hungarian method) and keep the lowest NCut, the argmax winning ties (0 = the argmax
            only; None: 0 when a warm partition is a rounding start, after a warm start or
            with ``init_state`` and ``warm_start`` set, else 4).
        warm_start: ``"auto"`` (default): ``"falcon"`` on a dense graph, ``"spectral"`` on a
            sparse one (module docstring; :meth:`warm_kind`; the one that ran is the fitted
            ``warm_start_``, also in :meth:`summary`, the JSON's solver record).
            ``"spectral"`` first fits the head for ``warm_steps`` steps to the spectral NCut
            partition (:class:`~deepcut.solvers.spectral.SpectralNCut`, seeded), its ids
            matched to the seeded head's initial scores by the Hungarian method so ids stay
            comparable across images; the NCut steps then improve on it, and the warm
            partition is one more rounding start, so the GNN's NCut is never above the warm
            start's rounded. ``"falcon"``: the same from
            :class:`~deepcut.solvers.falcon.FalconCut`'s partition (one multilevel run),
            1.4-2x as fast as spectral's on dense graphs and never above that run's NCut
            (FalconCut's default 8 restarts can end lower), but on the sparse
            ``local`` graph its regions score lower (module docstring). None: from the seeded
            init alone (DeepCut). Not used for ``cc``. With ``init_state`` (a checkpoint, its
            own warm start) the partition trains nothing: with ``polish`` it is one more
            rounding start, its ids matched to the trained head's, in place of the 4 k-means
            starts (``benchmarks/checkpoint_quality.py``, a head trained 10 epochs on 40 SOD
            images: NCut <= spectral's on 40 of them, against 35 with the k-means starts, in
            0.047 s against 0.072 s per solve; 2 epochs on 40 BSDS images: 40 of 40). Any loss
            can start from a given partition instead (:meth:`fit`'s ``warm_labels``, the
            k-less clustering's CC head).
        warm_steps: cross-entropy steps towards the warm partition (before the ``steps``);
            0 turns the warm start off (the form configs use: their None values are dropped).
        warm_fit: the cross-entropy phase ends after the first step whose logits (before its
            update) agree with the warm partition on at least this share of the step's rows
            (1 = run all ``warm_steps``). On 40 dense SOD + BSDS graphs the head's argmax
            agreed with the warm partition on 96% / 98% / 99% of the rows after 1 / 2 / 4 steps
            at K = 2 (median), and on 93% / 70% / 49% after 9 steps at K = 4 / 8 / 16, so 0.98
            ends K = 2 after a few steps and rarely changes larger K: the solve there took
            4.3x Falcon's time instead of 5.2x, with the same median NCut, and the head's
            rounded argmax beat the rounded warm partition on 25% of the graphs (20% with
            all 10 steps).
        warm_batch: fraction of the nodes in each cross-entropy step's mini-batch (a seeded
            random subset; 1 = every node). The head fits the warm partition from a quarter
            of the nodes per step as well (same NCut) in a quarter of the head's work, which
            was half of the GNN's time.
        tol: stop early when the loss changes by less than ``tol`` (relative) between steps,
            once no balance term is active (with ``balance_weight > 0`` the annealed term keeps
            the loss moving, so every step runs); 0 runs every step (DeepCut).
        weight_decay: AdamW weight decay (torch default 0.01, as DeepCut).
        ortho_weight: weight of the orthogonality term of the ``ncut`` loss.
        hidden, mlp_hidden, dropout: head sizes (64, 32, 0.25 in DeepCut).
        seed: seed of the shared initialisation and of dropout.
        drop_empty: renumber labels to drop empty clusters, and drop their columns from
            ``assignment_`` (default: only for ``cc``). Leave it off to keep cluster ids
            comparable across images.
        init_state: a ``state_dict`` of a :class:`GNNHead` to start from instead of the seeded
            init (e.g. a dataset-level checkpoint for fine-tuning); ``steps=0`` then runs inference.
        device: torch device.
        step_threads: CPU threads for the optimisation steps (default 1; None = torch's
            setting). Measured on a 2-core CPU shared with other work, with OpenMP's default
            spin-waiting (what a Python user gets), two threads were 6-20x slower than one on
            these small ops at every load tried, and one thread was also faster on the quietest
            run (1.14 vs 1.36 s for 30 steps, load 1.0). The one-off ``A_hat X`` product always
            keeps all threads.

    Example:
        >>> from deepcut.graphs import ncut_graph
        >>> import torch
        >>> F = torch.cat([torch.randn(20, 8) + 3, torch.randn(20, 8) - 3])
        >>> labels = GNNSolver(n_clusters=2, steps=50).fit_predict(ncut_graph(F), F)
    """

    #: the partition passed to :meth:`fit` as ``warm_labels`` (set by each fit; None: none)
    _given_warm: torch.Tensor | None = None

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "n_clusters": [Interval(Integral, 2, None, closed="left")],
        "loss": [Options({"ncut", "soft_ncut", "cc"})],
        "steps": [Interval(Integral, 0, None, closed="left"), None],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "balance_weight": [Interval(Real, 0, None, closed="left")],
        "polish": ["boolean"],
        "n_init": [Interval(Integral, 0, None, closed="left"), None],
        "warm_start": [Options({"auto", "spectral", "falcon"}), None],
        "warm_steps": [Interval(Integral, 0, None, closed="left")],
        "warm_batch": [Interval(Real, 0, 1, closed="right")],
        "warm_fit": [Interval(Real, 0, 1, closed="right")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "ortho_weight": [Interval(Real, 0, None, closed="left")],
        "hidden": [Interval(Integral, 1, None, closed="left")],
        "mlp_hidden": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "seed": ["random_state"],
        "drop_empty": ["boolean", None],
        "init_state": [dict, None],
        "device": [str, torch.device],
        "step_threads": [Interval(Integral, 1, None, closed="left"), None],
    }

    #: DeepCut's exact per-image settings (``--preset paper``): today's reference behaviour.
    PAPER: ClassVar[dict[str, Any]] = {"loss": "ncut", "steps": 10, "lr": 1e-3,
                                       "balance_weight": 0.0, "polish": False, "n_init": 0,
                                       "tol": 0.0, "warm_steps": 0}

    def __init__(self, n_clusters: int = 2, *, loss: str = "soft_ncut", steps: int | None = None,
                 lr: float = 0.03, balance_weight: float = 0.3, polish: bool = True,
                 n_init: int | None = None, warm_start: str | None = "auto", warm_steps: int = 10,
                 warm_batch: float = 0.25, warm_fit: float = 0.98,
                 tol: float = 1e-4, weight_decay: float = 0.01,
                 ortho_weight: float = 1.0,
                 hidden: int = 64, mlp_hidden: int = 32, dropout: float = 0.25,
                 seed: int | None = 0, drop_empty: bool | None = None,
                 init_state: dict | None = None, device: str = "cpu",
                 step_threads: int | None = 1) -> None:
        self.n_clusters = n_clusters
        self.loss = loss
        self.steps = steps
        self.lr = lr
        self.balance_weight = balance_weight
        self.polish = polish
        self.n_init = n_init
        self.warm_start = warm_start
        self.warm_steps = warm_steps
        self.warm_batch = warm_batch
        self.warm_fit = warm_fit
        self.tol = tol
        self.weight_decay = weight_decay
        self.ortho_weight = ortho_weight
        self.hidden = hidden
        self.mlp_hidden = mlp_hidden
        self.dropout = dropout
        self.seed = seed
        self.drop_empty = drop_empty
        self.init_state = init_state
        self.device = device
        self.step_threads = step_threads

    def make_head(self, in_dim: int) -> GNNHead:
        """The seeded shared initialisation (same seed, same weights, no global RNG side effect)."""
        with seeded(self.seed):  # built on the CPU, then moved
            head = GNNHead(in_dim, self.n_clusters, self.hidden, self.mlp_hidden, self.dropout)
        if self.init_state is not None:
            head.load_state_dict(self.init_state, strict=True)
        return head.to(self.device)

    def _cut_steps(self) -> int:
        """The cut-loss steps: ``steps``, or when None 2 after a warm start and 30 without."""
        if self.steps is not None:
            return self.steps
        return 2 if self._uses_warm_start() else 30

    def _kmeans_starts(self) -> int:
        """The k-means rounding starts: ``n_init``, or when None 0 when a warm partition is a
        start (a warm start, or a checkpoint's rounding start), else 4."""
        if self.n_init is not None:
            return self.n_init
        return 0 if self._uses_warm_start() or self._checkpoint_start() else 4

    def warm_kind(self, graph: Graph) -> str | None:
        """The warm start used on ``graph``: ``warm_start``, where ``"auto"`` is Falcon's
        partition on a dense graph and spectral's on a sparse one (``"given"``: the partition
        passed to :meth:`fit`; None: no warm start)."""
        if not (self._uses_warm_start() or self._checkpoint_start()):
            return None
        if self._given_warm is not None:
            return "given"
        if self.warm_start == "auto":
            return "spectral" if graph.is_sparse else "falcon"
        return self.warm_start

    def _uses_warm_start(self) -> bool:
        if self._given_warm is not None:  # fit(warm_labels=...): any loss
            return self.warm_steps > 0
        return (self.warm_start is not None and self.warm_steps > 0 and self.loss != "cc"
                and self.init_state is None)

    def _checkpoint_start(self) -> bool:
        """With ``init_state`` (a checkpoint: its own warm start) the ``warm_start`` solver's
        partition is no training target, only one more rounding start."""
        return (self.init_state is not None and self._given_warm is None and self.polish
                and self.warm_start is not None and self.warm_steps > 0 and self.loss != "cc")

    def _rounding_partition(self, graph: Graph, logits: torch.Tensor, X: torch.Tensor,
                            warm: torch.Tensor | None) -> torch.Tensor | None:
        """The partition ``(N,)`` that rounding takes as one more start: ``warm`` (the warm
        start's), or with a checkpoint the warm-start solver's, its ids matched to the trained
        head's final ``logits: (N, K)`` (shared by :meth:`fit` and
        :func:`~deepcut.solvers.batched.fit_batched`)."""
        if warm is None and self._checkpoint_start():
            with self._timer("warm_start"), torch.no_grad():
                return self._warm_labels(graph, logits, X)
        return warm

    def _warm_labels(self, graph: Graph, logits0: torch.Tensor,
                     features: torch.Tensor | None = None) -> torch.Tensor:
        """The warm start's partition ``(N,)`` (:meth:`warm_kind`: Falcon's or spectral's seeded
        labels, or the given ones), each cluster given the id the seeded head prefers for it
        (``logits0: (N, K)``, eval mode; with ``init_state``, the trained head's final logits:
        :meth:`_checkpoint_start`).

        The matching scores are the mean log-probabilities of the seeded head over each
        cluster, not argmax counts: the untrained head's argmax often puts every node in one
        cluster, and counts then leave ids to chance. The seeded head is one function of the
        features for every image, so a region of the same features gets the same id in every
        image (DeepCut's implicit classification; tested)."""
        from deepcut.solvers.base import DegenerateResultWarning
        from deepcut.solvers.falcon import FalconCut
        from deepcut.solvers.spectral import SpectralNCut

        with warnings.catch_warnings():  # an internal start: the GNN's own result is checked
            warnings.simplefilter("ignore", DegenerateResultWarning)
            # the rounding scores it: the solver's own NCut pass would be thrown away
            if self.warm_kind(graph) == "given":
                z = self._given_warm
            elif self.warm_kind(graph) == "falcon":
                # one multilevel run, not Falcon's 8 restarts: the head and the rounding add
                # their own moves, and the start stays small next to them (module docstring)
                z = FalconCut(self.n_clusters, random_state=self.seed, n_restarts=1,
                              device=graph.W.device).partition(graph, features)
            else:
                z = SpectralNCut(self.n_clusters, random_state=self.seed).partition(graph)
        scores = torch.log_softmax(logits0.float(), dim=-1).cpu()
        return match_ids(z, None, self.n_clusters, scores).to(logits0.device)

    def _batch_rows(self, n: int, device: torch.device | str,
                    generator: torch.Generator | None = None) -> torch.Tensor | None:
        """The nodes ``(m,)`` of one cross-entropy step's mini-batch (``warm_batch``), a seeded
        random subset drawn before the step's dropout mask; None when it is every node."""
        m = max(1, math.ceil(self.warm_batch * n))
        if m >= n:
            return None
        return torch.randperm(n, device=device, generator=generator)[:m]

    def _train_loss(self, logits: torch.Tensor, W: torch.Tensor, degree: torch.Tensor,
                    t: int, warm: torch.Tensor | None) -> torch.Tensor:
        """Step ``t``'s loss of one head's ``logits: (N, K)``: cross-entropy to the warm
        partition for the first ``warm_steps`` steps, then the cut loss (shared by
        :meth:`fit` and :func:`~deepcut.solvers.batched.fit_batched`)."""
        n_warm = self.warm_steps if warm is not None else 0
        if t < n_warm:
            return torch.nn.functional.cross_entropy(logits, warm)
        S = torch.softmax(logits, dim=-1)
        return self._loss(S, W, degree, (t - n_warm) / max(self._cut_steps(), 1), warm is None)

    def _loss(self, S: torch.Tensor, W: torch.Tensor, degree: torch.Tensor,
              progress: float = 0.0, balance: bool = True) -> torch.Tensor:
        if self.loss == "cc":
            return cc_loss(S, W)
        if self.loss == "ncut":
            L = deepcut_ncut_loss(S, W, degree, ortho_weight=self.ortho_weight)
        else:
            L = soft_ncut_loss(S, W, degree)
        if self.balance_weight and balance:  # a warm start has its K clusters alive already
            # annealed to 0: it keeps clusters alive early, and the last steps optimise the
            # cut alone (a constant weight enlarged small objects to balance the two masses)
            L = L + self.balance_weight * (1.0 - progress) * balance_loss(S)
        return L

    def fit(self, graph: Graph, features: torch.Tensor | None = None,
            warm_labels: torch.Tensor | None = None) -> GNNSolver:
        """Train the head on ``graph`` with node ``features: (N, D)`` and set the fitted attributes.

        ``warm_labels: (N,)`` (ids ``< n_clusters``): a partition found elsewhere, the warm
        start instead of ``warm_start``'s solver, for any loss (``cc`` included) and even with
        ``init_state``; its ids are matched to the head's as ``warm_start``'s are."""
        self._validate(graph, self.n_clusters)
        if features is None:
            raise ValueError("GNNSolver.fit needs node features (N, D): the GCN's input.")
        self._given_warm = None
        if warm_labels is not None:
            if self.warm_steps == 0:  # it would be dropped without a word
                raise ValueError("GNNSolver.fit: warm_labels given, but warm_steps=0 turns the "
                                 "warm start off; set warm_steps > 0 or pass no warm_labels.")
            z = torch.as_tensor(warm_labels).reshape(-1).long().cpu()
            if z.numel() != graph.num_nodes or int(z.min()) < 0 or int(z.max()) >= self.n_clusters:
                raise ValueError(f"warm_labels: {graph.num_nodes} ids in [0, {self.n_clusters}) "
                                 f"expected; got {z.numel()} in [{int(z.min())}, {int(z.max())}].")
            self._given_warm = z
        X = node_features(graph, features, "GNNSolver.fit").float().to(self.device)
        graph = graph.to(self.device)
        if self.loss == "cc" and not graph.signed:
            raise ValueError("loss='cc' needs the signed correlation-clustering graph "
                             f"(graph kind 'cc', Eq. 7); got kind {graph.kind!r}.")
        self.timings_ = {}
        self.loss_history_ = []
        self.n_warm_iter_ = 0
        head = self.make_head(X.shape[1])
        warm = self._uses_warm_start()
        n_train = self._cut_steps() + (self.warm_steps if warm else 0)
        with self._timer("precompute"):
            if n_train or X.shape[1] <= self.hidden:
                AX = gcn_propagate(graph, X)  # fixed during the optimisation: computed once
            else:
                # Pure inference on wide features (ViT keys): A_hat (X Theta) costs N^2 x hidden
                # instead of N^2 x D (narrow ones, e.g. classic's 38, are cheaper as they are).
                with torch.no_grad():
                    AX = None
                    AXT = gcn_propagate(graph, head.conv.lin(X))
            # NCut losses use the positive graph; CC uses the signed one.
            Wl = graph.W if self.loss == "cc" else graph.positive().W
            if graph.is_sparse:
                with warnings.catch_warnings():  # "CSR support is in beta": it is used read-only
                    warnings.simplefilter("ignore", UserWarning)
                    Wl = Wl.to_sparse_csr()  # CSR x dense is ~30x faster than COO on the CPU
            dl = graph.degree
        target = None
        if warm:
            with self._timer("warm_start"), torch.no_grad():
                head.eval()
                target = self._warm_labels(graph, head(AX), X)
        with self._timer("train"), seeded(self.seed, X.device), \
                _num_threads(self.step_threads if X.device.type == "cpu" else None):  # dropout
            if n_train:
                # the fused CPU/GPU kernel: one op per step instead of one per tensor (3x
                # faster on a 1-thread CPU, where the step was a quarter of the GNN's time)
                opt = torch.optim.AdamW(head.parameters(), lr=self.lr,
                                        weight_decay=self.weight_decay,
                                        fused=X.device.type in ("cpu", "cuda"))
                head.train()
                n_warm = self.warm_steps if target is not None else 0
                t = 0  # the step as _train_loss counts it: t < n_warm cross-entropy, then cut
                while t < n_train:
                    rows = self._batch_rows(AX.shape[0], AX.device) if t < n_warm else None
                    tgt = target if rows is None else target[rows]
                    logits = head(AX if rows is None else AX[rows])  # rows: a mini-batch
                    loss = self._train_loss(logits, Wl, dl, t, tgt)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    self.loss_history_.append(float(loss.detach()))
                    if t < n_warm:
                        self.n_warm_iter_ += 1
                    t = self._next_step(t, n_warm, logits, tgt)
                    if self._converged(self.loss_history_, target is not None,
                                       self.n_warm_iter_):
                        break
        with self._timer("predict"), torch.no_grad():
            head.eval()
            if AX is not None:
                h = head.conv.lin(AX)
                h = h + head.conv.bias if head.conv.bias is not None else h
            else:
                h = AXT + head.conv.bias if head.conv.bias is not None else AXT
            E = head.mlp[:-1](h)  # (N, mlp_hidden): the head's node embedding
            logits = head.mlp[-1](E)
            S = torch.softmax(logits, dim=-1)
        self.head_ = head
        self._set_fitted(graph, S, E, self._rounding_partition(graph, logits, X, target))
        return self

    def summary(self) -> dict:
        """The common yardstick plus ``warm_start``: the warm start that ran (None: none)."""
        return {**super().summary(), "warm_start": self.warm_start_}

    def _next_step(self, t: int, n_warm: int, logits: torch.Tensor,
                   target: torch.Tensor | None) -> int:
        """The step after step ``t``: ``t + 1``, or the first cut-loss step ``n_warm`` once a
        cross-entropy step's ``logits: (m, K)`` (before its update) already agreed with the
        warm partition ``target: (m,)`` on at least ``warm_fit`` of its rows."""
        if t < n_warm and self.warm_fit < 1:
            return self._step_after(t, n_warm, float(_agreement(logits, target)))
        return t + 1

    def _step_after(self, t: int, n_warm: int, agree: float | None) -> int:
        """:meth:`_next_step` from the step's agreement with the warm partition, read back
        already (None: no agreement to test, outside the cross-entropy phase or warm_fit 1)."""
        return n_warm if agree is not None and agree >= self.warm_fit else t + 1

    def _converged(self, history: list[float], warm: bool, n_warm_run: int = 0) -> bool:
        """Early stop after the last step of ``history`` (``tol``): only among cut-loss steps
        (``n_warm_run`` cross-entropy steps came first) and once no balance term moves the
        loss."""
        n_cut = len(history) - (n_warm_run if warm else 0)
        if not self.tol or n_cut < 2 or (self.balance_weight and not warm):
            return False
        return abs(history[-1] - history[-2]) <= self.tol * max(abs(history[-2]), 1e-12)

    def fit_many(self, graphs: list[Graph], features: list[torch.Tensor]) -> list[GNNSolver]:
        """Fit one clone per graph, all heads trained at once (same labels as :meth:`fit`
        per image); see :func:`deepcut.solvers.batched.fit_batched`."""
        from deepcut.solvers.batched import fit_batched

        return fit_batched(self, graphs, features)

    def _set_fitted(self, graph: Graph, S: torch.Tensor, E: torch.Tensor,
                    warm: torch.Tensor | None = None) -> None:
        """The fitted labels from the trained head's eval-mode ``S: (N, K)`` and node embedding
        ``E: (N, h)``: argmax, rounding (``warm: (N,)``, the warm start's partition, is one
        more start), and the common attributes (shared with
        :func:`~deepcut.solvers.batched.fit_batched`, so a batched solve equals a solo one)."""
        labels = S.argmax(dim=-1)
        self.raw_labels_ = labels.cpu()
        self.warm_start_ = self.warm_kind(graph) if warm is not None else None
        rounded = None
        if self.polish and self.loss != "cc":
            with self._timer("polish"):
                rounded = round_to_local_optimum(graph.positive(), labels, self.n_clusters,
                                                 E.cpu(), self._kmeans_starts(), self.seed,
                                                 [] if warm is None else [warm.cpu()])
                labels = rounded.labels
        drop = self.loss == "cc" if self.drop_empty is None else self.drop_empty
        S = S.detach()
        if drop:  # as FalconCut; the id order is kept, so the ratios' too
            S, labels = drop_empty(S, labels)
        self.n_iter_ = len(self.loss_history_)
        self._k_is_bound = self.loss == "cc"
        self._finish(graph, S.cpu(), labels.cpu(),
                     None if rounded is None else rounded.ratios)
        if torch.equal(self.raw_labels_, self.labels_):  # no rounding (paper, cc): same yardstick
            self.raw_ncut_ = self.ncut_
        elif rounded is not None:
            self.raw_ncut_ = rounded.start_ncut
        else:  # one more O(N^2) (dense) or O(nnz) pass
            g = graph.positive()
            self.raw_ncut_ = discrete_ncut(self.raw_labels_.to(g.W.device), g.W, g.degree,
                                           assume_nonnegative=True)


def _agreement(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The share (0-d tensor, on the logits' device) of the rows of ``logits: (m, K)`` whose
    argmax is ``target: (m,)``."""
    return (logits.detach().argmax(-1) == target).float().mean()


def balance_loss(S: torch.Tensor) -> torch.Tensor:
    """``K (log K - H(p))`` with ``p = mean_i S_i``: 0 for equal cluster masses, up to
    ``K log K`` when one cluster takes every node (the collapse it prevents). ``S: (N, K)``."""
    K = S.shape[-1]
    p = S.reshape(-1, K).mean(0)
    return K * (math.log(K) + (p * p.clamp(min=1e-12).log()).sum())


def gnn_cut(graph: Graph, features: torch.Tensor, n_clusters: int = 2, **params) -> torch.Tensor:
    """Functional face of :class:`GNNSolver`: returns ``labels: (N,)``."""
    return GNNSolver(n_clusters, **params).fit_predict(graph, features)
