"""Patch labels to pixel labels."""
from __future__ import annotations

import numpy as np

__all__ = ["nearest_resize", "patch_index", "upsample_labels", "working_size"]


def patch_index(n_pix: int, n_in: int, n_patches: int, patch: int, stride: int) -> np.ndarray:
    """For each of ``n_pix`` original pixels along one axis, the index of the nearest patch centre.

    The network input has ``n_in`` pixels along this axis; patch j covers input pixels
    ``[j*stride, j*stride + patch)`` with centre ``j*stride + patch/2``. Pixel centres are mapped
    from the original to the input by the resize scale. Works for overlapping patches
    (stride < patch) and any aspect ratio.
    """
    x = (np.arange(n_pix) + 0.5) * (n_in / n_pix)  # pixel centres in input coordinates
    j = np.floor((x - patch / 2) / stride + 0.5).astype(np.int64)
    return np.clip(j, 0, n_patches - 1)


def upsample_labels(patch_labels: np.ndarray, image_size: tuple[int, int],
                    input_size: tuple[int, int], patch: int, stride: int) -> np.ndarray:
    """Nearest upsampling of ``patch_labels: (h, w)`` to ``image_size (H, W)`` pixel labels.

    Only two 1-D index vectors are computed, then one fancy-indexing gather: no per-pixel loop.
    """
    h, w = patch_labels.shape
    H, W = image_size
    rows = patch_index(H, input_size[0], h, patch, stride)
    cols = patch_index(W, input_size[1], w, patch, stride)
    return np.asarray(patch_labels)[rows[:, None], cols[None, :]]


def working_size(image_size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``(h, w)``: ``image_size (H, W)`` shrunk (aspect kept) to a longer side of ``max_side``."""
    H, W = image_size
    s = min(1.0, max_side / max(H, W))
    return max(1, round(H * s)), max(1, round(W * s))


def nearest_resize(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map ``(h, w)`` to ``size (H, W)`` (pixel centres)."""
    h, w = labels.shape
    H, W = size
    rows = np.minimum((np.arange(H) + 0.5) * h / H, h - 1).astype(np.int64)
    cols = np.minimum((np.arange(W) + 0.5) * w / W, w - 1).astype(np.int64)
    return np.asarray(labels)[rows[:, None], cols[None, :]]
