"""Box IoU and CorLoc (correct localisation) for single-object discovery.

**Box convention (all of deepcut):** ``(x0, y0, x1, y1)`` in pixels with ``x1``/``y1`` *exclusive*,
so a box covers columns ``x0 .. x1-1`` and its area is the pixel count ``(x1 - x0) * (y1 - y0)``.
This is the convention of LOST/TokenCut (the predicted box is ``max index + 1``; VOC's 1-based
inclusive ``xmin`` is shifted by -1 and ``xmax`` kept), so IoU values match theirs exactly.
The VOC loader converts XML boxes to it; COCO's ``(x, y, w, h)`` becomes ``(x, y, x + w, y + h)``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["box_iou", "corloc", "corloc_hits", "mask_to_box", "mask_to_boxes"]


def _as_boxes(b: np.ndarray | Sequence, name: str) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)
    if b.ndim == 1:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) as (x0, y0, x1, y1). Got {b.shape} instead.")
    return b


def box_iou(a: np.ndarray | Sequence, b: np.ndarray | Sequence) -> np.ndarray:
    """Pairwise intersection over union of two sets of boxes.

    Args:
        a: ``(N, 4)`` (or a single ``(4,)``) boxes ``(x0, y0, x1, y1)``, exclusive ``x1``/``y1``.
        b: ``(M, 4)`` (or ``(4,)``) boxes in the same convention.

    Returns:
        ``(N, M)`` float64 IoU in ``[0, 1]``. A pair whose union is empty (two zero-area boxes)
        scores 0.

    Example:
        >>> box_iou([0, 0, 2, 1], [[0, 0, 1, 1]]).tolist()
        [[0.5]]
    """
    a, b = _as_boxes(a, "a"), _as_boxes(b, "b")
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)  # (N,)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)  # (M,)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)  # (N, M)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def corloc_hits(
    pred_boxes: Sequence[np.ndarray | Sequence | None],
    gt_boxes_per_image: Sequence[np.ndarray | Sequence],
    thr: float = 0.5,
) -> np.ndarray:
    """Per-image CorLoc decision: does the predicted box overlap *any* ground-truth box enough?

    Args:
        pred_boxes: one predicted box ``(4,)`` per image, or None when the method gave no box
            (counts as a miss).
        gt_boxes_per_image: for each image an ``(M_i, 4)`` array of ground-truth boxes; an image
            with ``M_i = 0`` is always a miss.
        thr: IoU threshold; a box counts when ``IoU >= thr`` (inclusive, as TokenCut's ``>= 0.5``).

    Returns:
        ``(n_images,)`` bool array.
    """
    if len(pred_boxes) != len(gt_boxes_per_image):
        raise ValueError(
            f"corloc: {len(pred_boxes)} predicted boxes but {len(gt_boxes_per_image)} images of "
            "ground truth; give exactly one predicted box (or None) per image."
        )
    hits = np.zeros(len(pred_boxes), dtype=bool)
    for i, (pred, gts) in enumerate(zip(pred_boxes, gt_boxes_per_image)):
        gts = np.asarray(gts, dtype=np.float64).reshape(-1, 4)
        if pred is None or len(gts) == 0:
            continue
        pred = np.asarray(pred, dtype=np.float64)
        if pred.shape != (4,):
            raise ValueError(f"corloc: predicted box {i} must have shape (4,). Got {pred.shape}.")
        hits[i] = bool((box_iou(pred, gts) >= thr).any())
    return hits


def corloc(
    pred_boxes: Sequence[np.ndarray | Sequence | None],
    gt_boxes_per_image: Sequence[np.ndarray | Sequence],
    thr: float = 0.5,
) -> float:
    """CorLoc: the fraction of images whose predicted box has ``IoU >= thr`` with any GT box.

    Args:
        pred_boxes: one ``(4,)`` box (exclusive ``x1``/``y1``) or None per image.
        gt_boxes_per_image: one ``(M_i, 4)`` array per image, same convention.
        thr: IoU threshold, inclusive (default 0.5, LOST/TokenCut/DeepCut).

    Returns:
        CorLoc in ``[0, 1]`` (multiply by 100 for the papers' tables); ``nan`` for zero images.

    Example:
        >>> corloc([[0, 0, 2, 1], None], [[[0, 0, 1, 1]], [[0, 0, 1, 1]]])
        0.5
    """
    hits = corloc_hits(pred_boxes, gt_boxes_per_image, thr)
    return float(hits.mean()) if hits.size else float("nan")


def mask_to_box(mask: np.ndarray) -> np.ndarray | None:
    """Tight box around all True pixels of a binary mask.

    Args:
        mask: ``(H, W)`` bool or {0, 1} array.

    Returns:
        ``(4,)`` int64 ``(x0, y0, x1, y1)`` with exclusive ``x1``/``y1``, or None for an empty mask.
    """
    mask = np.asarray(mask).astype(bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.int64)


def mask_to_boxes(mask: np.ndarray, connectivity: int = 8) -> np.ndarray:
    """One box per connected component of a binary mask (e.g. GT boxes for SOD-style CorLoc).

    Args:
        mask: ``(H, W)`` bool or {0, 1} array.
        connectivity: 4 or 8 neighbourhood for the components.

    Returns:
        ``(C, 4)`` int64 boxes, exclusive ``x1``/``y1``, in scipy label order (raster scan order
        of each component's first pixel); ``(0, 4)`` for an empty mask.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8. Got {connectivity!r} instead.")
    structure = np.ones((3, 3), bool) if connectivity == 8 else None
    components, _ = ndimage.label(np.asarray(mask).astype(bool), structure=structure)
    slices = ndimage.find_objects(components)
    boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in slices if s is not None]
    return np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
