"""Overlays and segment borders for visual inspection (not for evaluation: use the label maps)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from deepcut.viz.palette import label_palette

__all__ = ["boundaries", "colorize", "overlay"]

#: Rows blended at a time by :func:`overlay` (bounds its memory on huge images).
_BLOCK_ROWS = 512


def boundaries(labels: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: True exactly where a pixel's right or lower 4-neighbour has another label."""
    labels = np.asarray(labels)
    b = np.zeros(labels.shape, dtype=bool)
    dx = labels[:, 1:] != labels[:, :-1]
    dy = labels[1:, :] != labels[:-1, :]
    b[:, :-1] |= dx
    b[:-1, :] |= dy
    return b


def colorize(labels: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """``(H, W, 3)`` uint8 colour image of integer ``labels: (H, W)``."""
    labels = np.asarray(labels).astype(np.int64)
    pal = label_palette(int(labels.max()) + 1) if palette is None else palette
    return pal[labels % len(pal)]


def overlay(image: Image.Image, labels: np.ndarray, alpha: float = 0.5,
            draw_border: bool = True, box: tuple[int, int, int, int] | None = None,
            background: int | None = 0) -> Image.Image:
    """Blend label colours over ``image`` (RGB, same size as ``labels``), with borders and a box.

    ``background`` (default 0) is left uncoloured; pass ``None`` to colour every label.
    """
    rgb = np.asarray(image.convert("RGB"))
    labels = np.asarray(labels)
    pal = label_palette(int(labels.max(initial=0)) + 1)
    edges = boundaries(labels) if draw_border else None
    out = np.empty(rgb.shape, dtype=np.uint8)
    # Blocks of rows bound the float temporaries: a whole-image float blend of an 81 MP photo
    # would need ~5 GB; per block the arithmetic (and so the result) is the same.
    for r0 in range(0, labels.shape[0], _BLOCK_ROWS):
        lab = labels[r0:r0 + _BLOCK_ROWS]
        img = rgb[r0:r0 + _BLOCK_ROWS].astype(np.float32)
        col = colorize(lab, pal).astype(np.float32)
        a = np.full(lab.shape, alpha, dtype=np.float32)
        if background is not None:
            a[lab == background] = 0.0
        block = img * (1 - a[..., None]) + col * a[..., None]
        if edges is not None:
            block[edges[r0:r0 + _BLOCK_ROWS]] = (255, 255, 0)
        out[r0:r0 + _BLOCK_ROWS] = block.clip(0, 255).astype(np.uint8)
    if box is not None:
        x0, y0, x1, y1 = (int(v) for v in box)
        x1, y1 = max(x0, x1 - 1), max(y0, y1 - 1)  # box end is exclusive
        t = max(1, min(out.shape[:2]) // 150)
        red = np.array((255, 0, 0), np.uint8)
        out[y0:y0 + t, x0:x1 + 1] = red
        out[max(y1 - t + 1, 0):y1 + 1, x0:x1 + 1] = red
        out[y0:y1 + 1, x0:x0 + t] = red
        out[y0:y1 + 1, max(x1 - t + 1, 0):x1 + 1] = red
    return Image.fromarray(out)
