"""Two-stage part segmentation: parts only on foreground nodes, label bookkeeping, every solver."""
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from deepcut.backbones.base import PatchFeatures
from deepcut.config import SegmenterConfig
from deepcut.errors import ConfigError
from deepcut.pipeline import Segmenter
from deepcut.tasks.parts import PartsReducedWarning, part_label_names
from deepcut.tasks.segment import segment_object

pytestmark = pytest.mark.usefixtures("one_thread")


def orthogonal_grid(regions: np.ndarray, dim: int = 16, sep: float = 6.0, noise: float = 1.0,
                    seed: int = 0) -> torch.Tensor:
    """``(h, w, dim)`` features: region r has mean ``sep * q_r`` (orthonormal ``q_r``) + noise."""
    g = torch.Generator().manual_seed(seed)
    h, w = regions.shape
    means = torch.linalg.qr(torch.randn(dim, dim, generator=g))[0][: int(regions.max()) + 1]
    lab = torch.as_tensor(regions).reshape(-1).long()
    F = sep * means[lab] + noise * torch.randn(h * w, dim, generator=g)
    return F.reshape(h, w, dim)


def _pf(F: torch.Tensor) -> PatchFeatures:
    h, w, _ = F.shape
    return PatchFeatures(features=F, cls=None, input_size=(8 * h, 8 * w),
                         image_size=(8 * h, 8 * w), patch_size=8, stride=8, backbone="planted")


@pytest.fixture
def object_with_parts() -> np.ndarray:
    """12 x 16 grid: background 0 on the border, an object made of parts 1 (left) and 2 (right)."""
    r = np.zeros((12, 16), dtype=np.int64)
    r[3:9, 4:8] = 1
    r[3:9, 8:12] = 2
    return r


# The GNN's converged default recovers this small object (the paper's 10 steps at lr 1e-3 do not)
FAST: dict = {}


def _solver_param(name: str):
    """``name``, marked xfail while ``make_solver`` cannot build it (it passes ``seed=`` to every
    solver, but SpectralNCut and FalconCut take ``random_state``); the mark drops once fixed."""
    from deepcut.tasks.base import make_solver

    try:
        make_solver(SegmenterConfig(solver=name), 2)
    except TypeError as e:
        return pytest.param(name, marks=pytest.mark.xfail(raises=TypeError, strict=True,
                                                          reason=f"make_solver: {e}"))
    return name


SOLVERS = [_solver_param(s) for s in ("gnn", "spectral", "falcon")]


@pytest.mark.parametrize("solver", SOLVERS)
def test_part_labels_never_mark_a_background_node(object_with_parts, solver):
    F = orthogonal_grid(object_with_parts)
    # stage 1 with K=3 merges both parts into the object; the background is the border cluster
    cfg = SegmenterConfig(backbone="classic", task="parts", solver=solver, n_clusters=3,
                          task_params={"parts": 2, "parts_steps": 60}, **FAST)
    out = Segmenter(cfg).predict_features(_pf(F))
    fg = np.asarray(segment_object(_pf(F), cfg).patch_labels).astype(bool)
    lab = out.patch_labels
    assert np.all(lab[~fg] == 0)  # never a part on a background node
    assert np.all((lab[fg] >= 1) & (lab[fg] <= 2))
    # noisy object nodes sit closer to the background: moving one there lowers the Falcon
    # graph's NCut (0.48888 < 0.48966 of the planted labels), which the falcon solver finds;
    # the converged GNN moves two on the NCut graph (NCut 0.7942 < 0.8128 of the planted labels)
    assert np.count_nonzero(fg != (object_with_parts > 0)) <= {"falcon": 1, "gnn": 2}.get(solver, 0)
    assert adjusted_rand_score(object_with_parts[fg], lab[fg]) == 1.0  # the two parts found
    assert out.label_names == {0: "background", 1: "part 1", 2: "part 2"}
    assert out.extra["parts_used"] == 2 and out.box == (32, 24, 96, 72)


