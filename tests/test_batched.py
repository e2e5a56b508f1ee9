"""Batched GNN heads (deepcut/solvers/batched.py): the same labels as one image at a time."""
import numpy as np
import pytest
import torch
from conftest import planted_grid
from sklearn.metrics import adjusted_rand_score

from deepcut.graphs import build_graph
from deepcut.nn.head import Dropout, dropout_keep
from deepcut.solvers import GNNSolver
from deepcut.solvers.batched import fit_batched

pytestmark = pytest.mark.usefixtures("one_thread")


def _regions(h: int, w: int, shift: int) -> np.ndarray:
    """Background, a central object and a side block, placed differently per image."""
    r = np.zeros((h, w), dtype=np.int64)
    r[2 + shift:h - 3, 2:w // 2] = 1
    r[1:h - 1, w - 4 - shift:w - 1] = 2
    return r


# three images of different sizes (N = 120, 192, 156): padding is exercised
_SHAPES = [((10, 12), 0), ((12, 16), 1), ((12, 13), 2)]


def _images(kind: str = "ncut", noise: float = 1.0):
    graphs, feats, truth = [], [], []
    for (h, w), shift in _SHAPES:
        reg = _regions(h, w, shift)
        F = planted_grid(h, w, reg, noise=noise, seed=shift).reshape(-1, 32)
        graphs.append(build_graph(F, kind, grid=(h, w)))
        feats.append(F)
        truth.append(reg.reshape(-1))
    return graphs, feats, truth


def _assert_same(params: dict, kind: str = "ncut", k: int = 3, noise: float = 1.0) -> list:
    graphs, feats, _ = _images(kind, noise)
    alone = [GNNSolver(k, **params).fit(g, F) for g, F in zip(graphs, feats)]
    many = GNNSolver(k, **params).fit_many(graphs, feats)
    assert len(many) == len(alone)
    for a, b in zip(alone, many):
        assert torch.equal(a.labels_, b.labels_)
        assert torch.equal(a.raw_labels_, b.raw_labels_)
        assert a.n_iter_ == b.n_iter_
        np.testing.assert_allclose(b.loss_history_, a.loss_history_, rtol=1e-4, atol=1e-6)
        assert torch.allclose(a.assignment_, b.assignment_, atol=1e-4)
        assert b.ncut_ == pytest.approx(a.ncut_, abs=1e-6)
        assert b.n_clusters_ == a.n_clusters_ and b.batch_size_ == len(graphs)
    return many


@pytest.mark.filterwarnings("ignore:.*clusters asked for are non-empty")
@pytest.mark.parametrize("params", [
    {},  # the default: Falcon's warm start on these dense graphs (at most 10 steps on a
    # quarter of the nodes), soft NCut 2 steps, rounding
    {"warm_batch": 1.0},  # the warm start's cross-entropy steps on every node
    {"warm_start": None},  # from the seeded init: soft NCut + annealed balance, 30 steps
    dict(GNNSolver.PAPER),  # DeepCut's: Eq. 9, 10 steps at lr 1e-3, no rounding
    {"balance_weight": 0.0, "tol": 1e-3, "steps": 80},  # heads stop at different steps
])
def test_batched_heads_equal_single_heads(params):
    many = _assert_same(params, noise=2.0)
    if params.get("tol") == 1e-3:  # early stopping is per head
        assert len({m.n_iter_ for m in many}) > 1
    if not params:  # warm_fit ends each head's cross-entropy phase at its own step
        assert len({m.n_warm_iter_ for m in many}) > 1


def test_batched_sparse_graph_and_cc_loss_equal_single():
    _assert_same({"steps": 20}, kind="local", k=2)
    many = _assert_same({"loss": "cc", "steps": 40, "lr": 1e-2}, kind="cc", k=6)
    assert all(m.n_clusters_ == 3 for m in many)  # the planted 3 regions from K_max = 6


def test_batched_heads_recover_planted_regions():
    graphs, feats, truth = _images()
    many = GNNSolver(3, steps=60, seed=0).fit_many(graphs, feats)
    for m, t in zip(many, truth):
        assert adjusted_rand_score(t, m.labels_.numpy()) >= 0.95


def test_dropout_keep_with_a_generator_draws_the_global_streams_bits():
    x = torch.ones(37, 32)
    drop = Dropout(0.25).train()
    torch.manual_seed(5)
    a, b = drop(x), drop(x)
    g = torch.Generator().manual_seed(5)
    for y in (a, b):
        assert torch.equal(y, x * dropout_keep((37, 32), 0.25, generator=g) / 0.75)
    kept = dropout_keep((200, 32), 0.25, generator=g).float().mean()
    assert 0.72 < float(kept) < 0.78  # probability 1 - p


def test_fit_batched_inference_and_errors():
    graphs, feats, _ = _images()
    trained = GNNSolver(3, steps=30).fit(graphs[0], feats[0])
    state = trained.head_.state_dict()
    inf = GNNSolver(3, steps=0, init_state=state).fit_many(graphs[:1], feats[:1])
    assert torch.equal(inf[0].labels_, GNNSolver(3, steps=0, init_state=state)
                       .fit(graphs[0], feats[0]).labels_)
    # fine-tuned from the checkpoint, batched: the warm solver's partition is a rounding start
    # there too, so the labels equal the solo fits'
    tuned = GNNSolver(3, steps=3, init_state=state, seed=0)
    for b, c in enumerate(tuned.fit_many(graphs[:2], feats[:2])):
        solo = GNNSolver(3, steps=3, init_state=state, seed=0).fit(graphs[b], feats[b])
        assert c.warm_start_ == solo.warm_start_ == "falcon"
        assert torch.equal(c.labels_, solo.labels_)
    assert fit_batched(GNNSolver(3), [], []) == []
    with pytest.raises(ValueError, match="2 graphs but 1 feature sets"):
        GNNSolver(3).fit_many(graphs[:2], feats[:1])
    with pytest.raises(ValueError, match=r"features of different widths \[16, 32\]"):
        GNNSolver(3).fit_many(graphs[:2], [feats[0][:, :16], feats[1]])
    with pytest.raises(ValueError, match="needs the signed correlation-clustering graph"):
        GNNSolver(3, loss="cc").fit_many(graphs[:1], feats[:1])


def _tiny_images():
    rng = np.random.default_rng(0)
    out = []
    for h, w in [(64, 96), (80, 64), (72, 72)]:  # different sizes: different N
        a = (rng.random((h, w, 3)) * 60).astype(np.uint8)
        a[h // 4:3 * h // 4, w // 3:2 * w // 3] += 150  # a bright object
        out.append(a)
    return out


@pytest.mark.parametrize("task", ["segment", "clusters"])
def test_segmenter_predict_batch_equals_one_image_at_a_time(task):
    from deepcut import Segmenter

    seg = Segmenter(backbone="classic", task=task, seed=0,
                    n_clusters=3 if task == "clusters" else None)
    images = _tiny_images()
    alone = [seg(im) for im in images]
    many = seg.predict_batch(images)
    for a, b in zip(alone, many):
        assert np.array_equal(a.labels, b.labels) and np.array_equal(a.patch_labels,
                                                                     b.patch_labels)
        assert b.ncut == pytest.approx(a.ncut, abs=1e-6) and b.box == a.box
        ra, rb = a.record(), b.record()
        # the default: at most 10 warm-start steps (fewer once the head fits the warm
        # partition, warm_fit) + 2 cut-loss steps, the same count batched or not
        assert rb["solver"]["n_iter"] == ra["solver"]["n_iter"] <= 12
        assert b.timings["solve"] > 0
    if task == "segment":  # the planted object is found
        assert all(p.patch_labels.mean() > 0.1 for p in many)


def test_predict_batch_solves_large_images_on_their_landmarks_as_alone():
    """Above dense_max_nodes an image is solved on its landmark graph, batched or not: two of
    the three images (1855 and 1540 nodes) take that path, the third (1225) the batched heads."""
    from deepcut import Segmenter

    seg = Segmenter(backbone="classic", task="clusters", n_clusters=3, seed=0, graph="ncut",
                    dense_max_nodes=1500, landmarks=256)
    images = _tiny_images()
    alone = [seg(im) for im in images]
    many = seg.predict_batch(images)
    assert [int(np.prod(p.meta["grid"])) for p in alone] == [1855, 1540, 1225]
    for a, b in zip(alone, many):
        assert np.array_equal(a.patch_labels, b.patch_labels)
        assert b.ncut == pytest.approx(a.ncut, abs=1e-6)


def test_predict_batch_uses_the_batched_heads_for_the_classic_5_way_segment(monkeypatch):
    """The classic segment task cuts K = 5 (saliency rule): the batched heads must be fitted
    at that K, or every image is solved a second time alone."""
    from deepcut import Segmenter

    solo = []
    fit = GNNSolver.fit
    monkeypatch.setattr(GNNSolver, "fit", lambda self, *a, **k: solo.append(1) or
                        fit(self, *a, **k))
    many = Segmenter(backbone="classic", seed=0).predict_batch(_tiny_images())
    assert solo == [] and all(p.extra["cluster_saliency"] for p in many)


def test_same_size_dense_graphs_take_the_vmap_loss_and_equal_single(monkeypatch):
    calls, vmap = [], torch.func.vmap
    monkeypatch.setattr(torch.func, "vmap", lambda *a, **k: calls.append(1) or vmap(*a, **k))
    graphs, feats = [], []
    for i in range(3):  # one grid size: the stacked, vmapped loss
        reg = _regions(12, 16, i)
        F = planted_grid(12, 16, reg, noise=2.0, seed=i).reshape(-1, 32)
        graphs.append(build_graph(F, "ncut"))
        feats.append(F)
    for params in ({}, dict(GNNSolver.PAPER), {"balance_weight": 0.0, "tol": 1e-3}):
        alone = [GNNSolver(3, **params).fit(g, F) for g, F in zip(graphs, feats)]
        many = GNNSolver(3, **params).fit_many(graphs, feats)
        for a, b in zip(alone, many):
            assert torch.equal(a.labels_, b.labels_) and a.n_iter_ == b.n_iter_
            np.testing.assert_allclose(b.loss_history_, a.loss_history_, rtol=1e-4, atol=1e-6)
    assert len(calls) >= 3  # the stacked path ran
