"""The converged GNN (the default) against the paper's settings: it solves its objective with all
K clusters; the paper preset is today's reference behaviour bit for bit; degenerate results warn."""
import hashlib
import warnings

import numpy as np
import pytest
import torch
from conftest import planted_grid
from sklearn.metrics import adjusted_rand_score

from deepcut.config import SegmenterConfig
from deepcut.graphs import ncut_graph
from deepcut.losses import discrete_ncut
from deepcut.solvers import DegenerateResultWarning, FalconCut, GNNSolver, SpectralNCut
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
    Q = torch.linalg.qr(torch.randn(16, 16, generator=gen))[0]
    # the parts share an object direction, as parts of one object do: with five equally
    # distinct means the lowest 2-way NCut (found by Falcon's restarts) splits off
    # background + one part, not the object
    means = torch.cat([Q[:1] * 6, Q[1:2] * 6 + Q[2:6] * 4])
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
    # The 32-NN graph links 36 patches whose context features see the square to it: its 5-way
    # NCut optimum adds them to the object for every solver (NCut 0.566 gnn, 0.571 spectral,
    # 0.562 falcon; the object alone: 0.631), so the masks agree on the object, not exactly.
    assert (a & b).sum() / (a | b).sum() >= 0.6
    square = np.zeros_like(b)
    square[4:12, 8:16] = True
    assert b[square].all() and b.sum() < 2 * square.sum()


def _same_colour_blocks(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """A 12 x 30 grid: columns 0-9 and 20-29 share one colour, 10-19 another (noisy)."""
    g = torch.Generator().manual_seed(seed)
    H, W = 12, 30
    col = torch.arange(W).repeat(H)
    truth = (col >= 10).long() + (col >= 20).long()  # left, middle, right
    colour = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])[(truth == 1).long()]
    return colour + 0.05 * torch.randn(H * W, 3, generator=g), truth, (H, W)


def test_warm_start_splits_same_colour_regions_on_the_local_graph():
    """On Shi-Malik's local graph two same-coloured regions that do not touch are two segments.
    From the seeded init alone the head sees only (smoothed) colour and cannot tell them apart;
    the spectral warm start can, and the GNN keeps it (issue 10: 5.7x spectral's NCut before)."""
    from deepcut.graphs import build_graph

    F, truth, grid = _same_colour_blocks()
    g = build_graph(F, kind="local", grid=grid, radius=3)
    warm = GNNSolver(3, seed=0).fit(g, F)
    cold = GNNSolver(3, seed=0, warm_start=None).fit(g, F)
    assert adjusted_rand_score(truth, warm.labels_) >= 0.95
    assert adjusted_rand_score(truth, cold.labels_) < 0.9
    assert warm.ncut_ < cold.ncut_
    assert warm.n_iter_ > warm.warm_steps and warm.timings_["warm_start"] > 0


@pytest.mark.parametrize("K", [2, 4, 8])
def test_warm_started_gnn_is_never_worse_than_spectral(K):
    """The warm partition is a rounding start and rounding is monotone, so the GNN's NCut is
    <= the spectral baseline's (same seed) on every graph."""
    for seed in range(3):
        F = torch.randn(150, 6, generator=torch.Generator().manual_seed(seed))
        F[:50] += 2.0
        g = ncut_graph(F)
        gnn = GNNSolver(K, seed=seed, warm_start="spectral").fit(g, F)
        spec = SpectralNCut(K, random_state=seed).fit(g, F)
        assert gnn.ncut_ <= spec.ncut_ + 1e-6
        assert gnn.n_clusters_ == K


