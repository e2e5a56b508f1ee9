"""k-less feature preparation: PCA + partial whitening (hand-computed and against scikit-learn),
the K consensus over whitening powers, and K found on digits where the raw samples merge two
classes."""
import json

import numpy as np
import pytest
import torch
from conftest import digits_draw
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from deepcut.cluster import EigengapClustering, KLessClustering, consensus_k, pca_whiten

pytestmark = pytest.mark.usefixtures("one_thread")


def test_pca_whiten_by_hand():
    # centred, orthogonal directions: variances (N - 1 = 3) 8/3 and 2/3
    X = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    for power, (a, b) in {0.0: (2.0, 1.0),
                          1.0: (2 / (8 / 3) ** 0.5, 1 / (2 / 3) ** 0.5),  # both 1.2247
                          0.5: (2 / (8 / 3) ** 0.25, 1 / (2 / 3) ** 0.25)}.items():
        Z = pca_whiten(X, 1.0, power).abs()
        assert Z.shape == (4, 2)
        assert Z[:2, 0].tolist() == pytest.approx([a, a], rel=1e-5)
        assert Z[2:, 1].tolist() == pytest.approx([b, b], rel=1e-5)
        assert Z[:2, 1].tolist() == pytest.approx([0, 0], abs=1e-6)
    # 1/2 keeps the larger direction larger, by the square root of the ratio of the sd's
    Z = pca_whiten(X, 1.0, 0.5).abs()
    assert float(Z[0, 0] / Z[2, 1]) == pytest.approx(2 ** 0.5, rel=1e-5)


def test_pca_whiten_matches_scikit_learn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 6)) * np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.1])
    T = torch.from_numpy(X)
    assert np.allclose(pca_whiten(T, 1.0, 0.0).numpy(), PCA().fit_transform(X))
    assert np.allclose(pca_whiten(T, 1.0, 1.0).numpy(), PCA(whiten=True).fit_transform(X))
    # the variance fraction keeps scikit-learn's number of components
    for f in (0.5, 0.7, 0.9):
        assert pca_whiten(T, f, 0.5).shape[1] == PCA(f, svd_solver="full").fit(X).n_components_
    # power 1/2: each component's variance becomes its standard deviation
    Z = pca_whiten(T, 1.0, 0.5).numpy()
    assert np.allclose(Z.var(0, ddof=1), PCA().fit(X).explained_variance_ ** 0.5)
    # null directions (a constant and a copied feature) are dropped, not divided by 0
    Xc = np.column_stack([X[:, :3], np.ones(60), X[:, 0]])
    Z = pca_whiten(torch.from_numpy(Xc), 1.0, 1.0)
    assert Z.shape[1] == 3 and torch.isfinite(Z).all()


def test_consensus_k_by_hand():
    assert consensus_k([3, 4, 4]) == 1  # majority 4: the first view that found it
    assert consensus_k([5, 5, 3]) == 0
    assert consensus_k([4, 3, 5]) == 1  # all differ: the smallest K
    assert consensus_k([5, 3, 3, 5]) == 1  # tie 2-2: the smaller K
    assert consensus_k([6]) == 0


def test_consensus_view_is_the_single_power_fit():
    X, _ = digits_draw(4, 20011, per_class=50)
    powers = (0.0, 0.5, 1.0)
    est = EigengapClustering(pca=0.7, whiten=powers, seed=0).fit(X)
    assert len(est.view_k_) == 3
    win = consensus_k(est.view_k_)
    assert est.n_clusters_ == est.view_k_[win]
    single = [EigengapClustering(pca=0.7, whiten=p, seed=0).fit(X) for p in powers]
    assert [s.n_clusters_ for s in single] == est.view_k_
    assert np.array_equal(est.labels_, single[win].labels_)
    assert EigengapClustering(pca=0.7, whiten=0.5, seed=0).fit(X).view_k_ == [est.view_k_[1]]


