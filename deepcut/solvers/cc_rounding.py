r"""Rounding a labelling to a local optimum of the discrete correlation-clustering objective.

The CC head (DeepCut Eq. 10) is trained on the relaxed loss :math:`-\mathrm{Tr}(W S S^\top)` and
its argmax is only near a discrete optimum: on planted groups it can leave two groups in one
cluster (K found too low) although the split labelling has a lower loss. :func:`cc_round` is the
CC analogue of the NCut hard steps the GNN's NCut rounding uses: three moves, each accepted only
when it lowers the discrete objective

.. math:: f(z) = -\sum_{i \ne j,\ z_i = z_j} W_{ij}

on the signed graph ``W``, so ``f`` never rises and the loop ends:

* **node moves** to another existing cluster (all improving moves at once; when the batch does
  not lower ``f`` the top half by gain is tried, down to the single best move, which always does);
* **merges** of the two clusters whose summed cross weight is the largest positive one;
* **spectral splits**: a cluster is split by the sign of the top eigenvector of its block of
  ``W`` (the relaxation of the bipartition with the most negative cross weight) when the cross
  weight of the split is negative, while fewer than ``k_max`` clusters are in use.

No step opens a cluster for one node (moves go to existing clusters, a split keeps at least two
nodes on each side): the discrete CC optimum cuts off every sample whose similarity to its group
is below the threshold, and counting such outliers as clusters is what over-segments (on planted
groups a greedy CC solver from singletons found 5.8 to 8.2 clusters on average for 3 to 6
groups at alpha 4).
Splits come from the block's leading eigenvector, which follows group structure, not outliers.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["cc_objective", "cc_round"]

_TOL = 1e-9


def _onehot(z: torch.Tensor, C: int, dtype) -> torch.Tensor:
    return torch.nn.functional.one_hot(z, C).to(dtype)


@torch.no_grad()
def cc_objective(W: torch.Tensor, labels: torch.Tensor) -> float:
    r"""Discrete CC objective :math:`-\sum_{i \ne j, z_i = z_j} W_{ij}` of ``labels: (N,)`` on the
    dense signed ``W: (N, N)`` (lower is better; the diagonal is left out, so one cluster per
    node scores 0)."""
    z = torch.unique(torch.as_tensor(labels).reshape(-1), return_inverse=True)[1].to(W.device)
    Z = _onehot(z, int(z.max()) + 1, W.dtype)
    return float(-(Z * (W @ Z)).sum() + W.diagonal().sum())


def _relabel(z: torch.Tensor) -> torch.Tensor:
    return torch.unique(z, return_inverse=True)[1]


def _moves(W: torch.Tensor, z: torch.Tensor, f: float) -> tuple[torch.Tensor, float, bool]:
    """One safeguarded batch of node moves to existing clusters; ``f`` never rises."""
    C = int(z.max()) + 1
    if C < 2:
        return z, f, False
    N = z.numel()
    G = W @ _onehot(z, C, W.dtype)  # (N, C): summed weight of node i to cluster c
    own = G.gather(1, z[:, None])[:, 0] - W.diagonal()
    gain = G - own[:, None]  # f drops by 2 * gain when i moves to c (pairs counted twice)
    gain[torch.arange(N, device=z.device), z] = -float("inf")
    g, c = gain.max(1)
    cand = torch.nonzero(g > _TOL)[:, 0]
    if cand.numel() == 0:
        return z, f, False
    order = cand[torch.argsort(g[cand], descending=True, stable=True)]
    m = order.numel()
    while m >= 1:  # halving: at most log2(N) tries, the single best move always lowers f
        z2 = z.clone()
        z2[order[:m]] = c[order[:m]]
        z2 = _relabel(z2)
        f2 = cc_objective(W, z2)
        if f2 < f - _TOL:
            return z2, f2, True
        m //= 2
    return z, f, False


def _merges(W: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Merge the pair of clusters with the largest positive cross weight, until none is left."""
    merged = False
    C = int(z.max()) + 1
    while C > 1:  # at most K - 1 merges
        Z = _onehot(z, C, W.dtype)
        M = Z.T @ (W @ Z)
        M.fill_diagonal_(-float("inf"))
        v, idx = M.reshape(-1).max(0)
        if float(v) <= _TOL:
            break
        a, b = divmod(int(idx), C)
        z = _relabel(torch.where(z == max(a, b), min(a, b), z))
        C -= 1
        merged = True
    return z, merged


def _top_eigvec(B: torch.Tensor) -> torch.Tensor:
    if B.shape[0] <= 1000:
        return torch.linalg.eigh(B)[1][:, -1]
    from scipy.sparse.linalg import eigsh

    v0 = np.ones(B.shape[0])  # fixed start vector: same result every run
    return torch.from_numpy(eigsh(B.double().cpu().numpy(), k=1, which="LA", v0=v0)[1][:, 0]
                            ).to(B)


def _splits(W: torch.Tensor, z: torch.Tensor, k_max: int) -> tuple[torch.Tensor, bool]:
    """Split each cluster by the sign of its block's top eigenvector when that lowers ``f``."""
    split = False
    for c in range(int(z.max()) + 1):  # loop over clusters (<= k_max), not nodes
        if int(z.max()) + 1 >= k_max:
            break
        idx = torch.nonzero(z == c)[:, 0]
        if idx.numel() < 4:
            continue
        B = W.index_select(0, idx).index_select(1, idx)
        x = _top_eigvec(B) >= 0
        if min(int(x.sum()), int((~x).sum())) < 2:  # no singleton clusters (module docstring)
            continue
        if float(B[x][:, ~x].sum()) < -_TOL:  # f rises by 2 * cross weight
            z = z.clone()
            z[idx[~x]] = int(z.max()) + 1
            split = True
    return z, split


@torch.no_grad()
def cc_round(W: torch.Tensor, labels: torch.Tensor, k_max: int, max_rounds: int = 50
             ) -> torch.Tensor:
    """Round ``labels: (N,)`` to a local optimum of :func:`cc_objective` on the dense signed
    ``W: (N, N)``, using at most ``k_max`` clusters (module docstring: moves, merges, splits).

    Returns ``(N,)`` int64 labels ``0..K-1``; ``cc_objective`` of the result is ``<=`` that of
    ``labels``. Cost per round: O(N^2 K) for the moves and merges, plus one eigenvector per
    cluster (dense up to 1000 nodes, ARPACK above).

    Example:
        >>> W = torch.tensor([[0., 1, -1, -1], [1, 0, -1, -1], [-1, -1, 0, 1], [-1, -1, 1, 0]])
        >>> cc_round(W, torch.tensor([0, 0, 0, 0]), k_max=4, max_rounds=5).tolist()
        [1, 1, 0, 0]
    """
    if W.is_sparse or W.layout != torch.strided:
        raise ValueError("cc_round needs a dense signed W (N, N).")
    W = W.double()
    z = _relabel(torch.as_tensor(labels).reshape(-1).long().to(W.device))
    if int(z.max()) + 1 > k_max:  # the moves and merges never add a cluster: it would stay
        raise ValueError(f"cc_round: labels use {int(z.max()) + 1} clusters, more than "
                         f"k_max={k_max}.")
    f = cc_objective(W, z)
    for _ in range(max_rounds):
        z, f, moved = _moves(W, z, f)
        z, merged = _merges(W, z)
        z, split = _splits(W, z, k_max)
        if not (moved or merged or split):  # each step strictly lowers f: the loop ends
            break
        f = cc_objective(W, z)
    return _relabel(z).cpu()