@pytest.mark.parametrize("warm", ["falcon", "auto"])
@pytest.mark.parametrize("K", [2, 4])
def test_falcon_warm_start_is_never_worse_than_falcon(K, warm):
    """``warm_start="falcon"`` (and the default ``"auto"`` on a dense graph): the same
    guarantee against the partition of the one Falcon run it starts from (``n_restarts=1``:
    FalconCut's default 8 restarts can end lower)."""
    for seed in range(3):
        F = torch.randn(150, 6, generator=torch.Generator().manual_seed(seed))
        F[:50] += 2.0
        g = ncut_graph(F)
        gnn = GNNSolver(K, seed=seed, warm_start=warm).fit(g, F)
        assert gnn.warm_kind(g) == "falcon"
        fal = FalconCut(K, random_state=seed, n_restarts=1).fit(g, F)  # the warm start's run
        assert gnn.ncut_ <= fal.ncut_ + 1e-6
        assert gnn.n_clusters_ == K and gnn.timings_["warm_start"] > 0


def test_auto_warm_start_is_falcon_on_dense_graphs_and_spectral_on_sparse_ones():
    from deepcut.graphs import build_graph

    F, _, grid = _same_colour_blocks()
    dense, local = ncut_graph(F), build_graph(F, kind="local", grid=grid, radius=3)
    assert GNNSolver(3).warm_start == "auto"
    assert GNNSolver(3).warm_kind(dense) == "falcon"
    assert GNNSolver(3).warm_kind(local) == "spectral"
    assert GNNSolver(3, warm_start="spectral").warm_kind(dense) == "spectral"
    assert GNNSolver(3, warm_start="falcon").warm_kind(local) == "falcon"
    for off in ({"warm_start": None}, {"warm_steps": 0}, GNNSolver.PAPER, {"loss": "cc"}):
        assert GNNSolver(3, **off).warm_kind(dense) is None
    # the warm partition the head is fitted to is the chosen solver's, ids matched
    seen = {}

    class Spy(GNNSolver):
        def _set_fitted(self, graph, S, E, warm=None):
            seen[graph.is_sparse] = warm
            super()._set_fitted(graph, S, E, warm)

    assert Spy(3, seed=0).fit(dense, F).summary()["warm_start"] == "falcon"
    assert Spy(3, seed=0).fit(local, F).summary()["warm_start"] == "spectral"
    assert GNNSolver(3, seed=0, warm_start=None).fit(dense, F).summary()["warm_start"] is None
    fal = FalconCut(3, random_state=0, n_restarts=1).fit(dense, F).labels_
    spec = SpectralNCut(3, random_state=0).fit(local).labels_
    assert adjusted_rand_score(fal, seen[False]) == 1.0
    assert adjusted_rand_score(spec, seen[True]) == 1.0


def test_falcon_partition_is_fits_labels_without_the_ncut():
    F = torch.randn(120, 5, generator=torch.Generator().manual_seed(3))
    F[:40] += 2.5
    g = ncut_graph(F)
    est = FalconCut(3, random_state=0)
    z = est.partition(g, F)
    assert "solve" in est.timings_ and not hasattr(est, "ncut_")
    assert torch.equal(z, FalconCut(3, random_state=0).fit(g, F).labels_)


def test_spectral_partition_is_fits_labels_without_the_ncut():
    F = torch.randn(120, 5, generator=torch.Generator().manual_seed(3))
    F[:40] += 2.5
    g = ncut_graph(F)
    est = SpectralNCut(3, random_state=0)
    z = est.partition(g)
    assert "eigen" in est.timings_ and not hasattr(est, "ncut_")
    assert torch.equal(z, SpectralNCut(3, random_state=0).fit(g).labels_)


def test_match_ids_by_hand():
    from deepcut.solvers.gnn import match_ids

    z = torch.tensor([0, 0, 1, 1, 2])
    ref = torch.tensor([2, 2, 0, 0, 1])
    assert match_ids(z, ref, 3).tolist() == [2, 2, 0, 0, 1]
    # an id with no counterpart keeps a free slot: the matching is a permutation
    assert sorted(set(match_ids(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 0]), 3).tolist())) \
        in ([0, 1], [0, 2], [1, 2])


