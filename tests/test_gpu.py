"""The device path: bf16 autocast keys, ``--device``, and (on a machine with CUDA) every stage.

The tests marked ``cuda`` skip without a GPU; ``scripts/gpu_check.sh`` runs them (and the
throughput benchmark) on a machine with one. The others check the device-agnostic logic here.
"""
import json

import numpy as np
import pytest
import torch
from conftest import make_image, planted_grid
from sklearn.metrics import adjusted_rand_score

from deepcut import Segmenter
from deepcut.backbones import create_backbone
from deepcut.config import SegmenterConfig
from deepcut.errors import ConfigError
from deepcut.pipeline import _precision

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
VIT = "timm:vit_small_patch8_224"  # DINO ViT-S/8's architecture, random init (no download)


def _image(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    """A bright textured square on a dark textured background, ``(h, w, 3)`` uint8."""
    rng = np.random.default_rng(seed)
    a = (rng.random((h, w, 3)) * 60).astype(np.uint8)
    a[h // 4:3 * h // 4, w // 3:2 * w // 3] += 150
    return a


def _vit_pair(size: int, device: str = "cpu"):
    fp32 = create_backbone(VIT, pretrained=False, size=size, device=device)
    bf16 = create_backbone(VIT, pretrained=False, size=size, device=device, precision="bf16")
    bf16.load_state_dict(fp32.state_dict())  # the same random weights
    return fp32, bf16


def _key_cosine(size: int, device: str) -> torch.Tensor:
    fp32, bf16 = _vit_pair(size, device)
    im = _image(size, size)
    a, b = fp32(im), bf16(im)
    assert a.features.dtype == b.features.dtype == torch.float32
    return torch.nn.functional.cosine_similarity(a.flat, b.flat, dim=1)  # (N,)


# ------------------------------------------------------------------------------------------
# CPU: the device-agnostic logic
# ------------------------------------------------------------------------------------------
def test_bf16_autocast_keys_within_tolerance_on_cpu(one_thread):
    cos = _key_cosine(112, "cpu")  # random-init ViT-S/8, 14 x 14 patches
    assert cos.numel() == 196 and float(cos.min()) >= 0.999
    fp32, _ = _vit_pair(112)
    default = create_backbone(VIT, pretrained=False, size=112)
    default.load_state_dict(fp32.state_dict())
    im = _image(112, 112)
    assert torch.equal(default(im).features, fp32(im).features)  # fp32: the unchanged path


def test_precision_option_resolution_and_errors():
    assert _precision(SegmenterConfig(backbone="dino_vits8")) == "fp32"
    assert _precision(SegmenterConfig(backbone="dino_vits8", device="cuda")) == "bf16"
    assert _precision(SegmenterConfig(backbone="dino_vits8", device="cuda",
                                      precision="fp32")) == "fp32"
    assert _precision(SegmenterConfig(backbone="classic", device="cuda")) is None
    with pytest.raises(ConfigError, match="'precision' parameter of SegmenterConfig"):
        SegmenterConfig(precision="fp16").validate()
    with pytest.raises(ConfigError, match="precision must be one of"):
        create_backbone(VIT, pretrained=False, size=64, precision="half")
    # classic takes no precision: the option is dropped, not an error
    assert create_backbone("classic", size=64, precision="bf16").name == "classic"


def test_cli_explicit_device_cpu_and_precision(tmp_path):
    from deepcut.cli.infer import main

    src = tmp_path / "img.png"
    make_image(src)
    out = tmp_path / "out"
    assert main([str(src), "--out", str(out), "--backbone", "classic", "--quiet", "--size", "64",
                 "--device", "cpu", "--precision", "fp32"]) == 0
    rec = json.loads((out / "img.json").read_text())
    assert rec["config"]["device"] == "cpu" and rec["config"]["precision"] == "fp32"
    if not torch.cuda.is_available():  # one clear line, no traceback
        assert main([str(src), "--out", str(tmp_path / "o2"), "--backbone", "classic",
                     "--quiet", "--device", "cuda"]) != 0


# ------------------------------------------------------------------------------------------
# CUDA: every stage on the GPU (skipped without one)
# ------------------------------------------------------------------------------------------
@cuda
def test_cuda_bf16_keys_within_tolerance():
    cos = _key_cosine(280, "cuda")  # 35 x 35 patches, DeepCut's input size
    assert cos.numel() == 1225 and float(cos.min()) >= 0.999


def _regions(h: int = 12, w: int = 16) -> np.ndarray:
    r = np.zeros((h, w), dtype=np.int64)
    r[3:9, 3:9] = 1
    r[2:10, 11:15] = 2
    return r


_SOLVES = [  # (solver, graph, extra config, K)
    ("gnn", "ncut", {}, 3),
    ("gnn", "ncut", {"knn": 16}, 3),  # the sparse kNN graph
    ("gnn", "local", {}, 3),
    ("gnn", "cc", {"loss": "cc"}, 6),
    ("gnn", "ncut", {"preset": "paper", "steps": 100}, 3),
    ("spectral", "ncut", {}, 3),
    ("spectral", "local", {}, 3),
    ("spectral", "ncut", {"solver_params": {"mode": "recursive", "tau": 1.0}}, 3),
    ("spectral", "ncut", {"knn": 16, "solver_params": {"mode": "recursive", "tau": 1.0}}, 3),
    ("falcon", "falcon", {}, 3),
    ("falcon", "local", {}, 3),
]


@cuda
@pytest.mark.parametrize("solver,graph,extra,k", _SOLVES)
def test_cuda_every_solver_and_graph_recovers_planted_regions(solver, graph, extra, k):
    from deepcut.tasks.base import solve

    reg = _regions()
    F = planted_grid(12, 16, reg).reshape(-1, 32)
    cfg = SegmenterConfig(backbone="classic", solver=solver, graph=graph, device="cuda",
                          **extra).validate()
    s, g = solve(F, cfg, k, grid=(12, 16))
    assert g.W.device.type == "cuda"
    assert s.labels_.device.type == "cpu" and s.labels_.shape == (192,)
    assert adjusted_rand_score(reg.reshape(-1), s.labels_.numpy()) >= 0.9
    assert -1e-4 <= s.ncut_ < 1.0  # 0 up to float rounding


@cuda
def test_cuda_batched_heads_equal_single_heads():
    from deepcut.graphs import build_graph
    from deepcut.solvers import GNNSolver

    feats = [planted_grid(h, w, _regions(h, w), seed=i).reshape(-1, 32).cuda()
             for i, (h, w) in enumerate([(12, 16), (14, 16), (12, 18)])]
    graphs = [build_graph(F, "ncut") for F in feats]
    alone = [GNNSolver(3, device="cuda").fit(g, F) for g, F in zip(graphs, feats)]
    many = GNNSolver(3, device="cuda").fit_many(graphs, feats)
    for a, b in zip(alone, many):
        assert torch.equal(a.labels_, b.labels_)
        np.testing.assert_allclose(b.loss_history_, a.loss_history_, rtol=1e-3, atol=1e-5)


@cuda
@pytest.mark.parametrize("task,refine", [
    ("segment", "nearest"), ("segment", "centres"), ("segment", "pamr"),
    ("segment", "bilateral"), ("segment", "dream"), ("parts", "nearest"),
    ("kless", "nearest"), ("clusters", "nearest"), ("hierarchy", "nearest"),
])
def test_cuda_pipeline_every_task_and_refinement(task, refine):
    im = _image()
    cpu = Segmenter(backbone="classic", task=task, refine=refine, seed=0)(im)
    gpu = Segmenter(backbone="classic", task=task, refine=refine, seed=0, device="cuda")(im)
    assert gpu.labels.shape == cpu.labels.shape == (120, 160)
    if task == "segment":  # the planted object, on both devices
        for p in (cpu, gpu):
            assert p.labels[40:80, 60:100].mean() > 0.8 and p.labels[:20].mean() < 0.2


@cuda
def test_cuda_vit_end_to_end_and_batch():
    bb = create_backbone(VIT, pretrained=False, size=280, device="cuda", precision="bf16")
    seg = Segmenter(backbone=bb, seed=0, device="cuda")
    ims = [_image(), _image(140, 120, seed=1)]
    one = [seg(im) for im in ims]
    many = seg.predict_batch(ims)
    for a, b in zip(one, many):
        assert np.array_equal(a.labels, b.labels)
        assert a.meta["config"]["device"] == "cuda"


@cuda
def test_cuda_cli_folder(tmp_path):
    from deepcut.cli.infer import main

    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):
        make_image(src / f"im{i}.png", seed=i)
    out = tmp_path / "out"
    assert main([str(src), "--out", str(out), "--backbone", "classic", "--quiet",
                 "--device", "cuda"]) == 0
    assert len(list(out.glob("*.json"))) == 3
