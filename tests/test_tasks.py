"""Background rule for any K, boxes, upsampling on non-square grids, the end-to-end task."""
import numpy as np
import pytest
import torch
from conftest import planted_grid

from deepcut.backbones.base import PatchFeatures
from deepcut.config import SegmenterConfig
from deepcut.pipeline import Segmenter
from deepcut.refine import patch_index, upsample_labels
from deepcut.tasks import background_cluster, corner_background, largest_component, object_box


def test_background_is_border_cluster_k2_and_k4():
    lab = np.ones((6, 8), dtype=int)
    lab[2:4, 3:6] = 0  # the object has the *smaller* id: a corner/id rule would get it wrong
    assert background_cluster(lab) == 1
    lab4 = np.full((9, 12), 3)
    lab4[2:5, 2:5] = 0
    lab4[5:8, 6:10] = 2
    lab4[1:3, 7:11] = 1
    assert background_cluster(lab4) == 3
    assert corner_background(lab4) == 3


def test_background_tie_breaks_by_size_then_id():
    lab = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 2, 1, 1], [0, 0, 1, 1]])
    # border counts: 0 -> 6, 1 -> 6 ; sizes 0 -> 7, 1 -> 8
    assert background_cluster(lab) == 1


def test_object_box_largest_component_in_pixels():
    fg = np.zeros((5, 10), dtype=bool)
    fg[1:3, 1:3] = True  # 4 patches
    fg[2:5, 6:9] = True  # 9 patches: the largest
    assert largest_component(fg).sum() == 9
    # patch 8, stride 8, input 40x80 = original 40x80: rows 2..4, cols 6..8
    assert object_box(fg, (40, 80), (40, 80), 8, 8) == (48, 16, 72, 40)
    # original twice the input: coordinates double
    assert object_box(fg, (40, 80), (80, 160), 8, 8) == (96, 32, 144, 80)
    assert object_box(np.zeros((3, 3), bool), (24, 24), (24, 24), 8, 8) is None


def test_upsample_non_square_round_trip():
    rng = np.random.default_rng(0)
    patch = rng.integers(0, 5, size=(6, 9))
    up = upsample_labels(patch, (48, 72), (48, 72), 8, 8)
    assert up.shape == (48, 72)
    assert np.array_equal(up[4::8, 4::8], patch)  # patch centres carry their own labels
    assert np.array_equal(up[::8, ::8], patch)
    # stride 4 with patch 8: grid 1 + (H - 8) / 4
    p2 = rng.integers(0, 3, size=(11, 17))
    up2 = upsample_labels(p2, (48, 72), (48, 72), 8, 4)
    assert np.array_equal(up2[4 + 4 * np.arange(11)][:, 4 + 4 * np.arange(17)], p2)
    assert patch_index(10, 10, 2, 8, 8).tolist() == [0] * 8 + [1] * 2


def _pf(F: torch.Tensor) -> PatchFeatures:
    h, w, _ = F.shape
    return PatchFeatures(features=F, cls=None, input_size=(8 * h, 8 * w),
                         image_size=(8 * h, 8 * w), patch_size=8, stride=8, backbone="planted")


@pytest.mark.parametrize("solver_params", [{}, {"loss": "cc"}])
def test_segment_task_planted_object(three_regions, solver_params):
    r = (three_regions == 1).astype(int)
    F = planted_grid(12, 16, r)
    cfg = SegmenterConfig(backbone="classic", steps=60, lr=1e-2,
                          n_clusters=2 if not solver_params else 4, **solver_params)
    pred = Segmenter(cfg).predict_features(_pf(F))
    assert np.array_equal(pred.patch_labels, r)
    assert pred.box == (24, 24, 72, 72)
    assert pred.labels.shape == (96, 128) and pred.labels.dtype == np.uint8
    assert set(pred.timings) == {"graph", "solve", "upsample"}
    assert pred.label_names == {0: "background", 1: "object"}


def test_k_larger_than_nodes_is_a_config_error(three_regions):
    from deepcut.errors import ConfigError

    F = planted_grid(3, 4, np.zeros((3, 4), int))
    with pytest.raises(ConfigError, match="n_nodes=12 should be >= n_clusters=50"):
        Segmenter(SegmenterConfig(backbone="classic", n_clusters=50)).predict_features(_pf(F))
