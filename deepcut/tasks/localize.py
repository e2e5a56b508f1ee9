"""Object localisation: the box of the largest connected foreground component."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["largest_component", "object_box", "patch_box_to_pixels"]


def largest_component(mask: np.ndarray) -> np.ndarray:
    """``(h, w)`` bool mask of the largest 4-connected component of ``mask`` (empty stays empty)."""
    mask = np.asarray(mask, dtype=bool)
    lab, n = ndimage.label(mask)  # 4-connectivity by default
    if n == 0:
        return mask
    sizes = np.bincount(lab.reshape(-1))[1:]
    return lab == (int(np.argmax(sizes)) + 1)


def patch_box_to_pixels(rows: tuple[int, int], cols: tuple[int, int],
                        input_size: tuple[int, int], image_size: tuple[int, int],
                        patch: int, stride: int) -> tuple[int, int, int, int]:
    """Box ``(x0, y0, x1, y1)`` in original image pixels (end exclusive) covering patch rows
    ``rows[0]..rows[1]`` and columns ``cols[0]..cols[1]`` (inclusive)."""
    sy = image_size[0] / input_size[0]
    sx = image_size[1] / input_size[1]
    x0 = cols[0] * stride * sx
    y0 = rows[0] * stride * sy
    x1 = (cols[1] * stride + patch) * sx
    y1 = (rows[1] * stride + patch) * sy
    H, W = image_size
    return (int(np.clip(np.floor(x0), 0, W)), int(np.clip(np.floor(y0), 0, H)),
            int(np.clip(np.ceil(x1), 0, W)), int(np.clip(np.ceil(y1), 0, H)))


def object_box(fg: np.ndarray, input_size: tuple[int, int], image_size: tuple[int, int],
               patch: int, stride: int) -> tuple[int, int, int, int] | None:
    """Box in image pixels of the largest connected component of the ``(h, w)`` foreground mask,
    or ``None`` when there is no foreground."""
    comp = largest_component(fg)
    if not comp.any():
        return None
    ys, xs = np.nonzero(comp)
    return patch_box_to_pixels((ys.min(), ys.max()), (xs.min(), xs.max()), input_size,
                               image_size, patch, stride)