def test_no_centring_means_no_pca():
    # center=False keeps the features as given (the paper's setting): pca is not applied
    X = np.concatenate([np.random.default_rng(i).normal(size=(30, 8)) + 6 * np.eye(8)[i]
                        for i in range(3)])
    a = EigengapClustering(center=False, pca=None, seed=0).fit(X)
    b = EigengapClustering(center=False, pca=0.5, whiten=(0.0, 1.0), seed=0).fit(X)
    assert np.array_equal(a.labels_, b.labels_) and b.view_k_ == [a.n_clusters_]


@pytest.mark.parametrize("kw", [{"pca": 0.0}, {"pca": 1.5}, {"whiten": -1.0}, {"whiten": ()},
                                {"whiten": (0.5, "a")}])
def test_bad_preparation_parameters_are_refused(kw):
    X = np.random.default_rng(0).normal(size=(30, 4))
    name = next(iter(kw))
    with pytest.raises(ValueError, match=name):
        EigengapClustering(**kw).fit(X)
    with pytest.raises(ValueError, match=name):
        KLessClustering(**kw).fit(X)


def test_planted_groups_recovered_with_whitening():
    # 4 groups, orthogonal means of norm 4 in 16-D, unit noise (the benchmark's planted data);
    # ARI without PCA on this seed: spectral .92, CC .97 (noise as large as the separation)
    g = torch.Generator().manual_seed(3)
    means = torch.linalg.qr(torch.randn(16, 16, generator=g))[0][:4] * 4
    y = torch.arange(4).repeat_interleave(25)
    X = (means[y] + torch.randn(100, 16, generator=g)).numpy()
    for est in (EigengapClustering(pca=0.7, whiten=(0.0, 0.5, 1.0), seed=0),
                KLessClustering(pca=0.7, whiten=0.5, seed=0)):
        z = est.fit_predict(X)
        assert est.n_clusters_ == 4 and adjusted_rand_score(y.numpy(), z) > 0.9


def test_cluster_cli_pca_and_whiten_flags(tmp_path, capsys):
    from deepcut.cli.cluster import main

    X = np.concatenate([np.random.default_rng(i).normal(size=(30, 8)) + 6 * np.eye(8)[i]
                        for i in range(3)])
    np.save(tmp_path / "X.npy", X)
    cases = {"one": ["--pca", "0.8", "--whiten", "1"],
             "many": ["--pca", "0.9", "--whiten", "0", "0.5"],
             "off": ["--no-pca"]}
    for name, flags in cases.items():
        out = tmp_path / f"{name}.csv"
        assert main([str(tmp_path / "X.npy"), "--out", str(out), "--quiet", "--method",
                     "eigengap", *flags]) == 0
        assert capsys.readouterr().out.strip() == "K=3"
        cases[name] = json.loads(out.with_suffix(".json").read_text())["params"]
    assert cases["one"]["pca"] == 0.8 and cases["one"]["whiten"] == 1.0
    assert cases["many"]["pca"] == 0.9 and cases["many"]["whiten"] == [0.0, 0.5]
    assert cases["off"]["pca"] is None


def test_digits_five_classes_found_where_the_raw_samples_merge_two():
    # 5 digit classes (0/6/7/8/9), 60 images each, a draw outside the benchmark's seeds: on the
    # centred pixels the spectral rule finds 4 (ARI .66); the default PCA consensus finds 5
    # (views 4/5/5, ARI .82)
    X, y = digits_draw(5, 20024, per_class=60)
    raw = EigengapClustering(pca=None, seed=0).fit(X)
    est = EigengapClustering(seed=0).fit(X)
    assert raw.n_clusters_ == 4 and est.n_clusters_ == 5 and est.view_k_ == [4, 5, 5]
    assert adjusted_rand_score(y, est.labels_) > 0.8 > adjusted_rand_score(y, raw.labels_)
