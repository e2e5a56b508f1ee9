"""Backbones: an RGB image in, patch features on an explicit ``(h, w)`` grid out.

Example:
    >>> from deepcut.backbones import create_backbone, list_backbones
    >>> list_backbones("dino*")[:2]
    ['dino_vitb16', 'dino_vitb8']
    >>> bb = create_backbone("classic")
    >>> bb.feature_dim
    22
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
from .base import Backbone, PatchFeatures
from .classic import ClassicBackbone  # registers "classic"
from .resize import grid_size_for, input_size_for, snap_to_grid
from .vit import StridedPatchEmbed, ViTBackbone, create_vit  # registers the DINO backbones
from .weights import file_weights_id, hub_weights_status, load_weights_file, read_checkpoint

__all__ = [
    "DEFAULT_BACKBONE",
    "Backbone",
    "BackboneFallbackWarning",
    "BackboneSpec",
    "ClassicBackbone",
    "PatchFeatures",
    "StridedPatchEmbed",
    "ViTBackbone",
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
