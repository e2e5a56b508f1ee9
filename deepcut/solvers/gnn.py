"""DeepCut's per-image GNN solver: a GCN+MLP head trained on one graph with a graph-cut loss.

Every image starts from the same seeded initialisation (kept in memory, not in a ``model.pt`` in
the working directory as the reference code does); this keeps cluster ids fairly consistent across
images, DeepCut's "implicit classification". The final assignment is taken in eval mode (no
dropout) *after* the last optimiser step, which fixes the reference's one-step lag.

Work that does not depend on the weights is done once per image: the normalised propagation
``A_hat X`` (one N x N x D product) and the degrees. A step then costs two N x N x K products
(forward and backward of ``W S``) plus small dense layers.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from numbers import Integral, Real

import torch

from deepcut._validation import Interval, Options
from deepcut.graphs.graph import Graph
from deepcut.losses import cc_loss, deepcut_ncut_loss, soft_ncut_loss
from deepcut.nn.head import GNNHead, gcn_propagate
from deepcut.solvers.base import BaseSolver, register_solver, relabel_consecutive

__all__ = ["GNNSolver", "gnn_cut"]


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
        loss: ``ncut`` (DeepCut Eq. 9, MinCutPool form), ``soft_ncut`` (sum-of-ratios NCut) or
            ``cc`` (correlation clustering, Eq. 10; needs the signed CC graph).
        steps: optimiser steps (DeepCut: 10 for fg/bg, 100 for parts).
        lr: AdamW learning rate (1e-3 in DeepCut).
        weight_decay: AdamW weight decay (torch default 0.01, as DeepCut).
        ortho_weight: weight of the orthogonality term of the ``ncut`` loss.
        hidden, mlp_hidden, dropout: head sizes (64, 32, 0.25 in DeepCut).
        seed: seed of the shared initialisation and of dropout.
        drop_empty: renumber labels to drop empty clusters (default: only for ``cc``). Leave it off
            to keep cluster ids comparable across images.
        init_state: a ``state_dict`` of a :class:`GNNHead` to start from instead of the seeded
            init (e.g. a dataset-level checkpoint for fine-tuning); ``steps=0`` then runs inference.
        device: torch device.
        step_threads: CPU threads for the optimisation steps (None = torch's setting). On an
            idle 2-core CPU two threads make 10 steps at N = 1225 about 1.6x faster (31 vs 50
            ms); on a machine whose cores are shared by other busy processes, OpenMP threads
            stall each other on these small ops (we saw 0.3 s become 6 s), and ``1`` avoids
            that. The one-off ``A_hat X`` product always keeps all threads.

    Example:
        >>> from deepcut.graphs import ncut_graph
        >>> import torch
        >>> F = torch.cat([torch.randn(20, 8) + 3, torch.randn(20, 8) - 3])
        >>> labels = GNNSolver(n_clusters=2, steps=50).fit_predict(ncut_graph(F), F)
    """

    _parameter_constraints = {
        "n_clusters": [Interval(Integral, 2, None, closed="left")],
        "loss": [Options({"ncut", "soft_ncut", "cc"})],
        "steps": [Interval(Integral, 0, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
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

    def __init__(self, n_clusters: int = 2, *, loss: str = "ncut", steps: int = 10,
                 lr: float = 1e-3, weight_decay: float = 0.01, ortho_weight: float = 1.0,
                 hidden: int = 64, mlp_hidden: int = 32, dropout: float = 0.25,
                 seed: int | None = 0, drop_empty: bool | None = None,
                 init_state: dict | None = None, device: str = "cpu",
                 step_threads: int | None = None) -> None:
        self.n_clusters = n_clusters
        self.loss = loss
        self.steps = steps
        self.lr = lr
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
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0 if self.seed is None else self.seed)
            head = GNNHead(in_dim, self.n_clusters, self.hidden, self.mlp_hidden, self.dropout)
        if self.init_state is not None:
            head.load_state_dict(self.init_state, strict=True)
        return head.to(self.device)

    def _loss(self, S: torch.Tensor, W: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
        if self.loss == "ncut":
            return deepcut_ncut_loss(S, W, degree, ortho_weight=self.ortho_weight)
        if self.loss == "soft_ncut":
            return soft_ncut_loss(S, W, degree)
        return cc_loss(S, W)

    def fit(self, graph: Graph, features: torch.Tensor | None = None) -> GNNSolver:
        """Train the head on ``graph`` with node ``features: (N, D)`` and set the fitted attributes."""
        self._validate(graph, self.n_clusters)
        if features is None:
            raise ValueError("GNNSolver.fit needs node features (N, D): the GCN's input.")
        X = features.reshape(graph.num_nodes, -1).float().to(self.device)
        graph = graph.to(self.device)
        if self.loss == "cc" and not graph.signed:
            raise ValueError("loss='cc' needs the signed correlation-clustering graph "
                             "(graph kind 'cc', Eq. 7); got kind %r." % graph.kind)
        self.timings_ = {}
        self.loss_history_ = []
        head = self.make_head(X.shape[1])
        with self._timer("precompute"):
            if self.steps:
                AX = gcn_propagate(graph, X)  # fixed during the optimisation: computed once
            else:
                # Pure inference: A_hat (X Theta) costs N^2 x hidden instead of N^2 x D.
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
        with self._timer("train"), torch.random.fork_rng(devices=[]), \
                _num_threads(self.step_threads if X.device.type == "cpu" else None):
            torch.manual_seed(0 if self.seed is None else self.seed)  # dropout masks
            if self.steps:
                opt = torch.optim.AdamW(head.parameters(), lr=self.lr,
                                        weight_decay=self.weight_decay)
                head.train()
                for _ in range(self.steps):
                    S = torch.softmax(head(AX), dim=-1)
                    loss = self._loss(S, Wl, dl)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    self.loss_history_.append(float(loss.detach()))
        with self._timer("predict"), torch.no_grad():
            head.eval()
            if AX is not None:
                S = torch.softmax(head(AX), dim=-1)
            else:
                h = AXT + head.conv.bias if head.conv.bias is not None else AXT
                S = torch.softmax(head.mlp(h), dim=-1)
        labels = S.argmax(dim=-1)
        drop = self.loss == "cc" if self.drop_empty is None else self.drop_empty
        if drop:
            labels = relabel_consecutive(labels)
        self.head_ = head
        self.n_iter_ = self.steps
        self._finish(graph, S.detach().cpu(), labels.cpu())
        return self


def gnn_cut(graph: Graph, features: torch.Tensor, n_clusters: int = 2, **params) -> torch.Tensor:
    """Functional face of :class:`GNNSolver`: returns ``labels: (N,)``."""
    return GNNSolver(n_clusters, **params).fit_predict(graph, features)
