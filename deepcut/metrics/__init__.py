"""Evaluation metrics (the protocols of DeepCut section 5, Results, and of its baselines).

Pure numpy functions plus streaming meters, with the ignore label (255) honoured everywhere:

* boxes -- :func:`box_iou`, :func:`corloc` (IoU >= 0.5 with any GT box); boxes are
  ``(x0, y0, x1, y1)`` pixels with exclusive ``x1``/``y1``.
* foreground -- :func:`foreground_iou`, :func:`pixel_accuracy`, max F-beta (beta^2 = 0.3,
  255 thresholds, TokenCut) and :class:`ForegroundMeter`.
* matching -- Hungarian mIoU per image (:func:`hungarian_miou`) and per dataset
  (:class:`DatasetHungarianMeter`), DiffCut's per-image protocol (:class:`PerImageHungarianMeter`),
  many-to-one majority vote and DiffCut's background merge.
* clustering -- :func:`nmi`, :func:`ari` (scikit-learn), :func:`purity`, :class:`ClusteringMeter`.
* resolution -- :func:`resize_labels` to score at a fixed size (DiffCut: 128x128); every meter
  result carries a ``resolution`` field saying where it was computed.
"""
from deepcut.metrics.boxes import box_iou, corloc, corloc_hits, mask_to_box, mask_to_boxes
from deepcut.metrics.clustering import (
    ClusteringMeter,
    ClusteringScores,
    ari,
    contingency_table,
    labels_at_points,
    nmi,
    purity,
    scores_from_contingency,
)
from deepcut.metrics.foreground import (
    FBETA_SQ,
    N_THRESHOLDS,
    ForegroundMeter,
    ForegroundScores,
    f_beta,
    foreground_iou,
    max_f_beta,
    pixel_accuracy,
    precision_recall_curve,
)
from deepcut.metrics.matching import (
    MATCH_METHODS,
    DatasetHungarianMeter,
    MatchResult,
    PerImageHungarianMeter,
    PerImageScores,
    confusion_matrix,
    hungarian_miou,
    many_to_one_miou,
    match_confusion,
)
from deepcut.metrics.resolution import resize_labels, resize_scores, resolution_tag

__all__ = [
    "FBETA_SQ",
    "MATCH_METHODS",
    "N_THRESHOLDS",
    "ClusteringMeter",
    "ClusteringScores",
    "DatasetHungarianMeter",
    "ForegroundMeter",
    "ForegroundScores",
    "MatchResult",
    "PerImageHungarianMeter",
    "PerImageScores",
    "ari",
    "box_iou",
    "confusion_matrix",
    "contingency_table",
    "corloc",
    "corloc_hits",
    "f_beta",
    "foreground_iou",
    "hungarian_miou",
    "labels_at_points",
    "many_to_one_miou",
    "mask_to_box",
    "mask_to_boxes",
    "match_confusion",
    "max_f_beta",
    "nmi",
    "pixel_accuracy",
    "precision_recall_curve",
    "purity",
    "resize_labels",
    "resize_scores",
    "resolution_tag",
    "scores_from_contingency",
]
