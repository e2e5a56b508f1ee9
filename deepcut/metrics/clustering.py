"""Label-agreement scores that need no matching: NMI, ARI (scikit-learn) and purity.

Used for part segmentation (DeepCut follows Choudhury et al.'s unsup-parts protocol: NMI/ARI
between predicted part labels and ground-truth parts, optionally on foreground pixels only, or at
keypoint locations via :func:`labels_at_points`) and for k-less clustering (purity).

Per image, :func:`nmi` and :func:`ari` call scikit-learn on the non-ignored pixels. Over a dataset,
:class:`ClusteringMeter` keeps only a contingency table (never the pixels) and evaluates the same
formulas as scikit-learn on it (``normalized_mutual_info_score`` with the arithmetic mean,
``adjusted_rand_score``); the tests check both agree with scikit-learn on concatenated labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import adjusted_rand_score, mutual_info_score, normalized_mutual_info_score

from deepcut.metrics._checks import as_label_pair, check_int_labels, label_table, valid_pixels
from deepcut.metrics.resolution import resize_labels, resolution_tag

__all__ = [
    "ClusteringMeter",
    "ClusteringScores",
    "ari",
    "contingency_table",
    "labels_at_points",
    "nmi",
    "purity",
    "scores_from_contingency",
]


def _valid_labels(
    pred: np.ndarray, gt: np.ndarray, ignore_index: int | None, mask: np.ndarray | None, name: str
) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = as_label_pair(pred, gt, name)
    valid = valid_pixels(gt, ignore_index, mask)
    return pred[valid], gt[valid]


def nmi(
    pred: np.ndarray,
    gt: np.ndarray,
    ignore_index: int | None = 255,
    mask: np.ndarray | None = None,
) -> float:
    """Normalised mutual information (arithmetic mean normaliser) on the non-ignored pixels.

    Args:
        pred: ``(...)`` predicted labels (any shape, any hashable ids).
        gt: ground-truth labels of the same shape; ``ignore_index`` entries are excluded.
        ignore_index: label excluded from scoring (None: none).
        mask: optional bool array of the same shape restricting the pixels scored, e.g.
            ``gt != 0`` for the foreground-only part protocol.

    Returns:
        NMI in ``[0, 1]`` (scikit-learn's value; 1.0 when both have a single label).
    """
    p, g = _valid_labels(pred, gt, ignore_index, mask, "nmi")
    return float(normalized_mutual_info_score(g, p))


def ari(
    pred: np.ndarray,
    gt: np.ndarray,
    ignore_index: int | None = 255,
    mask: np.ndarray | None = None,
) -> float:
    """Adjusted Rand index on the non-ignored pixels (see :func:`nmi` for the arguments).

    Returns:
        ARI in ``[-0.5, 1]`` (scikit-learn's value).
    """
    p, g = _valid_labels(pred, gt, ignore_index, mask, "ari")
    return float(adjusted_rand_score(g, p))


def contingency_table(
    pred: np.ndarray,
    gt: np.ndarray,
    ignore_index: int | None = 255,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of (class, cluster) pairs over the non-ignored pixels.

    Args:
        pred: ``(...)`` integer cluster labels; ``gt`` the integer classes of the same shape.
        gt: ground-truth labels; ``ignore_index`` entries are excluded.
        ignore_index: label excluded from counting (None: none).
        mask: optional bool array restricting the pixels counted.

    Returns:
        ``(table, classes, clusters)``: ``table`` is ``(G, P)`` int64, rows the sorted class
        labels ``classes: (G,)`` and columns the sorted cluster labels ``clusters: (P,)``.
    """
    p, g = _valid_labels(pred, gt, ignore_index, mask, "contingency_table")
    return label_table(g, p)


def purity(
    pred: np.ndarray,
    gt: np.ndarray,
    ignore_index: int | None = 255,
    mask: np.ndarray | None = None,
) -> float:
    """Cluster purity: each cluster counts the pixels of its majority class.

    ``purity = sum_k max_c n(c, k) / n``. It is 1 for any over-segmentation, so report it next to
    the number of clusters (or with NMI/ARI).

    Args:
        pred: predicted labels; ``gt`` and ``mask`` as in :func:`nmi`.
        gt: ground-truth labels; ``ignore_index`` entries are excluded.
        ignore_index: label excluded from scoring (None: none).
        mask: optional bool array restricting the pixels scored.

    Returns:
        Purity in ``(0, 1]``; ``nan`` when no pixel is scored.

    Example:
        >>> purity(np.array([0, 0, 0, 1, 1]), np.array([0, 0, 1, 1, 1]))
        0.8
    """
    table, _, _ = contingency_table(pred, gt, ignore_index, mask)
    n = table.sum()
    return float(table.max(axis=0).sum() / n) if n else float("nan")


def scores_from_contingency(table: np.ndarray) -> dict[str, float]:
    """NMI, ARI and purity from a ``(G, P)`` contingency table (classes x clusters).

    Same definitions and special cases as scikit-learn's ``normalized_mutual_info_score``
    (arithmetic mean) and ``adjusted_rand_score``, evaluated on counts so a dataset's pixels
    never need to be stored.

    Returns:
        ``{"nmi": ..., "ari": ..., "purity": ...}`` (``nan`` for an empty table).
    """
    table = np.asarray(table, dtype=np.int64)
    table = table[table.sum(1) > 0][:, table.sum(0) > 0]  # absent labels carry no information
    n = int(table.sum())
    if n == 0:
        nan = float("nan")
        return {"nmi": nan, "ari": nan, "purity": nan}
    rows, cols = table.sum(1), table.sum(0)
    # NMI (sklearn): a single label on both sides is a perfect match; MI == 0 otherwise gives 0.
    if table.shape[0] == table.shape[1] == 1:
        nmi_value = 1.0
    else:
        mi = mutual_info_score(None, None, contingency=table)
        h_true, h_pred = _entropy(rows), _entropy(cols)
        denom = max((h_true + h_pred) / 2, np.finfo(np.float64).eps)
        nmi_value = 0.0 if mi == 0 else float(mi / denom)
    # ARI through the pair confusion matrix, in Python ints (n^2 overflows int64 for big sets).
    sum_sq = int((table.astype(object) ** 2).sum())
    c01 = int((table @ cols.astype(object)).sum()) - sum_sq
    c10 = int((table.T @ rows.astype(object)).sum()) - sum_sq
    c11 = sum_sq - n
    c00 = n * n - c01 - c10 - sum_sq
    if c01 == 0 and c10 == 0:
        ari_value = 1.0
    else:
        ari_value = 2.0 * (c11 * c00 - c10 * c01) / ((c11 + c10) * (c10 + c00) + (c11 + c01) * (c01 + c00))
    return {"nmi": nmi_value, "ari": float(ari_value), "purity": float(table.max(0).sum() / n)}


def _entropy(counts: np.ndarray) -> float:
    # Written as scikit-learn's `_entropy` (log of counts minus log of total) so values agree
    # to the last bit in the common cases.
    counts = counts[counts > 0].astype(np.float64)
    total = counts.sum()
    return float(-np.sum((counts / total) * (np.log(counts) - np.log(total))))


def labels_at_points(
    labels: np.ndarray, points: np.ndarray, visible: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sample a label map at keypoints (the landmark form of the part protocol).

    Args:
        labels: ``(H, W)`` label map.
        points: ``(K, 2)`` float ``(x, y)`` pixel coordinates (column, row), 0-based.
        visible: optional ``(K,)`` bool; invisible points are dropped.

    Returns:
        ``(values, index)``: ``values`` the ``(K',)`` labels under the kept points (rounded to the
        nearest pixel, clipped to the image), ``index`` their ``(K',)`` positions in ``points``.
    """
    labels = np.asarray(labels)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    keep = np.ones(len(pts), bool) if visible is None else np.asarray(visible, bool).reshape(-1)
    index = np.flatnonzero(keep)
    h, w = labels.shape
    x = np.clip(np.rint(pts[index, 0]).astype(np.int64), 0, w - 1)
    y = np.clip(np.rint(pts[index, 1]).astype(np.int64), 0, h - 1)
    return labels[y, x], index


@dataclass
class ClusteringScores:
    """Dataset summary of a :class:`ClusteringMeter` (all in the units of scikit-learn).

    Attributes:
        nmi: NMI over all pooled pixels, in ``[0, 1]``.
        ari: ARI over all pooled pixels, in ``[-0.5, 1]``.
        purity: purity over all pooled pixels, in ``(0, 1]``.
        n_pixels: number of (pixel or keypoint) pairs scored.
        resolution: ``"original"`` or ``"<h>x<w>"``.
    """

    nmi: float
    ari: float
    purity: float
    n_pixels: int
    resolution: str = "original"


class ClusteringMeter:
    """Pools (cluster, class) pairs over a dataset and reports NMI, ARI and purity.

    Cluster ids must be consistent across images (DeepCut's shared seeded init gives that), since
    the pairs of all images form one labelling.

    Args:
        ignore_index: ground-truth label excluded from scoring (None: none).
        foreground_only: score only pixels whose ground truth is not ``background``.
        background: the background class label used by ``foreground_only``.
        size: ``(height, width)`` to resize ``(H, W)`` maps to (nearest), or None.

    Example:
        >>> m = ClusteringMeter()
        >>> m.update(np.array([[3, 3, 4]]), np.array([[0, 0, 1]]))
        >>> m.compute().nmi
        1.0
    """

    def __init__(
        self,
        ignore_index: int | None = 255,
        foreground_only: bool = False,
        background: int = 0,
        size: tuple[int, int] | None = None,
    ) -> None:
        self.ignore_index = ignore_index
        self.foreground_only = foreground_only
        self.background = background
        self.size = size
        self.reset()

    def reset(self) -> None:
        """Forget every pair seen so far."""
        self.table_ = np.zeros((0, 0), dtype=np.int64)

    def update(self, pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Add one image's labels.

        Args:
            pred: ``(H, W)`` (or ``(K,)`` keypoint) non-negative integer cluster labels.
            gt: ground-truth class labels of the same shape.
            mask: optional bool array restricting the pairs added.
        """
        pred, gt = np.asarray(pred), np.asarray(gt)
        if self.size is not None and pred.ndim == 2:
            pred, gt = resize_labels(pred, self.size), resize_labels(gt, self.size)
            mask = None if mask is None else resize_labels(np.asarray(mask, bool), self.size)
        if self.foreground_only:
            fg = gt != self.background
            mask = fg if mask is None else np.asarray(mask, bool) & fg
        table, classes, clusters = contingency_table(pred, gt, self.ignore_index, mask)
        classes = check_int_labels(classes, "ground truth")
        clusters = check_int_labels(clusters, "prediction")
        rows = max(self.table_.shape[0], int(classes.max()) + 1 if classes.size else 0)
        cols = max(self.table_.shape[1], int(clusters.max()) + 1 if clusters.size else 0)
        grown = np.zeros((rows, cols), dtype=np.int64)
        grown[: self.table_.shape[0], : self.table_.shape[1]] = self.table_
        grown[np.ix_(classes, clusters)] += table
        self.table_ = grown

    def compute(self) -> ClusteringScores:
        """NMI, ARI and purity of all pairs added so far."""
        s = scores_from_contingency(self.table_)
        return ClusteringScores(s["nmi"], s["ari"], s["purity"], int(self.table_.sum()),
                                resolution_tag(self.size))
