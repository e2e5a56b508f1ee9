r"""Foreground/background scores: per-image IoU, pixel accuracy and max F-beta.

The protocol is TokenCut's ``metric.py`` (itself from Voynov et al.'s big-BiGAN saliency code),
with the ignore label added:

* **IoU** and **accuracy** binarise the prediction at ``pred > 0.5`` and are averaged over images.
* **max F-beta**: for each of 255 thresholds :math:`t_j = j / 255,\ j = 0..254` the prediction is
  ``pred > t_j``; per image :math:`P_j` and :math:`R_j` give
  :math:`F_j = (1 + \beta^2) P_j R_j / (\beta^2 P_j + R_j)` with :math:`\beta^2 = 0.3`; ``F`` is
  averaged over images at each threshold and the max over thresholds is reported. An empty
  prediction has precision 1, an empty ground truth recall 1, and ``0/0`` F is 0 (as TokenCut).

Ground truth is ``{0, 1}`` with ``ignore_index`` (255) pixels excluded from every count.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepcut.metrics._checks import as_label_pair, valid_pixels
from deepcut.metrics.resolution import resize_labels, resize_scores, resolution_tag

__all__ = [
    "FBETA_SQ",
    "N_THRESHOLDS",
    "ForegroundMeter",
    "ForegroundScores",
    "f_beta",
    "foreground_iou",
    "max_f_beta",
    "pixel_accuracy",
    "precision_recall_curve",
]

FBETA_SQ = 0.3  # beta^2 of the saliency literature (Achanta et al. 2009), used by TokenCut
N_THRESHOLDS = 255  # TokenCut's prob_bins


def _check_gt(gt: np.ndarray, ignore_index: int | None) -> np.ndarray:
    ok = (gt == 0) | (gt == 1)
    if ignore_index is not None:
        ok |= gt == ignore_index
    if not ok.all():
        bad = np.unique(gt[~ok])[:5].tolist()
        raise ValueError(
            f"foreground ground truth must be 0/1 (plus ignore {ignore_index}). Got values {bad}; "
            "convert 0/255 masks with `mask > 127` first."
        )
    return gt


def _check_pred(pred: np.ndarray) -> np.ndarray:
    if pred.dtype == bool:
        return pred
    if pred.size and (pred.min() < 0 or pred.max() > 1):
        raise ValueError(
            f"foreground prediction must lie in [0, 1] (binary or soft). Got range "
            f"[{pred.min()}, {pred.max()}]; divide 0/255 maps by 255 first."
        )
    return pred


def _binary_counts(
    pred: np.ndarray, gt: np.ndarray, ignore_index: int | None
) -> tuple[int, int, int, int]:
    """(tp, pred_area, gt_area, n_valid) after binarising ``pred > 0.5``."""
    pred, gt = as_label_pair(pred, gt, "foreground")
    _check_gt(gt, ignore_index)
    valid = valid_pixels(gt, ignore_index)
    p = (_check_pred(pred) > 0.5) & valid
    g = (gt == 1) & valid
    return int((p & g).sum()), int(p.sum()), int(g.sum()), int(valid.sum())


def foreground_iou(
    pred: np.ndarray, gt: np.ndarray, ignore_index: int | None = 255, empty_value: float = 1.0
) -> float:
    """Intersection over union of the predicted and true foreground of one image.

    Args:
        pred: ``(H, W)`` prediction, bool or values in ``[0, 1]``; foreground is ``pred > 0.5``.
        gt: ``(H, W)`` ground truth in ``{0, 1}``, ``ignore_index`` pixels are excluded.
        ignore_index: label excluded from scoring (None: none).
        empty_value: score when the union is empty (no foreground in either, after ignoring);
            1.0 because the prediction is then exactly right. TokenCut would give ``nan``.

    Returns:
        IoU in ``[0, 1]``.

    Example:
        >>> foreground_iou(np.array([[1, 1, 0, 0]]), np.array([[0, 1, 1, 0]]))
        0.3333333333333333
    """
    tp, pa, ga, _ = _binary_counts(pred, gt, ignore_index)
    union = pa + ga - tp
    return float(tp / union) if union else float(empty_value)


def pixel_accuracy(pred: np.ndarray, gt: np.ndarray, ignore_index: int | None = 255) -> float:
    """Fraction of non-ignored pixels where ``pred > 0.5`` agrees with ``gt``.

    Args:
        pred: ``(H, W)`` bool or values in ``[0, 1]``.
        gt: ``(H, W)`` in ``{0, 1}`` plus ``ignore_index``.
        ignore_index: label excluded from scoring (None: none).

    Returns:
        Accuracy in ``[0, 1]``; ``nan`` when every pixel is ignored.
    """
    tp, pa, ga, n = _binary_counts(pred, gt, ignore_index)
    # correct = true positives + true negatives; tn = n - (pa + ga - tp)
    return float((n - pa - ga + 2 * tp) / n) if n else float("nan")


def _thresholds(n_thresholds: int) -> np.ndarray:
    # Exactly TokenCut's np.arange(0.0, 1.0, 1.0 / prob_bins): 0, 1/255, ..., 254/255.
    return np.arange(0.0, 1.0, 1.0 / n_thresholds)


def precision_recall_curve(
    pred: np.ndarray,
    gt: np.ndarray,
    ignore_index: int | None = 255,
    n_thresholds: int = N_THRESHOLDS,
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of ``pred > t`` for ``t = j / n_thresholds``, ``j = 0..n_thresholds-1``.

    Computed in one pass: each pixel's count of thresholds strictly below its value is binned, so
    the cost is ``O(H*W + T)`` instead of ``O(H*W*T)``.

    Args:
        pred: ``(H, W)`` soft or binary prediction in ``[0, 1]``.
        gt: ``(H, W)`` in ``{0, 1}`` plus ``ignore_index``.
        ignore_index: label excluded from scoring (None: none).
        n_thresholds: number of thresholds ``T``.

    Returns:
        ``(precision, recall)``, each ``(T,)`` float64. Precision is 1 where nothing is predicted,
        recall is 1 where the ground truth is empty (TokenCut's convention).
    """
    pred, gt = as_label_pair(pred, gt, "precision_recall_curve")
    _check_gt(gt, ignore_index)
    valid = valid_pixels(gt, ignore_index)
    score = _check_pred(pred)[valid].astype(np.float64)
    pos = gt[valid] == 1
    thr = _thresholds(n_thresholds)
    # k = number of thresholds < score; the pixel is predicted foreground at thresholds 0..k-1.
    k = np.searchsorted(thr, score, side="left")
    n_pred_k = np.bincount(k, minlength=n_thresholds + 1)
    n_tp_k = np.bincount(k[pos], minlength=n_thresholds + 1)
    # predicted area at threshold j = pixels with k > j: reverse cumulative sum, shifted by one.
    pred_area = np.cumsum(n_pred_k[::-1])[::-1][1:].astype(np.float64)  # (T,)
    tp = np.cumsum(n_tp_k[::-1])[::-1][1:].astype(np.float64)  # (T,)
    gt_area = float(pos.sum())
    precision = np.divide(tp, pred_area, out=np.ones_like(tp), where=pred_area > 0)
    recall = tp / gt_area if gt_area > 0 else np.ones_like(tp)
    return precision, recall


