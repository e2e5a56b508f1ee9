"""Backbones: registry, grid arithmetic, hooked keys, weights loading, classic features.

Everything is offline and uses tiny random-init timm ViTs (depth 2), so nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network from tests

import numpy as np
import pytest
import torch
from PIL import Image

from deepcut.backbones import (
    BackboneFallbackWarning,
    ClassicBackbone,
    create_backbone,
    grid_size_for,
    input_size_for,
    list_backbones,
    resolve_backbone,
)
from deepcut.backbones import (
    weights as weights_mod,
)
from deepcut.errors import ConfigError, ImageReadError, WeightsError

TINY = "timm:vit_tiny_patch16_224"  # patch 16, D = 192, 3 heads


def tiny(**kwargs):
    """A 2-block random-init ViT-Ti/16 at a small input size."""
    kwargs.setdefault("size", 64)
    kwargs.setdefault("depth", 2)
    return create_backbone(TINY, pretrained=False, **kwargs)


def noise_image(h: int, w: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.fixture
def offline_no_cache(monkeypatch):
    """Pretend hub weights are neither cached nor downloadable (whatever this machine has)."""
    monkeypatch.setattr(weights_mod, "hub_weights_status", lambda name, cache_dir=None, hub_id=None: "offline")


# ------------------------------------------------------------------------------------------
# Registry


def test_list_backbones_and_pattern():
    names = list_backbones()
    for name in (
        "dino_vits8",
        "dino_vits16",
        "dino_vitb8",
        "dino_vitb16",
        "dinov2_vits14",
        "dinov2_vitb14",
        "classic",
    ):
        assert name in names
    assert list_backbones("dinov2*") == ["dinov2_vitb14", "dinov2_vits14"]


def test_unknown_name_lists_close_matches_and_choices():
    with pytest.raises(ValueError, match=r"Did you mean 'dino_vits8'.*Choices: classic, .*dinov2"):
        create_backbone("dino_vit8")
    with pytest.raises(ValueError, match=r"Unknown timm model"):
        create_backbone("timm:vit_nonexistent_patch16")


# ------------------------------------------------------------------------------------------
# Grid arithmetic


def test_input_size_non_square_and_stride():
    # H=200, W=300: short side 200 -> 280, long side 420 -> nearest 8 + 8m = 424.
    H_in, W_in = input_size_for((200, 300), size=280, patch=8, stride=8)
    assert (H_in, W_in) == (280, 424)
    assert grid_size_for((H_in, W_in), 8, 8) == (35, 53)
    # Stride 4: sides 8 + 4m, grid 1 + (H - 8) // 4.
    H4, W4 = input_size_for((200, 300), size=280, patch=8, stride=4)
    assert (H4, W4) == (280, 420)
    assert grid_size_for((H4, W4), 8, 4) == (1 + (280 - 8) // 4, 1 + (420 - 8) // 4) == (69, 104)
    # Portrait keeps its orientation.
    assert input_size_for((300, 200), 280, 8, 8) == (424, 280)


@pytest.mark.parametrize("hw", [(1, 1), (30, 999), (480, 640), (1000, 333), (64, 64)])
@pytest.mark.parametrize("patch,stride", [(8, 8), (8, 4), (14, 14), (14, 7), (16, 5)])
def test_input_size_leaves_no_leftover(hw, patch, stride):
    H_in, W_in = input_size_for(hw, size=224, patch=patch, stride=stride)
    for side in (H_in, W_in):
        assert side >= patch and (side - patch) % stride == 0
        assert side <= 4 * 224
    # Aspect ratio kept up to the snapping (at most one stride per side).
    scale = 224 / min(hw)
    if max(hw) * scale <= 4 * 224:
        assert abs(H_in - hw[0] * scale) <= stride / 2 + 1e-9
        assert abs(W_in - hw[1] * scale) <= stride / 2 + 1e-9


def test_long_side_capped_and_too_elongated():
    H_in, W_in = input_size_for((100, 1000), size=280, patch=8, stride=8)
    assert W_in <= 1120 and H_in == 112  # long side capped at 4 * size = 1120
    with pytest.raises(ImageReadError, match="too elongated"):
        input_size_for((10, 5000), size=280, patch=8, stride=8)
    with pytest.raises(ImageReadError, match="too elongated"):
        ClassicBackbone()(Image.new("RGB", (4000, 4)))


def test_bad_stride_raises_config_error():
    with pytest.raises(ConfigError, match="stride"):
        input_size_for((100, 100), 280, patch=8, stride=9)
    with pytest.raises(ConfigError, match="stride"):
        tiny(stride=32)


# ------------------------------------------------------------------------------------------
# ViT keys


def _keys_by_hand(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Recompute the last block's keys step by step: (B, N, D), prefix tokens included."""
    t = model.patch_embed(x)
    t = model.norm_pre(model.patch_drop(model._pos_embed(t)))
    for blk in model.blocks[:-1]:
        t = blk(t)
    last = model.blocks[-1]
    D = last.attn.qkv.out_features // 3
    return last.attn.qkv(last.norm1(t))[..., D : 2 * D]


