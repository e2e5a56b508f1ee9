"""ViT backbones (DINO, DINOv2, any timm ViT): keys of the last block as patch features.

DeepCut (Aflalo et al., ICCV-W 2023, https://arxiv.org/abs/2209.00383) builds its graph on the
**keys** of the last attention block of DINO ViT-S/8 (Caron et al. 2021,
https://arxiv.org/abs/2104.14294). We take them with one forward hook on
``blocks[-1].attn.qkv`` during a single forward pass (DeepCut's extractor recomputed qkv in a
hook on ``attn``). Any size, aspect ratio and a stride below the patch size (overlapping
patches, paper section 3.1.4) work without a square-grid assumption.

Preprocessing options (our default first; DeepCut's values are
:data:`deepcut.backbones.paper.PAPER_PREPROCESSING`):

- ``resize``: ``"aspect"`` (short side to ``size``, sides snapped to ``p + s*m``) or
  ``"square"`` (squash to ``size x size``, as DeepCut's ``res=(280, 280)``);
- ``resample``: PIL filter of that resize; None takes the model's (timm: bicubic), DeepCut
  uses ``"lanczos"``;
- ``pos_embed``: ``"timm"`` (timm resamples to the exact grid, bicubic, antialiased) or
  ``"dino"`` (DINO's ``interpolate_pos_encoding``, see :mod:`deepcut.backbones.pos_embed`);
- ``precision``: ``"fp32"`` or ``"bf16"`` (the forward pass under ``torch.autocast`` in
  bfloat16; keys returned as float32). On a random-init ViT-S/8 the bf16 keys have per-patch
  cosine >= 0.9999 to the fp32 ones (``tests/test_gpu.py`` asserts >= 0.999). Its speed depends
  on the hardware: GPUs run bf16 matrix products on their tensor cores, while a CPU without
  bf16 instructions runs them slower than fp32 (measured here: several times slower). The
  default (``SegmenterConfig.precision="auto"``) is therefore bf16 on CUDA and fp32 on the
  CPU, which also keeps CPU results unchanged;
- ``channel_layout``: ``"head_major"`` (channel ``h * head_dim + d``: the heads one after the
  other, as the qkv projection lays them out) or ``"interleaved"`` (channel
  ``d * heads + h``: DeepCut's extractor permutes ``(B, heads, N, d)`` to ``(B, N, d, heads)``
  before flattening). The graphs (dot products) are the same; a GNN's first layer is not.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import torch
from PIL import Image
from timm.layers import PatchEmbed
from timm.layers.format import Format, nchw_to

from ..errors import ConfigError, WeightsError
from . import weights as _weights
from .base import Backbone, pil_to_tensor
from .pos_embed import POS_EMBED_MODES, dino_interpolate_pos_encoding
from .resize import RESAMPLE_FILTERS, RESIZE_MODES, check_geometry, grid_size_for, input_size_for

__all__ = ["CHANNEL_LAYOUTS", "StridedPatchEmbed", "ViTBackbone", "create_vit"]

#: Accepted values of the ``channel_layout`` option (see the module docstring).
CHANNEL_LAYOUTS = ("head_major", "interleaved")
#: Accepted values of the ``precision`` option: the forward pass in float32 or under bf16 autocast.
PRECISIONS = ("fp32", "bf16")

# PIL filters for timm's interpolation names (timm's data config gives the name).
_PIL_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


class StridedPatchEmbed(PatchEmbed):
    """timm ``PatchEmbed`` whose convolution may step by ``stride < patch_size``.

    The input sides are ``p + s * m`` (see :mod:`deepcut.backbones.resize`), which need not be
    multiples of ``p``, so timm's size checks are skipped; the grid is
    ``1 + (H_in - p) // s``. ``img_size``/``grid_size`` keep the pretraining values: timm uses
    them as the source grid when it resamples ``pos_embed`` to the actual grid.
    """

    def __init__(self, *args: Any, stride: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if stride is not None:
            self.proj.stride = (stride, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H_in, W_in)`` -> ``(B, h, w, D)`` (NHWC, as ``dynamic_img_size`` expects)."""
        x = self.proj(x)  # (B, D, h, w)
        if self.flatten:
            x = x.flatten(2).transpose(1, 2)
        elif self.output_fmt != Format.NCHW:
            x = nchw_to(x, self.output_fmt)
        return self.norm(x)


