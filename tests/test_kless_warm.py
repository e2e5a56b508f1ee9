"""The k-less CC head's warm start: the GNN fitted to a given partition (any loss, CC
included), the eigengap method's partition as the CC estimator's start, CC changing K where its
objective says so, and digits draws where the warm-started CC finds K and the previous default
(seeded init alone) did not."""
import pytest
import torch
from conftest import digits_draw
from sklearn.metrics import adjusted_rand_score

from deepcut.cluster import EigengapClustering, KLessClustering, modularity_graph
from deepcut.solvers import GNNSolver
from deepcut.solvers.cc_rounding import cc_objective, cc_round

pytestmark = pytest.mark.usefixtures("one_thread")

PREVIOUS = {"warm_start": None, "resolution": 1.0, "pca": None, "smooth": 10, "steps": 100}


def planted(k: int, n_per: int = 25, dim: int = 16, sep: float = 6.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    means = torch.linalg.qr(torch.randn(dim, dim, generator=g))[0][:k] * sep
    y = torch.arange(k).repeat_interleave(n_per)
    perm = torch.randperm(len(y), generator=g)
    return (means[y] + torch.randn(len(y), dim, generator=g))[perm], y[perm]


def test_cc_head_from_a_merged_warm_partition_splits_it():
    # 4 planted groups; the warm partition merges groups 2 and 3: the head starts there (its
    # argmax agrees with it after the cross-entropy steps), and the CC rounding of its labels
    # splits the merged group, since the split lowers the CC objective
    X, y = planted(4, seed=1)
    X = X - X.mean(0)
    g = modularity_graph(X)
    merged = torch.where(y == 3, 2, y)
    s = GNNSolver(10, loss="cc", steps=20, lr=1e-2, seed=0, drop_empty=True)
    s.fit(g, X, warm_labels=merged)
    assert s.warm_start_ == "given" and s.n_warm_iter_ >= 1
    assert adjusted_rand_score(merged, s.labels_) > 0.95  # the head kept the warm partition
    z = cc_round(g.W, s.labels_, 10)
    assert int(z.max()) + 1 == 4 and adjusted_rand_score(y, z) == 1.0
    assert cc_objective(g.W, z) < cc_objective(g.W, merged)
    # the same solver without warm labels is the seeded init alone (cc has no warm start)
    assert GNNSolver(10, loss="cc", steps=5, seed=0).fit(g, X).warm_start_ is None


def test_warm_labels_are_checked():
    X, y = planted(3, seed=0)
    g = modularity_graph(X - X.mean(0))
    s = GNNSolver(4, loss="cc", steps=2, seed=0)
    with pytest.raises(ValueError, match="warm_labels: 75 ids in \\[0, 4\\)"):
        s.fit(g, X, warm_labels=y[:10])
    with pytest.raises(ValueError, match="got 75 in \\[0, 7\\]"):
        s.fit(g, X, warm_labels=torch.where(y == 2, 7, y))


def test_kless_starts_from_the_eigengap_partition():
    # one view (no PCA): the warm partition is EigengapClustering's on the same samples (both
    # smooth 5), and the result's CC objective is never above that partition's rounded
    X, _ = digits_draw(4, 20031, per_class=40)
    est = KLessClustering(pca=None, seed=0).fit(X)
    eg = EigengapClustering(pca=None, seed=0).fit(X)
    assert est.warm_k_ == eg.n_clusters_
    Xc = torch.from_numpy(X - X.mean(0))
    from deepcut.cluster import neighbour_mean

    Xs = neighbour_mean(Xc, 5)
    W = modularity_graph(Xs - Xs.mean(0), 0.9).W
    start = cc_round(W, torch.from_numpy(eg.labels_), 10)
    assert est.objective_ <= cc_objective(W, start) + 1e-6
    assert est.objective_ == pytest.approx(cc_objective(W, torch.from_numpy(est.labels_)),
                                           rel=1e-6)
    assert est.solver_.warm_start_ == "given" and est.solver_.n_iter_ <= 10 + 20
    # the paper's setting: no warm start, 100 CC steps from the seeded init
    paper = KLessClustering(pca=None, warm_start=None, steps=100, rounding=False, seed=0).fit(X)
    assert paper.warm_k_ is None and paper.solver_.n_iter_ == 100
    with pytest.raises(ValueError, match="warm_start"):
        KLessClustering(warm_start="falcon").fit(X)


@pytest.mark.parametrize("seed", [20009, 20018])
def test_digits_5_classes_found_where_the_seeded_init_was_not(seed):
    # 5 digit classes, 100 images each, draws outside the benchmark's tuning and evaluation
    # seeds: the previous default (seeded init, no PCA, resolution 1, smooth 10) finds 4 (ARI
    # .75 and .76), the warm-started CC 5 (ARI .95 and .97)
    X, y = digits_draw(5, seed)
    old = KLessClustering(seed=0, **PREVIOUS).fit(X)
    assert old.n_clusters_ == 4 and adjusted_rand_score(y, old.labels_) < 0.8
    est = KLessClustering(seed=0).fit(X)
    assert est.n_clusters_ == 5 and adjusted_rand_score(y, est.labels_) > 0.9
