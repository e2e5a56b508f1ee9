"""CC rounding (moves, merges, spectral splits on the discrete CC objective) and the neighbour
mean of KLessClustering / EigengapClustering: hand-computed values and planted K."""
import numpy as np
import pytest
import torch
from test_kless import planted

from deepcut.cluster import EigengapClustering, KLessClustering, neighbour_mean
from deepcut.graphs import cc_graph
from deepcut.solvers.cc_rounding import cc_objective, cc_round

pytestmark = pytest.mark.usefixtures("one_thread")


def _blocks(sizes, inside=1.0, across=-1.0):
    """Signed W: ``inside`` within the planted blocks, ``across`` between them, 0 diagonal."""
    y = torch.arange(len(sizes)).repeat_interleave(torch.tensor(sizes))
    W = torch.where(y[:, None] == y[None, :], inside, across)
    return W.fill_diagonal_(0.0), y


def test_objective_by_hand():
    W, _ = _blocks([2, 2])
    # one cluster: 4 pairs inside (+1 each way) and 8 ordered pairs across (-1): -(4 - 8) = 4
    assert cc_objective(W, torch.zeros(4, dtype=torch.long)) == pytest.approx(4.0)
    assert cc_objective(W, torch.tensor([0, 0, 1, 1])) == pytest.approx(-4.0)
    assert cc_objective(W, torch.arange(4)) == pytest.approx(0.0)  # singletons: no pair


def test_split_recovers_merged_blocks_and_merge_joins_halves():
    W, y = _blocks([6, 6, 6])
    z = cc_round(W, torch.zeros(18, dtype=torch.long), k_max=10)  # all merged: two splits
    assert np.unique(z.numpy()).size == 3
    assert (z[:, None] == z[None, :]).equal(y[:, None] == y[None, :])
    halves = torch.arange(18) // 3  # every block cut in two: merges join them
    z = cc_round(W, halves, k_max=10)
    assert (z[:, None] == z[None, :]).equal(y[:, None] == y[None, :])


def test_moves_fix_misplaced_nodes_and_k_max_is_kept():
    W, y = _blocks([5, 5, 5, 5])
    z0 = y.clone()
    z0[[0, 6, 12]] = torch.tensor([3, 0, 1])  # three misplaced nodes
    z = cc_round(W, z0, k_max=10)
    assert (z[:, None] == z[None, :]).equal(y[:, None] == y[None, :])
    # 4 true blocks but k_max = 2: the splits stop at 2 clusters
    assert int(cc_round(W, torch.zeros(20, dtype=torch.long), k_max=2).max()) + 1 == 2
    with pytest.raises(ValueError, match="4 clusters, more than k_max=3"):
        cc_round(W, y, k_max=3)  # a start above the bound: no move would bring it down


def test_rounding_never_raises_the_objective():
    g = torch.Generator().manual_seed(0)
    for s in range(5):
        X = torch.randn(60, 6, generator=g)
        W = cc_graph(X, alpha=4.0, metric="cosine").W
        z0 = torch.randint(0, 4, (60,), generator=g)
        z = cc_round(W, z0, k_max=8)
        assert cc_objective(W, z) <= cc_objective(W, z0) + 1e-6
        assert int(z.max()) + 1 <= 8, s


def test_an_outlier_is_not_cut_off_as_a_cluster_of_its_own():
    # node 0 is slightly repelled by its block (-0.1) and strongly by the other (-1): cutting it
    # off alone lowers the objective, but no step opens a one-node cluster, so K stays 2
    W, y = _blocks([5, 5])
    W[0, 1:5] = W[1:5, 0] = -0.1
    alone = y.clone()
    alone[0] = 2
    assert cc_objective(W, alone) < cc_objective(W, y)
    assert (cc_round(W, y, k_max=10) == y).all()


def test_rounding_refuses_sparse():
    with pytest.raises(ValueError, match="dense"):
        cc_round(torch.eye(3).to_sparse(), torch.zeros(3, dtype=torch.long), 3)


def test_neighbour_mean_by_hand():
    X = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    # each row's 2 most cosine-similar rows are itself and its partner
    out = neighbour_mean(X, 2)
    assert torch.allclose(out, torch.tensor([[0.95, 0.05]] * 2 + [[0.05, 0.95]] * 2))
    assert neighbour_mean(X, 1) is X


def test_planted_k6_found_where_the_head_alone_merges():
    # seeds where the GNN's argmax alone (no rounding) merges groups (K 5, 3, 4 for 6 groups;
    # on seeds 2000..2011 it found 6 on 2 of 12, the rounded labels on 12 of 12): the rounding's
    # spectral splits recover them (issue 10: K found, not merged)
    for s in (0, 2, 3):
        X, _ = planted(6, sep=4.0, seed=2000 + s)
        est = KLessClustering(graph="threshold", pca=None, n_init=1, seed=s, rounding=False,
                              smooth=10, warm_start=None)
        assert est.fit(X).n_clusters_ < 6
        assert est.set_params(rounding=True).fit(X).n_clusters_ == 6


def test_n_init_keeps_the_lowest_discrete_objective():
    X, _ = planted(4, sep=4.0, seed=5)
    kw = {"graph": "threshold", "pca": None, "smooth": 10, "warm_start": None, "seed": 0}
    one = KLessClustering(n_init=1, **kw).fit(X)
    three = KLessClustering(n_init=3, **kw).fit(X)
    assert three.objective_ <= one.objective_ + 1e-9
    # objective_ is the discrete objective of labels_ on the estimator's own graph
    Xs = neighbour_mean(torch.from_numpy(X - X.mean(0)), 10)
    W = cc_graph(Xs - Xs.mean(0), 10.0, "cosine").W
    assert three.objective_ == pytest.approx(cc_objective(W, torch.from_numpy(three.labels_)),
                                             rel=1e-5)


def test_eigengap_with_neighbour_mean_on_planted():
    X, _ = planted(5, sep=4.0, seed=3)
    assert EigengapClustering(seed=0).fit(X).n_clusters_ == 5
    assert EigengapClustering(smooth=0, seed=0).fit(X).n_clusters_ == 5
