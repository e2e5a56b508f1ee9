r"""Monotone local moves of the discrete K-way NCut: the proximal batch steps of Falcon's hard
mode and exact single-node moves that finish them.

Both act on labels ``z: (N,)`` of a graph ``W: (N, N)`` (dense, or sparse CSR) with degrees
``d = W 1`` through ``P = W onehot(z): (N, K)``, kept up to date row by row, and both only
accept a move that does not lower the fixed-K objective ``sum_k assoc_k / vol_k``
(``assoc_k = x_k^T W x_k``, ``vol_k = d^T x_k``), so the discrete NCut never rises.

* :func:`_hard_steps`: the proximal linearised step of :mod:`deepcut.solvers.falcon` (its module
  docstring, "Hard mode"): every node takes the cluster of best *gradient* score at once, with
  an inertia that backtracks so that the step never loses.
* :func:`_polish`: batches of single-node moves scored by their *exact* gain. The gradient
  drops the terms of order ``d_i / vol_k`` and the self-loop ``W_ii``, so the proximal steps
  stop where one-node moves still gain; polishing ends at a partition that no single node move
  improves (the local optimum that Dhillon, Guan & Kulis 2004 reach with kernel k-means' "first
  variation"). What it buys and costs on real graphs: :mod:`deepcut.solvers.falcon`'s module
  docstring, "Exact moves".
* :func:`_fill_empty`: give each empty cluster of a start one node, as hard steps never refill.
"""
from __future__ import annotations

import torch
import torch.nn.functional as Fn

from deepcut.graphs.graph import edge_list

_EPS = 1e-12
_RHO_MIN = 1.0 / 16  # first non-zero inertia tried when plain argmax increases the NCut
_HARD_MAX_ITER, _HARD_TOL = 100, 0.0  # hard steps run to a fixed point (falcon's docstring)


def _product(W: torch.Tensor, z: torch.Tensor, K: int, sparse: bool) -> torch.Tensor:
    """``W @ onehot(z)``: ``(N, K)``."""
    if sparse and K >= 32:
        # one scatter-add per stored edge (nnz), where sparse.mm does nnz * K multiply-adds
        row, col, val = edge_list(W)
        return torch.zeros(W.shape[0] * K, dtype=W.dtype, device=W.device).index_add_(
            0, row * K + z[col], val).view(-1, K)
    if sparse:
        return torch.sparse.mm(W, Fn.one_hot(z, K).to(W.dtype))
    # W symmetric: (W X)^T = X^T W, a row index_add (O(N^2) whatever K)
    return torch.zeros(K, W.shape[0], dtype=W.dtype, device=W.device
                       ).index_add_(0, z, W).T.contiguous()


def _stats(P: torch.Tensor, z: torch.Tensor, d: torch.Tensor, K: int
           ) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """vol, assoc (float64), the objective ``sum_k assoc_k / vol_k`` (empty clusters count 0)
    and the discrete NCut (K' non-empty clusters minus that sum) of labels ``z`` given
    ``P = W onehot(z)``."""
    own = P.gather(1, z[:, None]).squeeze(1).double()
    vol = torch.zeros(K, dtype=torch.float64, device=P.device).index_add_(0, z, d.double())
    assoc = torch.zeros(K, dtype=torch.float64, device=P.device).index_add_(0, z, own)
    nonempty = vol > 0
    ratio = torch.where(nonempty, assoc / vol.clamp(min=_EPS), torch.zeros_like(vol))
    obj = float(ratio.sum())
    return vol, assoc, obj, float(nonempty.sum()) - obj


def _ratios(P: torch.Tensor, z: torch.Tensor, d: torch.Tensor, K: int) -> torch.Tensor:
    """``assoc_k / vol_k`` of the non-empty clusters of labels ``z`` in id order (float64),
    as :func:`deepcut.losses.cluster_ratios` gives them, from a known ``P = W onehot(z)``
    instead of another pass over ``W``."""
    vol, assoc, _, _ = _stats(P, z, d, K)
    keep = vol > 0
    return assoc[keep] / vol[keep]