@pytest.mark.parametrize("stride", [None, 8])
def test_hooked_keys_equal_keys_by_hand_in_one_pass(stride):
    bb = tiny(stride=stride)
    x = bb.preprocess(noise_image(50, 80))
    calls = []
    handle = bb.model.patch_embed.register_forward_hook(lambda *a: calls.append(1))
    try:
        feats, cls = bb.extract(x)
    finally:
        handle.remove()
    assert len(calls) == 1  # one forward pass, nothing recomputed
    with torch.no_grad():
        keys = _keys_by_hand(bb.model, x)
    p, s = bb.patch_size, bb.stride
    h, w = 1 + (x.shape[-2] - p) // s, 1 + (x.shape[-1] - p) // s
    assert feats.shape == (1, h, w, 192) and cls.shape == (1, 192)
    torch.testing.assert_close(cls, keys[:, 0])
    torch.testing.assert_close(feats, keys[:, 1:].reshape(1, h, w, 192))


def test_vit_grid_non_square_and_overlapping_stride():
    img = noise_image(200, 300)  # H=200, W=300
    out = tiny(size=64)(img)
    H_in, W_in = input_size_for((200, 300), 64, 16, 16)
    assert out.input_size == (H_in, W_in) == (64, 96)
    assert out.grid == (4, 6) and out.features.shape == (4, 6, 192)
    assert out.image_size == (200, 300) and out.weights_id == "random-init"
    out4 = tiny(size=64, stride=4)(img)
    H4, W4 = out4.input_size
    assert out4.grid == (1 + (H4 - 16) // 4, 1 + (W4 - 16) // 4) == (13, 21)
    assert out4.stride == 4 and out4.patch_size == 16


def test_dino_vits8_random_init_stride4():
    # The paper's backbone, random init, at a small size: stride 4 halves the patch step.
    bb = create_backbone("dino_vits8", pretrained=False, stride=4, size=32)
    out = bb(noise_image(40, 60))
    assert bb.feature_dim == 384 and bb.patch_size == 8 and bb.stride == 4
    H_in, W_in = out.input_size
    assert (H_in, W_in) == (32, 48)
    assert out.grid == (1 + (32 - 8) // 4, 1 + (48 - 8) // 4) == (7, 11)
    assert out.cls.shape == (384,)
    # Mean/std come from timm's data config (ImageNet for DINO).
    assert bb.mean == pytest.approx((0.485, 0.456, 0.406))


def test_backbone_stays_in_eval_mode():
    bb = tiny()
    bb.train()
    assert not bb.model.training


# ------------------------------------------------------------------------------------------
# Weights


def _params(bb) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in bb.model.state_dict().items()}


def test_timm_state_dict_file_loads_strictly(tmp_path):
    torch.manual_seed(1)
    src = tiny()
    path = tmp_path / "tiny.pth"
    torch.save(src.model.state_dict(), path)
    bb = tiny(weights=str(path))
    for k, v in _params(src).items():
        torch.testing.assert_close(bb.model.state_dict()[k], v)
    assert re.fullmatch(r"file:tiny\.pth@sha256:[0-9a-f]{12}", bb.weights_id)
    # Wrapped in {"state_dict": ...} with DDP prefixes, it loads too.
    wrapped = tmp_path / "wrapped.pth"
    torch.save(
        {"state_dict": {"module." + k: v for k, v in src.model.state_dict().items()}}, wrapped
    )
    torch.testing.assert_close(tiny(weights=str(wrapped)).model.pos_embed, src.model.pos_embed)


def test_pos_embed_of_another_grid_is_resampled(tmp_path):
    import timm

    small = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, depth=2, num_classes=0, img_size=64
    )  # 4x4 position grid
    path = tmp_path / "small_grid.pth"
    torch.save(small.state_dict(), path)
    bb = tiny(weights=str(path))  # model grid 14x14
    assert bb.model.pos_embed.shape == (1, 1 + 14 * 14, 192)
    torch.testing.assert_close(bb.model.blocks[0].attn.qkv.weight, small.blocks[0].attn.qkv.weight)


