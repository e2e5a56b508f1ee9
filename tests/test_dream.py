"""DREAM refinement: depth separates what colour cannot, labels stay in the input set, a
constant image moves nothing, PAMR is its linear RGB special case, bad depth files fail clearly."""
import numpy as np
import pytest
import torch
from PIL import Image

from deepcut.errors import ConfigError
from deepcut.io.depth import DepthReadError, depth_for, find_depth, load_depth
from deepcut.refine import dream, dream_labels, pamr

H, W, EDGE = 64, 96, 37


def grey_noise(seed: int = 0) -> np.ndarray:
    """``(H, W, 3)`` uint8: one grey with noise everywhere (colour says nothing)."""
    rng = np.random.default_rng(seed)
    return np.clip(128 + rng.normal(0, 20, (H, W, 3)), 0, 255).astype(np.uint8)


def step_depth(near: float = 1.0, far: float = 3.0) -> np.ndarray:
    """``(H, W)``: near left of column EDGE, far right of it."""
    return np.where(np.arange(W)[None, :] < EDGE, near, far) * np.ones((H, W), np.float32)


def coarse_patches() -> np.ndarray:
    """8 px patches whose boundary (pixel 32) is 5 px left of the depth edge."""
    p = np.zeros((8, 12), dtype=np.int64)
    p[:, 4:] = 1
    return p


def accuracy(lab: np.ndarray) -> float:
    truth = np.broadcast_to(np.arange(W)[None, :] >= EDGE, (H, W))
    return float((lab.astype(bool) == truth).mean())


def test_depth_recovers_regions_that_colour_cannot():
    img = Image.fromarray(grey_noise())
    before = accuracy(np.broadcast_to(np.arange(W)[None, :] >= 32, (H, W)))
    rgb = dream_labels(img, coarse_patches(), (H, W), 8, 8, max_side=W)
    rgbd = dream_labels(img, coarse_patches(), (H, W), 8, 8, max_side=W, depth=step_depth())
    assert before < 0.95  # 5 of 96 columns wrong
    assert accuracy(rgb) < 0.96  # no colour edge: the boundary stays about where it was
    assert accuracy(rgbd) > 0.99  # the depth edge pulls it to column 37


def test_depth_scale_and_inversion_do_not_matter():
    img = Image.fromarray(grey_noise(1))
    ref = dream_labels(img, coarse_patches(), (H, W), 8, 8, max_side=W, depth=step_depth())
    for d in (step_depth(1000.0, 3000.0), step_depth(1 / 1.0, 1 / 3.0), step_depth(0, 65535)):
        assert np.array_equal(dream_labels(img, coarse_patches(), (H, W), 8, 8, max_side=W,
                                           depth=d), ref)


def test_labels_stay_in_the_input_set():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    patches = np.array([3, 7, 9])[rng.integers(0, 3, (8, 12))]  # sparse ids, 3 of them
    lab = dream_labels(img, patches, (H, W), 8, 8, depth=rng.random((H, W)))
    assert set(np.unique(lab)) <= {3, 7, 9}
    assert lab.shape == (H, W)
    one = dream_labels(img, np.full((8, 12), 5), (H, W), 8, 8)  # one label: nothing to refine
    assert np.array_equal(one, np.full((H, W), 5))


def test_constant_image_leaves_the_labels_unchanged():
    """No contrast, no evidence: all weights are equal (0/eps measures, no NaN) and a straight
    two-label boundary stays exactly where it is, with or without a (constant) depth map.
    (Eq. 28 is a diffusion: narrow regions between two others do shrink on a flat image.)"""
    from deepcut.refine import nearest_labels

    img = Image.new("RGB", (W, H), (90, 140, 200))
    across = np.zeros((8, 12), dtype=np.int64)
    across[5:] = 1  # a horizontal boundary too
    for patches in (coarse_patches(), across):
        near = nearest_labels(img, patches, (H, W), 8, 8)
        assert np.array_equal(dream_labels(img, patches, (H, W), 8, 8, max_side=W), near)
        flat = np.full((H, W), 2.0, np.float32)
        assert np.array_equal(dream_labels(img, patches, (H, W), 8, 8, max_side=W, depth=flat),
                              near)
    # and any image leaves a constant label map alone
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    assert np.array_equal(dream_labels(noisy, np.full((8, 12), 4), (H, W), 8, 8),
                          np.full((H, W), 4))


def test_linear_dream_on_rgb_is_pamr():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 20, 30, generator=g) * 255
    m = torch.softmax(torch.randn(4, 20, 30, generator=g), 0)
    out, n = dream(img / 255, m, alpha=float("inf"), tol=0, n_iter=10)
    assert n == 10
    torch.testing.assert_close(out, pamr(img, m, 10), atol=1e-5, rtol=1e-5)
    # the ELU measure saturates: a bigger alpha moves it towards the linear one
    torch.testing.assert_close(out.sum(0), torch.ones(20, 30))