def test_warm_start_off_for_cc_checkpoints_and_the_paper_preset():
    F = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    head = GNNSolver(2).make_head(4).state_dict()
    assert not GNNSolver(2, loss="cc")._uses_warm_start()
    assert not GNNSolver(2, init_state=head)._uses_warm_start()
    assert not GNNSolver(2, **GNNSolver.PAPER)._uses_warm_start()
    assert GNNSolver(2)._uses_warm_start() and GNNSolver(2)._cut_steps() == 2
    assert GNNSolver(2)._kmeans_starts() == 0  # the warm partition is already a start
    assert GNNSolver(2, warm_start=None)._cut_steps() == 30
    assert GNNSolver(2, warm_start=None)._kmeans_starts() == 4
    from deepcut.presets import gnn_preset_params
    assert gnn_preset_params("paper", None)["warm_steps"] == 0
    assert GNNSolver(2, init_state=head)._kmeans_starts() == 0  # its rounding start instead
    assert GNNSolver(2, init_state=head, warm_start=None)._kmeans_starts() == 4
    s = GNNSolver(2, init_state=head, steps=0, warm_steps=0).fit(ncut_graph(F), F)
    assert s.n_iter_ == 0 and "warm_start" not in s.timings_ and s.warm_start_ is None
    # through the pipeline: the paper preset, 0 warm steps, or warm_start=None in solver_params
    # (a None there is the user's value; an unset config field's None leaves the default)
    from PIL import Image

    from deepcut.pipeline import Segmenter
    im = Image.fromarray((np.random.RandomState(0).rand(48, 48, 3) * 255).astype("uint8"))
    for kw, warm in (({"preset": "paper"}, False), ({"solver_params": {"warm_steps": 0}}, False),
                     ({"solver_params": {"warm_start": None}}, False), ({}, True)):
        r = Segmenter(backbone="classic", size=48, seed=0, **kw)(im)
        assert ("warm_start" in r.meta["solver"]["timings"]) is warm, kw


def test_given_warm_labels_start_an_ncut_head_and_a_checkpoint():
    # a partition found elsewhere is the warm start (its ids matched to the head's), for the
    # NCut loss and even with init_state; without it the next fit is the usual one
    regions = _blocks(3)
    F = planted_grid(*regions.shape, regions, dim=32, noise=1.0, sep=2.0, seed=1).reshape(-1, 32)
    g = ncut_graph(F, metric="cosine")
    truth = torch.from_numpy(regions.reshape(-1)).long()
    s = GNNSolver(3, seed=0).fit(g, F, warm_labels=(truth + 1) % 3)
    assert s.warm_start_ == "given" and s.n_warm_iter_ >= 1 and "warm_start" in s.timings_
    assert adjusted_rand_score(truth, s.labels_) == 1.0
    head = GNNSolver(3).make_head(32).state_dict()
    c = GNNSolver(3, init_state=head, seed=0).fit(g, F, warm_labels=truth)
    assert c.warm_start_ == "given" and adjusted_rand_score(truth, c.labels_) == 1.0
    # a checkpoint alone: the warm solver's partition is a rounding start only (no training)
    c = GNNSolver(3, init_state=head, seed=0, steps=0).fit(g, F)
    assert c.warm_start_ == "falcon" and c.n_iter_ == 0 and c.n_warm_iter_ == 0
    assert GNNSolver(3, init_state=head, steps=0, polish=False).fit(g, F).warm_start_ is None
    assert s.fit(g, F).warm_start_ == "falcon"  # the given partition is not kept across fits


