"""The local (Shi-Malik) graph: edges, weights, scaling, and the cuts it gives."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from deepcut.config import SegmenterConfig, default_graph_kind
from deepcut.graphs import build_graph, grid_offsets, local_graph, ncut_graph
from deepcut.solvers import create_solver

pytestmark = pytest.mark.usefixtures("one_thread")


def _pairs(h: int, w: int, radius: float) -> set[tuple[int, int]]:
    """All ordered pairs (i, j), i != j, within ``radius`` on an h x w grid, by brute force."""
    ys, xs = np.divmod(np.arange(h * w), w)
    d2 = (ys[:, None] - ys[None]) ** 2 + (xs[:, None] - xs[None]) ** 2
    i, j = np.nonzero((d2 <= radius * radius) & (d2 > 0))
    return set(zip(i.tolist(), j.tolist()))


@pytest.mark.parametrize("radius", [1.0, 2.5, 3.0])
def test_edges_exactly_within_radius_and_symmetric(radius):
    h, w = 7, 9
    F = torch.randn(h * w, 5, generator=torch.Generator().manual_seed(0))
    g = local_graph(F, grid=(h, w), radius=radius)
    idx = g.W.indices()
    assert g.W.is_sparse and g.kind == "local" and g.grid == (h, w)
    assert set(zip(idx[0].tolist(), idx[1].tolist())) == _pairs(h, w, radius)
    Wd = g.W.to_dense()
    torch.testing.assert_close(Wd, Wd.T, rtol=0, atol=0)
    assert (g.W.values() > 0).all() and (g.W.values() <= 1).all()
    torch.testing.assert_close(g.degree, Wd.sum(1))


def test_weights_by_hand_and_sigma_f_from_the_median():
    h, w = 4, 5
    F = torch.randn(h, w, 3, generator=torch.Generator().manual_seed(1))
    g = local_graph(F, radius=2.0, sigma_x=1.5, sigma_scale=0.5)
    # sigma_F^2 = 0.5 * median of ||F_i - F_j||^2 over the undirected edges
    Ff = F.reshape(-1, 3)
    i, j = zip(*[(a, b) for a, b in _pairs(h, w, 2.0) if a < b])
    d2 = (Ff[list(i)] - Ff[list(j)]).pow(2).sum(1)
    s2 = 0.5 * float(d2.median())
    assert g.params["sigma_f"] ** 2 == pytest.approx(s2, rel=1e-5)
    # patch (1, 1) -> (2, 2): offset (1, 1), squared distance 2
    a, b = 1 * w + 1, 2 * w + 2
    want = math.exp(-float((Ff[a] - Ff[b]).pow(2).sum()) / s2) * math.exp(-2 / 1.5**2)
    assert g.W.to_dense()[a, b].item() == pytest.approx(max(want, 1e-6), rel=1e-5)
    # a fixed sigma_f is used as given
    assert local_graph(F, radius=2.0, sigma_f=0.7).params["sigma_f"] == pytest.approx(0.7)


def test_offsets_are_half_of_the_disc():
    off = grid_offsets(2.0)
    full = {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if 0 < dy * dy + dx * dx <= 4}
    half = {tuple(o) for o in off.tolist()}
    assert half | {(-a, -b) for a, b in half} == full and len(half) == len(full) // 2


def test_bad_input_is_refused():
    F = torch.zeros(12, 2)
    with pytest.raises(ValueError, match="needs the patch grid"):
        local_graph(F)
    with pytest.raises(ValueError, match="has 6 cells"):
        local_graph(F, grid=(2, 3))
    with pytest.raises(ValueError, match="radius"):
        local_graph(F, grid=(3, 4), radius=0.5)


def _band_image_features(h: int = 12, w: int = 30, band: tuple[int, int] = (12, 18)):
    """Red | blue band | red: two same-colour regions the band separates. ``(h, w, 3)``."""
    g = torch.Generator().manual_seed(0)
    F = torch.zeros(h, w, 3)
    F[..., 0] = 1.0
    F[:, band[0]:band[1]] = torch.tensor([0.0, 0.0, 1.0])
    return F + 0.05 * torch.randn(h, w, 3, generator=g)


def test_local_graph_cuts_the_two_regions_dense_graph_does_not():
    F = _band_image_features()
    h, w, _ = F.shape
    left, right = np.s_[:, :12], np.s_[:, 18:]
    spectral = create_solver("spectral", n_clusters=2, random_state=0)
    # band (6 patches) wider than the radius: the red halves meet only through blue patches
    lab = spectral.fit(local_graph(F, radius=3.0), F.reshape(h * w, -1)).labels_.reshape(h, w)
    lab = lab.numpy()
    assert len(np.unique(lab[left])) == 1 and len(np.unique(lab[right])) == 1
    assert lab[left][0, 0] != lab[right][0, 0]
    # the dense feature graph groups by colour alone: both red halves together, the band apart
    lab = spectral.fit(ncut_graph(F), F.reshape(h * w, -1)).labels_.reshape(h, w).numpy()
    assert lab[left][0, 0] == lab[right][0, 0]
    assert (lab[:, 12:18] != lab[0, 0]).all()


def test_intervening_contour_weakens_edges_across_a_band():
    F = _band_image_features(w=20, band=(9, 10))  # a one-patch band
    g0 = local_graph(F, radius=3.0, sigma_scale=1.0).W.to_dense()
    g1 = local_graph(F, radius=3.0, sigma_scale=1.0, contour=True).W.to_dense()
    w = F.shape[1]
    across = (5 * w + 8, 5 * w + 11)  # red to red, with the band patch between them
    within = (5 * w + 2, 5 * w + 5)  # red to red, nothing in between
    assert g1[across] < 0.05 * g0[across]
    assert g1[within] == pytest.approx(g0[within].item(), rel=0.2)


@pytest.mark.parametrize("solver, params", [("spectral", {}), ("falcon", {}),
                                            ("gnn", {"steps": 100, "lr": 1e-2})])
def test_every_solver_runs_on_the_local_graph(solver, params):
    """Two blocks of distinct colour side by side: every solver cuts them apart."""
    h, w = 10, 16
    F = torch.zeros(h, w, 3)
    F[:, :8, 0] = 1.0
    F[:, 8:, 2] = 1.0
    F += 0.05 * torch.randn(h, w, 3, generator=torch.Generator().manual_seed(0))
    g = build_graph(F, "local", radius=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = create_solver(solver, n_clusters=2, **params).fit(g, F.reshape(h * w, 3))
    lab = est.labels_.reshape(h, w).numpy()
    assert (lab[:, :8] == lab[0, 0]).all() and (lab[:, 8:] == lab[0, -1]).all()
    assert lab[0, 0] != lab[0, -1]


def test_memory_at_16k_nodes_is_n_r2():
    """A 1024 px image at stride 8: 128 x 128 = 16384 nodes; stored entries = the exact count
    of within-radius pairs (about N * pi r^2), never N^2."""
    h = w = 128
    radius = 3.0
    F = torch.randn(h * w, 8, generator=torch.Generator().manual_seed(0))
    g = local_graph(F, grid=(h, w), radius=radius)
    exact = sum(2 * (h - dy) * (w - abs(dx)) for dy, dx in grid_offsets(radius).tolist())
    nnz = g.W.values().numel()
    assert nnz == exact
    assert nnz <= h * w * 28  # 28 neighbours within r = 3
    assert nnz < 0.002 * (h * w) ** 2


def test_classic_backbone_defaults_to_the_local_graph_on_region_tasks():
    for task in ("clusters", "kless"):
        assert SegmenterConfig(backbone="classic", task=task).graph_kind == "local"
        assert default_graph_kind("falcon", "ncut", "classic", task) == "local"
    # the hierarchy always cuts the NCut graph (its spectral embedding)
    assert SegmenterConfig(backbone="classic", task="hierarchy").graph_kind == "ncut"
    assert SegmenterConfig(backbone="classic", task="kless", loss="cc").graph_kind == "cc"
    assert SegmenterConfig(backbone="classic", graph="ncut").graph_kind == "ncut"
    # object vs background: the dense graph measured better on classic features
    assert SegmenterConfig(backbone="classic", task="segment").graph_kind == "ncut"
    assert SegmenterConfig(backbone="dino_vits8", task="clusters").graph_kind == "ncut"
    assert SegmenterConfig(backbone="auto", task="clusters").graph_kind_for("classic") == "local"
    assert SegmenterConfig(backbone="dino_vits8", graph="local").validate().graph_kind == "local"


# ------------------------------------------------------------------ image intervening contours
def test_image_contour_weights_by_hand():
    """A contour on the boundary of patches (., 0) and (., 1) lowers exactly the weights of the
    pairs whose centre-to-centre segment crosses it, by exp(-E^2 / sigma_IC^2)."""
    h, w, m = 2, 3, 3
    F = torch.zeros(h, w, 2)  # constant features: the feature term is 1, only space and contour
    E = torch.zeros(m * h, m * w)
    E[:, 2:4] = 0.5  # the cells either side of the pixel boundary between columns 0 and 1
    g0 = local_graph(F, radius=1.5).W.to_dense()
    g1 = local_graph(F, radius=1.5, contour=0.25, edges=E).W.to_dense()
    idx = torch.arange(h * w).reshape(h, w)
    crossing = set()
    for y in range(h):
        for y2 in range(h):
            crossing |= {(int(idx[y, 0]), int(idx[y2, 1])), (int(idx[y2, 1]), int(idx[y, 0]))}
    for i, j in zip(*g0.nonzero(as_tuple=True)):
        i, j = int(i), int(j)
        d2 = (i // w - j // w) ** 2 + (i % w - j % w) ** 2
        expect = math.exp(-d2 / 1.5**2) * (math.exp(-(0.5 / 0.25) ** 2) if (i, j) in crossing
                                            else 1.0)
        assert g1[i, j].item() == pytest.approx(expect, rel=1e-5), (i, j)
    assert (g1 > 0).sum() == (g0 > 0).sum()  # the cue reweights; it never adds or drops edges


def test_image_contour_graph_is_symmetric_and_mirrors_with_the_image():
    """Sampling the segment is symmetric: the graph of the mirrored image is the mirrored graph."""
    h, w, m = 6, 7, 3
    gen = torch.Generator().manual_seed(1)
    F = torch.randn(h, w, 4, generator=gen)
    E = torch.rand(m * h, m * w, generator=gen)
    W = local_graph(F, radius=3.0, contour=0.5, edges=E).W.to_dense()
    torch.testing.assert_close(W, W.T, rtol=0, atol=0)
    Wm = local_graph(F.flip(1), radius=3.0, contour=0.5, edges=E.flip(1)).W.to_dense()
    perm = torch.arange(h * w).reshape(h, w).flip(1).reshape(-1)  # node of the mirrored grid
    torch.testing.assert_close(Wm, W[perm][:, perm])
    assert (W <= local_graph(F, radius=3.0).W.to_dense() + 1e-7).all()  # it only lowers weights


def test_image_edges_on_a_line_and_bad_maps():
    """image_edges puts a one-pixel line in the cells beside it; a map of the wrong shape fails."""
    from deepcut.graphs.local import image_edges

    img = torch.full((3, 32, 48), 0.6)
    img[:, :, 16] = 0.1  # a dark vertical line at pixel 16: the boundary of patch columns 1, 2
    E = image_edges(img, (4, 6), 8, 8, cells=3, smooth=0.0, quantile=None)
    assert E.shape == (12, 18)
    cols = E.amax(0)
    # flat cells hold rounding noise of the Lab conversion (~1e-6 on some builds), not exact 0
    assert (cols[[5, 6]] > 5).all() and (cols[:4] < 1e-4).all() and (cols[8:] < 1e-4).all()
    with pytest.raises(ValueError, match="edges"):
        local_graph(torch.zeros(4, 6, 2), contour=1.0, edges=torch.zeros(12, 17))
    with pytest.raises(ValueError, match="contour"):
        local_graph(torch.zeros(4, 6, 2), contour=-1.0, edges=E)


def test_classic_features_and_edges_share_one_lab_conversion():
    """``ClassicBackbone.extract_with_extra`` (one ``rgb_to_lab`` for the features and the edge
    map, the path of ``backbone(image)`` and of batched folder runs) gives exactly what
    ``extract`` and ``feature_extra`` give separately, per image of a batch; a given ``lab``
    is the crop of the whole image's Lab (the grid does not cover the last 5 pixels here)."""
    from deepcut.backbones import classic
    from deepcut.graphs.local import image_edges

    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 45, 69, generator=gen)
    bb = classic.ClassicBackbone(size=45, max_size=69)
    calls = []
    real = classic.rgb_to_lab
    try:
        classic.rgb_to_lab = lambda t: calls.append(t.shape) or real(t)
        feats, cls, extras = bb.extract_with_extra(x)
    finally:
        classic.rgb_to_lab = real
    assert len(calls) == 1 and cls is None and len(extras) == 2
    ref, _ = bb.extract(x)
    assert torch.equal(feats, ref)
    for b in range(2):
        alone = bb.feature_extra(x[b:b + 1], tuple(ref.shape[1:3]))["edges"]
        assert torch.equal(extras[b]["edges"], alone)
    E = image_edges(x[0], (5, 8), 8, 8, lab=real(x[:1])[0])
    assert torch.equal(E, image_edges(x[0], (5, 8), 8, 8))
    pf = bb(torch.rand(3, 45, 69, generator=gen))  # forward takes the shared path
    h, w = pf.features.shape[:2]
    assert set(pf.extra) == {"edges"} and pf.extra["edges"].shape == (3 * h, 3 * w)


