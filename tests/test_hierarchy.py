"""Hierarchy: eigenvectors once, nested levels, exact borders in the summary, preview, Nystrom."""
import itertools
import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import adjusted_rand_score
from test_parts import _pf, orthogonal_grid

from deepcut.config import SegmenterConfig
from deepcut.errors import ConfigError
from deepcut.io.outputs import write_outputs
from deepcut.io.writers import read_label_map
from deepcut.pipeline import Segmenter
from deepcut.tasks.hierarchy import (
    HierarchyPredictor,
    SpectralHierarchy,
    cut_merges,
    ncut_merge,
    parse_levels,
)
from deepcut.tasks.nystrom import NCutKernel, ncut_eigenvectors
from deepcut.viz.overlay import boundaries
from deepcut.viz.summary import render_levels, summary_grid

pytestmark = pytest.mark.usefixtures("one_thread")


LEVELS = (3, 6, 12, 24)


@pytest.fixture
def regions() -> np.ndarray:
    """14 x 18 grid with 6 planted regions."""
    r = np.zeros((14, 18), dtype=np.int64)
    r[:, 6:12] = 1
    r[:, 12:] = 2
    r[7:] += 3
    return r


def _nested(fine: np.ndarray, coarse: np.ndarray) -> bool:
    """Every fine segment lies inside exactly one coarse segment."""
    pairs = np.unique(np.stack([fine.reshape(-1), coarse.reshape(-1)]), axis=1)
    return pairs.shape[1] == np.unique(fine).size


def test_nested_invariant_holds_at_every_level(regions):
    F = orthogonal_grid(regions, sep=10.0).reshape(-1, 16)
    h = SpectralHierarchy(LEVELS, nested=True).fit(F)
    ks = sorted(h.levels_)
    for i, kc in enumerate(ks):
        for kf in ks[i + 1:]:
            assert _nested(h.labels(kf), h.labels(kc)), (kf, kc)
    assert [int(h.labels(k).max()) + 1 for k in ks] == list(LEVELS)
    assert _nested(h.labels(24), h.labels(17))  # any K from the merge tree
    # merged down from k-means at K=24 (97% pure here): close to the 6 planted regions
    assert adjusted_rand_score(regions.reshape(-1), h.labels(6)) > 0.9


def test_independent_levels_are_not_forced_to_nest_but_share_eigenvectors(regions, monkeypatch):
    calls = []
    orig = NCutKernel.eigenpairs

    def counting(self, m, **kw):
        calls.append(m)
        return orig(self, m, **kw)

    monkeypatch.setattr(NCutKernel, "eigenpairs", counting)
    F = orthogonal_grid(regions, sep=10.0).reshape(-1, 16)
    h = SpectralHierarchy(LEVELS).fit(F)
    h.labels(9)  # a level not asked for: from the cached eigenvectors
    assert calls == [24]  # one eigendecomposition, for max(K)
    assert h.eigenvectors_.shape == (regions.size, 24)
    assert adjusted_rand_score(regions.reshape(-1), h.labels(6)) == 1.0
    with pytest.raises(ConfigError, match="k=30 is above the largest level K=24"):
        h.labels(30)


def test_ncut_merge_joins_the_strongest_pairs_first():
    A = torch.tensor([[10.0, 5, 0.1, 0.1], [5, 10, 0.1, 0.1], [0.1, 0.1, 10, 4],
                      [0.1, 0.1, 4, 10]])
    merges = ncut_merge(A)
    assert {tuple(m) for m in merges[:2]} == {(0, 1), (2, 3)}
    assert cut_merges(merges, 4, 2).tolist() == [0, 0, 1, 1]
    assert cut_merges(merges, 4, 4).tolist() == [0, 1, 2, 3]


def test_render_levels_borders_exactly_where_labels_differ():
    lab = np.zeros((9, 11), dtype=np.int64)
    lab[2:6, 3:8] = 4
    lab[7:, :2] = 300  # ids above 255 wrap onto the palette, never onto black
    img = render_levels(lab)
    black = (img == 0).all(-1)
    assert np.array_equal(black, boundaries(lab))
    assert not (render_levels(lab, draw_border=False) == 0).all(-1).any()


