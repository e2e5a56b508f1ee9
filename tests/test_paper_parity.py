"""Paper parity of the features: our ``paper`` preprocessing against DeepCut's, written here.

The reference is an independent implementation, in this file, of what DeepCut's extractor
(dino-vit-features' ``ViTExtractor`` on DINO's own ``vision_transformer.py``) computes, from the
published formulas only:

- preprocessing: PIL LANCZOS squash to ``res x res``, ``ToTensor`` (/255), ImageNet mean/std;
- DINO's ``prepare_tokens``: patch conv with stride ``s``, CLS first, position embeddings by
  ``interpolate_pos_encoding``: bicubic (Keys kernel, A = -0.75, as PyTorch) sampled at
  ``(i + 0.5) * sqrt(N) / (h + 0.1) - 0.5``, borders clamped, no antialiasing;
- pre-norm blocks (LayerNorm eps 1e-6, softmax attention, exact GELU) in float64;
- the ``key`` facet of the last block, ``(B, heads, N, d) -> (B, N, d, heads)`` flattened, CLS
  dropped: channel ``d * heads + h``.

Weights are random, written in the original DINO file layouts (backbone-only and full training
checkpoint). Everything runs offline on tiny (depth-2) ViT-S/8 models.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network from tests

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from deepcut.backbones import create_backbone
from deepcut.backbones.paper import PAPER_PREPROCESSING
from deepcut.backbones.pos_embed import dino_interpolate_pos_encoding
from deepcut.config import SegmenterConfig
from deepcut.errors import ConfigError

DEPTH, DIM, HEADS, PATCH, PRE_GRID = 2, 384, 6, 8, 28  # ViT-S/8, pretrained at 224 px
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PAPER = {k: v for k, v in PAPER_PREPROCESSING.items() if k != "backbone"}


# ------------------------------------------------------------------------------------------
# Random weights in DINO's layout


def dino_backbone_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """A DINO ``vision_transformer.vit_small(patch_size=8)`` state dict, depth 2, random.

    Position embeddings get unit scale (real DINO ones are of the order of the patch tokens), so
    that resampling them differently changes the keys visibly.
    """
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape: int, std: float = 0.02) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    sd = {
        "cls_token": rnd(1, 1, DIM, std=1.0),
        "pos_embed": rnd(1, 1 + PRE_GRID**2, DIM, std=1.0),
        "patch_embed.proj.weight": rnd(DIM, 3, PATCH, PATCH, std=0.05),
        "patch_embed.proj.bias": rnd(DIM),
        "norm.weight": 1 + rnd(DIM, std=0.1),
        "norm.bias": rnd(DIM),
    }
    for i in range(DEPTH):
        b = f"blocks.{i}."
        sd.update({
            b + "norm1.weight": 1 + rnd(DIM, std=0.1), b + "norm1.bias": rnd(DIM, std=0.1),
            b + "attn.qkv.weight": rnd(3 * DIM, DIM, std=0.08), b + "attn.qkv.bias": rnd(3 * DIM),
            b + "attn.proj.weight": rnd(DIM, DIM, std=0.05), b + "attn.proj.bias": rnd(DIM),
            b + "norm2.weight": 1 + rnd(DIM, std=0.1), b + "norm2.bias": rnd(DIM, std=0.1),
            b + "mlp.fc1.weight": rnd(4 * DIM, DIM, std=0.05), b + "mlp.fc1.bias": rnd(4 * DIM),
            b + "mlp.fc2.weight": rnd(DIM, 4 * DIM, std=0.05), b + "mlp.fc2.bias": rnd(DIM),
        })
    return sd


def dino_full_checkpoint(teacher: dict, student: dict) -> dict:
    """``main_dino.py``'s save_dict: a DDP-wrapped student, a bare teacher, both with heads."""
    head = {"head.mlp.0.weight": torch.randn(16, DIM), "head.last_layer.weight_g": torch.ones(8, 1)}
    return {
        "student": {**{f"module.backbone.{k}": v for k, v in student.items()},
                    **{f"module.{k}": v for k, v in head.items()}},
        "teacher": {**{f"backbone.{k}": v for k, v in teacher.items()}, **head},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]},
        "epoch": 800,
        "args": argparse.Namespace(arch="vit_small", patch_size=8, out_dim=65536),
        "dino_loss": {"center": torch.zeros(1, 8)},
    }


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> tuple[str, dict[str, torch.Tensor]]:
    """``dino_deitsmall8_pretrain.pth``'s layout: plain backbone keys."""
    sd = dino_backbone_state_dict(seed=0)
    path = tmp_path_factory.mktemp("w") / "dino_deitsmall8_pretrain.pth"
    torch.save(sd, path)
    return str(path), sd


