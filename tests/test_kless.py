"""k-less clustering: the CC GNN finds the true K on planted data (3 to 6 groups), the eigengap
baseline beside it, the kless task and the cluster.py CLI."""
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score
from test_parts import _pf, _solver_param, orthogonal_grid

from deepcut.cluster import EigengapClustering, KLessClustering
from deepcut.config import SegmenterConfig
from deepcut.pipeline import Segmenter

pytestmark = pytest.mark.usefixtures("one_thread")


def planted(k: int, n_per: int = 25, dim: int = 16, sep: float = 6.0, seed: int = 0):
    """``(k * n_per, dim)`` samples around ``k`` orthogonal means of norm ``sep``; their labels."""
    g = torch.Generator().manual_seed(seed)
    means = torch.linalg.qr(torch.randn(dim, dim, generator=g))[0][:k] * sep
    y = torch.arange(k).repeat_interleave(n_per)
    perm = torch.randperm(len(y), generator=g)  # no order to lean on
    return (means[y] + torch.randn(len(y), dim, generator=g))[perm].numpy(), y[perm].numpy()


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_cc_recovers_the_true_k(k):
    X, y = planted(k, seed=k)
    est = KLessClustering(k_max=10, seed=0).fit(X)
    assert est.n_clusters_ == k
    assert adjusted_rand_score(y, est.labels_) == 1.0
    assert sorted(np.unique(est.labels_)) == list(range(k))  # renumbered, no gaps
    # the head's soft assignment over its non-empty clusters: column k is its label k
    assert est.assignment_.shape == (len(y), est.solver_.n_clusters_)
    assert np.array_equal(est.assignment_.argmax(1), est.solver_.labels_.numpy())


@pytest.mark.parametrize("k", [3, 6])
def test_eigengap_baseline_beside_it(k):
    X, y = planted(k, seed=k)
    est = EigengapClustering(k_max=10).fit(X)
    assert est.n_clusters_ == k and adjusted_rand_score(y, est.labels_) == 1.0
    assert est.eigenvalues_.shape == (11,)


def test_same_seed_same_labels_and_restarts():
    X, _ = planted(4, seed=1)
    a = KLessClustering(seed=3).fit_predict(X)
    b = KLessClustering(seed=3).fit_predict(X)
    assert np.array_equal(a, b)
    best = KLessClustering(seed=3, n_init=2).fit(X)
    assert best.loss_ <= KLessClustering(seed=3).fit(X).loss_ + 1e-7


@pytest.mark.parametrize("params,match", [
    ({"k_max": 1}, (r"The 'k_max' parameter of KLessClustering must be an int in the range "
                    r"\[2, inf\). Got 1 instead.")),
    ({"alpha": 0.5}, r"'alpha' parameter of KLessClustering must be a float in the range \[1"),
    ({"metric": "l2"}, r"'metric' parameter of KLessClustering must be one of"),
])
def test_params_validated_at_fit(params, match):
    X, _ = planted(3)
    with pytest.raises(ValueError, match=match):
        KLessClustering(**params).fit(X)


def test_data_checks():
    with pytest.raises(ValueError, match=r"n_samples=8 should be > k_max=10"):
        KLessClustering().fit(np.ones((8, 3)))
    with pytest.raises(ValueError, match="2-D"):
        EigengapClustering().fit(np.ones(20))


@pytest.mark.parametrize("solver", [_solver_param("gnn"), _solver_param("spectral"),
                                    _solver_param("falcon")])
def test_kless_task_finds_k_on_a_planted_image(solver):
    r = np.zeros((12, 16), dtype=np.int64)
    r[2:7, 2:8] = 1
    r[6:11, 9:15] = 2
    r[:, 14:] = 3
    # graph="ncut": these planted features are i.i.d. noise around region means, where the local
    # graph (classic's default for kless) with sigma_F from the median edge fragments regions
    # (falcon: K from the eigengap of the graph falcon then cuts, here the NCut graph)
    cfg = SegmenterConfig(backbone="classic", task="kless", solver=solver, lr=1e-2,
                          graph=None if solver == "gnn" else "ncut",
                          task_params={"k_max": 8, "k_rule": "cc" if solver == "gnn" else None})
    # sep 10: with DeepCut's raw dot product, W = FF^T - max/3 keeps every within-region pair
    # attractive and every cross-region pair repulsive
    out = Segmenter(cfg).predict_features(_pf(orthogonal_grid(r, sep=10.0)))
    assert out.n_clusters == 4 and out.extra["k_found"] == 4
    assert out.extra["k_rule"] == ("cc" if solver == "gnn" else "eigengap")
    assert adjusted_rand_score(r.reshape(-1), out.patch_labels.reshape(-1)) == 1.0
    assert set(np.unique(out.patch_labels)) == set(range(4)) == set(out.label_names)
    assert out.record()["n_clusters"] == 4  # the JSON reports K
    if solver == "gnn":
        assert out.extra["cc_shift"] == "mean"


