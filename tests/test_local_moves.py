"""Exact single-node moves of the discrete NCut (``deepcut/solvers/local_moves.py``): gains
checked against brute-force recomputation, and the partition they end at, which no single move
improves, on dense and sparse graphs."""
from __future__ import annotations

from itertools import pairwise

import pytest
import torch

from deepcut.graphs import build_graph
from deepcut.losses import discrete_ncut
from deepcut.solvers import FalconCut, GNNSolver
from deepcut.solvers.local_moves import (
    _best_moves,
    _candidates,
    _diagonal,
    _hard_steps,
    _polish,
    _product,
    _stats,
)
from deepcut.solvers.spectral import _to_csr


def objective(W: torch.Tensor, z: torch.Tensor, K: int) -> float:
    """``sum_k assoc_k / vol_k`` over the non-empty clusters, from scratch (float64)."""
    W = W.double()
    d = W.sum(1)
    total = 0.0
    for k in range(K):
        m = z == k
        if m.any():
            total += float(W[m][:, m].sum() / d[m].sum())
    return total


def brute_force_gains(W: torch.Tensor, z: torch.Tensor, K: int) -> torch.Tensor:
    """``(N, K)`` objective change of every single move; ``-inf`` for staying, emptying a
    cluster or refilling an empty one."""
    N = z.numel()
    base = objective(W, z, K)
    counts = torch.bincount(z, minlength=K)
    G = torch.full((N, K), -float("inf"), dtype=torch.float64)
    for i in range(N):
        for k in range(K):
            if k == z[i] or counts[z[i]] == 1 or counts[k] == 0:
                continue
            zz = z.clone()
            zz[i] = k
            G[i, k] = objective(W, zz, K) - base
    return G


def random_graph(N: int, seed: int, loops: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.rand(N, N, generator=g) ** 3
    W = 0.5 * (A + A.T)
    W.fill_diagonal_(0)
    return W + loops * torch.diag(torch.rand(N, generator=g))


@pytest.mark.parametrize("sparse", [False, True])
def test_best_moves_are_the_exact_single_move_gains(sparse):
    """On a random weighted graph with self-loops (one cluster empty, one a singleton), each
    node's best gain and target equal the brute-force maximum over its allowed moves."""
    N, K = 14, 4
    W = random_graph(N, seed=1)
    z = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 1, 0, 1])  # 2: a singleton, 3: empty
    Wm = _to_csr(W.to_sparse()) if sparse else W
    assert torch.allclose(_diagonal(Wm, sparse), W.diagonal())
    P = _product(Wm, z, K, sparse)
    d = W.sum(1)
    vol, assoc, obj, _ = _stats(P, z, d, K)
    assert obj == pytest.approx(objective(W, z, K), abs=1e-6)
    gain, target = _best_moves(P, z, d, vol, assoc, _diagonal(Wm, sparse))
    ref = brute_force_gains(W, z, K)
    best, best_k = ref.max(1)
    assert torch.isinf(gain[10]) and gain[10] < 0  # the singleton may not leave
    ok = torch.isfinite(best)
    torch.testing.assert_close(gain[ok].double(), best[ok], atol=1e-6, rtol=0)
    assert torch.equal(target[ok], best_k[ok])
    assert (target != 3).all()  # nobody refills the empty cluster


@pytest.mark.parametrize("sparse", [False, True])
def test_polish_ends_where_no_single_move_gains(sparse):
    """From the fixed point of the proximal hard steps on a random graph, the exact moves lower
    the objective monotonically to a partition that no single move improves (brute force)."""
    N, K = 40, 4
    W = random_graph(N, seed=2, loops=3.0)  # heavy self-loops: where the gradient step errs
    Wm = _to_csr(W.to_sparse()) if sparse else W
    d = W.sum(1)
    z0 = torch.arange(N) % K
    z1, P1, *_ = _hard_steps(Wm, d, z0, K, sparse)
    z2, _P2, history, n = _polish(Wm, d, z1, K, sparse, P=P1)
    assert n >= 1 and history[-1] < history[0] - 1e-4
    assert all(b < a for a, b in pairwise(history))
    assert history[-1] == pytest.approx(discrete_ncut(z2, W), abs=1e-5)
    assert float(brute_force_gains(W, z2, K).max()) <= 1e-6
    assert torch.bincount(z2, minlength=K).min() > 0