def _update(W: torch.Tensor, P: torch.Tensor, z: torch.Tensor, cand: torch.Tensor,
            changed: torch.Tensor, K: int, sparse: bool) -> torch.Tensor:
    """``W @ onehot(cand)`` from ``P = W @ onehot(z)``, touching only the changed rows (a full
    product when more than an eighth of the nodes changed, or for a sparse ``W`` not in CSR)."""
    N = W.shape[0]
    if changed.numel() * 8 > N or (sparse and W.layout != torch.sparse_csr):
        return _product(W, cand, K, sparse)
    if sparse:
        # the stored edges of the changed rows (W symmetric: W[:, c] = W[c]^T), O(their degree)
        crow, col, val = W.crow_indices(), W.col_indices(), W.values()
        start = crow[changed]
        counts = crow[changed + 1] - start
        owner = torch.repeat_interleave(torch.arange(changed.numel(), device=W.device), counts)
        first = torch.repeat_interleave(counts.cumsum(0) - counts, counts)
        idx = start[owner] + torch.arange(owner.numel(), device=W.device) - first
        nbr, w = col[idx], val[idx]
        Pc = P.clone()
        Pc.index_put_((nbr, cand[changed][owner]), w, accumulate=True)
        Pc.index_put_((nbr, z[changed][owner]), -w, accumulate=True)
        return Pc
    delta = (Fn.one_hot(cand[changed], K) - Fn.one_hot(z[changed], K)).to(W.dtype)  # (c, K)
    return P + W.index_select(0, changed).T @ delta  # W symmetric: W[:, c] = W[c]^T


def _hard_steps(W: torch.Tensor, d: torch.Tensor, z: torch.Tensor, K: int, sparse: bool, *,
                P: torch.Tensor | None = None, inertia: float = 0.0,
                max_iter: int = _HARD_MAX_ITER, max_backtrack: int = 6, tol: float = _HARD_TOL):
    """Monotone proximal hard steps from labels ``z: (N,)`` (module docstring, "Hard mode").

    Returns ``(z, P, ncut_history, n_backtracks, converged, n_iter)`` with ``P = W onehot(z)``.
    """
    ar = torch.arange(W.shape[0], device=W.device)
    P = _product(W, z, K, sparse) if P is None else P
    vol, assoc, obj, ncut = _stats(P, z, d, K)
    history = [ncut]
    rho0 = float(inertia)
    n_backtracks, converged, it = 0, False, 0
    for it in range(1, max_iter + 1):
        empty = vol <= 0
        v = vol.to(W.dtype).clamp(min=_EPS)
        S = 2.0 * P / v - d[:, None] * (assoc.to(W.dtype) / v.pow(2))
        S[:, empty] = -float("inf")
        accepted = False
        rho = rho0
        for _ in range(max_backtrack + 1):
            if rho > 0:
                Sr = S - rho * d[:, None] / v
                Sr[ar, z] += 2.0 * rho * d / v[z]
                Sr[:, empty] = -float("inf")
            else:
                Sr = S
            cand = Sr.argmax(1)
            changed = (cand != z).nonzero().squeeze(1)
            if changed.numel() == 0:
                break  # a fixed point at this inertia
            Pc = _update(W, P, z, cand, changed, K, sparse)
            vol_c, assoc_c, obj_c, ncut_c = _stats(Pc, cand, d, K)
            # Accept on the fixed-K objective: it never rewards emptying a cluster, and as
            # clusters are never refilled, obj_c >= obj also gives ncut_c <= ncut.
            if obj_c >= obj and ncut_c <= ncut:
                accepted = True
                break
            n_backtracks += 1
            if rho >= 1.0:
                break  # rejected even at rho = 1: a cluster would empty at a loss (or rounding)
            rho = min(1.0, max(2.0 * rho, _RHO_MIN))
        if not accepted:
            converged = True
            break
        gain = obj_c - obj
        z, P, vol, assoc, obj, ncut = cand, Pc, vol_c, assoc_c, obj_c, ncut_c
        history.append(ncut)
        rho0 = max(float(inertia), rho / 2)
        if gain <= tol * max(abs(obj), _EPS):
            converged = True
            break
    return z, P, history, n_backtracks, converged, it


def _diagonal(W: torch.Tensor, sparse: bool) -> torch.Tensor:
    """The diagonal ``(N,)`` of ``W`` (self-loops; 0 where none is stored)."""
    if not sparse:
        return W.diagonal()
    row, col, val = edge_list(W)
    loop = row == col
    return torch.zeros(W.shape[0], dtype=W.dtype, device=W.device).index_add_(
        0, row[loop], val[loop])


