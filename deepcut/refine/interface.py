"""One interface for every refinement: patch labels -> pixel labels.

Every method has the same signature::

    <method>_labels(image, patch_labels, input_size, patch, stride, *, depth=None,
                    features=None, **params) -> (H, W) labels

* ``image``: the RGB PIL image the patches come from (its size is the output size). ``nearest``
  and ``centres`` read only its size, so an ``(H, W)`` tuple works for them too.
* ``patch_labels: (h, w)``: integer labels on the patch grid; ``input_size, patch, stride``: the
  backbone geometry (:class:`~deepcut.backbones.base.PatchFeatures` carries all three).
* ``depth: (H, W)``: a depth map at the image size, used by ``dream`` only (the others refuse
  one rather than silently ignore it).
* ``features: (h, w, D)``: the patch features, needed by ``centres`` only.

Every method returns labels from the input set (refinement never invents a segment).
:func:`refine_labels` dispatches by name; :data:`REFINERS` lists the methods.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from deepcut.errors import ConfigError
from deepcut.refine.upsample import upsample_labels

__all__ = ["REFINERS", "centres_labels", "nearest_labels", "refine_labels", "refuse_depth"]


def refuse_depth(method: str, depth) -> None:
    """Raise :class:`ConfigError` if a depth map is given to a method that does not use one."""
    if depth is not None:
        raise ConfigError(f"refine={method!r} does not use a depth map; depth maps are used by "
                          "refine='dream' only.")


def _size(image: Image.Image | tuple[int, int]) -> tuple[int, int]:
    """``(H, W)`` of a PIL image or of an ``(H, W)`` tuple."""
    if isinstance(image, Image.Image):
        return image.size[1], image.size[0]
    H, W = image
    return int(H), int(W)


def nearest_labels(image: Image.Image | tuple[int, int], patch_labels: np.ndarray,
                   input_size: tuple[int, int], patch: int, stride: int, *, depth=None,
                   features=None) -> np.ndarray:
    """Nearest upsampling: every pixel takes the label of the nearest patch centre."""
    refuse_depth("nearest", depth)
    return upsample_labels(np.asarray(patch_labels), _size(image), input_size, patch, stride)


def centres_labels(image: Image.Image | tuple[int, int], patch_labels: np.ndarray,
                   input_size: tuple[int, int], patch: int, stride: int, *, depth=None,
                   features: torch.Tensor | None = None) -> np.ndarray:
    """Partition centres on bilinearly upsampled features (:mod:`deepcut.refine.centres`).

    ``features: (h, w, D)`` are required. The feature grid is mapped onto the whole image (the
    method's own convention), so ``input_size, patch, stride`` are not used.
    """
    from deepcut.refine.centres import assign_by_centres

    refuse_depth("centres", depth)
    if features is None:
        raise ConfigError("refine='centres' needs the patch features (features=...).")
    return assign_by_centres(features, patch_labels, _size(image)).numpy()


def _registry() -> dict[str, Callable[..., np.ndarray]]:
    from deepcut.refine.bilateral import bilateral_labels
    from deepcut.refine.dream import dream_labels
    from deepcut.refine.pamr import pamr_labels

    return {"nearest": nearest_labels, "centres": centres_labels, "pamr": pamr_labels,
            "bilateral": bilateral_labels, "dream": dream_labels}


#: The refinement methods by name (``SegmenterConfig.refine`` takes these).
REFINERS = ("nearest", "centres", "pamr", "bilateral", "dream")

#: Methods that need the image's pixels (the others need only its size).
IMAGE_GUIDED = ("pamr", "bilateral", "dream")


def refine_labels(method: str, image: Image.Image | tuple[int, int], patch_labels: np.ndarray,
                  input_size: tuple[int, int], patch: int, stride: int, *, depth=None,
                  features: torch.Tensor | None = None, **params) -> np.ndarray:
    """``(H, W)`` pixel labels by refinement ``method`` (one of :data:`REFINERS`)."""
    fns = _registry()
    if method not in fns:
        raise ConfigError(f"Unknown refinement {method!r}; choose one of {list(REFINERS)}.")
    if method in IMAGE_GUIDED and not isinstance(image, Image.Image):
        raise ConfigError(f"refine={method!r} refines the labels along the image: pass the RGB "
                          "image, not only its size.")
    return np.asarray(fns[method](image, patch_labels, input_size, patch, stride, depth=depth,
                                  features=features, **params))
