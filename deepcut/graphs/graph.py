"""The :class:`Graph` container shared by every solver: W (dense or sparse) and its degrees."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Graph", "edge_list", "is_sparse", "positive_part", "propagate"]


def is_sparse(W: torch.Tensor) -> bool:
    return W.is_sparse or W.layout in (torch.sparse_csr, torch.sparse_coo)


def positive_part(W: torch.Tensor) -> torch.Tensor:
    """``max(W, 0)`` for a dense or sparse ``W`` (sparse results are coalesced COO)."""
    if is_sparse(W):
        W = W.to_sparse_coo().coalesce()
        return torch.sparse_coo_tensor(W.indices(), W.values().clamp(min=0), W.shape,
                                       check_invariants=False).coalesce()
    return W.clamp(min=0)


def edge_list(W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(row, col, value)`` of the stored entries of a sparse CSR or COO ``W``, each ``(nnz,)``."""
    if W.layout == torch.sparse_csr:
        crow = W.crow_indices()
        row = torch.repeat_interleave(torch.arange(W.shape[0], device=W.device), crow.diff())
        return row, W.col_indices(), W.values()
    W = W.coalesce()
    return W.indices()[0], W.indices()[1], W.values()


def propagate(W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``W @ X`` for a dense or sparse ``W: (N, N)`` and ``X: (N, K)`` (or batched dense ``(B, N, N)``)."""
    if W.is_sparse or W.layout in (torch.sparse_csr, torch.sparse_coo):
        return torch.sparse.mm(W, X)
    return W @ X


@dataclass
class Graph:
    """A weighted patch graph.

    Attributes:
        W: ``(N, N)`` affinity, dense or sparse (COO/CSR). Symmetric. Non-negative for NCut-type
            graphs; signed for the correlation-clustering graph (Eq. 7).
        degree: ``(N,)`` ``W @ 1`` (for signed graphs: the degree of the positive part).
        grid: ``(h, w)`` of the patch grid when the nodes are patches of one image, else ``None``.
        kind: the builder that made it (``ncut``, ``cc``, ``falcon``, ``cosine`` ...).
        params: the builder's parameters, recorded for provenance.
    """

    W: torch.Tensor
    degree: torch.Tensor
    grid: tuple[int, int] | None = None
    kind: str = "ncut"
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return int(self.W.shape[-1])

    @property
    def is_sparse(self) -> bool:
        return self.W.is_sparse or self.W.layout in (torch.sparse_csr, torch.sparse_coo)

    @property
    def signed(self) -> bool:
        return self.kind == "cc"

    def matmul(self, X: torch.Tensor) -> torch.Tensor:
        """``W @ X`` for ``X: (N, K)``."""
        return propagate(self.W, X)

    def dense(self) -> torch.Tensor:
        """``(N, N)`` dense copy of W (memory N^2: only for small graphs)."""
        return self.W.to_dense() if self.is_sparse else self.W

    def positive(self) -> Graph:
        """The graph of the positive (attractive) weights only, as NCut needs."""
        if not self.signed:
            return self
        W = positive_part(self.W)
        return Graph(W=W, degree=propagate(W, torch.ones(W.shape[0], 1, dtype=W.dtype,
                                                          device=W.device)).squeeze(1),
                     grid=self.grid, kind=self.kind + "+", params=dict(self.params))

    def to(self, device: str | torch.device) -> Graph:
        return Graph(self.W.to(device), self.degree.to(device), self.grid, self.kind, self.params)

    def to_pyg(self):
        """A :class:`torch_geometric.data.Data` with ``edge_index``/``edge_weight`` of the positive edges.

        Only for sparse or small graphs: a dense graph has up to N^2 edges.
        """
        from torch_geometric.data import Data

        W = self.positive().W
        if self.is_sparse:
            W = W.to_sparse_coo().coalesce()
            idx, val = W.indices(), W.values()
            keep = val > 0
            idx, val = idx[:, keep], val[keep]
        else:
            idx = (W > 0).nonzero().t()
            val = W[idx[0], idx[1]]
        return Data(edge_index=idx, edge_weight=val, num_nodes=self.num_nodes)
