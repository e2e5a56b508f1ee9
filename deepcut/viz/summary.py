"""Label maps drawn as colour tiles with exact segment borders, and grids of them per image.

Used by the hierarchy task (one tile per level) and by :class:`~deepcut.tasks.hierarchy.
HierarchyPredictor.summary`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from deepcut.viz.overlay import boundaries
from deepcut.viz.palette import label_palette

__all__ = ["BORDER_COLOR", "render_levels", "summary_grid"]

BORDER_COLOR = (0, 0, 0)  # black: render_levels never gives a segment the palette's black


def render_levels(labels: np.ndarray, draw_border: bool = True) -> np.ndarray:
    """``(H, W, 3)`` uint8: one palette colour per segment id, black exactly on segment borders.

    Borders are :func:`deepcut.viz.boundaries`: a pixel whose right or lower neighbour has another
    label. Segment ids are shifted by one so no segment gets the palette's black.
    """
    labels = np.asarray(labels).astype(np.int64)
    pal = label_palette(max(int(labels.max(initial=0)) + 2, 256))  # one colour per id
    img = pal[labels + 1]
    if draw_border:
        img[boundaries(labels)] = BORDER_COLOR
    return img


def _fit_size(h: int, w: int, max_side: int | None) -> tuple[int, int]:
    if max_side is None or max(h, w) <= max_side:
        return h, w
    s = max_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def _caption_strip(texts: Sequence[str], col_w: Sequence[int], gap: int) -> np.ndarray:
    """A white strip with one black caption left-aligned above each column (PIL's own font)."""
    from PIL import ImageDraw

    height = 14
    strip = Image.new("RGB", (sum(col_w) + gap * (len(col_w) - 1), height), "white")
    draw = ImageDraw.Draw(strip)
    x = 0
    for text, w in zip(texts, col_w):
        draw.text((x + 2, 1), text, fill=(0, 0, 0))
        x += w + gap
    return np.asarray(strip)


def summary_grid(images: Sequence[Image.Image], label_maps: Sequence[Sequence[np.ndarray]],
                 draw_border: bool = True, max_side: int | None = 512,
                 gap: int = 4, captions: Sequence[str] | None = None) -> Image.Image:
    """A grid: one row per image, the original then one coloured label map per level.

    Args:
        images: RGB PIL images.
        label_maps: per image, the ``(H, W)`` label maps of each level (image size).
        draw_border: draw segment borders (black) where neighbouring labels differ.
        max_side: tiles are shrunk (labels by nearest neighbour, *then* borders drawn, so borders
            stay exact) to at most this many pixels per side; None keeps full size.
        gap: white pixels between tiles.
        captions: one text per level column (e.g. ``"K=10"``), drawn above the grid; the image
            column is captioned ``"image"``. None draws no caption strip.
    """
    rows = []
    for im, maps in zip(images, label_maps):
        H, W = im.height, im.width
        h, w = _fit_size(H, W, max_side)
        ri = (np.arange(h) * H // h)[:, None]
        ci = (np.arange(w) * W // w)[None, :]
        tiles = [np.asarray(im.convert("RGB").resize((w, h), Image.BILINEAR))]
        tiles += [render_levels(np.asarray(m)[ri, ci], draw_border) for m in maps]
        rows.append(tiles)
    n_cols = max(len(r) for r in rows)
    col_w = [max((r[c].shape[1] for r in rows if c < len(r)), default=0) for c in range(n_cols)]
    row_h = [max(t.shape[0] for t in r) for r in rows]
    out = np.full((sum(row_h) + gap * (len(rows) - 1), sum(col_w) + gap * (n_cols - 1), 3), 255,
                  dtype=np.uint8)
    y = 0
    for r, rh in zip(rows, row_h):
        x = 0
        for c, t in enumerate(r):
            out[y:y + t.shape[0], x:x + t.shape[1]] = t
            x += col_w[c] + gap
        y += rh + gap
    if captions is not None:
        strip = _caption_strip(["image", *captions], col_w, gap)
        out = np.concatenate([strip, np.full((gap, out.shape[1], 3), 255, np.uint8), out])
    return Image.fromarray(out)
