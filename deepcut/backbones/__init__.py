"""Backbones: an RGB image in, patch features on an explicit ``(h, w)`` grid out.

Example:
    >>> from deepcut.backbones import create_backbone, list_backbones
    >>> list_backbones("dino*")[:2]
    ['dino_vitb16', 'dino_vitb8']
    >>> bb = create_backbone("classic")
    >>> bb.feature_dim
    38
"""

from ._registry import (
    DEFAULT_BACKBONE,
    BackboneFallbackWarning,
    BackboneSpec,
    create_backbone,
    get_backbone_spec,
    list_backbones,
    register_backbone,
    resolve_backbone,
)
from .base import Backbone, ImageLike, PatchFeatures, as_rgb_image
from .classic import ClassicBackbone  # registers "classic"
from .dino import _DINO_BACKBONES  # noqa: F401  (registers the DINO backbones, without timm)
from .resize import grid_size_for, input_size_for, snap_to_grid
from .weights import file_weights_id, hub_weights_status, load_weights_file, read_checkpoint

_VIT_NAMES = ("StridedPatchEmbed", "ViTBackbone", "create_vit")


def __getattr__(name: str):
    # The ViT classes need timm, whose import costs seconds (and pulls in wandb): load on use.
    if name in _VIT_NAMES:
        from . import vit

        return getattr(vit, name)
    raise AttributeError(f"module 'deepcut.backbones' has no attribute {name!r}")

__all__ = [
    "DEFAULT_BACKBONE",
    "Backbone",
    "BackboneFallbackWarning",
    "BackboneSpec",
    "ClassicBackbone",
    "ImageLike",
    "PatchFeatures",
    "StridedPatchEmbed",
    "ViTBackbone",
    "as_rgb_image",
    "create_backbone",
    "create_vit",
    "file_weights_id",
    "get_backbone_spec",
    "grid_size_for",
    "hub_weights_status",
    "input_size_for",
    "list_backbones",
    "load_weights_file",
    "read_checkpoint",
    "register_backbone",
    "resolve_backbone",
    "snap_to_grid",
]
