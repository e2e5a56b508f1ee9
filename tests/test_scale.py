"""The large-image path: landmark graphs (deepcut.graphs.landmarks) and their extension."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import planted_grid
from sklearn.metrics import adjusted_rand_score

from deepcut.backbones.base import PatchFeatures
from deepcut.config import SegmenterConfig
from deepcut.errors import ConfigError
from deepcut.graphs import (
    LandmarkGraph,
    build_graph,
    fit_on_landmarks,
    landmark_graph,
    ncut_graph,
)
from deepcut.pipeline import Segmenter
from deepcut.solvers import SpectralNCut, create_solver
from deepcut.tasks.base import solve

pytestmark = pytest.mark.usefixtures("one_thread")


def _regions(h: int, w: int) -> np.ndarray:
    """Background (0), a disc object (1) and a block touching nothing (2)."""
    yy, xx = np.mgrid[:h, :w]
    r = np.zeros((h, w), dtype=np.int64)
    r[(yy - h // 2) ** 2 + (xx - w // 3) ** 2 <= (h // 4) ** 2] = 1
    r[h // 8: h // 3, 3 * w // 4: w - 2] = 2
    return r


def _pf(F: torch.Tensor) -> PatchFeatures:
    h, w, _ = F.shape
    return PatchFeatures(features=F, cls=None, input_size=(8 * h, 8 * w),
                         image_size=(8 * h, 8 * w), patch_size=8, stride=8, backbone="planted")


@pytest.mark.parametrize("solver", ["spectral", "falcon", "gnn"])
def test_large_path_segments_planted_image(solver):
    h, w = 64, 80  # 5120 nodes: above dense_max_nodes, so the landmark path is taken
    obj = (_regions(h, w) == 1).astype(np.int64)
    F = planted_grid(h, w, obj, dim=16, noise=1.0, sep=2.0)
    cfg = SegmenterConfig(backbone="classic", solver=solver, dense_max_nodes=4096)
    est, g = solve(F.reshape(h * w, -1), cfg, 2, grid=(h, w))
    assert isinstance(g, LandmarkGraph) and g.num_nodes == cfg.landmarks
    assert est.labels_.shape == (h * w,) and "extend" in est.timings_
    assert adjusted_rand_score(obj.reshape(-1), est.labels_.numpy()) > 0.99
    # end to end: the segment task names the object, and every patch is labelled
    pred = Segmenter(cfg).predict_features(_pf(F))
    iou = ((pred.patch_labels == 1) & (obj == 1)).sum() / ((pred.patch_labels == 1) | (obj == 1)).sum()
    assert iou > 0.99


def test_large_path_three_regions_spectral():
    h, w = 60, 60
    r = _regions(h, w)
    F = planted_grid(h, w, r, dim=16, noise=1.0, sep=4.0, seed=3).reshape(h * w, -1)
    g = landmark_graph(F, "ncut", n_landmarks=300, metric="cosine", seed=1)
    est = fit_on_landmarks(SpectralNCut(3), g, F)
    assert est.landmark_labels_.shape == (300,)
    assert adjusted_rand_score(r.reshape(-1), est.labels_.numpy()) > 0.99
    torch.testing.assert_close(est.assignment_.sum(1), torch.ones(h * w))


def test_every_node_a_landmark_is_the_dense_solve():
    r = _regions(20, 24)
    F = planted_grid(20, 24, r, dim=8, noise=1.5, sep=1.5).reshape(480, -1)
    g = landmark_graph(F, "ncut", n_landmarks=10_000)
    dense = ncut_graph(F)
    assert torch.equal(g.landmarks, torch.arange(480))
    torch.testing.assert_close(g.W, dense.W)
    a = fit_on_landmarks(SpectralNCut(3), g, F).labels_
    b = SpectralNCut(3).fit(dense).labels_
    assert torch.equal(a, b)


@pytest.mark.parametrize("kind", ["ncut", "cc", "falcon"])
def test_affinity_to_landmark_clusters_by_hand(kind):
    gen = torch.Generator().manual_seed(0)
    F = torch.randn(300, 6, generator=gen)
    g = landmark_graph(F, kind, n_landmarks=40, seed=5, chunk_size=64, alpha=2.0, beta=3.0)
    S = g.landmarks
    assert S.numel() == 40 and torch.equal(S, S.unique())  # sorted, no repeats
    z = torch.arange(40) % 3
    Z = torch.nn.functional.one_hot(z, 3).float()
    X = F if kind != "falcon" else torch.nn.functional.normalize(F, dim=1)
    sim, blk = X @ X[S].T, X[S] @ X[S].T
    if kind == "ncut":
        Wk = sim.clamp(min=0) / blk.max()
    elif kind == "cc":  # the mean-shifted threshold of the landmark block, by hand
        off = blk[~torch.eye(40, dtype=torch.bool)].mean()
        Wk = (sim - (off + (blk.diagonal().mean() - off) / 2.0)).clamp(min=0)
    else:
        Wk = ((sim - blk.min()) / (blk.max() - blk.min())).clamp(0, 1) ** 3.0
    torch.testing.assert_close(g.affinity_to(z, 3), Wk @ Z, rtol=1e-5, atol=1e-6)
    # on the landmarks the kernel is the landmark graph's own (attractive) weights
    torch.testing.assert_close(Wk[S], g.W.clamp(min=0), rtol=1e-5, atol=1e-6)


def test_extension_rules_and_landmarks_keep_their_label():
    F = torch.cat([torch.randn(200, 4) + 4, torch.randn(100, 4) - 4])
    F = F[torch.randperm(300, generator=torch.Generator().manual_seed(0))]
    truth = (F[:, 0] < 0).long()
    for rule in ("ncut", "vote"):
        g = landmark_graph(F, "ncut", n_landmarks=30, metric="cosine", rule=rule)
        z = truth[g.landmarks]
        P = g.extend(z, 2)
        assert P.shape == (300, 2)
        torch.testing.assert_close(P.sum(1), torch.ones(300))
        assert torch.equal(P.argmax(1), truth)
        assert torch.equal(P[g.landmarks], torch.nn.functional.one_hot(z, 2).float())
    # vote: the share of each node's landmark affinity
    g = landmark_graph(F, "ncut", n_landmarks=30, metric="cosine", rule="vote")
    z = torch.arange(30) % 2
    A = g.affinity_to(z, 2)
    want = A / A.sum(1, keepdim=True)
    want[g.landmarks] = torch.nn.functional.one_hot(z, 2).float()
    torch.testing.assert_close(g.extend(z, 2), want)


def test_an_unused_label_id_gets_no_node_and_no_nan():
    """Landmark ids with a gap (0, 2, 3: a solver left cluster 1 empty) extend as the same
    partition renamed, every row finite, and the empty id's column is 0 (it was 0/0 = NaN in
    float32, which made every non-landmark node's label arbitrary)."""
    F = torch.cat([torch.eye(16)[c] + 0.05 * torch.randn(200, 16,
                                                        generator=torch.Generator().manual_seed(c))
                   for c in range(3)])
    truth = torch.arange(3).repeat_interleave(200)
    for rule in ("ncut", "vote"):
        g = landmark_graph(F, "ncut", n_landmarks=300, metric="cosine", seed=0, rule=rule)
        P = g.extend(torch.tensor([0, 2, 3])[truth[g.landmarks]])
        assert P.shape == (600, 4) and torch.isfinite(P).all()
        assert float(P[:, 1].abs().max()) == 0.0
        assert torch.equal(P.argmax(1), torch.tensor([0, 2, 3])[truth])
        torch.testing.assert_close(P, g.extend(truth[g.landmarks])[:, [0, 0, 1, 2]] *
                                   torch.tensor([1.0, 0.0, 1.0, 1.0]))