def paper_backbone(weights: str, **overrides):
    """``dino_vits8`` with DeepCut's preprocessing. ``dino_head`` only when asked: a
    backbone-only file holds one network (asking it for the student warns, tested below)."""
    opts = {**PAPER, **overrides}
    if "dino_head" not in overrides:
        opts.pop("dino_head")
    return create_backbone("dino_vits8", weights=weights, depth=DEPTH, **opts)


# ------------------------------------------------------------------------------------------
# The independent reference


def keys_cubic(x: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution kernel (PyTorch's bicubic uses a = -0.75)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def bicubic_matrix(n_out: int, n_in: int, scale_factor: float, dtype=np.float32) -> np.ndarray:
    """``(n_out, n_in)`` weights of 1-D bicubic resampling by ``scale_factor``.

    ``align_corners=False`` with the scale factor, not the sizes, setting the sample positions:
    output ``i`` reads input ``(i + 0.5) / scale_factor - 0.5``; taps beyond the border are
    clamped to the edge sample. PyTorch computes the positions in the run's precision (float32
    in DINO's runs), so ``dtype`` says which; float32 and float64 positions differ by up to
    1e-5 in the output at 104 columns.
    """
    f = dtype
    src = f(1.0 / scale_factor) * (np.arange(n_out, dtype=f) + f(0.5)) - f(0.5)
    base = np.floor(src)
    frac = (src - base).astype(np.float64)
    M = np.zeros((n_out, n_in))
    for k in (-1, 0, 1, 2):
        idx = np.clip(base + k, 0, n_in - 1).astype(int)
        np.add.at(M, (np.arange(n_out), idx), keys_cubic(frac - k))
    return M


def reference_pos_embed(pos: torch.Tensor, h: int, w: int, input_hw: tuple[int, int],
                        positions=np.float32) -> torch.Tensor:
    """DINO's ``interpolate_pos_encoding`` from its formula: ``(1, 1 + h*w, D)`` float64.

    ``positions``: precision of the sample positions (that of the run being mirrored).
    """
    n_pos = pos.shape[1] - 1
    if n_pos == h * w and input_hw[0] == input_hw[1]:
        return pos.double()
    n = int(math.sqrt(n_pos))
    table = pos[0, 1:].double().numpy().reshape(n, n, -1)
    rows = bicubic_matrix(h, n, (h + 0.1) / n, positions)
    cols = bicubic_matrix(w, n, (w + 0.1) / n, positions)
    out = np.einsum("ir,rcd,jc->ijd", rows, table, cols).reshape(h * w, -1)
    return torch.cat((pos[0, :1].double(), torch.from_numpy(out)))[None]


def deepcut_input(image: Image.Image, res: int) -> torch.Tensor:
    """DeepCut's preprocessing: LANCZOS squash to ``res x res``, /255, ImageNet mean/std."""
    img = image.convert("RGB").resize((res, res), Image.Resampling.LANCZOS)
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).double() / 255.0
    x = (x - torch.tensor(MEAN).double().view(3, 1, 1)) / torch.tensor(STD).double().view(3, 1, 1)
    return x[None]


def reference_keys(sd: dict[str, torch.Tensor], image: Image.Image, res: int, stride: int,
                   positions=np.float32) -> torch.Tensor:
    """Keys of the last block, as DeepCut's extractor lays them out: ``(h, w, d * heads + h)``.

    Computed in float64; ``positions`` is the precision of the pos-embed sample positions.
    """
    p = {k: v.double() for k, v in sd.items()}
    x = deepcut_input(image, res)
    t = F.conv2d(x, p["patch_embed.proj.weight"], p["patch_embed.proj.bias"], stride=stride)
    h, w = t.shape[-2:]
    t = torch.cat((p["cls_token"], t.flatten(2).transpose(1, 2)), dim=1)
    t = t + reference_pos_embed(sd["pos_embed"], h, w, (res, res), positions)
    N, hd = t.shape[1], DIM // HEADS
    for i in range(DEPTH):
        b = f"blocks.{i}."
        y = F.layer_norm(t, (DIM,), p[b + "norm1.weight"], p[b + "norm1.bias"], eps=1e-6)
        qkv = (y @ p[b + "attn.qkv.weight"].T + p[b + "attn.qkv.bias"])
        q, k, v = qkv.reshape(1, N, 3, HEADS, hd).permute(2, 0, 3, 1, 4)  # (1, heads, N, hd)
        if i == DEPTH - 1:
            # dino-vit-features: x[:, :, 1:, :].permute(0, 2, 3, 1).flatten(-2)
            return k[:, :, 1:].permute(0, 2, 3, 1).flatten(-2)[0].reshape(h, w, DIM)
        att = torch.softmax(q @ k.transpose(-1, -2) * hd**-0.5, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(1, N, DIM)
        t = t + o @ p[b + "attn.proj.weight"].T + p[b + "attn.proj.bias"]
        y = F.layer_norm(t, (DIM,), p[b + "norm2.weight"], p[b + "norm2.bias"], eps=1e-6)
        y = F.gelu(y @ p[b + "mlp.fc1.weight"].T + p[b + "mlp.fc1.bias"])
        t = t + y @ p[b + "mlp.fc2.weight"].T + p[b + "mlp.fc2.bias"]
    raise AssertionError("unreachable")


def smooth_image(h: int, w: int, seed: int = 0) -> Image.Image:
    """A photo-like test image: smooth colour blobs plus a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.zeros((h, w, 3))
    for _ in range(6):
        cy, cx, r = rng.uniform(0, 1, 3) * [h / max(h, w), w / max(h, w), 0.3]
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (r * r + 0.01))
        img += rng.uniform(0, 1, 3) * blob[..., None]
    img = img / img.max() * 230 + rng.uniform(0, 25, (h, w, 3))
    return Image.fromarray(img.astype(np.uint8))


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


# ------------------------------------------------------------------------------------------
# DINO's position-embedding interpolation


@pytest.mark.parametrize(
    "grid,input_hw",
    [((35, 35), (280, 280)), ((69, 69), (280, 280)), ((12, 12), (96, 96)),
     ((35, 53), (280, 424)), ((69, 104), (280, 420)), ((28, 28), (224, 227))],
)
def test_dino_pos_embed_equals_the_formula(grid, input_hw):
    pos = torch.randn(1, 1 + PRE_GRID**2, 16, generator=torch.Generator().manual_seed(3))
    ours = dino_interpolate_pos_encoding(pos, grid, input_hw)
    ref = reference_pos_embed(pos, *grid, input_hw)
    assert ours.shape == (1, 1 + grid[0] * grid[1], 16)
    torch.testing.assert_close(ours.double(), ref, atol=1e-5, rtol=1e-5)
    # The sample positions are the scale factor's, not the exact grid's: that mapping differs.
    exact = F.interpolate(pos[:, 1:].reshape(1, PRE_GRID, PRE_GRID, 16).permute(0, 3, 1, 2),
                          size=grid, mode="bicubic", align_corners=False, antialias=True)
    exact = exact.permute(0, 2, 3, 1).reshape(1, -1, 16)
    assert rel(exact, ref[:, 1:]) > 1e-3


def test_dino_pos_embed_keeps_the_table_on_its_own_square_grid():
    pos = torch.randn(1, 1 + PRE_GRID**2, 8)
    assert dino_interpolate_pos_encoding(pos, (28, 28), (224, 224)) is pos


# ------------------------------------------------------------------------------------------
# Paper mode: our keys equal the reference's


SQUARE, NON_SQUARE = (240, 240), (200, 300)


@pytest.mark.parametrize(
    "stride,res,hw",  # token grids 35^2, 31^2 and (slow) the paper's stride-4 69^2
    [(8, 280, SQUARE), (8, 280, NON_SQUARE), (4, 128, SQUARE), (4, 128, NON_SQUARE),
     pytest.param(4, 280, NON_SQUARE, marks=pytest.mark.slow)],
)
def test_paper_keys_equal_deepcut_reference(weights_file, stride, res, hw):
    path, sd = weights_file
    image = smooth_image(*hw)
    bb = paper_backbone(path, stride=stride, size=res)
    out = bb(image)
    g = 1 + (res - PATCH) // stride
    assert out.input_size == (res, res) and out.grid == (g, g)  # squashed, whatever the aspect
    # Our code in float64 against the formulas in float64: equal to 1e-5 (measured: <= 1e-6,
    # the float32 normalisation of the input).
    bb64 = paper_backbone(path, stride=stride, size=res).double()
    ours64, _ = bb64.extract(bb64.preprocess(image).double())
    ref64 = reference_keys(sd, image, res, stride, positions=np.float64)
    torch.testing.assert_close(ours64[0], ref64, atol=1e-5, rtol=1e-5)
    # As it runs (float32, like DeepCut's): float32 rounding only, < 1e-6 of the keys' norm.
    ref = reference_keys(sd, image, res, stride, positions=np.float32)
    assert rel(out.features, ref) < 5e-6
    torch.testing.assert_close(out.features.double(), ref, atol=1e-4, rtol=1e-4)
    # The test can fail: timm's resampling (exact grid, antialiased) is measurably different.
    timm_mode = paper_backbone(path, stride=stride, size=res, pos_embed="timm")(image)
    assert rel(timm_mode.features, ref) > 1e-3


def test_dino_pos_embed_on_a_non_square_grid(weights_file):
    """Aspect-kept input with DINO's interpolation: rows and columns scale separately."""
    path, sd = weights_file
    bb = paper_backbone(path, resize="aspect", size=64)
    x = bb.preprocess(smooth_image(64, 96))
    assert tuple(x.shape[-2:]) == (64, 96)
    feats, _ = bb.extract(x)  # (1, 8, 12, D)
    # Reference on the very same input tensor, with the formula's non-square pos embedding.
    p = {k: v.double() for k, v in sd.items()}
    t = F.conv2d(x.double(), p["patch_embed.proj.weight"], p["patch_embed.proj.bias"], stride=8)
    t = torch.cat((p["cls_token"], t.flatten(2).transpose(1, 2)), 1)
    t = t + reference_pos_embed(sd["pos_embed"], 8, 12, (64, 96))
    y = F.layer_norm(t, (DIM,), p["blocks.0.norm1.weight"], p["blocks.0.norm1.bias"], eps=1e-6)
    ours_block0 = bb.model.blocks[0].norm1(bb._dino_tokens(x, (8, 12)))
    torch.testing.assert_close(ours_block0.double(), y, atol=1e-5, rtol=1e-5)
    assert feats.shape == (1, 8, 12, DIM)


# ------------------------------------------------------------------------------------------
# Channel layout


def test_interleaved_layout_is_deepcuts_channel_order(weights_file):
    path, _ = weights_file
    image = smooth_image(120, 120)
    inter = paper_backbone(path, size=64)(image).features  # (h, w, 384)
    major = paper_backbone(path, size=64, channel_layout="head_major")(image).features
    hd = DIM // HEADS
    # interleaved channel d * heads + h == head-major channel h * head_dim + d
    perm = torch.tensor([h * hd + d for d in range(hd) for h in range(HEADS)])
    torch.testing.assert_close(inter, major[..., perm])
    assert not torch.allclose(inter, major)
    # Channel 1 is head 1's first dimension, not head 0's second.
    torch.testing.assert_close(inter[..., 1], major[..., hd])
    # The graph W = F F^T does not see the order.
    fi, fm = inter.reshape(-1, DIM), major.reshape(-1, DIM)
    torch.testing.assert_close(fi @ fi.T, fm @ fm.T, atol=1e-3, rtol=1e-5)


# ------------------------------------------------------------------------------------------
# --dino-head


@pytest.fixture(scope="module")
def full_checkpoint(tmp_path_factory):
    teacher, student = dino_backbone_state_dict(seed=1), dino_backbone_state_dict(seed=2)
    path = tmp_path_factory.mktemp("full") / "dino_deitsmall8_pretrain_full_checkpoint.pth"
    torch.save(dino_full_checkpoint(teacher, student), path)
    return str(path), teacher, student


@pytest.mark.parametrize("head", ["teacher", "student"])
def test_dino_head_picks_the_network(full_checkpoint, head):
    path, teacher, student = full_checkpoint
    want, other = (teacher, student) if head == "teacher" else (student, teacher)
    bb = paper_backbone(path, size=64, dino_head=head)
    loaded = bb.model.state_dict()
    for k, v in want.items():
        torch.testing.assert_close(loaded[k], v)
    assert not torch.equal(loaded["blocks.1.attn.qkv.weight"], other["blocks.1.attn.qkv.weight"])
    assert bb.weights_id.endswith(f"#{head}")
    image = smooth_image(90, 130)
    feats = bb(image).features
    torch.testing.assert_close(feats.double(), reference_keys(want, image, 64, 8),
                               atol=1e-5, rtol=1e-5)
    assert rel(feats, reference_keys(other, image, 64, 8)) > 0.1


def test_dino_head_default_is_teacher(full_checkpoint):
    path, teacher, _ = full_checkpoint
    bb = create_backbone("dino_vits8", weights=path, depth=DEPTH, size=64)
    torch.testing.assert_close(bb.model.pos_embed, teacher["pos_embed"])
    assert SegmenterConfig().dino_head == "teacher"
    assert PAPER_PREPROCESSING["dino_head"] == "student"  # DeepCut section 4 and its code


def test_student_of_a_backbone_only_file_warns_and_loads_it(weights_file):
    path, sd = weights_file
    with pytest.warns(UserWarning, match="holds one network"):
        bb = paper_backbone(path, size=64, dino_head="student")
    torch.testing.assert_close(bb.model.pos_embed, sd["pos_embed"])
    assert "#" not in bb.weights_id
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paper_backbone(path, size=64, dino_head="teacher")  # the default: no warning


# ------------------------------------------------------------------------------------------
# Options and their plumbing


def test_paper_preprocessing_is_a_valid_config():
    cfg = SegmenterConfig(**PAPER_PREPROCESSING).validate()
    assert (cfg.resize, cfg.resample, cfg.pos_embed, cfg.channel_layout) == (
        "square", "lanczos", "dino", "interleaved")
    with pytest.raises(ConfigError, match="pos_embed"):
        SegmenterConfig(pos_embed="sincos").validate()


def test_cli_flags_reach_the_backbone(weights_file, monkeypatch):
    from deepcut.backbones import _registry
    from deepcut.cli import evaluate, infer
    from deepcut.pipeline import Segmenter

    real = _registry.create_backbone  # the real factory, on our 2-block test checkpoint
    monkeypatch.setattr(_registry, "create_backbone", lambda *a, **k: real(*a, depth=DEPTH, **k))
    path, _ = weights_file
    argv = ["x.png", "--backbone", "dino_vits8", "--weights", path, "--resize", "square",
            "--resample", "lanczos", "--pos-embed", "dino", "--channel-layout", "interleaved",
            "--dino-head", "student", "--size", "64"]
    cfg = infer._config_from_args(infer.build_parser().parse_args(argv))
    assert (cfg.resize, cfg.resample, cfg.pos_embed, cfg.channel_layout, cfg.dino_head) == (
        "square", "lanczos", "dino", "interleaved", "student")
    ev = evaluate.build_parser().parse_args(["--dataset", "ecssd", "--root", "r", *argv[1:]])
    _, ecfg = evaluate._settings(ev)
    assert ecfg.to_dict() == {**cfg.to_dict(), "task_params": ecfg.task_params}
    seg = Segmenter(ecfg)
    with pytest.warns(UserWarning, match="holds one network"):
        bb = seg.backbone  # built lazily with every option
    assert bb.preprocessing == {"resize": "square", "resample": "lanczos", "pos_embed": "dino",
                                "channel_layout": "interleaved"}


def test_classic_honours_resize_and_ignores_vit_options():
    bb = create_backbone("classic", resize="square", resample="lanczos", pos_embed="dino",
                         channel_layout="interleaved", dino_head="student", size=64)
    out = bb(smooth_image(50, 120))
    assert out.input_size == (64, 64) and out.grid == (8, 8)
    assert bb.preprocessing == {"resize": "square", "resample": "lanczos"}
    with pytest.raises(ConfigError, match="resize"):
        create_backbone("classic", resize="crop")


def test_dino_pos_embed_refuses_register_token_models():
    with pytest.raises(ConfigError, match="pos_embed='dino'"):
        create_backbone("timm:vit_small_patch14_reg4_dinov2", pretrained=False, depth=1,
                        size=56, pos_embed="dino")


# ------------------------------------------------------------------------------------------
# benchmarks/paper_tables.py: which rows run, with which flags


def _paper_tables():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "paper_tables.py"
    spec = importlib.util.spec_from_file_location("paper_tables", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paper_tables_runs_what_it_finds_and_lists_the_rest(tmp_path, weights_file):
    pt = _paper_tables()
    sod = tmp_path / "data" / "sod"
    (sod / "images").mkdir(parents=True)
    (sod / "masks").mkdir()
    for i in range(2):
        smooth_image(40, 60, seed=i).save(sod / "images" / f"im{i}.jpg")
        Image.fromarray(np.zeros((40, 60), np.uint8)).save(sod / "masks" / f"im{i}.png")
    args = pt.argparse.Namespace(data_root=str(tmp_path / "data"), only=None, losses="ncut,cc",
                                 weights=None, dino_head=None, device="cpu", limit=None,
                                 resume=False, out=str(tmp_path / "out"))
    runs, skipped = pt.build_runs(args)
    assert [(r["spec"]["dataset"], r["loss"]) for r in runs] == [("sod", "ncut"), ("sod", "cc")]
    argv = runs[1]["argv"]
    assert argv[argv.index("--loss") + 1] == "cc" and argv[argv.index("--k") + 1] == "10"
    assert argv[argv.index("--backbone") + 1] == "classic"  # no weights: the smoke run
    assert argv[argv.index("--resize") + 1] == "square"
    names = {s["name"] for s in skipped}
    assert {"VOC07 trainval", "COCO20k", "ECSSD", "DUTS-TE", "CUB test"} <= names
    assert all(s["get"].startswith("http") for s in skipped)
    # With DINO weights: the paper's features, the student of a full checkpoint by default.
    args.weights = weights_file[0]
    argv = pt.build_runs(args)[0][0]["argv"]
    for flag, value in (("--backbone", "dino_vits8"), ("--pos-embed", "dino"),
                        ("--channel-layout", "interleaved"), ("--dino-head", "student"),
                        ("--resample", "lanczos"), ("--size", "280")):
        assert argv[argv.index(flag) + 1] == value
    # Every flag is one eval.py takes.
    from deepcut.cli import evaluate

    evaluate.build_parser().parse_args(argv[1:])
    assert pt._with_data_var(f"eval.py --root {sod}", str(tmp_path / "data")) == \
        "eval.py --root $DATA/sod"


def test_paper_tables_fashion_protocol(tmp_path):
    """Table 5 on a tiny Kaggle-layout folder: the 5 classes only, 10 draws per class count."""
    pt = _paper_tables()
    root = tmp_path / "fashion"
    (root / "images").mkdir(parents=True)
    rows = ["id,gender,masterCategory,subCategory,articleType"]
    classes = [*pt.FASHION_CLASSES, "Watches"]  # Watches is not one of Table 5's classes
    for c_id, cls in enumerate(classes):
        for j in range(3):
            item = 100 * c_id + j
            rows.append(f"{item},Men,Apparel,{cls},x")
            if not (cls == "Belts" and j == 2):  # a row whose image is missing is left out
                smooth_image(24, 16, seed=item).save(root / "images" / f"{item}.jpg")
    (root / "styles.csv").write_text("\n".join(rows) + "\n")
    items = pt.fashion_items(root)
    assert sorted(items) == sorted(pt.FASHION_CLASSES)
    assert [len(items[c]) for c in pt.FASHION_CLASSES] == [3, 3, 3, 3, 2]
    args = pt.argparse.Namespace(weights_b16=None, device="cpu", limit=10,
                                 data_root=str(tmp_path))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 30 tiny GNN fits: extra threads only wait on a busy machine
    try:
        out = pt.run_fashion(args, root)
    finally:
        torch.set_num_threads(threads)
    assert [r["n_classes"] for r in out] == [3, 4, 5]
    for r in out:
        assert r["n_images"] <= 2 * r["n_classes"] and len(r["k_found"]) == 10
        assert 100 / r["n_classes"] - 1e-9 <= r["mean"] <= 100  # purity >= the largest class
        assert "--only fashion" in r["command"] and r["backbone"] == "classic"


def test_paper_tables_cub_rows_run_end_to_end(tmp_path):
    """Tables 2 and 3 on a 2-image CUB-layout folder: the rows it builds run through eval.py."""
    from deepcut.cli import evaluate

    pt = _paper_tables()
    cub = tmp_path / "data" / "CUB_200_2011"
    (cub / "images" / "001.Bird").mkdir(parents=True)
    (cub / "segmentations" / "001.Bird").mkdir(parents=True)
    (cub / "parts").mkdir()
    lines, split, locs = [], [], []
    for i in (1, 2):
        smooth_image(48, 64, seed=i).save(cub / "images" / "001.Bird" / f"b{i}.jpg")
        mask = np.zeros((48, 64), np.uint8)
        mask[12:36, 16:48] = 255
        Image.fromarray(mask).save(cub / "segmentations" / "001.Bird" / f"b{i}.png")
        lines.append(f"{i} 001.Bird/b{i}.jpg")
        split.append(f"{i} 0")  # both in the test split
        locs += [f"{i} {p} {20 + 2 * p} {20 + p % 5} 1" for p in range(1, 16)]
    (cub / "images.txt").write_text("\n".join(lines) + "\n")
    (cub / "train_test_split.txt").write_text("\n".join(split) + "\n")
    (cub / "parts" / "part_locs.txt").write_text("\n".join(locs) + "\n")
    args = pt.argparse.Namespace(data_root=str(tmp_path / "data"), only="cub", losses="ncut,cc",
                                 weights=None, dino_head=None, device="cpu", limit=None,
                                 resume=False, out=str(tmp_path / "out"))
    runs, _ = pt.build_runs(args)
    assert [(r["spec"]["table"], r["loss"]) for r in runs] == [("2", "ncut"), ("2", "cc"),
                                                               ("3", "ncut")]
    for run, metrics in ((runs[0], ("iou",)), (runs[2], ("part_nmi", "part_ari"))):
        argv = [a.replace("$DATA", str(tmp_path / "data")) for a in run["argv"][1:]]
        argv[argv.index("--size") + 1] = "32"  # a 4x4 patch grid: fast
        assert evaluate.main(argv) == 0
        summary = json.loads((Path(run["out"]) / "summary.json").read_text())
        assert summary["n_scored"] == 2
        for key in metrics:  # IoU and NMI in [0, 1]; ARI may be negative
            assert (-1.0 if key == "part_ari" else 0.0) <= summary["metrics"][key] <= 1.0


# ------------------------------------------------------------------------------------------
# benchmarks/results.py: the BSDS500 region tasks of the measured table


def test_results_table_runs_three_bsds_region_tasks(tmp_path):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results.py"
    spec = importlib.util.spec_from_file_location("results_table", path)
    rt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rt)
    args = rt.argparse.Namespace(data_root=str(tmp_path), out=str(tmp_path / "out"), size=224,
                                 backbone="classic", weights=None, graph=None, preset="paper",
                                 solvers="gnn,nope", only="bsds500", limit=None, resume=False)
    runs, notes = rt.build_runs(args)
    tasks = [(r["task"], r["argv"][r["argv"].index("--task") + 2:r["argv"].index("--solver")])
             for r in runs]
    assert tasks == [("clusters", ["--k", "6"]), ("kless", ["--k-max", "10"]),
                     ("parts", ["--parts", "4"])]
    assert all(r["solver"] == "gnn" and r["argv"][-1] == "--overwrite" for r in runs)
    assert all(r["out"].name.endswith("_gnn_classic_paper") for r in runs)
    assert notes == ["solver 'nope' is not registered here; its rows were not run"]