def _best_moves(P: torch.Tensor, z: torch.Tensor, d: torch.Tensor, vol: torch.Tensor,
                assoc: torch.Tensor, diag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each node's best single move: ``(gain, target)``, both ``(N,)``, the exact gain of the
    objective ``sum_k assoc_k / vol_k`` when node ``i`` alone moves to ``target_i``.

    Staying, leaving a cluster empty and refilling an empty one (both would change the number
    of clusters) are excluded; a node with no allowed move gains ``-inf``. Node ``i`` of cluster
    ``a`` joining ``b``: ``assoc_a`` loses ``2 (W x_a)_i - W_ii`` and ``vol_a`` loses ``d_i``;
    ``assoc_b`` gains ``2 (W x_b)_i + W_ii`` and ``vol_b`` gains ``d_i``.
    """
    # (A + x) / (V + y) - A / V = (x - y A / V) / (V + y): no difference of near-equal ratios,
    # so float32 holds the gains (on one (N, K) pass) as well as float64 would
    ratio = (assoc / vol.clamp(min=_EPS)).to(P.dtype)
    vol_f = vol.to(P.dtype)
    own = P.gather(1, z[:, None]).squeeze(1)
    rest_vol = vol_f[z] - d
    leave = (d * ratio[z] - 2.0 * own + diag) / rest_vol.clamp(min=_EPS)
    leave[rest_vol <= 1e-6 * vol_f[z]] = -float("inf")  # i alone in its cluster (or rounding)
    J = torch.addr(P, d, ratio, beta=2.0, alpha=-1.0).add_(diag[:, None])
    J.div_(vol_f[None] + d[:, None])
    empty = vol <= 0
    if bool(empty.any()):
        J[:, empty] = -float("inf")
    J.scatter_(1, z[:, None], -float("inf"))
    join, target = J.max(1)
    return join + leave, target


def _candidates(P: torch.Tensor, z: torch.Tensor, d: torch.Tensor, vol: torch.Tensor,
                assoc: torch.Tensor, diag: torch.Tensor) -> torch.Tensor | None:
    """The nodes ``(m,)`` that may have a single move of positive gain, or None when that is
    more than half of them (then every node is scored).

    Node ``i`` of cluster ``a`` with outside weight ``o_i = d_i - (W x_a)_i`` gains nothing by
    any move when ``2 o_i + W_ii <= d_i min_k r_k`` (``r_k = assoc_k / vol_k`` over the
    non-empty clusters, each <= 1): with ``(W x_b)_i <= o_i``, both numerators of
    :func:`_best_moves`' gain, ``2 (W x_b)_i + W_ii - d_i r_b`` to join ``b`` and
    ``d_i r_a - 2 (W x_a)_i + W_ii <= 2 o_i + W_ii - d_i`` to leave ``a``, are then <= 0. On a
    sparse graph that is the inside of every cluster. The test uses half the bound, a margin
    far above the float32 error of an updated ``P`` (with ``min_k r_k`` near 0, a node left
    out can only have gains of the order of that error, below the batch's gain threshold).
    """
    keep = vol > 0
    if not bool(keep.any()):  # no edge at all (e.g. constant features): no move can gain
        return z.new_empty(0)
    r_min = float((assoc[keep] / vol[keep]).min())
    own = P.gather(1, z[:, None]).squeeze(1)
    rows = ((d - own).mul_(2.0).add_(diag) > 0.5 * r_min * d).nonzero().squeeze(1)
    return None if 2 * rows.numel() > z.numel() else rows


def _exact_moves(W: torch.Tensor, d: torch.Tensor, z: torch.Tensor, P: torch.Tensor,
                 vol: torch.Tensor, assoc: torch.Tensor, obj: float, ncut: float,
                 diag: torch.Tensor, K: int, sparse: bool):
    """One batch of single-node moves of positive exact gain (:func:`_best_moves`).

    Every node with a gaining move takes its best one. Moves of linked nodes interact (their
    edge is not in the single-move gains), and all the members of a cluster may leave it
    together, so while the batch would lower the objective or empty a cluster it is cut to its
    better-gaining half, down to the one best move, which alone always gains.
    Returns ``(z, P, vol, assoc, obj, ncut)`` after the batch, or ``None`` where no move gains
    more than float32 noise in ``P``.
    """
    rows = _candidates(P, z, d, vol, assoc, diag)
    if rows is None:
        g, target = _best_moves(P, z, d, vol, assoc, diag)
    else:  # the other nodes cannot gain (_candidates)
        g, target = _best_moves(P[rows], z[rows], d[rows], vol, assoc, diag[rows])
    sel = (g > 1e-8 * max(abs(obj), 1.0)).nonzero().squeeze(1)
    if sel.numel() == 0:
        return None
    sel = sel[g[sel].argsort(descending=True)]
    movers, target = (sel, target[sel]) if rows is None else (rows[sel], target[sel])
    n_used = int((vol > 0).sum())
    while True:  # at most log2(N) halvings
        cand = z.clone()
        cand[movers] = target
        Pc = _update(W, P, z, cand, movers, K, sparse)
        vol_c, assoc_c, obj_c, ncut_c = _stats(Pc, cand, d, K)
        if obj_c > obj and ncut_c <= ncut and int((vol_c > 0).sum()) == n_used:
            return cand, Pc, vol_c, assoc_c, obj_c, ncut_c
        if movers.numel() == 1:
            return None  # the best move's gain was rounding
        half = (movers.numel() + 1) // 2
        movers, target = movers[:half], target[:half]


def _polish(W: torch.Tensor, d: torch.Tensor, z: torch.Tensor, K: int, sparse: bool, *,
            P: torch.Tensor | None = None, diag: torch.Tensor | None = None,
            max_iter: int = _HARD_MAX_ITER
            ) -> tuple[torch.Tensor, torch.Tensor, list[float], int]:
    """Batches of exact single-node moves from labels ``z: (N,)`` until no move gains (or
    ``max_iter`` batches). Returns ``(z, P, ncut_history, n_batches)``, ``P = W onehot(z)``;
    ``diag``: ``W``'s diagonal when known (on a sparse graph it costs a pass over the edges).

    Run after :func:`_hard_steps` has stopped: from an arbitrary start the batch would move
    nodes one cascade at a time where the proximal step moves them all at once.
    """
    P = _product(W, z, K, sparse) if P is None else P
    vol, assoc, obj, ncut = _stats(P, z, d, K)
    history = [ncut]
    diag = _diagonal(W, sparse) if diag is None else diag
    n = 0
    for n in range(1, max_iter + 1):
        out = _exact_moves(W, d, z, P, vol, assoc, obj, ncut, diag, K, sparse)
        if out is None:
            n -= 1
            break
        z, P, vol, assoc, obj, ncut = out
        history.append(ncut)
    return z, P, history, n


def _fill_empty(W: torch.Tensor, d: torch.Tensor, z: torch.Tensor, K: int) -> torch.Tensor:
    """Fill each empty cluster with the one node whose move there gains the most objective
    ``sum_k assoc_k / vol_k`` (never emptying another cluster). Hard steps never refill an
    empty cluster, so a start with fewer than K clusters would end with fewer than K.
    ``W: (m, m)`` dense (the coarse graph, self-loops included)."""
    counts = torch.bincount(z, minlength=K)
    if bool((counts > 0).all()) or z.numel() < K:
        return z
    z = z.clone()
    dd, diag = d.double().clamp(min=_EPS), W.diagonal().double()
    P = _product(W, z, K, False)
    for k in (counts == 0).nonzero().flatten().tolist():
        vol, assoc, _, _ = _stats(P, z, d, K)
        own = P.gather(1, z[:, None]).squeeze(1).double()
        vc, ac = vol[z].clamp(min=_EPS), assoc[z]
        rest_vol, rest_assoc = vc - dd, ac - 2.0 * own + diag  # node i's cluster without i
        gain = diag / dd + torch.where(rest_vol > _EPS, rest_assoc / rest_vol.clamp(min=_EPS),
                                       torch.zeros_like(vc)) - ac / vc
        gain[counts[z] <= 1] = -float("inf")
        i = int(gain.argmax())
        counts[z[i]] -= 1
        counts[k] += 1
        moved = z.clone()
        moved[i] = k
        # one node moved: its row of W, not another O(N^2) product per empty cluster
        P = _update(W, P, z, moved, torch.tensor([i], device=z.device), K, False)
        z = moved
    return z