def _predictor(regions, nested, joint=True, n_images=2):
    pfs, ims = [], []
    F = orthogonal_grid(regions, sep=10.0)
    g = torch.Generator().manual_seed(1)
    for i in range(n_images):  # same planted means, new noise per image
        pfs.append(_pf(F + (0.5 * i) * torch.randn(F.shape, generator=g)))
        h, w = pfs[-1].image_size
        ims.append(Image.new("RGB", (w, h), (20 * i, 100, 200)))
    return HierarchyPredictor(None, n_segments=LEVELS, nested=nested, joint=joint
                              ).set_features(pfs, ims)


def test_summary_draws_borders_exactly_where_neighbouring_labels_differ(regions):
    p = _predictor(regions, nested=False)
    grid = np.asarray(p.summary(max_side=None, captions=False))
    H, W = p.features_[0].image_size
    gap = 4
    assert grid.shape == (2 * H + gap, (1 + len(LEVELS)) * (W + gap) - gap, 3)
    for i in range(2):
        for j, k in enumerate(LEVELS):
            lab = p.segments(k)[i]
            y, x = i * (H + gap), (j + 1) * (W + gap)
            tile = grid[y:y + H, x:x + W]
            assert np.array_equal((tile == 0).all(-1), boundaries(lab)), (i, k)
            assert np.array_equal(tile, render_levels(lab))
    no_border = np.asarray(p.summary(max_side=None, draw_border=False, captions=False))
    assert not (no_border[:H, W + gap:] == 0).all(-1).any()
    # shrunk tiles: labels resized first, borders drawn after, so still exact
    small = summary_grid([p.images_[0]], [[p.segments(6)[0]]], max_side=50)
    assert small.size[1] == 50 * H // W or small.size[1] <= 50


@pytest.mark.parametrize("joint", [True, False])
def test_preview_and_nesting_through_the_predictor(regions, joint):
    p = _predictor(regions, nested=True, joint=joint)
    for i in range(2):
        segs = [p.segments(k)[i] for k in LEVELS]
        for a, b in itertools.pairwise(segs):
            assert _nested(b, a)
    masks = p.preview((70, 20), image_index=1)
    assert list(masks) == list(LEVELS)
    for k in LEVELS:
        assert masks[k][20, 70] and masks[k].shape == p.features_[1].image_size
    for coarse, fine in itertools.pairwise(LEVELS):
        assert not (masks[fine] & ~masks[coarse]).any()  # fine segment inside the coarse one
    with pytest.raises(ValueError, match="outside"):
        p.preview((10_000, 0))


def test_joint_graph_shares_segment_ids_across_images(regions):
    p = _predictor(regions, nested=False, joint=True)
    a, b = p.patch_segments(6)
    assert np.array_equal(a, b)  # same planted means: same ids in both images