def f_beta(precision: np.ndarray, recall: np.ndarray, beta_sq: float = FBETA_SQ) -> np.ndarray:
    """Element-wise F-beta; ``0/0`` (precision = recall = 0) gives 0 as in TokenCut."""
    precision, recall = np.asarray(precision, np.float64), np.asarray(recall, np.float64)
    num = (1 + beta_sq) * precision * recall
    den = beta_sq * precision + recall
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def max_f_beta(
    preds: list[np.ndarray],
    gts: list[np.ndarray],
    ignore_index: int | None = 255,
    beta_sq: float = FBETA_SQ,
    n_thresholds: int = N_THRESHOLDS,
) -> float:
    """Dataset max F-beta: F averaged over images at each threshold, then the max over thresholds.

    Args:
        preds: per image ``(H_i, W_i)`` soft or binary prediction in ``[0, 1]``.
        gts: per image ``(H_i, W_i)`` ground truth in ``{0, 1}`` plus ``ignore_index``.
        ignore_index: label excluded from scoring (None: none).
        beta_sq: ``beta^2`` (0.3 in the saliency literature).
        n_thresholds: number of thresholds (255).

    Returns:
        max F-beta in ``[0, 1]``.
    """
    meter = ForegroundMeter(ignore_index=ignore_index, beta_sq=beta_sq, n_thresholds=n_thresholds)
    for p, g in zip(preds, gts, strict=True):
        meter.update(p, g)
    return meter.compute().max_f