def test_seeded_and_memory_linear_in_n():
    F = torch.randn(4000, 8, generator=torch.Generator().manual_seed(0))
    a, b = landmark_graph(F, n_landmarks=64, seed=3), landmark_graph(F, n_landmarks=64, seed=3)
    c = landmark_graph(F, n_landmarks=64, seed=4)
    assert torch.equal(a.landmarks, b.landmarks) and not torch.equal(a.landmarks, c.landmarks)

    def stored(g: LandmarkGraph) -> int:
        return sum(t.numel() for t in (g.W, g.degree, g.landmarks, g.features))

    small = landmark_graph(F[:1000], n_landmarks=64)
    big = landmark_graph(F, n_landmarks=64)
    assert big.W.shape == (64, 64) and big.num_total == 4000
    assert stored(big) == 4000 * 8 + 64 * 64 + 2 * 64  # O(N D + m^2): no N x N, no N x m
    assert stored(big) - stored(small) == 3000 * 8
    # row blocks give the same affinities as one block
    z = torch.arange(64) % 2
    one = landmark_graph(F, n_landmarks=64, chunk_size=10_000).affinity_to(z, 2)
    torch.testing.assert_close(big.affinity_to(z, 2), one)


def test_build_graph_switch():
    F = torch.randn(700, 5, generator=torch.Generator().manual_seed(0))
    assert not build_graph(F, "ncut", dense_max_nodes=700).is_sparse  # dense up to the limit
    g = build_graph(F, "ncut", dense_max_nodes=600, landmarks=128)
    assert isinstance(g, LandmarkGraph) and g.num_nodes == 128
    knn = build_graph(F, "ncut", dense_max_nodes=600)  # no landmarks: the N-node kNN graph
    assert knn.is_sparse and knn.num_nodes == 700
    assert build_graph(F, "local", grid=(35, 20), dense_max_nodes=10, landmarks=64).kind == "local"
    with pytest.raises(ValueError, match="landmark_graph supports"):
        landmark_graph(F, "local")
    with pytest.raises(ConfigError, match="landmarks"):
        SegmenterConfig(landmarks=1).validate()


def test_degenerate_landmark_fit_still_labels_every_node():
    F = torch.ones(900, 4)  # every node identical: one cluster at best
    g = landmark_graph(F, "ncut", n_landmarks=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fit_on_landmarks(create_solver("falcon", n_clusters=2), g, F)
    assert est.labels_.shape == (900,) and est.assignment_.shape[0] == 900
