"""The per-image GNN solver: GCNConv equivalence, planted-region recovery, seeding."""
import numpy as np
import pytest
import torch
from conftest import planted_grid
from sklearn.metrics import adjusted_rand_score

from deepcut.graphs import build_graph, ncut_graph
from deepcut.nn import GNNHead, gcn_propagate
from deepcut.solvers import GNNSolver, create_solver


def test_precomputed_propagation_equals_pyg_gcnconv():
    torch.manual_seed(0)
    X = torch.randn(30, 16)
    for W in (ncut_graph(X).W, ncut_graph(X).W.fill_diagonal_(0)):  # with and without loops
        head = GNNHead(16, 3).eval()
        idx = (W > 0).nonzero().t()
        ref = head(x=X, edge_index=idx, edge_weight=W[idx[0], idx[1]])
        fast = head(gcn_propagate(W, X))
        assert torch.allclose(ref, fast, atol=1e-5)
        assert torch.allclose(head(gcn_propagate(W.to_sparse(), X)), ref, atol=1e-5)


@pytest.mark.parametrize("loss,kind,k", [("ncut", "ncut", 3), ("soft_ncut", "ncut", 3),
                                         ("cc", "cc", 6)])
def test_recovers_planted_regions(three_regions, loss, kind, k):
    F = planted_grid(12, 16, three_regions).reshape(-1, 32)
    g = build_graph(F, kind, grid=(12, 16))
    s = GNNSolver(k, loss=loss, steps=100, lr=1e-2, seed=0).fit(g, F)
    assert adjusted_rand_score(three_regions.reshape(-1), s.labels_.numpy()) >= 0.95
    assert torch.allclose(s.assignment_.sum(1), torch.ones(192))
    if loss == "cc":  # K is only an upper bound: unused clusters dropped, labels renumbered
        assert s.n_clusters_ == 3 and int(s.labels_.max()) == 2
        assert s.assignment_.shape == (192, 3)  # their columns too
    else:
        assert s.assignment_.shape == (192, k)
    assert s.loss_history_[-1] < s.loss_history_[0]


def test_same_seed_same_labels_and_no_global_rng_side_effect(three_regions):
    F = planted_grid(12, 16, three_regions, noise=3.0).reshape(-1, 32)
    g = ncut_graph(F)
    torch.manual_seed(123)
    before = torch.rand(1)
    a = GNNSolver(2, seed=7).fit(g, F)
    torch.manual_seed(123)
    b = GNNSolver(2, seed=7).fit(g, F)
    after = torch.rand(1)
    assert torch.equal(a.assignment_, b.assignment_)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), before) and torch.equal(after, before)


def test_shared_init_is_seeded_and_final_pass_is_eval_mode(three_regions):
    s = GNNSolver(2, seed=3)
    h1, h2 = s.make_head(8), s.make_head(8)
    for p1, p2 in zip(h1.parameters(), h2.parameters()):
        assert torch.equal(p1, p2)
    F = planted_grid(12, 16, three_regions).reshape(-1, 32)
    fitted = GNNSolver(2, steps=5, seed=0).fit(ncut_graph(F), F)
    assert not fitted.head_.training
    # eval-mode output is deterministic: recomputing gives the stored assignment
    with torch.no_grad():
        again = torch.softmax(fitted.head_(gcn_propagate(ncut_graph(F), F)), -1)
    assert torch.allclose(again, fitted.assignment_, atol=1e-6)


@pytest.mark.parametrize("hidden", [64, 16])
def test_steps_zero_with_init_state_is_pure_inference(three_regions, hidden):
    """Pure inference propagates ``A_hat X`` (D = 32 <= hidden = 64) or ``A_hat (X Theta)``
    (hidden = 16 < D): the same head output either way."""
    F = planted_grid(12, 16, three_regions).reshape(-1, 32)
    g = ncut_graph(F)
    trained = GNNSolver(3, steps=50, lr=1e-2, hidden=hidden).fit(g, F)
    state = trained.head_.state_dict()
    inf = GNNSolver(3, steps=0, init_state=state, hidden=hidden).fit(g, F)
    assert torch.equal(inf.labels_, trained.labels_)
    assert torch.allclose(inf.assignment_, trained.assignment_, atol=1e-5)


def test_parameter_validation_messages():
    F = torch.randn(10, 4)
    with pytest.raises(ValueError, match=r"'n_clusters' parameter of GNNSolver must be an int "
                                         r"in the range \[2, inf\)\. Got 1 instead"):
        GNNSolver(1).fit(ncut_graph(F), F)
    with pytest.raises(ValueError, match="'loss' parameter"):
        GNNSolver(2, loss="nope").fit(ncut_graph(F), F)
    with pytest.raises(ValueError, match="n_nodes=10 should be >= n_clusters=20"):
        GNNSolver(20).fit(ncut_graph(F), F)
    with pytest.raises(ValueError, match="signed correlation-clustering graph"):
        GNNSolver(2, loss="cc").fit(ncut_graph(F), F)
    with pytest.raises(ValueError, match="Unknown solver"):
        create_solver("nope")


def test_sparse_graph_gives_same_labels_as_dense(three_regions):
    F = planted_grid(12, 16, three_regions).reshape(-1, 32)
    dense = GNNSolver(3, steps=60, lr=1e-2).fit(build_graph(F, "ncut"), F)
    sparse = GNNSolver(3, steps=60, lr=1e-2).fit(build_graph(F, "ncut", knn=192), F)
    assert adjusted_rand_score(dense.labels_.numpy(), sparse.labels_.numpy()) == pytest.approx(1.0)
    assert np.isclose(dense.ncut_, sparse.ncut_, atol=1e-4)


def test_fast_elu_matches_torch_elu_value_and_gradient():
    from deepcut.nn.head import ELU

    x = torch.linspace(-30, 5, 2001, requires_grad=True)
    y = ELU()(x)
    assert torch.allclose(y, torch.nn.functional.elu(x), atol=1e-6)
    (g,) = torch.autograd.grad(y.sum(), x)
    (g2,) = torch.autograd.grad(torch.nn.functional.elu(x).sum(), x)
    assert torch.allclose(g, g2, atol=1e-6)


def test_fast_dropout_keeps_one_minus_p_scales_and_is_seeded():
    from deepcut.nn.head import Dropout

    drop = Dropout(0.25)
    x = torch.ones(256, 256, requires_grad=True)
    torch.manual_seed(0)
    y = drop(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.01  # 65536 draws: 4 sigma is 0.007
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.75))  # E[y] = x
    (g,) = torch.autograd.grad(y.sum(), x)
    assert torch.equal(g, y.detach())  # d y / d x = mask / (1 - p)
    torch.manual_seed(0)
    assert torch.equal(drop(x), y)  # torch's global seed drives the mask
    drop.eval()
    assert drop(x) is x or torch.equal(drop(x), x)
    assert Dropout(0.0).train()(x) is x or torch.equal(Dropout(0.0)(x), x)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))
