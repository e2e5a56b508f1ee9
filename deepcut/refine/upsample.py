"""Patch labels to pixel labels."""
from __future__ import annotations

import numpy as np

__all__ = ["patch_index", "upsample_labels"]


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