class _StopForward(Exception):
    """Raised by the key hook: nothing after the last block's qkv is needed."""


def _resolve_device(device: str | torch.device | None) -> torch.device:
    dev = torch.device("cpu" if device is None else device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for but CUDA is not available.")
    return dev


class ViTBackbone(Backbone):
    """A frozen timm ViT returning the last block's keys on an explicit ``(h, w)`` grid.

    Args:
        model: a timm ``VisionTransformer`` built with ``dynamic_img_size=True`` and
            :class:`StridedPatchEmbed`.
        name: registry name reported in :class:`PatchFeatures`.
        weights_id: provenance of the weights.
        size: short side of the network input in pixels (the side, with ``resize="square"``).
        max_size: cap on the long side; None means ``4 * size``.
        resize: ``"aspect"`` or ``"square"`` (see the module docstring).
        resample: PIL filter name (``bicubic``, ``bilinear``, ``lanczos``, ``nearest``); None
            takes the model's own (timm's data config; bicubic for DINO).
        pos_embed: ``"timm"`` or ``"dino"`` position-embedding resampling.
        channel_layout: ``"head_major"`` or ``"interleaved"`` key channels.
        precision: ``"fp32"`` or ``"bf16"`` (autocast; keys returned in float32).

    Attributes:
        feature_dim: ``D``, the key dimension (heads concatenated; 384 for ViT-S).
        mean, std: normalisation from ``timm.data.resolve_model_data_config(model)``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        name: str,
        weights_id: str,
        size: int = 280,
        max_size: int | None = None,
        resize: str = "aspect",
        resample: str | None = None,
        pos_embed: str = "timm",
        channel_layout: str = "head_major",
        precision: str = "fp32",
    ) -> None:
        import timm

        super().__init__()
        attn = model.blocks[-1].attn
        if not isinstance(getattr(attn, "qkv", None), torch.nn.Linear):
            raise ConfigError(f"backbone {name!r}: the last block has no fused qkv projection.")
        self.model = model.eval().requires_grad_(False)
        self.name = name
        self.weights_id = weights_id
        self.patch_size = int(model.patch_embed.patch_size[0])
        self.stride = int(model.patch_embed.proj.stride[0])
        self.size = size
        self.max_size = 4 * size if max_size is None else max_size
        check_geometry(self.size, self.patch_size, self.stride, self.max_size)
        self.num_heads = int(attn.num_heads)
        self.feature_dim = attn.qkv.out_features // 3
        cfg = timm.data.resolve_model_data_config(model)
        self.mean = tuple(float(m) for m in cfg["mean"])
        self.std = tuple(float(s) for s in cfg["std"])
        for option, value, choices in (
            ("resize", resize, RESIZE_MODES),
            ("resample", resample, (None, *RESAMPLE_FILTERS)),
            ("pos_embed", pos_embed, POS_EMBED_MODES),
            ("channel_layout", channel_layout, CHANNEL_LAYOUTS),
            ("precision", precision, PRECISIONS),
        ):
            if value not in choices:
                raise ConfigError(f"{option} must be one of {choices}, got {value!r}.")
        if pos_embed == "dino":
            _check_dino_layout(model, name)
        self.resize = resize
        self.resample_name = resample or cfg.get("interpolation", "bicubic")
        self.resample = _PIL_RESAMPLE.get(self.resample_name, Image.Resampling.BICUBIC)
        self.pos_embed = pos_embed
        self.channel_layout = channel_layout
        self.precision = precision

    @property
    def preprocessing(self) -> dict[str, str]:
        """The options that decide the features beyond size/stride/weights (for provenance)."""
        return {
            "resize": self.resize,
            "resample": self.resample_name,
            "pos_embed": self.pos_embed,
            "channel_layout": self.channel_layout,
        }

    def train(self, mode: bool = True) -> ViTBackbone:
        """Stay in eval mode: the backbone is a frozen feature extractor."""
        return super().train(False)

    def input_size_for(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """Network input ``(H_in, W_in)`` for an original ``(H, W)``; see :func:`input_size_for`."""
        return input_size_for(
            image_size, self.size, self.patch_size, self.stride, self.max_size, self.resize
        )

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """Resize (aspect kept, sides ``p + s*m``; or squashed to a square) and normalise.

        Args:
            image: PIL image, converted to RGB if needed.

        Returns:
            ``(1, 3, H_in, W_in)`` float32, normalised with the model's mean/std.
        """
        H_in, W_in = self.input_size_for((image.height, image.width))
        image = image.convert("RGB").resize((W_in, H_in), resample=self.resample)
        x = pil_to_tensor(image).float().div_(255.0)  # (3, H_in, W_in) in [0, 1]
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return ((x - mean) / std).unsqueeze(0)

    @torch.no_grad()
    def extract(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Keys of the last block, taken in one forward pass.

        Args:
            x: ``(B, 3, H_in, W_in)`` normalised batch.

        Returns:
            ``features: (B, h, w, D)`` patch keys and ``cls: (B, D)`` CLS key (None if the
            model has no class token). Register tokens are dropped.
        """
        B, _, H_in, W_in = x.shape
        h, w = grid_size_for((H_in, W_in), self.patch_size, self.stride)
        captured: dict[str, torch.Tensor] = {}

        def hook(module: torch.nn.Module, args: Any, output: torch.Tensor) -> None:
            captured["qkv"] = output
            raise _StopForward  # skip the rest of the last block: saves ~1/depth of the compute

        handle = self.model.blocks[-1].attn.qkv.register_forward_hook(hook)
        amp = torch.autocast(x.device.type, dtype=torch.bfloat16,
                             enabled=self.precision == "bf16")
        try:
            with amp:
                if self.pos_embed == "dino":
                    self.model.blocks(self._dino_tokens(x, (h, w)))
                else:
                    self.model.forward_features(x)
        except _StopForward:
            pass
        finally:
            handle.remove()
        qkv = captured["qkv"]  # (B, N, 3 * D): q, k, v each (heads, head_dim) head-major
        qkv = qkv.to(x.dtype)  # bf16 under autocast: keys leave in the input's dtype
        N = qkv.shape[1]
        attn = self.model.blocks[-1].attn
        k = qkv.reshape(B, N, 3, self.num_heads, -1)[:, :, 1]  # (B, N, heads, head_dim)
        k = attn.k_norm(k)  # identity for DINO; qk-norm models attend with normed keys
        if self.channel_layout == "interleaved":
            # DeepCut's extractor flattens (B, N, head_dim, heads): channel d * heads + h.
            k = k.transpose(-1, -2)
        # head_major: the heads one after the other, channel h * head_dim + d (qkv's order).
        k = k.reshape(B, N, self.feature_dim)
        n_prefix = int(self.model.num_prefix_tokens)
        if N - n_prefix != h * w:
            raise RuntimeError(f"expected {h}x{w} patch tokens, got {N - n_prefix}.")
        cls = k[:, 0] if getattr(self.model, "has_class_token", True) and n_prefix else None
        return k[:, n_prefix:].reshape(B, h, w, self.feature_dim), cls

    def _dino_tokens(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """DINO's ``prepare_tokens``: patch tokens, CLS first, DINO-interpolated positions.

        Replaces timm's ``_pos_embed`` (exact-grid, antialiased resampling) and is otherwise
        timm's ``forward_features`` up to the blocks: ``(B, 3, H_in, W_in)`` -> ``(B, 1+h*w, D)``.
        """
        m = self.model
        t = m.patch_embed(x)  # (B, h, w, D)
        B, h, w, D = t.shape
        t = torch.cat((m.cls_token.expand(B, -1, -1), t.reshape(B, h * w, D)), dim=1)
        pos = dino_interpolate_pos_encoding(m.pos_embed, grid, tuple(x.shape[-2:]))
        return m.norm_pre(m.patch_drop(m.pos_drop(t + pos)))


def _check_dino_layout(model: torch.nn.Module, name: str) -> None:
    """``pos_embed="dino"`` needs DINO v1's token layout: one CLS, a square table that covers it."""
    ok = (
        getattr(model, "cls_token", None) is not None
        and getattr(model, "reg_token", None) is None
        and getattr(model, "pos_embed", None) is not None
        and not getattr(model, "no_embed_class", False)
        and int(model.num_prefix_tokens) == 1
    )
    if not ok:
        raise ConfigError(
            f"pos_embed='dino' needs a DINO-v1-style ViT (one class token with its own position "
            f"embedding, no register tokens); backbone {name!r} is not one, use pos_embed='timm'."
        )


def create_vit(
    name: str,
    timm_name: str,
    *,
    weights: str | None = None,
    pretrained: bool = True,
    stride: int | None = None,
    size: int = 280,
    max_size: int | None = None,
    device: str | torch.device | None = None,
    checkpoint_hint: str | None = None,
    resize: str = "aspect",
    resample: str | None = None,
    pos_embed: str = "timm",
    channel_layout: str = "head_major",
    dino_head: str = "teacher",
    precision: str = "fp32",
    **model_kwargs: Any,
) -> ViTBackbone:
    """Build a :class:`ViTBackbone` around ``timm.create_model(timm_name)``.

    Weights, in order: the file ``weights`` (strict), the hub (cache or download) when
    ``pretrained``, else random init. There is never a silent fallback.

    Args:
        name: registry name to report.
        timm_name: timm model name with tag (``vit_small_patch8_224.dino``).
        weights: local checkpoint path (timm or original DINO layout).
        pretrained: load hub weights when ``weights`` is None.
        stride: patch stride; None keeps the patch size.
        size: short side of the input in pixels.
        max_size: cap on the long side; None means ``4 * size``.
        device: where the model runs.
        checkpoint_hint: original checkpoint name for error messages.
        resize, resample, pos_embed, channel_layout: preprocessing (see :class:`ViTBackbone`).
        dino_head: network of a DINO full checkpoint: ``"teacher"`` or ``"student"``
            (DeepCut's); other weights hold one network (a warning if ``"student"``).
        precision: ``"fp32"`` or ``"bf16"`` (the forward under bf16 autocast).
        **model_kwargs: extra ``timm.create_model`` arguments (e.g. ``depth=2``).

    Returns:
        The backbone in eval mode on ``device``.

    Raises:
        WeightsError: no weights (offline, not cached), unreadable or mismatched file.
        ConfigError: bad stride/size/device, or not a ViT.
    """
    import timm
    from timm.models.vision_transformer import VisionTransformer

    dev = _resolve_device(device)
    arch = timm_name.split(".")[0]
    use_hub = weights is None and pretrained
    if dino_head not in _weights.DINO_HEADS:
        raise ConfigError(f"dino_head must be one of {_weights.DINO_HEADS}, got {dino_head!r}.")
    if use_hub:
        status = _weights.hub_weights_status(timm_name)
        if status == "none":
            raise WeightsError(
                f"timm has no pretrained weights for {timm_name}; pass weights=PATH or "
                "pretrained=False for a random init."
            )
        if status in ("offline", "unreachable"):
            why = _weights.hub_unavailable_reason(status)
            msg = _weights.missing_weights_message(name, timm_name, checkpoint_hint, why)
            raise WeightsError(msg)
    # num_classes=0: no classifier head (features only). dynamic_img_size=True: timm resamples
    # pos_embed to the actual (h, w) grid on every forward (patch_embed must emit NHWC).
    kwargs: dict[str, Any] = {
        "num_classes": 0,
        "dynamic_img_size": True,
        "embed_layer": partial(StridedPatchEmbed, stride=stride),
    }
    kwargs.update(model_kwargs)
    try:
        model = timm.create_model(timm_name, pretrained=use_hub, **kwargs)
    except (OSError, RuntimeError, ValueError) as err:  # hub errors subclass OSError
        if not use_hub:
            raise
        why = f"download failed: {type(err).__name__}"
        raise WeightsError(
            _weights.missing_weights_message(name, timm_name, checkpoint_hint, why)
        ) from err
    if not isinstance(model, VisionTransformer):
        raise ConfigError(f"{timm_name} is not a timm VisionTransformer; pick a 'vit_*' model.")
    embed = model.patch_embed
    check_geometry(size, embed.patch_size[0], embed.proj.stride[0], max_size)
    if weights is not None:
        weights_id = _weights.load_weights_file(model, weights, arch=arch, dino_head=dino_head)
    else:
        if use_hub and dino_head != "teacher":
            warnings.warn(
                f"dino_head={dino_head!r} applies to DINO full training checkpoints only; timm's "
                f"{timm_name} weights are DINO's released backbone (the teacher). Pass the full "
                "checkpoint with --weights for the student.",
                stacklevel=2,
            )
        weights_id = _weights.hub_weights_id(timm_name) if use_hub else "random-init"
    backbone = ViTBackbone(
        model,
        name=name,
        weights_id=weights_id,
        size=size,
        max_size=max_size,
        resize=resize,
        resample=resample,
        pos_embed=pos_embed,
        channel_layout=channel_layout,
        precision=precision,
    )
    return backbone.to(dev)
