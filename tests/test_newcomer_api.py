"""Behaviours a first-time user meets: image inputs, overlays, NCut printing, hierarchy + solver,
k-less clustering of raw features, the hierarchy summary's captions."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from deepcut import Segmenter
from deepcut.backbones import as_rgb_image
from deepcut.errors import ConfigError, ImageReadError


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter(backbone="classic", solver="spectral", size=64, seed=0)


def test_segmenter_takes_pil_path_numpy_and_tensor_alike(segmenter, image_file, one_thread):
    pil = Image.open(image_file).convert("RGB")
    arr = np.asarray(pil)                                           # (H, W, 3) uint8
    chw = torch.from_numpy(arr.copy()).permute(2, 0, 1)            # (3, H, W) uint8
    ref = segmenter(pil).labels
    for image in (str(image_file), image_file, arr, chw, chw.float() / 255):
        np.testing.assert_array_equal(segmenter(image).labels, ref)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((8, 8, 3), np.float32), "dtype float32: expected uint8"),
    (np.zeros((8, 8, 5), np.uint8), r"shape \(8, 8, 5\): expected \(H, W, 3\)"),
    (torch.zeros(2, 3, 8, 8), r"shape \(2, 3, 8, 8\): expected \(3, H, W\)"),
    (torch.zeros(3, 8, 8, dtype=torch.int32), "dtype torch.int32"),
    (42, "cannot read an image from a int"),
])
def test_bad_image_inputs_are_one_clear_error(bad, match):
    with pytest.raises(ImageReadError, match=match):
        as_rgb_image(bad)


def test_backbone_called_with_a_path(image_file):
    from deepcut.backbones import create_backbone

    bb = create_backbone("classic", size=64)
    a = bb(str(image_file)).features
    b = bb(Image.open(image_file)).features
    torch.testing.assert_close(a, b)


def test_prediction_overlay_is_the_written_overlay(segmenter, image_file, tmp_path, one_thread):
    from deepcut.io.images import load_image
    from deepcut.io.outputs import write_outputs

    pred = segmenter(image_file)
    paths = write_outputs(pred, load_image(image_file), tmp_path, "img")
    written = np.asarray(Image.open(paths["overlay"]))
    np.testing.assert_array_equal(np.asarray(pred.overlay()), written)
    features_only = segmenter.predict_features(segmenter.features(image_file))
    with pytest.raises(ConfigError, match="pass overlay"):
        features_only.overlay()
    assert features_only.overlay(image_file).size == pred.overlay().size


def test_ncut_is_never_negative_zero():
    from deepcut.pipeline import _nonnegative

    for x in (-0.0, -1e-9, 0.0):
        assert _nonnegative(x) == 0.0 and math.copysign(1, _nonnegative(x)) == 1.0
        assert f"{_nonnegative(x):.4f}" == "0.0000"
    assert _nonnegative(0.25) == 0.25
    assert math.isnan(_nonnegative(float("nan")))


def test_one_cluster_result_prints_ncut_zero(tmp_path, capsys, monkeypatch, image_file,
                                            one_thread):
    """A one-cluster cut's NCut comes out of float arithmetic as -0.0 (or -1e-9): printed and
    recorded as 0. The task's value is forced to -0.0 to make the case deterministic."""
    import json

    from deepcut.cli.infer import main
    from deepcut.tasks.base import TASKS

    real = TASKS["segment"]

    def one_cluster(pf, cfg):
        out = real(pf, cfg)
        out.solver["ncut"] = -0.0
        return out

    monkeypatch.setitem(TASKS, "segment", one_cluster)
    assert main([str(image_file), "--backbone", "classic", "--solver", "spectral", "--size",
                 "48", "--out", str(tmp_path / "out")]) == 0
    cap = capsys.readouterr()
    text = cap.out + cap.err
    assert "NCut=0.0000" in text and "NCut=-0" not in text
    rec = json.loads((tmp_path / "out" / "img.json").read_text())
    assert rec["ncut"] == 0.0 and math.copysign(1, rec["ncut"]) == 1.0


