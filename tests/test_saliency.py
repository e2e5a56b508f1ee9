"""The ``saliency`` background rule of the segment task (boundary connectivity + contrast).

The saliency map itself (geodesic connectivity, optimisation): ``test_saliency_map.py``."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from deepcut.backbones.base import PatchFeatures
from deepcut.config import SegmenterConfig
from deepcut.pipeline import Segmenter
from deepcut.tasks.foreground import (
    background_cluster,
    boundary_connectivity,
    cluster_saliency,
    foreground_mask,
    salient_clusters,
)


def _sky_ground_object() -> np.ndarray:
    """12 x 12 labels: sky (0, rows 0-5), ground (1, rows 6-11), an object (2) in columns 4-7,
    rows 4-11, that touches the bottom border along 4 patches."""
    lab = np.zeros((12, 12), dtype=np.int64)
    lab[6:] = 1
    lab[4:, 4:8] = 2
    return lab


def test_boundary_connectivity_hand_computed():
    ring = np.zeros((4, 4), dtype=np.int64)
    ring[1:3, 1:3] = 1  # 12 border patches around a 2 x 2 centre
    assert np.allclose(boundary_connectivity(ring), [12 / math.sqrt(12), 0.0])
    lab = _sky_ground_object()
    # sky: top row 12 + 5 rows x 2 sides = 22 border patches, 72 - 8 = 64 patches
    # ground: 12 - 4 bottom + 5 x 2 sides = 18 of 72 - 24 = 48; object: 4 of 8 x 4 = 32
    assert np.allclose(boundary_connectivity(lab),
                       [22 / 8, 18 / math.sqrt(48), 4 / math.sqrt(32)])
    # an empty cluster id scores 0
    assert boundary_connectivity(ring, 3)[2] == 0.0


def test_cluster_saliency_hand_computed():
    ring = np.zeros((4, 4), dtype=np.int64)
    ring[1:3, 1:3] = 1
    F = torch.where(torch.as_tensor(ring == 1).reshape(16, 1), 2.0, 0.0)  # (16, 1)
    sal = cluster_saliency(ring, F)
    # ring: w_bg = 1 - exp(-12 / 2); centre: w_bg = 0, contrast = 2^2 to the only background
    assert sal[1] == pytest.approx(4.0)
    assert sal[0] == pytest.approx(0.0)
    assert salient_clusters(ring, F).tolist() == [False, True]
    assert np.array_equal(foreground_mask(ring, "saliency", F), ring == 1)


def test_saliency_finds_an_object_the_border_rule_misses():
    lab = _sky_ground_object()
    means = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])  # sky, ground, object
    F = means[torch.as_tensor(lab).reshape(-1)]
    # the border rule takes one background cluster (sky) and calls the ground object too
    assert background_cluster(lab) == 0
    assert foreground_mask(lab, "border").sum() == (lab != 0).sum()
    assert salient_clusters(lab, F).tolist() == [False, False, True]
    with pytest.raises(ValueError, match="needs the patch features"):
        foreground_mask(lab, "saliency")


def test_saliency_never_all_or_nothing():
    lab = _sky_ground_object()
    same = torch.zeros(lab.size, 3)  # no contrast anywhere: the border rule decides
    fg = salient_clusters(lab, same)
    assert fg.tolist() == [False, True, True]
    assert fg.tolist() == (np.arange(3) != background_cluster(lab)).tolist()


def test_background_rule_default_per_backbone():
    cfg = SegmenterConfig()
    assert cfg.background_rule is None
    assert cfg.background_rule_for("classic") == "saliency"
    assert cfg.background_rule_for("dino_vits8") == "border"  # the ViT path is unchanged
    assert SegmenterConfig(background_rule="border").background_rule_for("classic") == "border"


def _pf(F: torch.Tensor, backbone: str) -> PatchFeatures:
    h, w, _ = F.shape
    return PatchFeatures(features=F, cls=None, input_size=(8 * h, 8 * w),
                         image_size=(8 * h, 8 * w), patch_size=8, stride=8, backbone=backbone)


def test_segment_task_resolves_the_rule_and_k_from_the_backbone():
    lab = _sky_ground_object()
    g = torch.Generator().manual_seed(0)
    means = torch.tensor([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 8.0]])
    F = (means[torch.as_tensor(lab).reshape(-1)] + 0.1 * torch.randn(lab.size, 3, generator=g))
    F = F.reshape(12, 12, 3)
    cfg = SegmenterConfig(solver="spectral", graph="ncut")
    vit = Segmenter(cfg).predict_features(_pf(F, "dino_vits8"))
    assert vit.record()["n_clusters"] == 2 and vit.extra["background_rule"] == "border"
    cl = Segmenter(cfg).predict_features(_pf(F, "classic"))
    assert cl.record()["n_clusters"] == 5 and cl.extra["background_rule"] == "saliency"
    # with as many clusters as regions the object is exactly the salient one
    cl3 = Segmenter(SegmenterConfig(solver="spectral", graph="ncut", n_clusters=3)) \
        .predict_features(_pf(F, "classic"))
    assert np.array_equal(cl3.patch_labels, (lab == 2).astype(np.uint8))
    assert sorted(cl3.extra["background_cluster"]) == sorted(
        set(range(3)) - {int(np.argmax(cl3.extra["cluster_saliency"]))})


def test_classic_default_segments_an_object_on_a_two_tone_background(tmp_path):
    """A red object standing on the bottom edge, between a blue sky and a green lawn: the default
    weight-free path (classic features, GNN, saliency rule) returns the object."""
    H = W = 192
    a = np.zeros((H, W, 3), dtype=np.uint8)
    a[: H // 2] = (70, 110, 200)
    a[H // 2:] = (60, 150, 60)
    obj = np.zeros((H, W), dtype=bool)
    obj[H // 3:, 64:128] = True
    a[obj] = (210, 40, 40)
    rng = np.random.default_rng(0)
    a = np.clip(a + rng.normal(0, 6, a.shape), 0, 255).astype(np.uint8)
    pred = Segmenter(SegmenterConfig(backbone="classic", size=H))(Image.fromarray(a))
    fg = pred.labels > 0
    assert pred.extra["background_rule"] == "saliency"
    # the whole object, and at most a one-patch halo (the context windows blur its edge) ...
    assert (fg & obj).sum() / obj.sum() > 0.95
    halo = np.zeros_like(obj)
    halo[H // 3 - 8:, 56:136] = True
    # ... and the rows of patches whose windows straddle the horizon: a known limitation, the
    # band between two background surfaces contrasts with both; elsewhere at most 1 % leaks
    horizon = np.zeros_like(obj)
    horizon[H // 2 - 8: H // 2 + 8] = True
    rest = ~halo & ~horizon
    assert (fg & rest).sum() <= 0.01 * rest.sum()
    # the 2-way cut with the border rule takes one background surface for the object
    border = Segmenter(SegmenterConfig(backbone="classic", size=H, background_rule="border"))(
        Image.fromarray(a)).labels > 0
    assert (border & ~halo).sum() > 0.25 * (~halo).sum()