def test_dino_full_checkpoint_loads_teacher(tmp_path):
    torch.manual_seed(2)
    ref = tiny()
    teacher = {f"backbone.{k}": v.clone() for k, v in ref.model.state_dict().items()}
    teacher["head.mlp.0.weight"] = torch.randn(8, 192)  # DINO projection head: dropped
    teacher["head.last_layer.weight_g"] = torch.ones(16, 1)
    student = {f"module.backbone.{k}": v + 1.0 for k, v in ref.model.state_dict().items()}
    student["module.head.mlp.0.weight"] = torch.randn(8, 192)
    ckpt = {
        "student": student,
        "teacher": teacher,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
        "epoch": 100,
        "args": argparse.Namespace(arch="vit_tiny", patch_size=16, out_dim=65536),
        "dino_loss": {"center": torch.zeros(1, 16)},
    }
    path = tmp_path / "dino_full_checkpoint.pth"
    torch.save(ckpt, path)
    bb = tiny(weights=str(path))
    for k, v in ref.model.state_dict().items():
        torch.testing.assert_close(bb.model.state_dict()[k], v)  # teacher, not student (+1)
    assert bb.weights_id.startswith("file:dino_full_checkpoint.pth@sha256:")


def test_dino_backbone_state_dict_loads(tmp_path):
    # Layout of dino_deitsmall8_pretrain.pth: plain backbone keys (the same names as timm's).
    ref = tiny()
    path = tmp_path / "dino_deitsmall8_pretrain.pth"
    torch.save(ref.model.state_dict(), path)
    bb = tiny(weights=str(path))
    torch.testing.assert_close(
        bb.model.blocks[-1].attn.qkv.weight, ref.model.blocks[-1].attn.qkv.weight
    )


def test_mismatched_weights_raise_clear_error(tmp_path):
    wide = create_backbone("timm:vit_small_patch16_224", pretrained=False, depth=2, size=64)
    path = tmp_path / "vit_small.pth"
    torch.save(wide.model.state_dict(), path)
    expected = (
        r"does not match the architecture vit_tiny_patch16_224 "
        r"\(embed_dim 192, depth 2, patch 16\).*shape mismatches"
    )
    with pytest.raises(WeightsError, match=expected):
        tiny(weights=str(path))
    deeper = tmp_path / "deeper.pth"
    torch.save(tiny(depth=3).model.state_dict(), deeper)
    with pytest.raises(WeightsError, match=r"unexpected keys \(blocks\.2\."):
        tiny(weights=str(deeper))
    patch8 = tmp_path / "patch8.pth"
    import timm

    torch.save(
        timm.create_model(
            "vit_tiny_patch16_224", patch_size=8, depth=2, num_classes=0
        ).state_dict(),
        patch8,
    )
    with pytest.raises(WeightsError, match="patch size 8"):
        tiny(weights=str(patch8))


def test_unreadable_weights_files(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint"):
        tiny(weights=str(junk))
    with pytest.raises(WeightsError, match="not found"):
        tiny(weights=str(tmp_path / "missing.pth"))
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"model": ConfigError("not a tensor")}, unsafe)  # arbitrary object: refused
    refused = r"pickled deepcut\.errors\.ConfigError object.*weights_only"
    with pytest.raises(WeightsError, match=refused):
        tiny(weights=str(unsafe))
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\n" * 20)
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint"):
        tiny(weights=str(text))
    not_sd = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_sd)
    with pytest.raises(WeightsError, match="not a checkpoint"):
        tiny(weights=str(not_sd))


def test_hub_status_reads_the_cache_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    name = "vit_small_patch8_224.dino"
    assert weights_mod.hub_weights_status(name, cache_dir=str(tmp_path)) == "offline"
    # The Hugging Face cache layout of a cached timm/vit_small_patch8_224.dino.
    repo = tmp_path / "models--timm--vit_small_patch8_224.dino"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "model.safetensors").write_bytes(b"")
    assert weights_mod.hub_weights_status(name, cache_dir=str(tmp_path)) == "cached"
    assert weights_mod.hub_weights_status("vit_tiny_patch16_224", cache_dir=str(tmp_path)) == (
        "offline"
    )
    # With the repo given (the `auto` backbone's fast path, no timm import): the same answers,
    # and that repo is the one timm itself reads.
    import timm

    hub_id = f"timm/{name}"
    assert timm.models.get_pretrained_cfg(name).hf_hub_id == hub_id
    assert weights_mod.hub_weights_status(name, cache_dir=str(tmp_path), hub_id=hub_id) == "cached"
    other = "timm/vit_tiny_patch16_224.augreg_in21k"
    assert weights_mod.hub_weights_status(name, cache_dir=str(tmp_path), hub_id=other) == "offline"