def test_kless_task_paper_threshold_and_bad_shift():
    r = np.zeros((8, 8), dtype=np.int64)
    r[:, 4:] = 1
    pf = _pf(orthogonal_grid(r, sep=10.0))
    cfg = SegmenterConfig(backbone="classic", task="kless", solver="gnn", lr=1e-2, loss="cc",
                          task_params={"k_max": 4, "cc_shift": "max"})
    out = Segmenter(cfg).predict_features(pf)
    assert out.extra["cc_shift"] == "max" and out.n_clusters == 2
    from deepcut.errors import ConfigError

    cfg = SegmenterConfig(backbone="classic", task="kless", task_params={"cc_shift": "median"})
    with pytest.raises(ConfigError, match="'cc_shift' task parameter must be one of"):
        Segmenter(cfg).predict_features(pf)


def test_kless_task_k_rule_defaults_and_the_gnn_by_eigengap():
    from deepcut.errors import ConfigError
    from deepcut.tasks.kless import default_k_rule

    def rule(**kw):
        return default_k_rule(SegmenterConfig(task="kless", **kw))
    assert rule(solver="gnn", graph="local") == "eigengap"  # the classic backbone's graph
    assert rule(solver="gnn", graph="ncut") == "cc"  # a dense feature graph (ViT features)
    assert rule(solver="gnn", graph="local", preset="paper") == "cc"  # DeepCut's k-less
    assert rule(solver="gnn", loss="cc") == "cc"  # the CC loss asked for: the CC graph
    assert rule(solver="spectral", graph="local") == rule(solver="falcon") == "eigengap"
    r = np.zeros((12, 16), dtype=np.int64)
    r[2:7, 2:8] = 1
    r[6:11, 9:15] = 2
    r[:, 14:] = 3
    pf = _pf(orthogonal_grid(r, sep=10.0))
    # the GNN by the eigengap rule: K from the graph's spectrum, then the GNN's NCut cut
    cfg = SegmenterConfig(backbone="classic", task="kless", solver="gnn", graph="ncut",
                          task_params={"k_max": 8, "k_rule": "eigengap"})
    out = Segmenter(cfg).predict_features(pf)
    assert out.extra["k_rule"] == "eigengap" and out.extra["k_found"] == out.n_clusters == 4
    assert adjusted_rand_score(r.reshape(-1), out.patch_labels.reshape(-1)) == 1.0
    assert out.extra["alpha"] is None and out.extra["cc_shift"] is None
    for params, solver, match in (({"k_rule": "cc"}, "spectral", "'cc' needs the gnn solver"),
                                  ({"k_rule": "median"}, "gnn", "must be one of"),
                                  ({"k_rule": "eigengap"}, "gnn", "the CC loss finds K itself")):
        cfg = SegmenterConfig(backbone="classic", task="kless", solver=solver, task_params=params,
                              loss="cc" if "itself" in match else "soft_ncut")
        with pytest.raises(ConfigError, match=match):
            Segmenter(cfg).predict_features(pf)


def test_kless_task_cc_round():
    # opt-in CC rounding on the task's graph: recorded, K the rounded labels' count, and the
    # labels' discrete CC objective no higher than the head's argmax's
    from deepcut.errors import ConfigError
    from deepcut.graphs import build_graph
    from deepcut.solvers.cc_rounding import cc_objective

    r = np.zeros((10, 10), dtype=np.int64)
    r[:, 5:] = 1
    r[5:, :5] = 2
    pf = _pf(orthogonal_grid(r, sep=4.0))  # noisy: the argmax is not a local optimum
    outs = {}
    for rnd in (False, True):
        cfg = SegmenterConfig(backbone="classic", task="kless", solver="gnn", lr=1e-2, seed=0,
                              task_params={"k_max": 6, "cc_round": rnd, "k_rule": "cc"})
        outs[rnd] = Segmenter(cfg).predict_features(pf)
        assert outs[rnd].extra["cc_round"] is rnd
        assert outs[rnd].n_clusters == outs[rnd].extra["k_found"] <= 6
        hit = outs[rnd].n_clusters == 6
        assert hit == any("K found = K_max" in m for m in outs[rnd].task_output.solver["warnings"])
    W = build_graph(pf.flat, "cc", metric="dot", alpha=3.0).W
    f = {k: cc_objective(W, torch.from_numpy(o.patch_labels.reshape(-1))) for k, o in outs.items()}
    assert f[True] <= f[False] + 1e-6
    cfg = SegmenterConfig(backbone="classic", task="kless", task_params={"cc_round": "yes"})
    with pytest.raises(ConfigError, match="'cc_round' task parameter must be true or false"):
        Segmenter(cfg).predict_features(pf)


