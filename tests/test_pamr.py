"""PAMR refinement: labels move to colour edges, constant masks stay, pipeline wiring."""
import numpy as np
import pytest
import torch
import torch.nn.functional as Fn
from conftest import two_tone
from PIL import Image

from deepcut.config import SegmenterConfig
from deepcut.errors import ConfigError
from deepcut.pipeline import Segmenter
from deepcut.refine.pamr import majority_filter, neighbours, pamr, pamr_labels


def test_neighbours_are_shifted_copies_with_replicated_borders():
    x = torch.arange(20.0).reshape(1, 4, 5)
    nb = neighbours(x, (1, 2))
    assert nb.shape == (1, 16, 4, 5)
    # offset order: (dy, dx) row-major over {-1, 0, 1}^2 without the centre; (0, 1) is index 4
    assert torch.equal(nb[0, 4, :, :4], x[0, :, 1:])
    assert torch.equal(nb[0, 4, :, 4], x[0, :, 4])  # the right border is replicated
    assert torch.equal(nb[0, 8 + 1, 2:, :], x[0, :2, :])  # dilation 2, (dy, dx) = (-1, 0)


def test_pamr_moves_a_misplaced_boundary_to_the_colour_edge():
    img = torch.from_numpy(two_tone()).permute(2, 0, 1).float()
    truth = (torch.arange(96) >= 37).expand(64, 96)
    coarse = (torch.arange(96) >= 32).expand(64, 96)  # boundary 5 px too far left
    masks = Fn.one_hot(coarse.long(), 2).permute(2, 0, 1).float()
    refined = pamr(img, masks)
    torch.testing.assert_close(refined.sum(0), torch.ones(64, 96))  # still distributions
    before = (coarse == truth).float().mean()
    after = (refined.argmax(0).bool() == truth).float().mean()
    assert before < 0.95 and after > 0.99  # 5 of 96 columns wrong before


def test_pamr_keeps_a_constant_mask_and_checks_shapes():
    img = torch.rand(3, 20, 30)
    m = torch.zeros(3, 20, 30)
    m[1] = 1
    torch.testing.assert_close(pamr(img, m), m)
    with pytest.raises(ValueError, match="must share"):
        pamr(img, torch.zeros(2, 10, 30))


def test_majority_filter_removes_isolated_pixels_and_keeps_regions():
    lab = torch.zeros(9, 9, dtype=torch.long)
    lab[:, 5:] = 1
    noisy = lab.clone()
    noisy[2, 2] = 1
    noisy[6, 7] = 2
    assert torch.equal(majority_filter(noisy, 3), lab)


def test_pamr_labels_follow_the_edge_at_image_size():
    img = Image.fromarray(two_tone(64, 96, edge=37))
    patch = np.zeros((8, 12), dtype=np.int64)
    patch[:, 4:] = 1  # patch boundary at pixel 32 for 8 px patches
    lab = pamr_labels(img, patch, input_size=(64, 96), patch=8, stride=8, max_side=96)
    assert lab.shape == (64, 96)
    assert (lab[:, :36] == 0).all() and (lab[:, 38:] == 1).all()
    # a smaller working size still returns labels at the image size
    assert pamr_labels(img, patch, (64, 96), 8, 8, max_side=40).shape == (64, 96)


def test_segmenter_refine_pamr_and_its_errors(tmp_path):
    img = Image.fromarray(two_tone(64, 96, edge=37))
    seg = Segmenter(SegmenterConfig(backbone="classic", size=64, refine="pamr", steps=5))
    pred = seg(img)
    assert pred.labels.shape == (64, 96)
    assert pred.meta["config"]["refine"] == "pamr"
    with pytest.raises(ConfigError, match="refine='pamr'"):
        seg.predict_features(seg.features(img))
    with pytest.raises(ConfigError, match="'refine' parameter"):
        SegmenterConfig(refine="crf").validate()


def test_working_size_and_nearest_resize():
    from deepcut.refine.upsample import nearest_resize, working_size

    assert working_size((300, 451), 320) == (213, 320)
    assert working_size((64, 96), 320) == (64, 96)  # never enlarged
    lab = np.array([[0, 1], [2, 3]])
    np.testing.assert_array_equal(nearest_resize(lab, (4, 6)),
                                  np.repeat(np.repeat(lab, 2, 0), 3, 1))
    np.testing.assert_array_equal(nearest_resize(nearest_resize(lab, (4, 6)), (2, 2)), lab)
