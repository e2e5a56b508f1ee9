"""Losses against hand-computed values on 2-4 node graphs, and against PyG's MinCutPool."""
import math

import pytest
import torch

from deepcut.losses import (
    cc_loss,
    deepcut_ncut_loss,
    discrete_ncut,
    mincut_loss,
    ortho_loss,
    soft_ncut_loss,
)

PATH3 = torch.tensor([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]])
HARD3 = torch.tensor([[1.0, 0], [1, 0], [0, 1]])


def test_mincut_hand_value_path_graph():
    # Tr(S^T W S) = assoc_0 + assoc_1 = 2 + 0; Tr(S^T D S) = sum(d) = 1 + 2 + 1
    assert mincut_loss(HARD3, PATH3).item() == pytest.approx(-0.5)


def test_ortho_hand_value():
    # S^T S = diag(2, 1), ||.||_F = sqrt(5)
    expect = math.sqrt((2 / math.sqrt(5) - 1 / math.sqrt(2)) ** 2
                       + (1 / math.sqrt(5) - 1 / math.sqrt(2)) ** 2)
    assert ortho_loss(HARD3).item() == pytest.approx(expect, abs=1e-6)
    assert deepcut_ncut_loss(HARD3, PATH3).item() == pytest.approx(-0.5 + expect, abs=1e-6)


def test_uniform_soft_assignment_two_nodes():
    W = torch.tensor([[0.0, 1], [1, 0]])
    S = torch.full((2, 2), 0.5)
    # Tr(S^T W S) = 2 * (0.5 * 0.5 * 2) = 1, Tr(S^T D S) = 2 * 1 * 0.5 = 1
    assert mincut_loss(S, W).item() == pytest.approx(-1.0)
    # S^T S = 0.5 * ones, normalised to 0.5 * ones; minus I / sqrt(2)
    a = 0.5 - 1 / math.sqrt(2)
    assert ortho_loss(S).item() == pytest.approx(math.sqrt(2 * a * a + 2 * 0.25), abs=1e-6)
    # soft NCut: 2 - sum_k (0.5) / (1) = 1
    assert soft_ncut_loss(S, W).item() == pytest.approx(1.0)


def test_soft_ncut_equals_discrete_on_hard_assignment():
    assert soft_ncut_loss(HARD3, PATH3).item() == pytest.approx(2 - 2 / 3)
    assert discrete_ncut(torch.tensor([0, 0, 1]), PATH3) == pytest.approx(2 - 2 / 3)


def test_discrete_ncut_four_nodes():
    W = torch.tensor([[0, 1, 0.1, 0], [1, 0, 0, 0.1], [0.1, 0, 0, 1], [0, 0.1, 1, 0]])
    # assoc = 2 per pair, vol = 2.2 per pair: NCut = 2 - 2 * 2 / 2.2
    assert discrete_ncut(torch.tensor([0, 0, 1, 1]), W) == pytest.approx(2 - 4 / 2.2, abs=1e-6)
    # labels are ids, not positions: renumbering changes nothing
    assert discrete_ncut(torch.tensor([7, 7, 3, 3]), W) == pytest.approx(2 - 4 / 2.2, abs=1e-6)
    # one cluster cuts nothing
    assert discrete_ncut(torch.zeros(4, dtype=torch.long), W) == pytest.approx(0.0, abs=1e-6)
    # the sparse path gives the same value
    assert discrete_ncut(torch.tensor([0, 1, 0, 1]), W.to_sparse()) == pytest.approx(
        discrete_ncut(torch.tensor([0, 1, 0, 1]), W), abs=1e-6)


def test_cc_loss_hand_value():
    W = torch.tensor([[1.0, 0.5, -1], [0.5, 1, -1], [-1, -1, 1]])
    # same-cluster pairs: {0,1}: 1 + .5 + .5 + 1; {2}: 1 -> Tr(W S S^T) = 4
    assert cc_loss(HARD3, W).item() == pytest.approx(-4 / 9)
    assert cc_loss(HARD3, W, normalize=False).item() == pytest.approx(-4.0)
    # putting the repulsive node with the others is worse
    worse = torch.tensor([[1.0, 0], [1, 0], [1, 0]])
    assert cc_loss(worse, W).item() > cc_loss(HARD3, W).item()


def test_matches_pyg_dense_mincut_pool():
    from torch_geometric.nn.dense import dense_mincut_pool

    g = torch.Generator().manual_seed(0)
    A = torch.rand(2, 9, 9, generator=g)
    A = A + A.transpose(1, 2)
    logits = torch.randn(2, 9, 3, generator=g)
    x = torch.randn(2, 9, 4, generator=g)
    _, _, mc, orth = dense_mincut_pool(x, A, logits)  # PyG applies the softmax itself
    S = torch.softmax(logits, -1)
    assert mincut_loss(S, A).item() == pytest.approx(mc.item(), abs=1e-5)
    assert ortho_loss(S).item() == pytest.approx(orth.item(), abs=1e-5)


def test_gradients_match_autograd_of_plain_formula():
    g = torch.Generator().manual_seed(1)
    A = torch.rand(12, 12, generator=g)
    W = A + A.T
    L = torch.randn(12, 3, generator=g, requires_grad=True)
    (ours,) = torch.autograd.grad(soft_ncut_loss(torch.softmax(L, -1), W), L)
    S = torch.softmax(L, -1)
    ref = 3 - ((S * (W @ S)).sum(0) / (W.sum(1)[:, None] * S).sum(0)).sum()
    (theirs,) = torch.autograd.grad(ref, L)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_batched_and_masked():
    W = PATH3.expand(2, 3, 3)
    S = HARD3.expand(2, 3, 2)
    assert mincut_loss(S, W).item() == pytest.approx(-0.5)
    # padding node masked out: a 2-node graph inside a 3-node batch slot
    W2 = torch.tensor([[[0.0, 1, 0], [1, 0, 0], [0, 0, 0]]])
    S2 = torch.tensor([[[1.0, 0], [0, 1], [0.3, 0.7]]])
    m = torch.tensor([[True, True, False]])
    assert soft_ncut_loss(S2, W2, mask=m).item() == pytest.approx(2.0)
    assert cc_loss(S2, W2, mask=m).item() == pytest.approx(0.0)


def test_cluster_ratios_hand_values():
    from deepcut.losses import cluster_ratios

    W = torch.tensor([[0, 1, 0.1, 0], [1, 0, 0, 0.1], [0.1, 0, 0, 1], [0, 0.1, 1, 0]])
    # pairs {0,1} and {2,3}: assoc 2, vol 2.2 each
    r = cluster_ratios(torch.tensor([0, 0, 1, 1]), W)
    assert r.tolist() == pytest.approx([2 / 2.2, 2 / 2.2], abs=1e-6)
    # {0,2} and {1,3}: inside only the 0.1 edges (assoc 0.2 of vol 2.2): less than half inside
    r = cluster_ratios(torch.tensor([0, 1, 0, 1]), W.to_sparse())
    assert r.tolist() == pytest.approx([0.2 / 2.2, 0.2 / 2.2], abs=1e-6)
    # discrete NCut is K minus their sum
    assert discrete_ncut(torch.tensor([0, 1, 0, 1]), W) == pytest.approx(2 - 0.4 / 2.2, abs=1e-6)