def test_thin_dark_line_splits_same_colour_regions_only_with_the_cue():
    """Two regions of the same textured grey, apart by a thin dark line off the middle: with the
    contour cue the 2-way cut follows the line; without it, the cut is elsewhere."""
    from deepcut.backbones.classic import ClassicBackbone
    from deepcut.graphs.local import image_edges

    gen = torch.Generator().manual_seed(0)
    H, W, line = 64, 128, 40  # the line on the boundary of patch columns 4 and 5
    img = (0.55 + 0.08 * torch.rand(3, H, W, generator=gen)).clamp(0, 1)
    img[:, :, line - 1: line + 1] = 0.1
    bb = ClassicBackbone(size=H, max_size=W)
    x = img.unsqueeze(0)
    F, _ = bb.extract(x)
    F = F[0]
    h, w = F.shape[:2]
    E = image_edges(x[0], (h, w), bb.patch_size, bb.stride)
    spectral = create_solver("spectral", n_clusters=2, random_state=0)
    left = np.arange(w) < line // 8 - 1
    away = np.abs(np.arange(w) + 0.5 - line / 8) > 1  # the columns the line darkens are not scored
    truth = np.broadcast_to(left, (h, w))[:, away]

    def agrees(lab):
        lab = lab.numpy().reshape(h, w)[:, away]
        return max((lab == truth).mean(), (lab != truth).mean())

    with_cue = spectral.fit(local_graph(F, contour=1.0, edges=E), F.reshape(h * w, -1)).labels_
    without = spectral.fit(local_graph(F), F.reshape(h * w, -1)).labels_
    print(with_cue.reshape(h, w)[0], without.reshape(h, w)[0])
    assert agrees(with_cue) == 1.0
    assert agrees(without) < 0.9