def test_nystrom_is_seeded_deterministic_and_close_to_exact(regions):
    F = orthogonal_grid(regions, sep=10.0).reshape(-1, 16)
    N = F.shape[0]
    lam, V, info = ncut_eigenvectors(F, 8)
    assert info["method"] == "exact"
    lam1, V1, i1 = ncut_eigenvectors(F, 8, n_sample=N // 2, seed=7)
    lam2, V2, _ = ncut_eigenvectors(F, 8, n_sample=N // 2, seed=7)
    lam3, _, _ = ncut_eigenvectors(F, 8, n_sample=N // 2, seed=8)
    assert i1 == {"method": "nystrom", "n_sample": N // 2}
    assert torch.equal(lam1, lam2) and torch.equal(V1, V2)  # same seed, same result
    assert not torch.equal(lam1, lam3)  # another seed, other landmarks
    assert torch.allclose(lam1[:6], lam[:6], atol=0.03)

    def subspace_cos(A, B, m=6):  # smallest cosine of the principal angles
        qa, qb = torch.linalg.qr(A[:, :m])[0], torch.linalg.qr(B[:, :m])[0]
        return float(torch.linalg.svdvals(qa.T @ qb).min())

    assert subspace_cos(V, V1) > 0.99
    lam_all, V_all, _ = ncut_eigenvectors(F, 8, n_sample=N)  # every node a landmark: exact
    assert torch.allclose(lam_all, lam, atol=1e-3) and subspace_cos(V, V_all, 8) > 0.999
    h = SpectralHierarchy((6,), n_sample=N // 2, seed=7).fit(F)
    assert h.method_ == "nystrom"
    assert adjusted_rand_score(regions.reshape(-1), h.labels(6)) == 1.0


def test_parse_levels():
    assert parse_levels("25, 10,100,50") == [10, 25, 50, 100]
    assert parse_levels(None) == [10, 25, 50, 100]
    with pytest.raises(ConfigError, match="comma-separated integers"):
        parse_levels("10,x")
    with pytest.raises(ConfigError, match=">= 2"):
        parse_levels("1,5")
    with pytest.raises(ValueError, match="'n_segments' parameter of SpectralHierarchy"):
        SpectralHierarchy([2.5]).fit(torch.randn(20, 3))


def test_hierarchy_task_writes_a_label_map_per_level_and_the_summary(regions, tmp_path):
    cfg = SegmenterConfig(backbone="classic", task="hierarchy",
                          task_params={"levels": "3,6,12", "nested": True})
    pf = _pf(orthogonal_grid(regions, sep=10.0))
    pred = Segmenter(cfg).predict_features(pf)
    h, w = pf.image_size
    image = Image.new("RGB", (w, h), (90, 90, 90))
    paths = write_outputs(pred, image, tmp_path, "img")
    for k in (3, 6, 12):
        lab = read_label_map(tmp_path / f"img_k{k}.png")
        assert np.array_equal(lab, pred.task_output.level_labels[k])
        assert lab.max() + 1 == k
    assert (tmp_path / "img_summary.png").exists() and paths["summary"].name == "img_summary.png"
    rec = json.loads((tmp_path / "img.json").read_text())
    assert rec["extra"]["levels"] == [3, 6, 12] and rec["extra"]["nested"] is True
    assert rec["n_clusters"] == 12 and rec["outputs"]["k6"] == "img_k6.png"
    assert not list(tmp_path.glob(".*part"))


def test_infer_cli_hierarchy(tmp_path):
    from conftest import make_image

    from deepcut.cli.infer import main

    img = make_image(tmp_path / "obj.png", size=(96, 64))
    out = tmp_path / "out"
    rc = main([str(img), "--out", str(out), "--backbone", "classic", "--size", "64",
               "--task", "hierarchy", "--levels", "2,4,8", "--nested", "--quiet"])
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["obj.json", "obj.png", "obj_k2.png", "obj_k4.png", "obj_k8.png",
                     "obj_overlay.png", "obj_summary.png"]


def test_infer_cli_hierarchy_line_says_which_level_the_overlay_shows(tmp_path, capsys):
    from conftest import make_image

    from deepcut.cli.infer import main

    img = make_image(tmp_path / "obj.png", size=(96, 64))
    assert main([str(img), "--out", str(tmp_path / "out"), "--backbone", "classic", "--size",
                 "64", "--task", "hierarchy", "--levels", "2,4,8", "--nested"]) == 0
    line = capsys.readouterr().out.strip()
    shown = json.loads((tmp_path / "out" / "obj.json").read_text())["extra"]["overlay_level"]
    assert line.startswith("obj.png: K=") and \
        f"(finest level; the overlay shows K={shown})" in line


def test_overlay_level_rule():
    from deepcut.tasks.hierarchy import overlay_level

    one, two = np.zeros((4, 4), np.int64), np.arange(16).reshape(4, 4) % 2
    # the coarsest level that splits the image; one-segment levels are passed over
    assert overlay_level({3: one, 6: two, 12: np.arange(16).reshape(4, 4)}) == 6
    assert overlay_level({3: two, 6: two}) == 3
    assert overlay_level({3: one, 6: one}) == 6  # none splits: the finest
    assert overlay_level({3: two, 6: two}, requested=6) == 6
    with pytest.raises(ConfigError, match="overlay_level must be one of the levels"):
        overlay_level({3: two, 6: two}, requested=5)


@pytest.mark.parametrize("refine", ["nearest", "dream"])
def test_hierarchy_overlay_shows_the_coarsest_level_not_the_finest(regions, tmp_path, refine):
    from deepcut.viz.overlay import overlay

    pf = _pf(orthogonal_grid(regions, sep=10.0))
    h, w = pf.image_size
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8))
    cfg = SegmenterConfig(backbone="classic", task="hierarchy", refine=refine,
                          task_params={"levels": "3,6,24"})
    pred = Segmenter(cfg).predict_features(pf, image=image)
    out = pred.task_output
    assert pred.extra["overlay_level"] == 3 and out.overlay_level == 3
    assert np.array_equal(pred.overlay_labels, out.level_labels[3])
    assert np.unique(pred.overlay_labels).size == 3 and np.unique(pred.labels).size == 24
    assert np.array_equal(out.level_labels[24], pred.labels)  # main label map: the finest
    write_outputs(pred, image, tmp_path, "img")
    written = np.asarray(Image.open(tmp_path / "img_overlay.png").convert("RGB"))
    assert np.array_equal(written, np.asarray(overlay(image, out.level_labels[3], background=None)))
    assert not np.array_equal(written, np.asarray(overlay(image, pred.labels, background=None)))
    assert np.array_equal(np.asarray(pred.overlay(image)), written)
    rec = json.loads((tmp_path / "img.json").read_text())
    assert rec["extra"]["overlay_level"] == 3
    # asked for a level
    cfg = SegmenterConfig(backbone="classic", task="hierarchy", refine=refine,
                          task_params={"levels": "3,6,24", "overlay_level": 6})
    pred = Segmenter(cfg).predict_features(pf, image=image)
    assert np.array_equal(pred.overlay_labels, pred.task_output.level_labels[6])


def test_a_level_with_fewer_segments_than_asked_is_said():
    """Features with 3 distinct values cannot make 6 or 10 segments: one warning line names the
    short levels, and the JSON's solver block records the K asked for and the warning."""
    import warnings

    from deepcut import Segmenter
    from deepcut.backbones.base import PatchFeatures
    from deepcut.solvers.base import DegenerateResultWarning

    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 16, generator=g) * 5
    F = (centres[torch.arange(256) % 3] + 10).reshape(16, 16, 16)
    pf = PatchFeatures(F, None, (128, 128), (128, 128), 8, 8, backbone="vit_test")
    seg = Segmenter(backbone="classic", task="hierarchy", solver="spectral",
                    task_params={"levels": [2, 6, 10], "n_sample": 32})
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        r = seg.predict_features(pf).record()
    said = [str(w.message) for w in rec if issubclass(w.category, DegenerateResultWarning)]
    assert r["extra"]["n_segments_found"] == {"2": 2, "6": 3, "10": 3}
    assert said == ["spectral-hierarchy: fewer segments than asked at 2 level(s) (K=6: 3, "
                    + "K=10: 3)"]
    assert r["solver"]["n_clusters_requested"] == 10 and r["solver"]["warnings"] == said


def test_the_hierarchy_records_the_ncut_graph_it_cuts(regions):
    """The hierarchy always cuts the NCut graph: the JSON says so (it said ``local`` for the
    classic backbone), and another explicit graph is refused rather than ignored."""
    from deepcut import Segmenter

    seg = Segmenter(backbone="classic", task="hierarchy", task_params={"levels": "2,3"})
    pf = _pf(orthogonal_grid(regions))
    pf.backbone = "classic"  # whose other tasks default to the local graph
    rec = seg.predict_features(pf).record()
    assert rec["config"]["graph"] == "ncut"
    with pytest.raises(ConfigError, match="graph='local' would not be used"):
        SegmenterConfig(task="hierarchy", graph="local").validate()


@pytest.mark.parametrize("refine", ["centres", "pamr"])
def test_nested_levels_still_nest_after_an_image_guided_refinement(tmp_path, refine):
    """With nested=True the written pixel maps nest too: the refined finest level is mapped
    through the tree (each level refined on its own moved coarse boundaries off fine ones)."""
    from conftest import make_image

    from deepcut import Segmenter

    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (96, 128, 3)).astype(np.uint8)  # texture: boundaries can move
    a[20:70, 30:90] //= 3
    Image.fromarray(a).save(tmp_path / "t.png")
    make_image(tmp_path / "u.png", size=(128, 96))
    for name in ("t.png", "u.png"):
        seg = Segmenter(backbone="classic", seed=0, size=96, task="hierarchy", refine=refine,
                        task_params={"levels": [3, 6, 12], "nested": True})
        out = seg(tmp_path / name).task_output
        maps = [out.level_labels[k] for k in (3, 6, 12)]
        assert all(_nested(fine, coarse) for coarse, fine in itertools.pairwise(maps))
    p = _predictor(np.zeros((14, 18), np.int64) + np.arange(18)[None] // 6, nested=True)
    p.refine = refine
    segs = [p.segments(k)[0] for k in LEVELS]
    assert all(_nested(fine, coarse) for coarse, fine in itertools.pairwise(segs))


def test_summary_tiles_give_every_segment_id_its_own_colour():
    """Ids 0 and 255, 1 and 256 are different segments of a fine level: different colours (the
    palette repeated every 255 ids)."""
    from deepcut.viz.summary import render_levels

    labels = np.array([[0, 255, 1, 256, 600]])
    img = render_levels(labels, draw_border=False)
    assert len({tuple(c) for c in img[0]}) == 5
