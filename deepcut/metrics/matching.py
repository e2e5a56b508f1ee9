"""mIoU of unsupervised label maps: clusters matched to classes on a confusion matrix.

Cluster ids are arbitrary, so a predicted map is scored after mapping clusters to ground-truth
classes. Three mappings, all computed on the ``(G, P)`` confusion matrix ``C[g, p]`` (pixels of
class ``g`` predicted as cluster ``p``; ``ignore_index`` pixels are never counted):

* ``"hungarian"``: one-to-one, :func:`scipy.optimize.linear_sum_assignment` maximising the summed
  IoU (``match_on="iou"``, DeepSpectral) or the summed pixel counts (``match_on="count"``, DiffCut
  and PiCIE). With more clusters than classes the extra clusters stay unmatched (their pixels count
  as misses of their true class); with more classes than clusters the extra classes score IoU 0.
* ``"majority"``: many-to-one, each cluster goes to the class it overlaps most (by IoU, as
  DeepSpectral's majority vote, or by count).
* ``background=<label>`` with ``"hungarian"``: DiffCut's "many-to-one background". First a
  Hungarian match on the non-background classes present; the clusters left unmatched are merged
  into one cluster; then the final Hungarian match on all classes.

After mapping, for each class ``c``: ``TP = pixels of c predicted as c``, ``FP`` and ``FN`` the
usual, ``IoU = TP / (TP + FP + FN)`` (``nan`` when the class is absent from both), and
``mIoU = nanmean(IoU)`` over the evaluated classes. Per image (DiffCut) the evaluated classes are
the ones present in the image, or all ``n_classes`` when given; per dataset (DeepSpectral) one
confusion matrix is accumulated over all images and matched once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from deepcut.metrics._checks import as_label_pair, check_int_labels, label_table, valid_pixels
from deepcut.metrics.resolution import resize_labels, resolution_tag

__all__ = [
    "MATCH_METHODS",
    "DatasetHungarianMeter",
    "MatchResult",
    "PerImageHungarianMeter",
    "PerImageScores",
    "confusion_matrix",
    "hungarian_miou",
    "many_to_one_miou",
    "match_confusion",
]

MATCH_METHODS = ("hungarian", "majority")
_MATCH_ON = ("iou", "count")


@dataclass
class MatchResult:
    """Scores after matching clusters to classes.

    Attributes:
        miou: ``nanmean`` of ``iou`` in ``[0, 1]`` (``nan`` if no class was evaluated).
        accuracy: ``tp.sum()`` / number of non-ignored pixels, in ``[0, 1]``.
        mapping: ``{cluster label: class label}`` for every mapped cluster (unmatched clusters
            are absent).
        classes: ``(R,)`` class labels that were evaluated, ascending.
        iou: ``(R,)`` IoU per evaluated class (``nan`` if absent from both maps).
        tp: ``(R,)`` true-positive pixel counts; likewise ``fp`` and ``fn``.
        resolution: where it was computed (``"original"`` or ``"<h>x<w>"``).
    """

    miou: float
    accuracy: float
    mapping: dict[int, int]
    classes: np.ndarray
    iou: np.ndarray = field(repr=False)
    tp: np.ndarray = field(repr=False)
    fp: np.ndarray = field(repr=False)
    fn: np.ndarray = field(repr=False)
    resolution: str = "original"


def _check_options(method: str, match_on: str, background: int | None) -> None:
    if method not in MATCH_METHODS:
        raise ValueError(f"method must be one of {MATCH_METHODS}. Got {method!r} instead.")
    if match_on not in _MATCH_ON:
        raise ValueError(f"match_on must be one of {_MATCH_ON}. Got {match_on!r} instead.")
    if background is not None and method != "hungarian":
        raise ValueError("background merging is a Hungarian option; use method='hungarian'.")


def _flat_valid(
    pred: np.ndarray, gt: np.ndarray, ignore_index: int | None, name: str
) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = as_label_pair(pred, gt, name)
    valid = valid_pixels(gt, ignore_index)
    g = check_int_labels(gt[valid], "ground truth")
    p = check_int_labels(pred[valid], "prediction")
    return p, g


def confusion_matrix(
    pred: np.ndarray,
    gt: np.ndarray,
    ignore_index: int | None = 255,
    n_classes: int | None = None,
    n_clusters: int | None = None,
) -> np.ndarray:
    """Pixel confusion matrix between ground-truth classes (rows) and predicted clusters (columns).

    Args:
        pred: ``(H, W)`` non-negative integer cluster labels.
        gt: ``(H, W)`` non-negative integer class labels; ``ignore_index`` pixels are dropped.
        ignore_index: label excluded from counting (None: none).
        n_classes: minimum number of rows ``G`` (default ``gt.max() + 1``).
        n_clusters: minimum number of columns ``P`` (default ``pred.max() + 1``).

    Returns:
        ``(G, P)`` int64 counts, ``C[g, p]`` = pixels of class ``g`` labelled ``p``.
    """
    p, g = _flat_valid(pred, gt, ignore_index, "confusion_matrix")
    n_rows = max(int(g.max()) + 1 if g.size else 0, n_classes or 0)
    n_cols = max(int(p.max()) + 1 if p.size else 0, n_clusters or 0)
    counts = np.bincount(g * n_cols + p, minlength=n_rows * n_cols)
    return counts.reshape(n_rows, n_cols)


def _score(conf: np.ndarray, match_on: str) -> np.ndarray:
    if match_on == "count":
        return conf.astype(np.float64)
    union = conf.sum(1, keepdims=True) + conf.sum(0, keepdims=True) - conf
    return np.divide(conf, union, out=np.zeros(conf.shape), where=union > 0)


def _hungarian(conf: np.ndarray, match_on: str) -> np.ndarray:
    """``(P,)`` row index for each column, -1 where unmatched (one-to-one, maximising the score)."""
    assign = np.full(conf.shape[1], -1, dtype=np.int64)
    if conf.size:
        rows, cols = linear_sum_assignment(_score(conf, match_on), maximize=True)
        assign[cols] = rows
    return assign


def _majority(conf: np.ndarray, match_on: str) -> np.ndarray:
    """``(P,)`` row index of the best class of each column (many-to-one)."""
    if conf.shape[0] == 0:
        return np.full(conf.shape[1], -1, dtype=np.int64)
    return np.argmax(_score(conf, match_on), axis=0).astype(np.int64)


def _merge_background(conf: np.ndarray, bg_row: int, match_on: str) -> np.ndarray:
    """DiffCut's background rule; returns the ``(P,)`` row of each column (-1: unmatched)."""
    # Stage 1: match foreground classes present in the image to clusters (DiffCut:
    # `hist.max(axis=1) > 0`, the background row excluded).
    fg_rows = np.flatnonzero((conf.sum(1) > 0) & (np.arange(conf.shape[0]) != bg_row))
    stage1 = _hungarian(conf[fg_rows], match_on)
    matched = np.flatnonzero(stage1 >= 0)
    leftover = np.flatnonzero(stage1 < 0)
    # Stage 2: the leftover clusters act as one merged cluster, then a final Hungarian match.
    merged = conf[:, matched]
    if leftover.size:
        merged = np.concatenate([merged, conf[:, leftover].sum(1, keepdims=True)], axis=1)
    stage2 = _hungarian(merged, match_on)
    assign = np.full(conf.shape[1], -1, dtype=np.int64)
    assign[matched] = stage2[: matched.size]
    if leftover.size:
        assign[leftover] = stage2[-1]
    return assign


