"""One refinement interface: same signature for every method, applied by every task that yields
patch labels (and by every hierarchy level), depth maps found by stem through the Segmenter."""
import inspect

import numpy as np
import pytest
from PIL import Image
from test_parts import _pf, orthogonal_grid

from deepcut.config import SegmenterConfig
from deepcut.errors import ConfigError
from deepcut.io.outputs import write_outputs
from deepcut.io.writers import read_label_map
from deepcut.pipeline import Segmenter
from deepcut.refine import REFINERS, refine_labels
from deepcut.refine.interface import _registry

pytestmark = pytest.mark.usefixtures("one_thread")


def planted() -> np.ndarray:
    """12 x 16 patch regions: background, a central object, a right-hand block."""
    r = np.zeros((12, 16), dtype=np.int64)
    r[3:9, 3:9] = 1
    r[2:10, 11:15] = 2
    return r


def image_of(regions: np.ndarray, shift: int = 3) -> Image.Image:
    """96 x 128 px image whose colour regions are the patch regions moved ``shift`` px right and
    down: the patch labels are off by 3 px, so image-guided refinements must change them."""
    colours = np.array([[40, 40, 40], [220, 60, 60], [60, 200, 80]], dtype=np.uint8)
    px = np.repeat(np.repeat(regions, 8, 0), 8, 1)
    px = np.roll(np.roll(px, shift, 0), shift, 1)
    return Image.fromarray(colours[px])


def test_every_refinement_has_the_same_signature():
    fns = _registry()
    assert set(fns) == set(REFINERS)
    for name, fn in fns.items():
        params = inspect.signature(fn).parameters
        assert list(params)[:5] == ["image", "patch_labels", "input_size", "patch", "stride"], name
        for kw in ("depth", "features"):
            assert params[kw].kind is inspect.Parameter.KEYWORD_ONLY, (name, kw)
            assert params[kw].default is None, (name, kw)


@pytest.mark.parametrize("method", REFINERS)
def test_every_refinement_returns_image_size_labels_from_the_input_set(method):
    r = planted()
    img = image_of(r)
    F = orthogonal_grid(r)
    ids = np.array([4, 9, 11])[r]  # non-contiguous ids must survive
    lab = refine_labels(method, img, ids, (96, 128), 8, 8, features=F)
    assert lab.shape == (96, 128)
    assert set(np.unique(lab)) <= {4, 9, 11}


@pytest.mark.parametrize("task,params", [
    ("segment", {}),
    ("clusters", {"n_clusters": 3}),
    ("kless", {"task_params": {"k_max": 4}, "solver": "spectral"}),
    ("parts", {"task_params": {"parts": 2, "parts_steps": 20}}),
])
@pytest.mark.parametrize("method", ["pamr", "dream"])
def test_every_patch_label_task_is_refined(task, params, method):
    r = planted()
    img = image_of(r)
    pf = _pf(orthogonal_grid(r, sep=10.0))
    cfg = {"backbone": "classic", "task": task, "steps": 20, "seed": 0, **params}
    near = Segmenter(SegmenterConfig(**cfg)).predict_features(pf, image=img)
    pred = Segmenter(SegmenterConfig(**cfg, refine=method)).predict_features(pf, image=img)
    assert np.array_equal(pred.patch_labels, near.patch_labels)  # same solve
    expected = refine_labels(method, img, pred.patch_labels, pf.input_size, 8, 8)
    assert np.array_equal(pred.labels, expected)
    assert not np.array_equal(pred.labels, near.labels)  # the 3 px offset was corrected
    assert set(np.unique(pred.labels)) <= set(np.unique(pred.patch_labels))