@pytest.mark.parametrize("solver", ["gnn", "falcon"])
def test_hierarchy_refuses_an_explicit_other_solver(tmp_path, capsys, solver):
    from deepcut.cli.infer import main

    code = main(["x.png", "--task", "hierarchy", "--solver", solver, "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "spectral only" in err[0] and repr(solver) in err[0]


def test_hierarchy_task_refuses_falcon_in_python():
    from deepcut.backbones import PatchFeatures
    from deepcut.config import SegmenterConfig
    from deepcut.tasks.hierarchy import hierarchy_task

    pf = PatchFeatures(torch.randn(6, 6, 4), None, (48, 48), (48, 48), 8, 8)
    with pytest.raises(ConfigError, match="solver 'falcon' has no hierarchy"):
        hierarchy_task(pf, SegmenterConfig(task="hierarchy", solver="falcon"))


def test_hierarchy_summary_captions_each_level(one_thread):
    from deepcut.viz.summary import summary_grid

    im = Image.new("RGB", (40, 30), "white")
    maps = [np.zeros((30, 40), int), np.arange(30 * 40).reshape(30, 40) % 3]
    plain = np.asarray(summary_grid([im], [maps], captions=None))
    captioned = np.asarray(summary_grid([im], [maps], captions=["K=1", "K=3"]))
    assert captioned.shape[0] > plain.shape[0] and captioned.shape[1] == plain.shape[1]
    strip = captioned[: captioned.shape[0] - plain.shape[0]]
    # Dark text pixels above the image column and above each level column.
    col = plain.shape[1] // 3
    for c in range(3):
        assert (strip[:, c * col:(c + 1) * col] < 100).any()
    np.testing.assert_array_equal(captioned[-plain.shape[0]:], plain)


def test_cluster_centres_raw_nonnegative_features(one_thread):
    """Three planted groups on a large shared positive offset: uncentred, every cosine is ~1 and
    the paper's CC graph (max/alpha) merges everything (K = 1); centred, or with the default
    mean-shifted threshold, the three groups come back."""
    from sklearn.metrics import adjusted_rand_score

    from deepcut.cluster import KLessClustering
    from deepcut.solvers.base import DegenerateResultWarning

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    X = np.abs(rng.normal(size=(90, 8))) + 3 * np.eye(8)[y] + 5
    assert KLessClustering(graph="threshold", center=False, shift="max", alpha=3,
                           seed=0).fit(X).n_clusters_ == 1
    assert KLessClustering(center=False, resolution=1.0, seed=0).fit(X).n_clusters_ == 3
    # below resolution 1 one cluster has modularity 1 - gamma: it wins there, and says so
    with pytest.warns(DegenerateResultWarning, match="one cluster found for 90 samples"):
        assert KLessClustering(center=False, seed=0).fit(X).n_clusters_ == 1
    est = KLessClustering(seed=0).fit(X)
    assert est.n_clusters_ == 3
    assert adjusted_rand_score(y, est.labels_) == 1.0


def test_cluster_cli_checks_k_max_before_features(tmp_path, capsys, image_file, monkeypatch):
    from deepcut import backbones
    from deepcut.cli.cluster import main

    def no_backbone(*a, **k):
        raise AssertionError("the backbone must not be built")

    monkeypatch.setattr(backbones, "resolve_backbone", no_backbone)
    import shutil

    twin = shutil.copy(image_file, tmp_path / "twin.png")  # one file given twice counts once
    code = main([str(image_file), str(twin), "--k-max", "5", "--out",
                 str(tmp_path / "c.csv")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "error: n_samples=2 should be > k_max=5 (--method cc); lower --k-max or give more "
        "samples.")


def test_cluster_help_shows_each_default_once():
    from deepcut.cli.cluster import build_parser

    text = build_parser().format_help()
    assert "(default: None)" not in text and "(default: False)" not in text
    assert text.count("(default: 10)") == 1            # --k-max
    assert ") (default" not in text.replace("\n", " ")  # never two defaults in a row
