"""The converged GNN (the default) against the paper's settings: it solves its objective with all
K clusters; the paper preset is today's reference behaviour bit for bit; degenerate results warn."""
import hashlib
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from conftest import planted_grid
from deepcut.config import SegmenterConfig
from deepcut.graphs import ncut_graph
from deepcut.losses import discrete_ncut
from deepcut.solvers import DegenerateResultWarning, GNNSolver, SpectralNCut
from deepcut.solvers.gnn import balance_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def _blocks(k: int, side: int = 12) -> np.ndarray:
    """``(side, k * side // 2)`` grid cut into k vertical bands of equal width."""
    w = k * side // 2
    return np.repeat(np.arange(k), w // k)[None, :].repeat(side, 0)


def test_planted_six_blocks_recovered_with_all_clusters():
    regions = _blocks(6)
    F = planted_grid(*regions.shape, regions, dim=32, noise=1.0, sep=2.0, seed=3)
    F = F.reshape(-1, 32)
    g = ncut_graph(F, metric="cosine")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateResultWarning)  # all 6 used: no warning
        est = GNNSolver(6).fit(g, F)
    assert est.n_clusters_ == 6 and est.warnings_ == []
    assert adjusted_rand_score(regions.reshape(-1), est.labels_.numpy()) >= 0.95
    spectral = SpectralNCut(6, random_state=0).fit(g, F)
    assert est.ncut_ <= spectral.ncut_ + 1e-5


def test_paper_settings_are_todays_labels_bit_for_bit():
    """Labels of the reference behaviour (commit 5ed3069, the paper's 10 steps / 100 steps at
    lr 1e-3) on a fixed input, as sha256 of the int64 label bytes."""
    g = torch.Generator().manual_seed(7)
    F = torch.cat([torch.randn(40, 16, generator=g) + 2, torch.randn(30, 16, generator=g) - 1,
                   torch.randn(50, 16, generator=g)])
    expected = {2: "40942f8b05604e32834b68e32e98d1961185038a3b6b129fad2c1bf8affcf678",
                4: "37b4790ac06aa3eaf48065687be3f84cf9e0c1cb5181ad732fbc549256a87203"}
    for K, steps in ((2, 10), (4, 100)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateResultWarning)
            est = GNNSolver(K, **{**GNNSolver.PAPER, "steps": steps}).fit(ncut_graph(F), F)
        got = hashlib.sha256(est.labels_.numpy().astype(np.int64).tobytes()).hexdigest()
        assert got == expected[K]


def test_paper_preset_config_values_and_flags_win():
    cfg = SegmenterConfig.from_preset("paper")
    assert (cfg.loss, cfg.lr, cfg.preset) == ("ncut", 1e-3, "paper")
    assert SegmenterConfig.from_preset("paper", lr=0.5).lr == 0.5
    assert SegmenterConfig().loss == "soft_ncut" and SegmenterConfig().lr is None
    from deepcut.tasks.base import make_solver

    s = make_solver(cfg, 2)
    assert (s.steps, s.lr, s.loss, s.balance_weight, s.polish, s.tol) == \
        (10, 1e-3, "ncut", 0.0, False, 0.0)
    assert make_solver(cfg, 4, steps=100).steps == 100  # a task's own stage steps stay


def test_paper_yaml_files_match_the_preset():
    from pathlib import Path

    import yaml

    from deepcut.presets import PRESETS

    root = Path(__file__).resolve().parents[1] / "configs" / "paper"
    files = sorted(root.glob("*.yaml"))
    assert files
    for f in files:
        d = yaml.safe_load(f.read_text())
        assert d["preset"] == "paper"
        for k, v in PRESETS["paper"].items():
            assert d[k] == v, (f.name, k)
        SegmenterConfig.from_dict(d).validate()