@dataclass
class ForegroundScores:
    """Dataset summary of a :class:`ForegroundMeter`.

    Attributes:
        iou: mean per-image IoU in ``[0, 1]``.
        accuracy: mean per-image pixel accuracy in ``[0, 1]`` (images with no valid pixel skipped).
        max_f: max over thresholds of the image-averaged F-beta.
        best_threshold: the threshold ``t`` (prediction ``> t``) attaining ``max_f``.
        n_images: number of images scored.
        resolution: ``"original"`` or ``"<h>x<w>"``, where the scores were computed.
        per_image_iou: ``(n_images,)`` IoU of each image, in update order.
    """

    iou: float
    accuracy: float
    max_f: float
    best_threshold: float
    n_images: int
    resolution: str
    per_image_iou: np.ndarray = field(repr=False)


class ForegroundMeter:
    """Streams ``(pred, gt)`` pairs and summarises IoU, accuracy and max F-beta over a dataset.

    Args:
        ignore_index: ground-truth label excluded from scoring (None: none).
        beta_sq: ``beta^2`` of the F-measure.
        n_thresholds: thresholds of the max F-beta curve.
        size: ``(height, width)`` to score at (both maps are resized: labels nearest, soft
            predictions bilinear), or None for the ground truth's own resolution.
        empty_value: per-image IoU when both masks are empty.

    Example:
        >>> m = ForegroundMeter()
        >>> _ = m.update(np.array([[1.0, 0.0]]), np.array([[1, 0]]))
        >>> m.compute().iou
        1.0
    """

    def __init__(
        self,
        ignore_index: int | None = 255,
        beta_sq: float = FBETA_SQ,
        n_thresholds: int = N_THRESHOLDS,
        size: tuple[int, int] | None = None,
        empty_value: float = 1.0,
    ) -> None:
        self.ignore_index = ignore_index
        self.beta_sq = beta_sq
        self.n_thresholds = n_thresholds
        self.size = size
        self.empty_value = empty_value
        self.reset()

    def reset(self) -> None:
        """Forget every image seen so far."""
        self._iou: list[float] = []
        self._acc: list[float] = []
        self._f_sum = np.zeros(self.n_thresholds)

    def update(self, pred: np.ndarray, gt: np.ndarray) -> float:
        """Score one image and add it to the running summary.

        Args:
            pred: ``(H, W)`` bool or soft prediction in ``[0, 1]``.
            gt: ``(H, W)`` ground truth in ``{0, 1}`` plus ``ignore_index``.

        Returns:
            This image's IoU.
        """
        pred, gt = np.asarray(pred), np.asarray(gt)
        if self.size is not None:
            gt = resize_labels(gt, self.size)
            is_binary = pred.dtype == bool or np.issubdtype(pred.dtype, np.integer)
            pred = resize_labels(pred, self.size) if is_binary else resize_scores(pred, self.size)
        iou = foreground_iou(pred, gt, self.ignore_index, self.empty_value)
        self._iou.append(iou)
        self._acc.append(pixel_accuracy(pred, gt, self.ignore_index))
        p, r = precision_recall_curve(pred, gt, self.ignore_index, self.n_thresholds)
        self._f_sum += f_beta(p, r, self.beta_sq)
        return iou

    def compute(self) -> ForegroundScores:
        """Dataset summary; every field is ``nan`` before the first :meth:`update`."""
        n = len(self._iou)
        if n == 0:
            nan = float("nan")
            return ForegroundScores(nan, nan, nan, nan, 0, resolution_tag(self.size), np.zeros(0))
        f_mean = self._f_sum / n  # (T,) image-averaged F at each threshold
        best = int(np.argmax(f_mean))
        acc = np.asarray(self._acc)
        return ForegroundScores(
            iou=float(np.mean(self._iou)),
            accuracy=float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan"),
            max_f=float(f_mean[best]),
            best_threshold=float(_thresholds(self.n_thresholds)[best]),
            n_images=n,
            resolution=resolution_tag(self.size),
            per_image_iou=np.asarray(self._iou),
        )
