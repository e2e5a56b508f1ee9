"""Robust-background saliency on the patch grid (:mod:`deepcut.tasks.saliency`) and the
segment task's ``saliency`` object rule built on it (:func:`deepcut.tasks.foreground.salient_mask`)."""
import math

import numpy as np
import pytest
import torch

from deepcut.tasks.foreground import background_cluster, foreground_mask, salient_mask
from deepcut.tasks.saliency import (
    background_probability,
    border_ids,
    boundary_connectivity_map,
    grid_adjacency,
    optimised_saliency,
    otsu_threshold,
    saliency_map,
)


def test_grid_adjacency_counts_and_symmetry():
    a8, a4 = grid_adjacency(3, 3), grid_adjacency(3, 3, diagonal=False)
    # 3 x 3: 6 + 6 straight pairs, 4 + 4 diagonal ones; no self loops
    assert a4.nnz == 2 * 12 and a8.nnz == 2 * 20
    assert (a8 != a8.T).nnz == 0 and a8.diagonal().sum() == 0
    assert a8[4].sum() == 8 and a8[0].sum() == 3 and a4[4].sum() == 4
    assert border_ids(3, 3).tolist() == [0, 1, 2, 3, 5, 6, 7, 8]


def _ring(step: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """4 x 4 grid: 12 border cells of feature 0 around a 2 x 2 centre of feature ``step``."""
    inner = np.zeros((4, 4), dtype=bool)
    inner[1:3, 1:3] = True
    F = np.where(inner.reshape(-1, 1), step, 0.0)
    dist = np.abs(F - F.T)
    return inner.reshape(-1), dist


def test_geodesic_boundary_connectivity_by_hand():
    inner, dist = _ring(2.0)
    adj, border = grid_adjacency(4, 4), border_ids(4, 4)
    # sigma 0.5: the centre (2 away) is beyond the 3-sigma cut-off of every border cell
    bc = boundary_connectivity_map(dist, adj, border, clip=0.0, sigma_geo=0.5)
    assert np.allclose(bc[~inner], 12 / math.sqrt(12))
    assert np.allclose(bc[inner], 0.0)
    # sigma 2: every cross-region geodesic distance is exactly 2, weight e^-0.5
    e = math.exp(-0.5)
    bc = boundary_connectivity_map(dist, adj, border, clip=0.0, sigma_geo=2.0)
    assert np.allclose(bc[~inner], 12 / math.sqrt(12 + 4 * e))
    assert np.allclose(bc[inner], 12 * e / math.sqrt(4 + 12 * e))
    # a clip of 1.5 shortens the step to 0.5: weight exp(-0.25 / 8)
    e = math.exp(-0.25 / 8)
    bc = boundary_connectivity_map(dist, adj, border, clip=1.5, sigma_geo=2.0)
    assert np.allclose(bc[inner], 12 * e / math.sqrt(4 + 12 * e))
    assert np.allclose(background_probability(np.array([0.0, 1.0])), [0.0, 1 - math.exp(-0.5)])


def test_geodesic_distance_goes_around_a_wall():
    """A cell enclosed by a high-contrast wall but linked to the border by a gap is background:
    the geodesic path goes through the gap (a Euclidean or one-step rule would not know)."""
    h = w = 7
    F = np.zeros((h, w))
    F[1:6, 1:6] = 5.0  # wall ...
    F[2:5, 2:5] = 0.0  # ... around a pocket of border colour
    closed = F.copy()
    F[3, 1] = 0.0  # a gap in the wall's left side: the pocket joins the border
    adj, border = grid_adjacency(h, w, diagonal=False), border_ids(h, w)
    centre = 3 * w + 3
    bc_open = boundary_connectivity_map(np.abs(F.reshape(-1, 1) - F.reshape(1, -1)), adj, border,
                                        0.0, 0.5)
    bc_closed = boundary_connectivity_map(np.abs(closed.reshape(-1, 1) - closed.reshape(1, -1)),
                                          adj, border, 0.0, 0.5)
    # open: the pocket (9 cells) + gap belong to the 24 border cells' region
    assert bc_open[centre] == pytest.approx(24 / math.sqrt(24 + 9 + 1))
    assert bc_closed[centre] == 0.0


def test_optimised_saliency_without_smoothness_is_the_ratio_of_the_cues():
    n = 5
    dist = np.full((n, n), 100.0)  # far beyond 3 sigma_nei: no smoothness weight
    np.fill_diagonal(dist, 0.0)
    adj, border = grid_adjacency(1, n), border_ids(1, n)
    bg = np.array([1.0, 0.5, 0.0, 0.2, 0.0])
    fg = np.array([0.0, 0.5, 1.0, 0.4, 0.0])
    s = optimised_saliency(dist, adj, border, bg, fg, sigma_nei=1.0, mu=0.0)
    # (lambda bg + fg) s = fg, lambda = 5; a cell without any cue stays at 0
    assert np.allclose(s, [0.0, 0.5 / 3.0, 1.0, 0.4 / 1.4, 0.0], atol=1e-6)
    # identical cells: on a 1 x 5 grid every cell is on the border, so all are linked (weight
    # 1), and the cue-free cell's row of the system says it is the mean of the others
    s = optimised_saliency(np.zeros((n, n)), adj, border, bg, fg, sigma_nei=1.0, mu=0.0)
    assert s[4] == pytest.approx(s[:4].mean(), rel=1e-6) and s[4] > 0


def test_otsu_threshold_splits_two_modes():
    x = np.r_[np.full(30, 0.2), np.full(10, 0.7)]
    t = otsu_threshold(x)
    assert 0.2 < t <= 0.7
    assert ((x >= t) == (x == 0.7)).all()


def _planted(h: int = 16, w: int = 16, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Sky (rows < h/2), ground, and an object standing on the bottom edge (columns w/4-w/2):
    ``(F: (h * w, 3), object: (h, w) bool)``."""
    lab = np.zeros((h, w), dtype=np.int64)
    lab[h // 2:] = 1
    obj = np.zeros((h, w), dtype=bool)
    obj[3 * h // 8:, w // 4: w // 2] = True
    lab[obj] = 2
    means = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]])
    g = torch.Generator().manual_seed(seed)
    F = means[torch.as_tensor(lab).reshape(-1)] + 0.2 * torch.randn(h * w, 3, generator=g)
    return F, obj


def test_saliency_finds_a_border_touching_object_on_a_two_tone_background():
    F, obj = _planted()
    m = saliency_map(F, (16, 16))
    assert {k: v.shape for k, v in m.items()} == {k: (16, 16) for k in m}
    # the object is the most salient region although it touches the border
    assert m["saliency"][obj].min() > m["saliency"][~obj].max()
    # the clusters of a perfect 3-way cut and of an over-cut (sky split in two) give the object
    lab = np.where(obj, 2, (np.arange(16)[:, None] >= 8).astype(int) * np.ones((1, 16), int))
    assert np.array_equal(salient_mask(lab, m["saliency"], 3)[0], obj)
    over = np.where(lab == 0, np.where(np.arange(16)[None, :] < 8, 0, 3), lab)
    assert np.array_equal(salient_mask(over, m["saliency"], 4)[0], obj)
    # the border rule on the 3-way cut takes only one surface as background
    assert foreground_mask(lab, "border").sum() > obj.sum()
    assert np.array_equal(foreground_mask(lab, "saliency", F), obj)


def test_large_grids_are_pooled_and_still_find_the_object():
    F, obj = _planted(48, 48)  # 2304 cells > MAX_NODES: pooled by 2 per side
    m = saliency_map(F, (48, 48))
    assert m["saliency"].shape == (48, 48)
    lab = np.where(obj, 2, (np.arange(48)[:, None] >= 24).astype(int) * np.ones((1, 48), int))
    fg = salient_mask(lab, m["saliency"], 3)[0]
    assert (fg == obj).mean() > 0.97
    assert np.allclose(saliency_map(F, (48, 48))["saliency"], m["saliency"])  # deterministic


def test_salient_mask_falls_back_to_the_border_rule_without_contrast():
    lab = np.zeros((8, 8), dtype=np.int64)
    lab[2:6, 2:6] = 1
    fg, _, means = salient_mask(lab, np.full((8, 8), 0.3), 2)
    assert np.array_equal(fg, lab != background_cluster(lab))
    assert np.allclose(means, 0.0)
    # features without contrast: a flat map, the same fallback, never all nor none
    s = saliency_map(torch.zeros(64, 3), (8, 8))["saliency"]
    assert np.allclose(s, s.flat[0])
    fg, _, _ = salient_mask(lab, s, 2)
    assert fg.any() and not fg.all()
