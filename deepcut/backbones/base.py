"""The backbone contract: an RGB image in, a grid of patch features out."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

__all__ = ["Backbone", "ImageLike", "PatchFeatures", "as_rgb_image", "pil_to_tensor"]

#: What a backbone or a Segmenter takes as an image.
ImageLike = Union[Image.Image, str, "os.PathLike[str]", np.ndarray, torch.Tensor]


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """``(C, H, W)`` uint8 tensor of a PIL image (torchvision's ``pil_to_tensor``, without
    importing torchvision for one function)."""
    a = np.asarray(image, dtype=np.uint8)
    a = a[..., None] if a.ndim == 2 else a
    return torch.from_numpy(a.copy()).permute(2, 0, 1).contiguous()


def as_rgb_image(image: ImageLike) -> Image.Image:
    """An 8-bit RGB PIL image from a PIL image (any mode), a path, a numpy array or a tensor.

    Arrays: numpy ``(H, W, 3)`` (or ``(H, W)`` grey) ``uint8``; torch ``(3, H, W)`` (or
    ``(H, W)``) ``uint8`` in 0..255 or floating point in 0..1 (torchvision's conventions).

    Raises:
        ImageReadError: unreadable file, or an array of another shape or dtype (one line).
    """
    from deepcut.errors import ImageReadError
    from deepcut.io.images import load_image, to_rgb

    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 3 and t.shape[0] in (1, 3):
            t = t.permute(1, 2, 0)
        elif t.ndim != 2:
            raise ImageReadError(f"image tensor of shape {tuple(image.shape)}: expected "
                                 "(3, H, W) or (H, W)")
        if t.is_floating_point():
            t = (t.clamp(0, 1) * 255).round()
        elif t.dtype != torch.uint8:
            raise ImageReadError(f"image tensor of dtype {image.dtype}: expected uint8 (0..255) "
                                 "or float (0..1)")
        image = t.to(torch.uint8).numpy()
    if isinstance(image, np.ndarray):
        a = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
        if a.dtype != np.uint8:
            raise ImageReadError(f"image array of dtype {image.dtype}: expected uint8 "
                                 "(convert with (x * 255).astype(np.uint8) for 0..1 floats)")
        if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)):
            raise ImageReadError(f"image array of shape {image.shape}: expected (H, W, 3) RGB "
                                 "or (H, W) grey")
        return Image.fromarray(np.ascontiguousarray(a)).convert("RGB")
    raise ImageReadError(f"cannot read an image from a {type(image).__name__}: pass a PIL "
                         "image, a path, a numpy (H, W, 3) uint8 array or a (3, H, W) tensor")


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

    Call a backbone on an image (a PIL image, a path, a numpy ``(H, W, 3)`` uint8 array or a
    ``(3, H, W)`` tensor; see :func:`as_rgb_image`) to get :class:`PatchFeatures`.
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

    def feature_extra(self, x: torch.Tensor, grid: tuple[int, int]) -> dict[str, Any]:
        """``PatchFeatures.extra`` of one preprocessed image ``x: (1, 3, H_in, W_in)`` on the
        ``(h, w)`` grid (none by default; ``classic`` adds the image's edge map)."""
        return {}

    def input_device(self) -> torch.device:
        """Where :meth:`extract` wants its input: the device of the weights (CPU without any)."""
        return next((p.device for p in self.parameters()), torch.device("cpu"))

    @torch.no_grad()
    def extract_with_extra(self, x: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor | None, list[dict[str, Any]]]:
        """:meth:`extract` of a batch ``x: (B, 3, H_in, W_in)`` (on the backbone's device) and
        each image's :meth:`feature_extra`: ``(features, cls, extras)``. A backbone whose two
        steps share work overrides it (``classic``: both need the image in Lab)."""
        feats, cls = self.extract(x.to(self.input_device()))
        grid = (int(feats.shape[1]), int(feats.shape[2]))
        return feats, cls, [self.feature_extra(x[b:b + 1], grid) for b in range(x.shape[0])]

    @torch.no_grad()
    def forward(self, image: ImageLike) -> PatchFeatures:
        image = as_rgb_image(image)
        x = self.preprocess(image)
        feats, cls, extras = self.extract_with_extra(x)
        return PatchFeatures(
            features=feats[0].float().cpu(),
            cls=None if cls is None else cls[0].float().cpu(),
            input_size=(int(x.shape[-2]), int(x.shape[-1])),
            image_size=(image.height, image.width),
            patch_size=self.patch_size,
            stride=self.stride,
            backbone=self.name,
            weights_id=self.weights_id,
            extra=extras[0],
        )