def test_cluster_cli_npy(tmp_path, capsys):
    from deepcut.cli.cluster import main

    X, y = planted(3, seed=2)
    np.save(tmp_path / "X.npy", X)
    for method in ("cc", "eigengap"):
        out = tmp_path / f"{method}.csv"
        assert main([str(tmp_path / "X.npy"), "--out", str(out), "--method", method,
                     "--quiet"]) == 0
        assert capsys.readouterr().out.strip() == "K=3"
        rows = out.read_text().splitlines()
        assert rows[0] == "item,label" and len(rows) == len(y) + 1
        labels = np.array([int(r.split(",")[1]) for r in rows[1:]])
        assert adjusted_rand_score(y, labels) == 1.0
        rec = json.loads(out.with_suffix(".json").read_text())
        assert rec["k_found"] == 3 and rec["method"] == method
    assert main([str(tmp_path / "missing.npy"), "--out", str(tmp_path / "m.csv")]) == 2


def test_cluster_cli_images_goes_on_after_a_bad_file(tmp_path, capsys):
    from PIL import Image

    from deepcut.cli.cluster import main

    for i in range(6):
        Image.new("RGB", (32, 32), (40 * i, 30, 30)).save(tmp_path / f"im{i}.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    rc = main([str(tmp_path), "--out", str(tmp_path / "c.csv"), "--backbone", "classic",
               "--size", "32", "--k-max", "3", "--method", "eigengap", "--quiet"])
    assert rc == 1  # one unreadable file, the rest clustered
    captured = capsys.readouterr()
    assert captured.out.strip().startswith("K=")
    assert "skipped:" in captured.err and "bad.png" in captured.err
    assert "classic" in captured.err  # warned: its per-image standardised features
    rows = (tmp_path / "c.csv").read_text().splitlines()[1:]
    assert sorted(r.split(",")[0] for r in rows) == [f"im{i}.png" for i in range(6)]


def test_resolved_graph_of_kless_is_the_graph_its_rule_cuts():
    """The JSON's ``config.graph`` names the graph that ran: the CC rule (``--alpha`` sets it
    in infer) builds the CC graph even where the backbone's default graph is ``local``."""
    from deepcut.config import SegmenterConfig

    cc = SegmenterConfig(task="kless", backbone="classic", task_params={"k_rule": "cc"})
    assert cc.resolved("classic").graph == "cc"
    assert SegmenterConfig(task="kless", backbone="classic").resolved("classic").graph == "local"
    assert SegmenterConfig(task="kless").resolved("dino_vits8").graph == "cc"  # the GNN's rule
    # a given graph the CC rule does not cut: recorded as what ran, and said once
    given = SegmenterConfig(task="kless", graph="ncut")
    with pytest.warns(UserWarning, match="graph='ncut' is not used: the kless task's CC rule"):
        given.validate()
    assert given.resolved("dino_vits8").graph == "cc"
    by_gap = SegmenterConfig(task="kless", graph="ncut", task_params={"k_rule": "eigengap"})
    assert by_gap.resolved("dino_vits8").graph == "ncut"


def test_clustering_estimators_warn_about_the_labels_they_return():
    """An inner fit's degenerate result (the CC head's one cluster, before rounding and the
    warm candidate) is not reported; the labels kept are: K = k_max says the bound was hit."""
    import warnings as w

    from deepcut.cluster import EigengapClustering, KLessClustering
    from deepcut.solvers.base import DegenerateResultWarning

    X = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    for est in (KLessClustering(2, seed=0), EigengapClustering(2, seed=0)):
        with w.catch_warnings(record=True) as said:
            w.simplefilter("always")
            est.fit(X)
        msgs = [str(m.message) for m in said if issubclass(m.category, DegenerateResultWarning)]
        assert est.n_clusters_ == 2
        assert msgs == [(f"{type(est).__name__}: K found = k_max = 2 for 3 samples (the bound "
                         "was hit: raise k_max)")]


def test_pca_down_to_one_dimension_under_cosine_is_said():
    """Three groups along one line: PCA at 0.7 keeps one coordinate, whose cosine similarities
    are +-1, so at most two clusters come out; the estimator says so (without PCA: three)."""
    from deepcut.cluster import KLessClustering

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(m, 1, (30, 8)) for m in (0, 6, 12)])
    with pytest.warns(UserWarning, match="PCA kept 1 of 8 feature dimensions"):
        assert KLessClustering(seed=0).fit(X).n_clusters_ <= 2
    assert KLessClustering(seed=0, pca=None).fit(X).n_clusters_ == 3