def test_falcon_and_the_gnn_end_at_single_move_optima():
    """Weak planted clusters (K = 6): Falcon's default run (hard steps, then exact moves) is
    never above its hard steps alone, lower on some seeds, and no single node move lowers its
    NCut; the GNN's rounding ends the same way."""
    g = torch.Generator().manual_seed(0)
    lower = []
    for seed in range(4):
        y = torch.arange(6).repeat_interleave(12)
        F = torch.randn(6, 8, generator=g)[y] * 0.6 + torch.randn(72, 8, generator=g)
        G = build_graph(F, "ncut", metric="cosine")
        hard = FalconCut(6, exact_moves=False, random_state=seed).fit(G, F)
        est = FalconCut(6, random_state=seed).fit(G, F)
        assert est.ncut_ <= hard.ncut_ + 1e-6
        lower.append(est.ncut_ < hard.ncut_ - 1e-5)
        assert float(brute_force_gains(G.W, est.labels_, 6).max()) <= 1e-6
        if seed == 0:
            gnn = GNNSolver(6, seed=0).fit(G, F)
            assert float(brute_force_gains(G.W, gnn.labels_, 6).max()) <= 1e-6
    assert any(lower)


def test_sparse_update_touches_only_the_changed_rows():
    """The incremental ``W @ onehot(z)`` of a sparse CSR graph after a few moves (one of a node
    with no stored edge) equals the product recomputed from scratch."""
    from deepcut.solvers.local_moves import _update

    g = torch.Generator().manual_seed(0)
    N, K = 300, 5
    A = (torch.rand(N, N, generator=g) < 0.05).float() * torch.rand(N, N, generator=g)
    A[7] = 0
    A[:, 7] = 0
    W = A + A.T + torch.diag(torch.rand(N, generator=g) * (torch.arange(N) != 7))
    Ws = _to_csr(W.to_sparse())
    z = torch.randint(K, (N,), generator=g)
    cand = z.clone()
    changed = torch.tensor([3, 7, 17, 250, 299])
    cand[changed] = (z[changed] + 2) % K
    P = _product(Ws, z, K, True)
    torch.testing.assert_close(_update(Ws, P, z, cand, changed, K, True),
                               W @ torch.nn.functional.one_hot(cand, K).float())


def test_a_batch_never_empties_a_cluster():
    """Cluster {0, 1} hangs on cluster A: each of its two nodes gains by joining A alone, and
    both together would gain too but leave the cluster empty. The batch is cut to the better
    move; the other node, now alone, stays: all three clusters survive."""
    W = torch.zeros(12, 12)
    A, B = slice(2, 7), slice(7, 12)
    W[A, A] = 5.0  # tight: A's own nodes gain nothing by joining the pair
    W[B, B] = 1.0
    W[0:2, A] = 1.0
    W[A, 0:2] = 1.0
    W[0, 1] = W[1, 0] = 0.01
    W.fill_diagonal_(0)
    z = torch.tensor([2, 2] + [0] * 5 + [1] * 5)
    d = W.sum(1)
    P = _product(W, z, 3, False)
    vol, assoc, *_ = _stats(P, z, d, 3)
    gain, target = _best_moves(P, z, d, vol, assoc, W.diagonal())
    assert (gain[:2] > 0).all() and (target[:2] == 0).all() and (gain[2:] < 0).all()
    both = z.clone()
    both[:2] = 0
    assert objective(W, both, 3) > objective(W, z, 3)  # the pair's joint move gains (and empties)
    z2, _P, history, n = _polish(W, d, z, 3, False)
    assert torch.bincount(z2, minlength=3).tolist() == [6, 5, 1]
    assert n == 1 and history[-1] < history[0]