def test_fewer_clusters_than_asked_warns_and_is_recorded():
    g = torch.Generator().manual_seed(7)
    F = torch.cat([torch.randn(40, 16, generator=g) + 2, torch.randn(80, 16, generator=g)])
    with pytest.warns(DegenerateResultWarning, match="of the 4 clusters"):
        est = GNNSolver(4, **GNNSolver.PAPER).fit(ncut_graph(F), F)
    s = est.summary()
    assert s["n_clusters"] < 4 and s["n_clusters_requested"] == 4
    # one line for it (the 2-node cluster of this K > 2 cut is not flagged as "not a segment")
    assert len(s["warnings"]) == 1


def test_balance_loss_values():
    assert float(balance_loss(torch.full((10, 4), 0.25))) == pytest.approx(0.0, abs=1e-6)
    one = torch.zeros(10, 4)
    one[:, 0] = 1
    assert float(balance_loss(one)) == pytest.approx(4 * np.log(4), rel=1e-5)


def test_rounding_never_raises_the_ncut_and_keeps_ids():
    regions = _blocks(4)
    F = planted_grid(*regions.shape, regions, dim=16, noise=1.5, sep=1.5, seed=1).reshape(-1, 16)
    g = ncut_graph(F, metric="cosine")
    est = GNNSolver(4).fit(g, F)
    raw = discrete_ncut(est.raw_labels_, g.W, g.degree)
    assert est.ncut_ <= raw + 1e-6 and est.raw_ncut_ == pytest.approx(raw)
    # ids are the head's: most nodes keep the argmax id
    assert float((est.labels_ == est.raw_labels_).float().mean()) > 0.5


def test_parts_on_a_planted_object_with_four_parts():
    from deepcut.backbones.base import PatchFeatures
    from deepcut.tasks.parts import parts_task

    r = np.zeros((14, 18), dtype=np.int64)
    r[3:11, 4:8], r[3:11, 8:11], r[3:11, 11:14] = 1, 2, 3
    r[3:7, 4:14][r[3:7, 4:14] == 1] = 4
    gen = torch.Generator().manual_seed(0)
    means = torch.linalg.qr(torch.randn(16, 16, generator=gen))[0][:5] * 6
    F = (means[torch.as_tensor(r).reshape(-1)] + torch.randn(r.size, 16, generator=gen))
    pf = PatchFeatures(features=F.reshape(14, 18, 16), cls=None, input_size=(112, 144),
                       image_size=(112, 144), patch_size=8, stride=8, backbone="planted")
    out = parts_task(pf, SegmenterConfig(backbone="classic", task="parts", seed=0,
                                         task_params={"parts": 4}))
    labels = out.patch_labels
    assert out.extra["parts_found"] == 4 and out.solver["warnings"] == []
    assert adjusted_rand_score(r.reshape(-1), labels.reshape(-1)) >= 0.9
    assert set(out.label_names) == set(np.unique(labels).tolist())


def test_sparse_knn_path_gives_the_dense_answer_on_a_planted_image(tmp_path):
    """A size that takes the kNN path (forced by ``dense_max_nodes``) segments the planted
    object as the dense graph does; it used to give a one-patch foreground (issue 14, item 5)."""
    from conftest import make_image
    from deepcut.pipeline import Segmenter

    p = make_image(tmp_path / "img.png", size=(192, 128))  # red square: rows 32-96, cols 64-128
    dense = Segmenter(backbone="classic", size=128, seed=0)(p)
    knn = Segmenter(backbone="classic", size=128, seed=0, dense_max_nodes=50,
                    landmarks=None)(p)
    assert knn.meta["config"]["dense_max_nodes"] == 50 and knn.meta["solver"]["warnings"] == []
    a, b = dense.patch_labels.astype(bool), knn.patch_labels.astype(bool)
    assert (a & b).sum() / (a | b).sum() >= 0.9
    square = np.zeros_like(b)
    square[4:12, 8:16] = True
    assert b[square].all() and b.sum() < 2 * square.sum()
