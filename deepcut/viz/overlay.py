"""Overlays and segment borders for visual inspection (not for evaluation: use the label maps)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from deepcut.viz.palette import label_palette

__all__ = ["boundaries", "colorize", "overlay"]


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
    img = np.asarray(image.convert("RGB"), dtype=np.float32)
    labels = np.asarray(labels)
    col = colorize(labels).astype(np.float32)
    a = np.full(labels.shape, alpha, dtype=np.float32)
    if background is not None:
        a[labels == background] = 0.0
    out = img * (1 - a[..., None]) + col * a[..., None]
    if draw_border:
        out[boundaries(labels)] = (255, 255, 0)
    out = out.clip(0, 255).astype(np.uint8)
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