def match_confusion(
    conf: np.ndarray,
    method: str = "hungarian",
    match_on: str = "iou",
    background: int | None = None,
    classes: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    evaluate_all_rows: bool = False,
) -> MatchResult:
    """Match clusters to classes on a confusion matrix and score the result.

    Args:
        conf: ``(G, P)`` confusion counts, rows classes and columns clusters.
        method: ``"hungarian"`` (one-to-one) or ``"majority"`` (many-to-one).
        match_on: ``"iou"`` or ``"count"``, the score the matching maximises.
        background: class label of the background for DiffCut's merge rule (hungarian only).
        classes: ``(G,)`` class label of each row (default ``0..G-1``).
        clusters: ``(P,)`` cluster label of each column (default ``0..P-1``).
        evaluate_all_rows: score every row (absent classes matched to a cluster get IoU 0,
            others ``nan``); otherwise only rows with pixels are evaluated.

    Returns:
        :class:`MatchResult` with labels taken from ``classes`` / ``clusters``.
    """
    _check_options(method, match_on, background)
    conf = np.asarray(conf, dtype=np.int64)
    classes = np.arange(conf.shape[0]) if classes is None else np.asarray(classes)
    clusters = np.arange(conf.shape[1]) if clusters is None else np.asarray(clusters)
    rows = np.arange(conf.shape[0]) if evaluate_all_rows else np.flatnonzero(conf.sum(1) > 0)
    cols = np.flatnonzero(conf.sum(0) > 0)  # empty clusters can only steal a match
    sub = conf[np.ix_(rows, cols)]  # (R, P')
    # Pixels of classes that are not evaluated still count towards the clusters' FP.
    if method == "majority":
        assign = _majority(sub, match_on)
    elif background is not None:
        bg = np.flatnonzero(classes[rows] == background)
        assign = _merge_background(sub, int(bg[0]) if bg.size else -1, match_on)
    else:
        assign = _hungarian(sub, match_on)
    # onehot[p, r] = 1 when cluster p maps to evaluated class r; M[g, r] = pixels of g mapped to r.
    onehot = np.zeros((cols.size, rows.size), dtype=np.int64)
    mapped = np.flatnonzero(assign >= 0)
    onehot[mapped, assign[mapped]] = 1
    pred_area = conf[:, cols].sum(0) @ onehot  # (R,) pixels mapped to each class
    tp = np.einsum("rp,pr->r", sub, onehot)  # (R,)
    fn = sub.sum(1) - tp
    fp = pred_area - tp
    denom = tp + fp + fn
    iou = np.divide(tp, denom, out=np.full(tp.shape, np.nan), where=denom > 0)
    n_valid = int(conf.sum())
    mapping = {int(clusters[cols[p]]): int(classes[rows[assign[p]]]) for p in mapped}
    return MatchResult(
        miou=float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        accuracy=float(tp.sum() / n_valid) if n_valid else float("nan"),
        mapping=mapping,
        classes=classes[rows],
        iou=iou,
        tp=tp,
        fp=fp,
        fn=fn,
    )


