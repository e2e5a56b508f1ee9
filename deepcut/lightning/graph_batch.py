"""A batch of patch graphs for one optimiser step: padded dense tensors plus a node mask.

Every image gets exactly the graph and the propagated features the per-image solver and
checkpoint inference use (:func:`deepcut.tasks.make_graph`, :func:`deepcut.nn.gcn_propagate`),
so a head trained here sees at inference what it saw in training. Graphs of different sizes are
zero-padded to the largest one; the ``(B, N)`` mask tells the losses which nodes are real
(padded rows of ``W`` and ``S`` are zero, so they add nothing). Sparse kNN graphs (images above
``dense_max_nodes``) cannot be padded into one dense tensor; they are kept as a list and the
losses are averaged graph by graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from deepcut.config import SegmenterConfig
from deepcut.graphs.local import contour_edges
from deepcut.losses import discrete_ncut
from deepcut.nn.head import gcn_propagate
from deepcut.tasks.base import make_graph

__all__ = ["GraphBatch", "build_graph_batch"]


@dataclass
class GraphBatch:
    """B graphs ready for the head and the loss.

    Attributes:
        AX: ``(B, N, D)`` propagated node features ``A_hat X`` (zero rows for padding).
        W: ``(B, N, N)`` dense loss affinities (positive part, or signed for the CC loss), or
            None when the batch holds sparse graphs (then see ``graphs``).
        degree: ``(B, N)`` degrees of the positive part.
        mask: ``(B, N)`` bool, True on real nodes.
        n_nodes: N_b of each graph.
        grids: ``(h, w)`` of each graph.
        graphs: per-graph ``(W, degree)`` (dense or sparse), always filled.
    """

    AX: torch.Tensor
    W: torch.Tensor | None
    degree: torch.Tensor
    mask: torch.Tensor
    n_nodes: list[int]
    grids: list[tuple[int, int]]
    graphs: list[tuple[torch.Tensor, torch.Tensor]]

    @property
    def size(self) -> int:
        return len(self.n_nodes)

    @torch.no_grad()
    def ncut(self, labels: torch.Tensor) -> list[float]:
        """Discrete NCut of each graph's hard ``labels: (B, N)`` (padding ignored)."""
        return [discrete_ncut(labels[b, :n], W, d)
                for b, (n, (W, d)) in enumerate(zip(self.n_nodes, self.graphs))]

    @torch.no_grad()
    def clusters_used(self, labels: torch.Tensor) -> list[int]:
        """Number of non-empty clusters in each graph."""
        return [int(torch.unique(labels[b, :n]).numel()) for b, n in enumerate(self.n_nodes)]


@torch.no_grad()
def build_graph_batch(items: list[dict[str, Any]], cfg: SegmenterConfig,
                      device: torch.device | str = "cpu") -> GraphBatch:
    """Graphs of a list of batch items (each with ``features: (h, w, D)``).

    Args:
        items: what :class:`~deepcut.lightning.datamodule.FeatureDataset` yields.
        cfg: graph settings (kind, metric, alpha, beta, lam, knn, dense_max_nodes) and the loss.
        device: where the graphs are built.
    """
    AXs, graphs, grids = [], [], []
    for item in items:
        F = item["features"]
        h, w, D = F.shape
        X = F.reshape(h * w, D).float().to(device)
        with contour_edges((item.get("extra") or {}).get("edges")):  # as the pipeline does
            g = make_graph(X, cfg, grid=(h, w))
        AXs.append(gcn_propagate(g, X))
        Wl = g.W if cfg.loss == "cc" else g.positive().W  # as GNNSolver.fit
        graphs.append((Wl, g.degree))
        grids.append((h, w))
    n_nodes = [a.shape[0] for a in AXs]
    B, N, D = len(AXs), max(n_nodes), AXs[0].shape[1]
    AX = torch.zeros(B, N, D, device=device)
    degree = torch.zeros(B, N, device=device)
    mask = torch.zeros(B, N, dtype=torch.bool, device=device)
    dense = all(not (W.is_sparse or W.layout == torch.sparse_csr) for W, _ in graphs)
    W = torch.zeros(B, N, N, device=device) if dense else None
    for b, (a, (Wl, d)) in enumerate(zip(AXs, graphs)):
        n = a.shape[0]
        AX[b, :n] = a
        degree[b, :n] = d
        mask[b, :n] = True
        if W is not None:
            W[b, :n, :n] = Wl
    return GraphBatch(AX=AX, W=W, degree=degree, mask=mask, n_nodes=n_nodes, grids=grids,
                      graphs=graphs)
