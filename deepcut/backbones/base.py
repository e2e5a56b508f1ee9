"""The backbone contract: an RGB image in, a grid of patch features out."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

__all__ = ["Backbone", "PatchFeatures"]


@dataclass
class PatchFeatures:
    """Patch features of one image on an explicit (h, w) grid (never inferred from sqrt(N)).

    Attributes:
        features: ``(h, w, D)`` float32 patch features (ViT keys of the last block, or the
            classic colour/position/texture statistics).
        cls: ``(D,)`` CLS-token key, or ``None`` for backbones without one.
        input_size: ``(H_in, W_in)`` size of the resized network input in pixels.
        image_size: ``(H, W)`` size of the original image in pixels.
        patch_size: patch side in input pixels.
        stride: stride between patches in input pixels.
        backbone: registry name of the backbone.
        weights_id: where the weights came from (``hub:<tag>``, ``file:<name>@sha256:<12 hex>``,
            ``random-init`` or ``none`` for weight-free backbones).
    """

    features: torch.Tensor
    cls: torch.Tensor | None
    input_size: tuple[int, int]
    image_size: tuple[int, int]
    patch_size: int
    stride: int
    backbone: str = ""
    weights_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def grid(self) -> tuple[int, int]:
        """``(h, w)`` of the patch grid."""
        return int(self.features.shape[0]), int(self.features.shape[1])

    @property
    def flat(self) -> torch.Tensor:
        """``(N, D)`` features in row-major grid order, ``N = h * w``."""
        h, w, d = self.features.shape
        return self.features.reshape(h * w, d)

    def patch_boxes_scale(self) -> tuple[float, float]:
        """Scale (sy, sx) from input pixels to original image pixels."""
        return self.image_size[0] / self.input_size[0], self.image_size[1] / self.input_size[1]


class Backbone(torch.nn.Module):
    """Base class. Subclasses implement :meth:`extract` on a preprocessed batch.

    Call a backbone on a PIL image (any mode, already converted to RGB by
    :func:`deepcut.io.load_image`) to get :class:`PatchFeatures`.
    """

    name: str = ""
    patch_size: int = 8
    stride: int = 8
    feature_dim: int = 0
    weights_id: str = "none"

    def input_size_for(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """Network input ``(H_in, W_in)`` for an original ``(H, W)``; see subclasses."""
        raise NotImplementedError

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """``(1, 3, H_in, W_in)`` normalised tensor from an RGB PIL image."""
        raise NotImplementedError

    def extract(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """From a ``(B, 3, H_in, W_in)`` batch to ``(B, h, w, D)`` features and ``(B, D)`` CLS or None."""
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, image: Image.Image) -> PatchFeatures:
        x = self.preprocess(image)
        dev = next((p.device for p in self.parameters()), torch.device("cpu"))
        feats, cls = self.extract(x.to(dev))
        return PatchFeatures(
            features=feats[0].float().cpu(),
            cls=None if cls is None else cls[0].float().cpu(),
            input_size=(int(x.shape[-2]), int(x.shape[-1])),
            image_size=(image.height, image.width),
            patch_size=self.patch_size,
            stride=self.stride,
            backbone=self.name,
            weights_id=self.weights_id,
        )
