"""Graph builders: Eq. 6 / Eq. 7 / Falcon affinity, kNN sparsification, PyG export."""
import pytest
import torch

from deepcut.graphs import build_graph, cc_graph, falcon_graph, knn_graph, ncut_graph

F = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])


def test_ncut_graph_eq6_by_hand():
    g = ncut_graph(F)
    # F F^T = [[1,2,0,-1],[2,4,0,-2],[0,0,1,0],[-1,-2,0,1]]: clip < 0, divide by max (4)
    expect = torch.tensor([[1, 2, 0, 0], [2, 4, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]) / 4.0
    assert torch.allclose(g.W, expect)
    assert torch.allclose(g.degree, expect.sum(1))
    assert g.kind == "ncut" and not g.signed


def test_cc_graph_eq7_by_hand():
    g = cc_graph(F, alpha=2.0, shift="max")  # the paper's Eq. 7 verbatim
    FF = F @ F.T
    assert torch.allclose(g.W, FF - 4.0 / 2.0)
    assert g.signed
    assert torch.allclose(g.degree, (FF - 2.0).clamp(min=0).sum(1))
    with pytest.raises(ValueError, match="alpha"):
        cc_graph(F, alpha=0.5)


def test_falcon_graph_minmax_power_and_diag():
    g = falcon_graph(F, beta=2.0)
    assert g.W.min().item() == pytest.approx(0.0)
    assert g.W.max().item() == pytest.approx(1.0)
    cos = torch.nn.functional.normalize(F, dim=1) @ torch.nn.functional.normalize(F, dim=1).T
    assert torch.allclose(g.W, ((cos + 1) / 2) ** 2, atol=1e-6)  # cos ranges over [-1, 1] here
    g2 = falcon_graph(F, beta=2.0, lam=0.5)
    assert torch.allclose(g2.W - g.W, torch.diag(0.5 * g.W.sum(1)), atol=1e-6)


def test_knn_graph_keeps_k_best_and_is_symmetric():
    torch.manual_seed(0)
    X = torch.randn(40, 8)
    g = knn_graph(X, k=40, kind="ncut")
    assert torch.allclose(g.W.to_dense(), ncut_graph(X).W, atol=1e-6)  # k = N: same as dense
    s = knn_graph(X, k=5, kind="ncut", chunk_size=7)
    D = s.W.to_dense()
    assert torch.equal(D, D.T)
    assert ((D > 0).sum(1) >= 1).all()
    assert torch.allclose(s.degree, D.sum(1), atol=1e-5)


def test_build_graph_switches_to_sparse_above_limit():
    X = torch.randn(50, 4)
    assert not build_graph(X, "ncut", dense_max_nodes=100).is_sparse
    assert build_graph(X, "ncut", dense_max_nodes=10).is_sparse
    with pytest.raises(ValueError, match="graph kind"):
        build_graph(X, "spectral")


def test_to_pyg_edges_are_positive_entries():
    g = ncut_graph(F)
    d = g.to_pyg()
    assert d.num_nodes == 4
    assert d.edge_index.shape[1] == int((g.W > 0).sum())
    assert (d.edge_weight > 0).all()