def test_named_dino_offline_raises_naming_both_remedies(offline_no_cache):
    with pytest.raises(
        WeightsError,
        match=r"--weights PATH.*dino_deitsmall8_pretrain\.pth.*"
        r"run once online so timm caches "
        r"vit_small_patch8_224\.dino",
    ):
        create_backbone("dino_vits8")
    with pytest.raises(WeightsError, match="--weights"):
        resolve_backbone("dino_vits16")  # a named backbone never falls back


def test_auto_falls_back_to_classic_with_one_warning(offline_no_cache):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bb = resolve_backbone("auto", size=64)
    ours = [w for w in caught if issubclass(w.category, BackboneFallbackWarning)]
    assert len(ours) == 1 and len(caught) == len(ours)
    msg = str(ours[0].message)
    assert "\n" not in msg and "--weights PATH" in msg and "vit_small_patch8_224.dino" in msg
    assert ours[0].filename == __file__  # stacklevel=2 points at the caller
    assert bb.name == "classic" and bb.size == 64


def test_auto_fallback_offline_does_not_import_timm(tmp_path, monkeypatch):
    """The classic fallback of ``auto`` (offline, nothing cached) never imports timm: ~4 s of
    start-up (timm pulls in wandb) the weight-free run does not use."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    monkeypatch.setitem(sys.modules, "timm", None)  # any `import timm` now raises ImportError
    with pytest.warns(BackboneFallbackWarning, match="HF_HUB_OFFLINE"):
        bb = resolve_backbone("auto", size=64)
    assert bb.name == "classic"


def test_auto_with_weights_file_uses_dino(tmp_path, offline_no_cache):
    # depth=2 keeps this ViT-S/8 cheap; the file must match it strictly.
    ref = create_backbone("dino_vits8", pretrained=False, size=32, depth=2)
    path = tmp_path / "dino.pth"
    torch.save(ref.model.state_dict(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BackboneFallbackWarning)
        bb = resolve_backbone("auto", weights=str(path), size=32, depth=2)
    assert bb.name == "dino_vits8" and bb.weights_id.startswith("file:dino.pth@")


# ------------------------------------------------------------------------------------------
# classic


def two_colour_image(h: int = 120, w: int = 160) -> Image.Image:
    rng = np.random.default_rng(0)
    arr = np.zeros((h, w, 3), dtype=np.float64)
    arr[:, : w // 2] = (200, 40, 40)  # red left half
    arr[:, w // 2 :] = (40, 60, 200)  # blue right half
    arr += rng.normal(0, 8, arr.shape)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def test_classic_shape_and_determinism():
    bb = create_backbone("classic", size=120)
    img = two_colour_image()
    out = bb(img)
    H_in, W_in = input_size_for((120, 160), 120, 8, 8)
    assert out.input_size == (H_in, W_in)
    # 6 colour + 3 Lab over 3x3 patches + 2 x 3 Lab spread + 3 scales x (1 + 6) texture + 2 position
    assert out.features.shape == (*grid_size_for((H_in, W_in), 8, 8), 38) == (15, 20, 38)
    assert out.cls is None and out.weights_id == "none" and bb.feature_dim == 38
    assert list(bb.parameters()) == []
    torch.testing.assert_close(bb(img).features, out.features, rtol=0, atol=0)
    assert torch.isfinite(out.features).all()
    out4 = create_backbone("classic", size=120, stride=4)(img)
    assert out4.grid == (1 + (H_in - 8) // 4, 1 + (W_in - 8) // 4)


def test_classic_separates_colours():
    out = create_backbone("classic", size=120)(two_colour_image())
    f = torch.nn.functional.normalize(out.features, dim=-1)  # (h, w, D)
    w = f.shape[1]
    D = f.shape[-1]
    left, right = f[:, : w // 2 - 1].reshape(-1, D), f[:, w // 2 + 1 :].reshape(-1, D)
    within = (left @ left.T).mean()
    across = (left @ right.T).mean()
    assert within > 0.5 and across < 0.0, (within, across)


def test_classic_texture_context_sees_beyond_the_patch():
    """A flat patch 2 patches away from a striped region has no gradient inside itself, but its
    4-patch texture window reaches the stripes; a flat patch far away sees none at any scale."""
    from deepcut.backbones.classic import _texture

    gray = torch.zeros(1, 1, 64, 96)
    gray[..., :, :32] = (torch.arange(32) % 4 < 2).float()  # vertical stripes, 4 patches wide
    t = _texture(gray, 8, 8, 6, (1, 2, 4))  # (1, 3 * 7, 8, 12)
    near, far = t[0, :, 4, 5], t[0, :, 4, 11]  # columns 40-47 px and 88-95 px: both flat
    assert near[0] == 0 and near[7] == 0  # patch and 2-patch windows: flat
    assert near[14] > 0.04  # 4-patch window (28-59 px) reaches the stripes (x < 32)
    assert near[15:].sum() == pytest.approx(1.0, abs=1e-4)  # its orientation histogram
    assert far[[0, 7, 14]].abs().max() == 0
    assert t[0, 1:7, 4, 1].argmax() == 0  # stripes: horizontal gradient, orientation bin 0


def test_classic_texture_histogram_bins_each_pixel_magnitude_once():
    """The orientation histogram equals the per-pixel one-hot vote ``one_hot(bin) * |g|``
    pooled per patch (exactly: each pixel adds its magnitude to one bin)."""
    import math

    import torch.nn.functional as F

    from deepcut.backbones.classic import _sobel, _texture

    gray = torch.rand(2, 1, 32, 48, generator=torch.Generator().manual_seed(0))
    t = _texture(gray, 8, 8, 6, (1,))  # (2, 7, 4, 6)
    gx, gy = _sobel(gray)
    mag = (gx * gx + gy * gy).sqrt()
    idx = (torch.atan2(gy, gx).remainder(math.pi) * (6 / math.pi)).long().clamp(0, 5)
    votes = F.avg_pool2d(F.one_hot(idx[:, 0], 6).permute(0, 3, 1, 2).float() * mag, 8, 8)
    assert torch.equal(t[:, :1], F.avg_pool2d(mag, 8, 8))
    assert torch.equal(t[:, 1:], votes / votes.sum(1, keepdim=True).clamp_min(1e-6))


@pytest.mark.parametrize("patch,stride", [(8, 8), (8, 4), (14, 14), (16, 8), (7, 7)])
def test_classic_context_pools_equal_the_pixel_windows(patch, stride):
    """Windows summed from cells give the per-pixel window means (``_context_pool``, the
    definition), border windows included: sizes that are no multiple of the cell, odd patches
    (whose even-scale windows have no common cell and are pooled from the pixels)."""
    from deepcut.backbones.classic import _context_pool, _context_pools

    x = torch.rand(2, 5, 61, 83, generator=torch.Generator().manual_seed(0))
    scales = (1, 2, 3, 4)
    got = _context_pools(x, patch, stride, scales)
    for k, g in zip(scales, got):
        want = _context_pool(x, patch, stride, k)
        assert g.shape == want.shape == (2, 5, 1 + (61 - patch) // stride,
                                         1 + (83 - patch) // stride)
        torch.testing.assert_close(g, want, rtol=1e-5, atol=1e-6)
    # a hand-checked border window: patch 8, scale 3, the top-left patch sees rows/cols 0-15
    # (its 24-px window starts 8 px outside the image)
    if (patch, stride) == (8, 8):
        torch.testing.assert_close(got[2][:, :, 0, 0], x[:, :, :16, :16].mean((2, 3)))


def test_classic_rejects_weights():
    with pytest.raises(ConfigError, match="no weights"):
        create_backbone("classic", weights="x.pth")


def test_rgb_to_lab_reference_values():
    from deepcut.backbones.classic import rgb_to_lab

    rgb = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]).T.reshape(1, 3, 3, 1)
    lab = rgb_to_lab(rgb)[0, :, :, 0].T
    expected = torch.tensor([[100.0, 0.0, 0.0], [53.24, 80.09, 67.20], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(lab, expected, atol=0.05, rtol=0)


# ------------------------------------------------------------------------------------------
# Device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_vit_on_cuda_matches_cpu():
    torch.manual_seed(0)
    cpu = tiny()
    gpu = tiny(device="cuda")
    gpu.load_state_dict(cpu.state_dict())
    img = noise_image(60, 90)
    a, b = cpu(img), gpu(img)
    assert b.features.device.type == "cpu"  # PatchFeatures are returned on the CPU
    torch.testing.assert_close(a.features, b.features, atol=1e-3, rtol=1e-3)