@pytest.mark.parametrize("sparse", [False, True])
def test_the_ncut_read_off_the_moves_equals_a_fresh_pass(sparse):
    """Falcon and the GNN's rounding report ``ncut_`` (and the GNN ``raw_ncut_``) from the
    ``W onehot(z)`` their moves keep, not from another pass over ``W``: each equals the NCut
    recomputed from the labels (the cold GNN's raw argmax may leave clusters empty)."""
    g = torch.Generator().manual_seed(1)
    y = torch.arange(4).repeat_interleave(20)
    F = torch.randn(4, 8, generator=g)[y] * 0.8 + torch.randn(80, 8, generator=g)
    G = build_graph(F, "ncut", metric="cosine", knn=10 if sparse else None)
    assert G.is_sparse == sparse
    Gp = G.positive()
    for K in (2, 4):
        for est in (FalconCut(K, random_state=0), GNNSolver(K, seed=0),
                    GNNSolver(K, seed=0, warm_start=None)):
            est.fit(G, F)
            assert est.ncut_ == pytest.approx(discrete_ncut(est.labels_, Gp.W, Gp.degree),
                                              rel=1e-5, abs=1e-6)
            if isinstance(est, GNNSolver):
                assert est.raw_ncut_ == pytest.approx(
                    discrete_ncut(est.raw_labels_, Gp.W, Gp.degree), rel=1e-5, abs=1e-6)


def test_candidates_keep_every_node_that_can_gain():
    """``_candidates`` leaves out only nodes whose every single move loses (brute force): the
    inside of each cluster of sparse graphs, but not an inside node whose self-loop makes a
    move to a weak cluster gain (node 0 below: no outside edge, yet it gains by leaving)."""
    N_A, N_B = 30, 6
    W = torch.zeros(N_A + N_B, N_A + N_B)
    for i in range(N_A):  # cluster A: a ring lattice, weight 1 to 3 neighbours each side
        for s in (1, 2, 3):
            W[i, (i + s) % N_A] = W[(i + s) % N_A, i] = 1.0
    for i in range(N_B):  # cluster B: a weak ring hanging on A
        j = N_A + (i + 1) % N_B
        W[N_A + i, j] = W[j, N_A + i] = 0.1
        W[N_A + i, 10 + 2 * i] = W[10 + 2 * i, N_A + i] = 0.5
    W[0, 0] = 20.0
    z = torch.tensor([0] * N_A + [1] * N_B)
    d = W.sum(1)
    P = _product(W, z, 2, False)
    vol, assoc, *_ = _stats(P, z, d, 2)
    G = brute_force_gains(W, z, 2).max(1).values
    assert G[0] > 0.1  # the self-loop case is exercised
    rows = _candidates(P, z, d, vol, assoc, W.diagonal())
    assert rows is not None and 0 in rows.tolist() and rows.numel() < 20
    out = torch.ones(z.numel(), dtype=torch.bool)
    out[rows] = False
    assert float(G[out].max()) <= 1e-9

    g = torch.Generator().manual_seed(0)
    for seed in range(4):  # kNN graphs of planted blocks, self-loops, labels a little off
        y = torch.arange(4).repeat_interleave(15)
        F = torch.randn(4, 6, generator=g)[y] * 4 + torch.randn(60, 6, generator=g)
        Ws = build_graph(F, "ncut", metric="cosine", knn=6).W.to_dense()
        Ws = Ws + torch.diag(torch.rand(60, generator=g) * 0.3 * (seed % 2) * Ws.sum(1))
        zz = y.clone()
        zz[torch.randperm(60, generator=g)[:6]] = torch.randint(4, (6,), generator=g)
        Wc = _to_csr(Ws.to_sparse())
        P = _product(Wc, zz, 4, True)
        dd = Ws.sum(1)
        vol, assoc, *_ = _stats(P, zz, dd, 4)
        rows = _candidates(P, zz, dd, vol, assoc, _diagonal(Wc, True))
        assert rows is not None and rows.numel() < 30  # the inside of the blocks is left out
        out = torch.ones(60, dtype=torch.bool)
        out[rows] = False
        assert float(brute_force_gains(Ws, zz, 4).max(1).values[out].max()) <= 1e-9