def test_hierarchy_levels_summary_and_maps_use_the_refined_labels(tmp_path):
    r = planted()
    img = image_of(r)
    pf = _pf(orthogonal_grid(r, sep=10.0))
    cfg = SegmenterConfig(backbone="classic", task="hierarchy", refine="dream",
                          task_params={"levels": "2,3,5"})
    pred = Segmenter(cfg).predict_features(pf, image=img)
    out = pred.task_output
    for k, lab in out.level_patch_labels.items():
        want = refine_labels("dream", img, lab, pf.input_size, 8, 8)
        assert np.array_equal(out.level_labels[k], want), k
    assert np.array_equal(out.level_labels[5], pred.labels)
    write_outputs(pred, img, tmp_path, "img")
    assert np.array_equal(read_label_map(tmp_path / "img_k3.png"), out.level_labels[3])
    # the summary shows the refined maps: it differs from the one of the nearest labels
    near = Segmenter(SegmenterConfig(backbone="classic", task="hierarchy",
                                     task_params={"levels": "2,3,5"})).predict_features(pf, image=img)
    write_outputs(near, img, tmp_path / "near", "img")
    a = np.asarray(Image.open(tmp_path / "img_summary.png"))
    b = np.asarray(Image.open(tmp_path / "near" / "img_summary.png"))
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_segmenter_reads_the_depth_map_of_each_image_by_stem(tmp_path):
    r = planted()
    img = image_of(r, shift=0)
    img.save(tmp_path / "scene.png")
    (tmp_path / "depth").mkdir()
    depth = np.where(np.repeat(np.repeat(r, 8, 0), 8, 1) > 0, 1.0, 5.0).astype(np.float32)
    np.save(tmp_path / "depth" / "scene.npy", depth)
    cfg = SegmenterConfig(backbone="classic", size=64, refine="dream", depth=str(tmp_path / "depth"))
    seg = Segmenter(cfg)
    pred = seg(tmp_path / "scene.png")
    by_hand = Segmenter(SegmenterConfig(backbone="classic", size=64, refine="dream"))(
        img, depth=depth)
    assert np.array_equal(pred.labels, by_hand.labels)
    with pytest.raises(ConfigError, match="depth folder"):
        seg(img)  # pixels only: the stem is unknown
    np.save(tmp_path / "depth" / "scene.npy", depth[:50])
    from deepcut.io.depth import DepthReadError

    with pytest.raises(DepthReadError, match="scene.npy: depth map is 128x50"):
        seg(tmp_path / "scene.png")


def test_infer_cli_dream_with_depth_goes_on_past_a_bad_map(tmp_path, capsys):
    from conftest import make_image

    from deepcut.cli.infer import main

    imgs, dep = tmp_path / "imgs", tmp_path / "depth"
    imgs.mkdir()
    dep.mkdir()
    for s in ("a", "b", "c"):
        make_image(imgs / f"{s}.png", size=(96, 64))
    np.save(dep / "a.npy", np.random.default_rng(0).random((64, 96)))
    Image.fromarray(np.zeros((10, 10), np.uint16)).save(dep / "b.png")
    rc = main([str(imgs), "--out", str(tmp_path / "out"), "--backbone", "classic", "--size", "64",
               "--refine", "dream", "--depth", str(dep), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "b.png: depth map is 10x10 px but its image is 96x64" in err
    assert "no depth map for image 'c'" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png",
                                                                         "a_overlay.png"]
    rc = main([str(imgs), "--out", str(tmp_path / "o2"), "--backbone", "classic",
               "--refine", "pamr", "--depth", str(dep), "--quiet"])
    assert rc == 2 and "used by refine='dream' only" in capsys.readouterr().err
    # depth maps are found by stem: two inputs sharing one are refused before any work
    (tmp_path / "more").mkdir()
    make_image(tmp_path / "more" / "a.jpg", size=(96, 64))
    rc = main([str(imgs), str(tmp_path / "more"), "--out", str(tmp_path / "o3"), "--backbone",
               "classic", "--refine", "dream", "--depth", str(dep), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "share the stem 'a'" in err[0]
    assert not (tmp_path / "o3").exists()


def test_hierarchy_predictor_refines_segments_summary_and_preview():
    from deepcut.tasks.hierarchy import HierarchyPredictor

    r = planted()
    img = image_of(r)
    pf = _pf(orthogonal_grid(r, sep=10.0))
    p = HierarchyPredictor(n_segments=(2, 3), refine="dream").set_features([pf], [img])
    for k in (2, 3):
        want = refine_labels("dream", img, p.patch_segments(k)[0], pf.input_size, 8, 8)
        assert np.array_equal(p.segments(k)[0], want)
    masks = p.preview((60, 40))
    assert np.array_equal(masks[3], p.segments(3)[0] == p.segments(3)[0][40, 60])
    near = HierarchyPredictor(n_segments=(2, 3)).set_features([pf], [img])
    assert not np.array_equal(np.asarray(p.summary()), np.asarray(near.summary()))