def test_pipeline_hands_the_classic_edge_map_to_the_local_graph(monkeypatch):
    """The classic backbone's features carry the image's edge map; a `clusters` run on the local
    graph cuts exactly the graph built with that map and the config's contour (and a config with
    contour=None the graph without it)."""
    from deepcut.graphs.local import contour_edges, current_edges
    from deepcut.pipeline import Segmenter
    from deepcut.tasks.base import make_graph

    gen = torch.Generator().manual_seed(0)
    img = (0.55 + 0.08 * torch.rand(3, 64, 96, generator=gen)).clamp(0, 1)
    img[:, :, 39:41] = 0.1
    img[:, 40:, 60:] = 0.9
    for contour in (1.0, None):
        cfg = SegmenterConfig(backbone="classic", size=64, task="clusters", n_clusters=3,
                              solver="spectral", contour=contour)
        seg = Segmenter(cfg)
        pf = seg.features(img)
        E = pf.extra["edges"]
        assert E.shape == (3 * pf.grid[0], 3 * pf.grid[1])
        with contour_edges(E):
            assert current_edges(pf.grid) is E and current_edges((1, 1)) is None
            g = make_graph(pf.flat, cfg, grid=pf.grid)
        assert g.kind == "local" and g.params["contour"] == contour
        ref = local_graph(pf.flat, grid=pf.grid, radius=cfg.radius, contour=contour,
                          edges=E if contour else None)
        torch.testing.assert_close(g.W.to_dense(), ref.W.to_dense())
        expect = create_solver("spectral", n_clusters=3, random_state=0).fit(ref, pf.flat).labels_
        from deepcut.graphs import affinity

        seen = []
        monkeypatch.setattr(affinity, "local_graph", lambda *a, seen=seen, **k: seen.append(k)
                            or local_graph(*a, **k))
        pred = seg.predict_features(pf)
        monkeypatch.undo()
        assert len(seen) == 1 and seen[0]["contour"] == contour
        assert (seen[0]["edges"] is E) == (contour is not None)
        np.testing.assert_array_equal(pred.patch_labels.reshape(-1), expect.numpy())
    assert current_edges(pf.grid) is None  # the context ends with the block