def _image_confusion(
    pred: np.ndarray, gt: np.ndarray, ignore_index: int | None, n_classes: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compact per-image confusion: rows are present classes (or ``0..n_classes-1``)."""
    p, g = _flat_valid(pred, gt, ignore_index, "hungarian_miou")
    if n_classes is not None and g.size and g.max() >= n_classes:
        raise ValueError(
            f"ground truth has label {int(g.max())} >= n_classes={n_classes}; "
            "set ignore_index for void labels or raise n_classes."
        )
    return label_table(g, p, n_classes)


def hungarian_miou(
    pred: np.ndarray,
    gt: np.ndarray,
    ignore_index: int | None = 255,
    match_on: str = "iou",
    background: int | None = None,
    n_classes: int | None = None,
) -> MatchResult:
    """Per-image mIoU after one-to-one Hungarian matching of clusters to classes.

    Args:
        pred: ``(H, W)`` non-negative integer cluster labels (any ids, need not be contiguous).
        gt: ``(H, W)`` non-negative integer class labels; ``ignore_index`` pixels are excluded.
        ignore_index: label excluded from scoring (None: none).
        match_on: ``"iou"`` (DeepSpectral) or ``"count"`` (DiffCut) as the matching objective.
        background: background class label for DiffCut's "merge unmatched clusters into
            background" rule (e.g. 0 for VOC), or None for a plain Hungarian match.
        n_classes: evaluate all classes ``0..n_classes-1`` as DiffCut does (absent classes that
            receive a cluster score 0); by default only the classes present in ``gt``.

    Returns:
        :class:`MatchResult`; ``.miou`` and ``.mapping`` ({cluster: class}).

    Example:
        >>> r = hungarian_miou(np.array([[5, 5, 7]]), np.array([[0, 0, 1]]))
        >>> r.miou, r.mapping
        (1.0, {5: 0, 7: 1})
    """
    conf, classes, clusters = _image_confusion(pred, gt, ignore_index, n_classes)
    return match_confusion(conf, "hungarian", match_on, background, classes, clusters,
                           evaluate_all_rows=n_classes is not None)


def many_to_one_miou(
    pred: np.ndarray,
    gt: np.ndarray,
    ignore_index: int | None = 255,
    match_on: str = "iou",
    n_classes: int | None = None,
) -> MatchResult:
    """Per-image mIoU after majority-vote (many-to-one) mapping: each cluster to its best class.

    Args:
        pred: ``(H, W)`` non-negative integer cluster labels.
        gt: ``(H, W)`` non-negative integer class labels; ``ignore_index`` pixels are excluded.
        ignore_index: label excluded from scoring (None: none).
        match_on: ``"iou"`` (DeepSpectral's majority vote) or ``"count"``.
        n_classes: evaluate all classes ``0..n_classes-1`` instead of those present.

    Returns:
        :class:`MatchResult`; several clusters may map to one class.
    """
    conf, classes, clusters = _image_confusion(pred, gt, ignore_index, n_classes)
    return match_confusion(conf, "majority", match_on, None, classes, clusters,
                           evaluate_all_rows=n_classes is not None)


class _ResizingMeter:
    """Shared parameters (see the subclasses) and ``size`` handling: label maps are resized
    nearest before scoring. Subclasses define ``reset``."""

    size: tuple[int, int] | None

    def __init__(
        self,
        method: str = "hungarian",
        match_on: str = "iou",
        background: int | None = None,
        n_classes: int | None = None,
        ignore_index: int | None = 255,
        size: tuple[int, int] | None = None,
    ) -> None:
        _check_options(method, match_on, background)
        self.method = method
        self.match_on = match_on
        self.background = background
        self.n_classes = n_classes
        self.ignore_index = ignore_index
        self.size = size
        self.reset()

    def _prepare(self, pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pred, gt = np.asarray(pred), np.asarray(gt)
        if self.size is not None:
            pred, gt = resize_labels(pred, self.size), resize_labels(gt, self.size)
        return pred, gt


class DatasetHungarianMeter(_ResizingMeter):
    """Dataset-level matching (DeepSpectral): one confusion matrix over all images, matched once.

    Cluster labels must mean the same thing in every image (e.g. a dataset-wide clustering).

    Args:
        method: ``"hungarian"`` (one-to-one) or ``"majority"`` (many-to-one).
        match_on: ``"iou"`` or ``"count"``.
        background: background label for DiffCut's merge rule (hungarian only), or None.
        n_classes: evaluate all classes ``0..n_classes-1``; by default those seen in the data.
        ignore_index: ground-truth label excluded from scoring (None: none).
        size: ``(height, width)`` to score at (nearest resizing), or None for the original size.

    Example:
        >>> m = DatasetHungarianMeter()
        >>> m.update(np.array([[1, 0]]), np.array([[0, 1]]))
        >>> m.compute().miou
        1.0
    """

    def reset(self) -> None:
        """Forget every image seen so far."""
        self.confusion_ = np.zeros((self.n_classes or 0, 0), dtype=np.int64)
        self.n_images_ = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one image's ``(H, W)`` cluster map and ``(H, W)`` class map to the confusion."""
        pred, gt = self._prepare(pred, gt)
        conf = confusion_matrix(pred, gt, self.ignore_index)
        if self.n_classes is not None and conf.shape[0] > self.n_classes:
            raise ValueError(
                f"ground truth has label {conf.shape[0] - 1} >= n_classes={self.n_classes}."
            )
        # Grow the running matrix when an image brings a new class or cluster id.
        rows = max(self.confusion_.shape[0], conf.shape[0])
        cols = max(self.confusion_.shape[1], conf.shape[1])
        acc = np.zeros((rows, cols), dtype=np.int64)
        acc[: self.confusion_.shape[0], : self.confusion_.shape[1]] = self.confusion_
        acc[: conf.shape[0], : conf.shape[1]] += conf
        self.confusion_ = acc
        self.n_images_ += 1

    def compute(self) -> MatchResult:
        """Match once on the accumulated confusion and score."""
        result = match_confusion(self.confusion_, self.method, self.match_on, self.background,
                                 evaluate_all_rows=self.n_classes is not None)
        result.resolution = resolution_tag(self.size)
        return result


@dataclass
class PerImageScores:
    """Dataset summary of a :class:`PerImageHungarianMeter`.

    Attributes:
        miou: DiffCut's number: per-class ``TP / (TP + FP + FN)`` with counts summed over images
            (each image matched separately), then ``nanmean`` over classes.
        mean_image_miou: the mean of the per-image mIoU values (for datasets whose labels have
            no meaning across images, e.g. BSDS segment ids).
        accuracy: summed TP over all non-ignored pixels.
        classes: ``(R,)`` class labels with counts; ``iou`` the ``(R,)`` per-class IoU.
        n_images: images scored.
        resolution: ``"original"`` or ``"<h>x<w>"``.
    """

    miou: float
    mean_image_miou: float
    accuracy: float
    classes: np.ndarray
    iou: np.ndarray = field(repr=False)
    n_images: int = 0
    resolution: str = "original"


class PerImageHungarianMeter(_ResizingMeter):
    """Per-image matching, dataset summary (DiffCut's ``eval_diffcut.py`` protocol).

    For exact DiffCut parity use ``match_on="count"``, ``n_classes`` = the number of classes,
    ``background`` = the background label on datasets that have one, and ``size=(128, 128)``.

    Args:
        method: ``"hungarian"`` or ``"majority"``.
        match_on: ``"iou"`` or ``"count"``.
        background: background label for the merge rule (hungarian only), or None.
        n_classes: evaluate all classes ``0..n_classes-1`` per image; by default those present.
        ignore_index: ground-truth label excluded from scoring (None: none).
        size: ``(height, width)`` to score at (nearest resizing), or None for the original size.
    """

    def reset(self) -> None:
        """Forget every image seen so far."""
        n = self.n_classes or 0
        self._tp, self._fp, self._fn = (np.zeros(n, np.int64) for _ in range(3))
        self._n_valid = 0
        self.per_image_: list[MatchResult] = []

    def update(self, pred: np.ndarray, gt: np.ndarray) -> MatchResult:
        """Match and score one image (``(H, W)`` cluster and class maps); returns its result."""
        pred, gt = self._prepare(pred, gt)
        conf, classes, clusters = _image_confusion(pred, gt, self.ignore_index, self.n_classes)
        r = match_confusion(conf, self.method, self.match_on, self.background, classes, clusters,
                            evaluate_all_rows=self.n_classes is not None)
        r.resolution = resolution_tag(self.size)
        need = int(r.classes.max()) + 1 if r.classes.size else 0
        if need > self._tp.size:
            pad = need - self._tp.size
            self._tp, self._fp, self._fn = (np.pad(a, (0, pad)) for a in (self._tp, self._fp, self._fn))
        np.add.at(self._tp, r.classes, r.tp)
        np.add.at(self._fp, r.classes, r.fp)
        np.add.at(self._fn, r.classes, r.fn)
        self._n_valid += int(conf.sum())
        self.per_image_.append(r)
        return r

    def compute(self) -> PerImageScores:
        """Dataset summary from the summed TP/FP/FN and the per-image mIoU values."""
        denom = self._tp + self._fp + self._fn
        iou = np.divide(self._tp, denom, out=np.full(denom.shape, np.nan), where=denom > 0)
        classes = np.arange(iou.size)
        keep = np.ones(iou.size, bool) if self.n_classes is not None else denom > 0
        image_mious = np.array([r.miou for r in self.per_image_], dtype=np.float64)
        nan = float("nan")
        return PerImageScores(
            miou=float(np.nanmean(iou[keep])) if np.isfinite(iou[keep]).any() else nan,
            mean_image_miou=float(np.nanmean(image_mious)) if np.isfinite(image_mious).any() else nan,
            accuracy=float(self._tp.sum() / self._n_valid) if self._n_valid else nan,
            classes=classes[keep],
            iou=iou[keep],
            n_images=len(self.per_image_),
            resolution=resolution_tag(self.size),
        )