def test_warm_start_ends_once_the_head_fits_the_warm_partition():
    """``warm_fit``: the cross-entropy phase ends after the first step whose logits (before
    its update) agree with the warm partition on that share of the rows; 1 runs every step."""
    s = GNNSolver(2, warm_fit=0.75)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    target = torch.tensor([0, 1, 0, 1])  # 3 of 4 rows agree
    assert s._next_step(3, 10, logits, target) == 10  # on to the first cut-loss step
    assert GNNSolver(2, warm_fit=0.8)._next_step(3, 10, logits, target) == 4
    assert GNNSolver(2, warm_fit=1.0)._next_step(3, 10, logits, logits.argmax(-1)) == 4
    assert s._next_step(10, 10, logits, None) == 11  # cut-loss steps just count
    # on a planted 2-band grid the head fits the warm partition in a few steps
    regions = _blocks(2)
    F = planted_grid(*regions.shape, regions, dim=32, noise=1.0, sep=2.0, seed=3).reshape(-1, 32)
    g = ncut_graph(F, metric="cosine")
    fast, full = GNNSolver(2, seed=0).fit(g, F), GNNSolver(2, seed=0, warm_fit=1.0).fit(g, F)
    assert fast.warm_fit == 0.98 and full.n_warm_iter_ == 10
    assert 1 <= fast.n_warm_iter_ < 10 and fast.n_iter_ == fast.n_warm_iter_ + 2
    for est in (fast, full):
        assert adjusted_rand_score(regions.reshape(-1), est.labels_.numpy()) == 1.0
    with pytest.raises(ValueError, match="warm_fit"):
        GNNSolver(2, warm_fit=0.0).fit(g, F)


def test_warm_start_cross_entropy_steps_take_seeded_node_minibatches():
    assert GNNSolver(2).warm_batch == 0.25
    rows = GNNSolver(2)._batch_rows(10, "cpu", torch.Generator().manual_seed(0))
    assert rows.numel() == 3 and len(set(rows.tolist())) == 3  # ceil(0.25 * 10) distinct nodes
    assert GNNSolver(2, warm_batch=0.05)._batch_rows(10, "cpu").numel() == 1
    assert GNNSolver(2, warm_batch=1.0)._batch_rows(10, "cpu") is None
    reg = _blocks(3)
    F = torch.as_tensor(planted_grid(*reg.shape, reg, noise=1.0, seed=0)).reshape(reg.size, -1)
    g = ncut_graph(F)
    mini, mini2, full = (GNNSolver(3, seed=0, **kw).fit(g, F)
                         for kw in ({}, {}, {"warm_batch": 1.0}))
    # the mini-batches are drawn (other cross-entropy losses) and seeded (same run twice)
    assert mini.loss_history_[:10] != full.loss_history_[:10]
    assert mini.loss_history_ == mini2.loss_history_ and torch.equal(mini.labels_, mini2.labels_)
    for s in (mini, full):
        assert adjusted_rand_score(reg.reshape(-1), s.labels_.numpy()) == 1.0
        assert adjusted_rand_score(reg.reshape(-1), s.raw_labels_.numpy()) == 1.0