def test_dream_stops_when_the_masks_stop_changing():
    m = torch.zeros(2, 10, 10)
    m[0] = 1  # a constant mask is a fixed point: one iteration, change 0
    out, n = dream(torch.rand(3, 10, 10), m, tol=1e-3, n_iter=50)
    assert n == 1
    torch.testing.assert_close(out, m)


def test_dream_checks_its_arguments():
    with pytest.raises(ValueError, match="must share"):
        dream(torch.rand(3, 5, 5), torch.rand(2, 6, 5))
    with pytest.raises(ValueError, match="depth_weight"):
        dream(torch.rand(3, 5, 5), torch.rand(2, 5, 5), depth_weight=2)
    with pytest.raises(ValueError, match="same size"):
        dream_labels(Image.new("RGB", (W, H)), coarse_patches(), (H, W), 8, 8,
                     depth=np.zeros((H, W + 1)))


# ------------------------------------------------------------------------------------------
# depth files
# ------------------------------------------------------------------------------------------
def test_depth_files_in_every_format_read_the_same(tmp_path):
    d = (np.arange(H * W).reshape(H, W) % 1000).astype(np.uint16)
    Image.fromarray(d).save(tmp_path / "a.png")  # 16-bit PNG
    Image.fromarray(d.astype(np.float32)).save(tmp_path / "b.tif")  # float TIFF
    np.save(tmp_path / "c.npy", d.astype(np.float64))
    Image.fromarray((d % 256).astype(np.uint8)).save(tmp_path / "e.png")  # 8-bit PNG
    for stem in "abc":
        got = load_depth(find_depth(tmp_path, stem), (W, H))
        assert got.dtype == np.float32 and np.array_equal(got, d.astype(np.float32))
    assert np.array_equal(depth_for(tmp_path, "x/e.jpg", (W, H)), (d % 256).astype(np.float32))
    assert depth_for(None, "x/e.jpg") is None


def test_bad_depth_files_fail_with_the_file_name(tmp_path):
    with pytest.raises(DepthReadError, match="no depth map for image 'missing'"):
        find_depth(tmp_path, "missing")
    np.save(tmp_path / "small.npy", np.zeros((H // 2, W // 2)))
    with pytest.raises(DepthReadError, match=r"small\.npy: depth map is 48x32 px but its image"):
        load_depth(tmp_path / "small.npy", (W, H))
    bad = np.zeros((H, W))
    bad[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(DepthReadError, match="nan.npy: depth map holds 1 NaN"):
        load_depth(tmp_path / "nan.npy")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(DepthReadError, match="junk.png: unreadable"):
        load_depth(tmp_path / "junk.png")
    Image.new("RGB", (W, H)).save(tmp_path / "rgb.png")
    with pytest.raises(DepthReadError, match="single-channel"):
        load_depth(tmp_path / "rgb.png")
    np.save(tmp_path / "cube.npy", np.zeros((2, H, W)))
    with pytest.raises(DepthReadError, match="2-D"):
        load_depth(tmp_path / "cube.npy")
    with pytest.raises(DepthReadError, match="depth folder does not exist"):
        find_depth(tmp_path / "nope", "a")


def test_depth_is_refused_by_methods_that_do_not_use_it():
    from deepcut.refine import refine_labels

    img = Image.new("RGB", (W, H))
    for method in ("nearest", "pamr", "bilateral"):
        with pytest.raises(ConfigError, match="dream"):
            refine_labels(method, img, coarse_patches(), (H, W), 8, 8, depth=step_depth())


def test_local_measure_by_hand():
    from deepcut.refine.dream import local_measure

    x = torch.tensor([[[0.0, 0.5]]])  # (C, H, W) = (1, 1, 2), replicate-padded borders
    m = local_measure(x, (1,), alpha=0.5, lam=0.1, eps=0.0)
    # pixel 0: neighbours in offset order are 0, 0, .5, 0, .5, 0, 0, .5 (column 1 is .5); the
    # 9 values {0 x6, .5 x3} have unbiased std 0.25; a .5 neighbour measures
    # alpha (e^{.5/alpha} - 1) / (0.1 * 0.25)
    far = 0.5 * (np.e - 1) / 0.025
    want = torch.tensor([0, 0, far, 0, far, 0, 0, far], dtype=torch.float32)
    torch.testing.assert_close(m[:, 0, 0], want)
    lin = local_measure(x, (1,), alpha=float("inf"), lam=0.1, eps=0.0)
    torch.testing.assert_close(lin[:, 0, 0], want / far * 0.5 / 0.025)
