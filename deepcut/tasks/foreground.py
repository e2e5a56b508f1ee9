"""Object segmentation: which cluster is background, for any K."""
from __future__ import annotations

import numpy as np

__all__ = ["background_cluster", "border_counts", "corner_background", "foreground_mask"]


def border_counts(labels: np.ndarray, n_clusters: int | None = None) -> np.ndarray:
    """``(K,)`` number of border patches (first/last row and column) in each cluster."""
    labels = np.asarray(labels)
    h, w = labels.shape
    border = np.concatenate([labels[0], labels[-1], labels[1:h - 1, 0], labels[1:h - 1, -1]]) \
        if h > 1 and w > 1 else labels.reshape(-1)
    k = int(labels.max()) + 1 if n_clusters is None else n_clusters
    return np.bincount(border.astype(np.int64), minlength=k)


def background_cluster(labels: np.ndarray) -> int:
    """The cluster holding the largest share of the border patches (Deep Spectral's rule).

    Works for any K (DeepCut's 4-corner vote and its ``1 - S`` flip only make sense for K = 2).
    Ties go to the larger cluster, then to the smaller id, so the choice is deterministic.

    Args:
        labels: ``(h, w)`` integer patch labels on the grid.
    """
    labels = np.asarray(labels).astype(np.int64)
    k = int(labels.max()) + 1
    counts = border_counts(labels, k)
    sizes = np.bincount(labels.reshape(-1), minlength=k)
    order = np.lexsort((np.arange(k), -sizes, -counts))  # primary key: border count
    return int(order[0])


def corner_background(labels: np.ndarray) -> int:
    """DeepCut's rule, generalised: the most frequent label among the four corner patches."""
    labels = np.asarray(labels).astype(np.int64)
    corners = np.array([labels[0, 0], labels[0, -1], labels[-1, 0], labels[-1, -1]])
    vals, cnt = np.unique(corners, return_counts=True)
    return int(vals[np.argmax(cnt)])


def foreground_mask(labels: np.ndarray, rule: str = "border") -> np.ndarray:
    """``(h, w)`` bool mask of the non-background clusters (``rule``: ``border`` or ``corners``)."""
    bg = background_cluster(labels) if rule == "border" else corner_background(labels)
    return np.asarray(labels) != bg