def test_warm_start_keeps_cluster_ids_across_images():
    """DeepCut's implicit classification: regions of the same features get the same cluster id
    in every image, whatever their place, because every image starts from one seeded head. The
    warm partition's ids come from that head's scores (an argmax-count matching failed this:
    the untrained head's argmax often takes every node, and ids then depended on the image)."""
    from deepcut.graphs import build_graph

    colours = torch.eye(3)
    H, W = 12, 30
    col = torch.arange(W).repeat(H)
    found = []
    for seed, order in enumerate([(0, 1, 2), (2, 0, 1), (1, 2, 0), (2, 1, 0)]):
        region = torch.tensor(order)[col // 10]
        F = colours[region] + 0.1 * torch.randn(H * W, 3,
                                                generator=torch.Generator().manual_seed(seed))
        for g in (build_graph(F, kind="local", grid=(H, W)), ncut_graph(F)):
            z = GNNSolver(3, seed=0).fit(g, F).labels_
            assert adjusted_rand_score(region, z) == 1.0
            found.append(tuple(int(z[region == r][0]) for r in range(3)))
    assert len(set(found)) == 1, found


def test_warm_start_does_not_report_the_spectral_starts_warnings():
    """A degenerate spectral start is internal: only the GNN's own result may warn. On this
    graph spectral's 2-way cut has a side that is not a segment (it warns), the GNN's does not."""
    F = torch.randn(12, 3, generator=torch.Generator().manual_seed(4))
    F[:6] = F[0]  # six identical rows
    g = ncut_graph(F)
    with pytest.warns(DegenerateResultWarning, match="spectral: .*not a segment"):
        SpectralNCut(2, random_state=0).fit(g)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gnn = GNNSolver(2, seed=0).fit(g, F)
    assert gnn.warnings_ == []
    assert not [w for w in caught if "spectral" in str(w.message)]


def test_checkpoint_rounds_the_warm_solvers_partition_too():
    """A checkpoint (``init_state``) trains toward no warm partition, but Falcon's partition is
    one more rounding start in place of the k-means starts: on weak planted blocks the NCut is
    never above Falcon's, where the k-means starts of the head's embedding can be (seed 1:
    1.70022 against Falcon's 1.70016; before both ended with exact moves, on every seed)."""
    from deepcut.solvers import FalconCut

    above = []
    for seed in range(3):
        regions = _blocks(4)
        F = planted_grid(*regions.shape, regions, dim=32, noise=1.0, sep=0.6,
                         seed=seed).reshape(-1, 32)
        g = ncut_graph(F, metric="cosine")
        head = GNNSolver(4, seed=seed).make_head(32).state_dict()
        falcon = FalconCut(4, random_state=0, n_restarts=1).fit(g, F).ncut_
        ckpt = GNNSolver(4, init_state=head, steps=0, seed=0).fit(g, F)
        assert ckpt.warm_start_ == "falcon" and ckpt.ncut_ <= falcon + 1e-6
        kmeans = GNNSolver(4, init_state=head, steps=0, seed=0, warm_start=None).fit(g, F)
        above.append(kmeans.ncut_ > falcon + 1e-5)
    assert above == [False, True, False]


def test_the_segment_config_file_is_the_defaults_written_out():
    """configs/infer_segment.yaml says it holds SegmenterConfig's defaults, every key: so it must."""
    import dataclasses
    from pathlib import Path

    import yaml

    d = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" /
                        "infer_segment.yaml").read_text())
    fields = {f.name for f in dataclasses.fields(SegmenterConfig)}
    assert set(d) == fields
    default = SegmenterConfig()
    assert {k: getattr(default, k) for k in fields} == d


def test_a_k_less_fit_that_finds_one_cluster_says_so():
    """The CC loss's K is an upper bound, so "fewer than asked" is no warning there; one
    cluster still is (it was silent), on one line and in the JSON's warnings."""
    from deepcut.graphs import Graph

    W = torch.ones(30, 30) - torch.eye(30)  # every pair attracts: one cluster is optimal
    g = Graph(W=W, degree=W.sum(1), kind="cc")
    F = torch.randn(30, 8, generator=torch.Generator().manual_seed(0))
    with pytest.warns(DegenerateResultWarning, match="one cluster"):
        est = GNNSolver(5, loss="cc", steps=30).fit(g, F)
    s = est.summary()
    assert s["n_clusters"] == 1 and s["warnings"] == ["gnn: one cluster (a trivial cut)"]


@pytest.mark.parametrize("solver", ["falcon", "gnn"])
def test_features_without_structure_give_one_cluster_said_not_a_crash(solver):
    """Constant features (a graph with one coarse node, or no edge at all for Falcon's graph):
    one segment, one warning line, and no "object" among the label names."""
    from deepcut import Segmenter
    from deepcut.backbones.base import PatchFeatures

    pf = PatchFeatures(torch.ones(12, 12, 8), None, (96, 96), (96, 96), 8, 8, backbone="vit_test")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        pred = Segmenter(backbone="classic", solver=solver, seed=0).predict_features(pf)
    said = [str(w.message) for w in rec if issubclass(w.category, DegenerateResultWarning)]
    assert np.unique(pred.labels).tolist() == [0] and pred.label_names == {0: "background"}
    assert pred.box is None and len(said) == 1 and "1 of the 2 clusters" in said[0]
    assert pred.meta["solver"]["warnings"] == said
