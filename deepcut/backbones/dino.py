"""The registered DINO / DINOv2 backbones, by name; built by :func:`deepcut.backbones.vit.create_vit`.

Registering them does not import timm: ``--help``, the ``classic`` backbone and the registry's
choices stay light, and timm is imported when a ViT is built.
"""

from __future__ import annotations

from typing import Any

from ._registry import register_backbone
from .base import Backbone

# --------------------------------------------------------------------------------------------
# Registered DINO backbones (the paper's Table 4 family): our name -> timm name with weights tag,
# and the original checkpoint file that ``--weights`` accepts.

_DINO_BACKBONES = (
    (
        "dino_vits8",
        "vit_small_patch8_224.dino",
        "dino_deitsmall8_pretrain.pth",
        "DINO ViT-S/8 (default; DeepCut): D=384, 35x35 grid at 280 px",
    ),
    (
        "dino_vits16",
        "vit_small_patch16_224.dino",
        "dino_deitsmall16_pretrain.pth",
        "DINO ViT-S/16 (TokenCut): D=384",
    ),
    ("dino_vitb8", "vit_base_patch8_224.dino", "dino_vitbase8_pretrain.pth", "DINO ViT-B/8: D=768"),
    (
        "dino_vitb16",
        "vit_base_patch16_224.dino",
        "dino_vitbase16_pretrain.pth",
        "DINO ViT-B/16: D=768",
    ),
    (
        "dinov2_vits14",
        "vit_small_patch14_dinov2.lvd142m",
        "dinov2_vits14_pretrain.pth",
        "DINOv2 ViT-S/14 (Oquab et al. 2023): D=384",
    ),
    (
        "dinov2_vitb14",
        "vit_base_patch14_dinov2.lvd142m",
        "dinov2_vitb14_pretrain.pth",
        "DINOv2 ViT-B/14: D=768",
    ),
)



def _builder(name: str, timm_name: str, hint: str):
    def build(**kwargs: Any) -> Backbone:
        from .vit import create_vit  # timm (and the wandb it imports) only when a ViT is built

        return create_vit(name, timm_name, checkpoint_hint=hint, **kwargs)

    return build


for _name, _timm_name, _hint, _doc in _DINO_BACKBONES:
    register_backbone(_name, timm_name=_timm_name, checkpoint_hint=_hint, description=_doc)(
        _builder(_name, _timm_name, _hint)
    )
