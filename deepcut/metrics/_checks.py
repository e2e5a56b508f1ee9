"""Input checks and the label table shared by the metric modules (validate once, at the
public boundary)."""
from __future__ import annotations

import numpy as np

__all__ = ["as_label_pair", "check_int_labels", "label_table", "valid_pixels"]


def as_label_pair(
    pred: np.ndarray, gt: np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``pred`` and ``gt`` as arrays after checking that their shapes agree.

    Raises:
        ValueError: the shapes differ (the message says how to fix it).
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(
            f"{name}: prediction shape {pred.shape} does not match ground-truth shape {gt.shape}; "
            "resize one of them first (deepcut.metrics.resize_labels) or give the meter a `size`."
        )
    return pred, gt


def valid_pixels(gt: np.ndarray, ignore_index: int | None, mask: np.ndarray | None = None) -> np.ndarray:
    """Boolean array, True where ``gt`` is not ``ignore_index`` (and ``mask`` is True when given)."""
    valid = np.ones(gt.shape, dtype=bool) if ignore_index is None else gt != ignore_index
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != gt.shape:
            raise ValueError(f"mask shape {mask.shape} does not match ground-truth shape {gt.shape}.")
        valid &= mask
    return valid


def check_int_labels(x: np.ndarray, what: str) -> np.ndarray:
    """Check that ``x`` holds non-negative integers and return it as int64."""
    if x.dtype == bool:
        return x.astype(np.int64)
    if not np.issubdtype(x.dtype, np.integer) and x.size and np.any(np.mod(x, 1) != 0):
        raise ValueError(f"{what} must hold integer labels. Got dtype {x.dtype} with fractions.")
    x = x.astype(np.int64, copy=False)
    if x.size and x.min() < 0:
        raise ValueError(f"{what} must hold non-negative labels. Got minimum {int(x.min())}.")
    return x


def label_table(g: np.ndarray, p: np.ndarray, n_classes: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of (class, cluster) pairs of flat labels: ``(table (G, P), classes, clusters)``.

    Rows are the classes present in ``g`` (sorted), or ``0..n_classes-1`` when given (``g`` then
    already holds those ids); columns the sorted clusters of ``p``. One ``bincount``.
    """
    clusters, pi = np.unique(p, return_inverse=True)
    if n_classes is None:
        classes, gi = np.unique(g, return_inverse=True)
    else:
        classes, gi = np.arange(n_classes), g
    table = np.bincount(gi * clusters.size + pi, minlength=classes.size * clusters.size)
    return table.reshape(classes.size, clusters.size), classes, clusters
