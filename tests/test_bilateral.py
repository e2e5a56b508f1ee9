"""Fast bilateral solver: grid construction, edge-aware label smoothing, pipeline wiring."""
import numpy as np
import pytest
from conftest import two_tone
from PIL import Image

from deepcut.config import SegmenterConfig
from deepcut.errors import ConfigError
from deepcut.pipeline import Segmenter
from deepcut.refine.bilateral import BilateralGrid, bilateral_labels, bilateral_solve


def test_grid_vertices_splat_and_blur():
    # 4 x 4 image, two colours split at column 2; sigma_spatial 2 -> 2 x 2 spatial cells
    img = np.zeros((4, 4, 3), dtype=np.uint8)
    img[:, 2:] = 255
    g = BilateralGrid(img, sigma_spatial=2, sigma_luma=64, sigma_chroma=64)
    assert g.n_vertices == 4  # each spatial cell holds one colour
    np.testing.assert_array_equal(np.asarray(g.S.sum(0)).ravel(), np.ones(16))  # 1 vertex/pixel
    np.testing.assert_array_equal(np.asarray(g.S.sum(1)).ravel(), [4, 4, 4, 4])
    for b in g.blurs:
        assert abs(b - b.T).max() == 0  # neighbour relations are symmetric
    # only the two vertical neighbours (same colour, y cells 0 and 1) are adjacent along y
    assert sum(b.nnz for b in g.blurs) == 4


def test_hash_has_room_for_neighbours():
    """Vertices at the top of one axis must not see a neighbour wrapped into the next axis."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    g = BilateralGrid(img, sigma_spatial=3, sigma_luma=16, sigma_chroma=16)
    # every blur entry links vertices whose pixels differ by one cell along exactly one axis
    yuv = img.astype(np.float64) @ np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                                             [0.5, -0.418688, -0.081312]]).T + [0, 128, 128]
    iy, ix = np.mgrid[:20, :30]
    c = np.floor(np.stack([ix / 3, iy / 3, yuv[..., 0] / 16, yuv[..., 1] / 16,
                           yuv[..., 2] / 16], -1).reshape(-1, 5)).astype(int)
    vert = np.asarray(g.S.argmax(0)).ravel()  # pixel -> vertex
    vc = np.zeros((g.n_vertices, 5), dtype=int)
    vc[vert] = c
    for d, b in enumerate(g.blurs):
        i, j = b.nonzero()
        diff = np.abs(vc[i] - vc[j])
        assert (diff[:, d] == 1).all() and (np.delete(diff, d, axis=1) == 0).all()


def test_solver_keeps_constants_and_moves_a_boundary_to_the_edge():
    img = two_tone()
    np.testing.assert_allclose(bilateral_solve(img, np.full((64, 96), 0.3)), 0.3, atol=1e-9)
    truth = np.arange(96)[None, :] >= 37
    coarse = np.broadcast_to(np.arange(96)[None, :] >= 32, (64, 96)).astype(float)
    out = bilateral_solve(img, coarse)
    assert out.shape == (64, 96)
    assert (coarse.astype(bool) == truth).mean() < 0.95  # 5 of 96 columns wrong
    assert ((out > 0.5) == truth).mean() > 0.99


def test_bilateral_labels_multi_label_at_image_size():
    img = two_tone(64, 96, edge=37)
    img[40:, :] = (90, 160, 60)  # a third region below row 40
    patch = np.zeros((8, 12), dtype=np.int64)
    patch[:, 4:] = 1
    patch[5:, :] = 2  # patch boundary at row 40 for 8 px patches
    lab = bilateral_labels(Image.fromarray(img), patch, (64, 96), 8, 8)
    assert lab.shape == (64, 96)
    truth = np.where(np.arange(96)[None, :] < 37, 0, 1) * np.ones((64, 1), dtype=int)
    truth[40:] = 2
    coarse = np.kron(patch, np.ones((8, 8), dtype=int))
    assert (coarse == truth).mean() < 0.97  # 5 columns of the top 40 rows wrong
    assert (lab == truth).mean() > 0.99  # boundaries moved to the colour edges


def test_segmenter_refine_bilateral_and_its_errors():
    img = Image.fromarray(two_tone())
    seg = Segmenter(SegmenterConfig(backbone="classic", size=64, refine="bilateral", steps=5))
    pred = seg(img)
    assert pred.labels.shape == (64, 96)
    with pytest.raises(ConfigError, match="refine='bilateral'"):
        seg.predict_features(seg.features(img))