def test_split_background_label_bookkeeping(object_with_parts):
    # two background regions (left/right halves) and two object parts; a shared component per
    # side (object vs background) makes stage 1's K=2 cut separate object from background.
    # The spectral solver: this test is about the label bookkeeping, not a solver's accuracy
    r = object_with_parts.copy()
    r[(r == 0) & (np.arange(16)[None, :] >= 8)] = 3
    g = torch.Generator().manual_seed(0)
    q = torch.linalg.qr(torch.randn(16, 16, generator=g))[0]
    side = torch.as_tensor((r == 1) | (r == 2)).long().reshape(-1)  # 1 = object
    lab = torch.as_tensor(r).reshape(-1)
    F = 6 * q[side] + 4 * q[2 + lab] + 0.5 * torch.randn(r.size, 16, generator=g)
    cfg = SegmenterConfig(backbone="classic", task="parts", solver="spectral",
                          task_params={"parts": 2, "split_background": 2, "parts_steps": 60,
                                       "background_steps": 60}, **FAST)
    out = Segmenter(cfg).predict_features(_pf(F.reshape(12, 16, 16)))
    lab = out.patch_labels
    fg = object_with_parts > 0
    assert out.label_names == {1: "part 1", 2: "part 2", 3: "background 1", 4: "background 2"}
    assert 0 not in lab  # with split_background every node gets a region
    assert np.all((lab[fg] >= 1) & (lab[fg] <= 2))  # parts only on the object
    assert np.all((lab[~fg] >= 3) & (lab[~fg] <= 4))  # regions numbered after the parts
    assert adjusted_rand_score(r[fg], lab[fg]) == 1.0
    assert adjusted_rand_score(r[~fg], lab[~fg]) == 1.0  # the two background regions
    assert set(out.task_output.solver["stages"]) == {"fgbg", "parts", "background"}
    assert json.dumps(out.record())  # JSON-able record


def test_label_names_table():
    assert part_label_names(2, None) == {0: "background", 1: "part 1", 2: "part 2"}
    assert part_label_names(1, 1) == {1: "part 1", 2: "background 1"}


def test_more_parts_than_foreground_nodes_reduces_k_with_warning():
    r = np.zeros((8, 8), dtype=np.int64)
    r[3:5, 3:5] = 1  # 4 foreground patches
    cfg = SegmenterConfig(backbone="classic", task="parts", solver="gnn",
                          task_params={"parts": 6, "parts_steps": 5}, **FAST)
    with pytest.warns(PartsReducedWarning, match="4 patches for 6 clusters; using 4"):
        out = Segmenter(cfg).predict_features(_pf(orthogonal_grid(r)))
    assert out.extra["parts_requested"] == 6 and out.extra["parts_used"] == 4
    assert set(np.unique(out.patch_labels[r == 1])) <= {1, 2, 3, 4}
    assert np.all(out.patch_labels[r == 0] == 0)
    # numbering follows the request, for every image; names list only the labels present
    assert set(out.label_names) == set(np.unique(out.patch_labels).tolist())


@pytest.mark.parametrize("params,match", [({"parts": 0}, "'parts' task parameter must be an int"),
                                          ({"split_background": "2"}, "'split_background'")])
def test_bad_task_params(object_with_parts, params, match):
    cfg = SegmenterConfig(backbone="classic", task="parts", task_params=params, **FAST)
    with pytest.raises(ConfigError, match=match):
        Segmenter(cfg).predict_features(_pf(orthogonal_grid(object_with_parts)))


def test_infer_cli_parts(tmp_path):
    from conftest import make_image

    from deepcut.cli.infer import main

    img = make_image(tmp_path / "obj.png", size=(96, 64))
    rc = main([str(img), "--out", str(tmp_path / "out"), "--backbone", "classic", "--size", "64",
               "--task", "parts", "--parts", "2", "--split-background", "2", "--quiet"])
    assert rc == 0
    rec = json.loads((tmp_path / "out" / "obj.json").read_text())
    assert rec["label_names"] == {"1": "part 1", "2": "part 2", "3": "background 1",
                                  "4": "background 2"}
    assert rec["extra"]["split_background"] == 2
