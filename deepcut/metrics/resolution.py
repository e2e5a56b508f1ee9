"""Evaluation resolution: score at the original size, or at a fixed one (DiffCut scores at 128x128).

Every score table must say which it used (papers differ: DiffCut, Couairon et al. 2024, scores at
128x128; DeepCut at the original size), so the meters record
:func:`resolution_tag` in their results.

Nearest-neighbour sampling here takes the source pixel under each target pixel centre,
``src = floor((dst + 0.5) * in / out)``, which is what PIL's ``Image.NEAREST`` does. torch's
``F.interpolate(mode="nearest")`` (used by DiffCut's evaluation) samples ``floor(dst * in / out)``
instead; the two differ by at most one source pixel along each axis.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["resize_labels", "resize_scores", "resolution_tag"]


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
        raise ValueError(f"size must be (height, width) with positive ints. Got {size!r} instead.")
    return int(size[0]), int(size[1])


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a label map with nearest-neighbour sampling (labels are never blended).

    Args:
        labels: ``(H, W)`` integer (or bool) label map; any values, including the ignore label 255.
        size: ``(height, width)`` of the output, numpy order (not PIL's (width, height)).

    Returns:
        ``(height, width)`` array of the same dtype; ``labels`` itself when the size already matches.

    Example:
        >>> resize_labels(np.array([[0, 1], [2, 3]]), (4, 4))[0].tolist()
        [0, 0, 1, 1]
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D (H, W) map. Got shape {labels.shape} instead.")
    out_h, out_w = _check_size(size)
    in_h, in_w = labels.shape
    if (in_h, in_w) == (out_h, out_w):
        return labels
    # Index arithmetic instead of PIL so that any integer dtype (uint16 BSDS ids, int64) survives.
    rows = np.minimum(((np.arange(out_h) + 0.5) * in_h / out_h).astype(np.int64), in_h - 1)
    cols = np.minimum(((np.arange(out_w) + 0.5) * in_w / out_w).astype(np.int64), in_w - 1)
    return labels[rows[:, None], cols[None, :]]


def resize_scores(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a soft foreground map with bilinear interpolation.

    Args:
        scores: ``(H, W)`` float map, typically probabilities in ``[0, 1]``.
        size: ``(height, width)`` of the output.

    Returns:
        ``(height, width)`` float32 map (values stay within the input's range).
    """
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D (H, W) map. Got shape {scores.shape} instead.")
    out_h, out_w = _check_size(size)
    if scores.shape == (out_h, out_w):
        return scores
    img = Image.fromarray(scores).resize((out_w, out_h), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32)


def resolution_tag(size: tuple[int, int] | None) -> str:
    """``"original"`` when ``size`` is None, else ``"<height>x<width>"`` (e.g. ``"128x128"``)."""
    if size is None:
        return "original"
    h, w = _check_size(size)
    return f"{h}x{w}"
