"""Evaluate a segmentation method over a dataset: predict (resumable), score, summarise.

:func:`evaluate` makes two streaming passes over the items, in dataset order:

1. **Predict.** Each item whose prediction is not on disk yet is segmented (tqdm progress bar).
   Its label map and a JSON record (box, K, NCut, timings, config) are written atomically, the
   record last: its presence marks the item done, so an interrupted run resumes where it stopped
   and never recomputes a finished item. A bad image is reported on one line, skipped and
   counted; it is retried on the next run.
2. **Score.** Every saved label map is scored against its ground truth, from the files alone and
   always in dataset order, so a resumed run ends with exactly the numbers of an uninterrupted one.

Output folder::

    out_dir/run.json                 dataset + full method config; a rerun must match it
    out_dir/predictions/<id>.png     label map at the original image size (pixel = label id)
    out_dir/predictions/<id>.json    prediction record (written last = item done)
    out_dir/per_image.csv            one row per item: scores, or status=failed and the reason
    out_dir/summary.json             the dataset table, with everything it was computed under
    out_dir/summary.md               the same as Markdown

Scoring (``scoring_kind(task)``):

* ``foreground`` (task ``segment``): the prediction is fg/bg (label 0 = background). Against a
  binary mask (or a class map, foreground = any class, 255 ignored): per-image IoU and pixel
  accuracy averaged over images, and max F-beta (beta^2 = 0.3, 255 thresholds; on the binary
  mask, as the method gives no soft scores). Against boxes: CorLoc, the predicted box counts when
  its IoU with any ground-truth box is >= 0.5 (boxes in original image pixels).
* ``regions`` (every other task: parts, kless, hierarchy, ...): label ids are arbitrary. Against
  per-annotator segmentations (BSDS500, Weizmann): NMI, ARI, purity and Hungarian mIoU per image.
  Against a class map (VOC): the same per image plus DiffCut's pooled per-image-matched mIoU, a
  dataset-level match and pooled NMI/ARI (those two need cluster ids consistent across images).
  Against part keypoints (CUB): NMI/ARI of the label under each visible keypoint vs the keypoint
  id, pooled over the dataset.
  When label 0 is named ``background`` the foreground metrics are reported as well.

Multi-annotator ground truth is scored against **each annotator**, then combined per image by
``annotators="mean"`` (default: the average over annotators, the usual BSDS protocol for NMI/ARI)
or ``"best"`` (per metric, the annotator that scores highest); the summary states which. On
Weizmann SED the fg/bg scores use the consensus mask (strict majority of annotators); the
per-annotator fg IoU is reported beside it as ``iou_annotators``.

Resolution: ``size=None`` (or ``"original"``) scores at the ground truth's own pixel grid (the
method's labels are at the original image size); ``size=(H, W)`` resizes both maps with
nearest-neighbour sampling first (DiffCut scores at 128x128). Every summary states which.

Example:
    >>> from deepcut.data import get_dataset
    >>> from deepcut.config import SegmenterConfig
    >>> ds = get_dataset("sod", "datasets/sod")                          # doctest: +SKIP
    >>> res = evaluate(ds, SegmenterConfig(backbone="classic", size=224), "segment",
    ...                "runs/sod_gnn", limit=10)                            # doctest: +SKIP
    >>> res.metrics["iou"], res.summary["resolution"]                      # doctest: +SKIP
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepcut.errors import ConfigError, DeepCutError, name_file
from deepcut.metrics import (
    FBETA_SQ,
    N_THRESHOLDS,
    ClusteringMeter,
    DatasetHungarianMeter,
    ForegroundMeter,
    PerImageHungarianMeter,
    box_iou,
    contingency_table,
    corloc,
    foreground_iou,
    labels_at_points,
    match_confusion,
    pixel_accuracy,
    resize_labels,
    resolution_tag,
    scores_from_contingency,
)

__all__ = [
    "ANNOTATOR_RULES",
    "MATCH_RULES",
    "METRIC_DEFINITIONS",
    "EvalResult",
    "check_settings",
    "evaluate",
    "log_to_wandb",
    "parse_eval_size",
    "scoring_kind",
    "summary_markdown",
]

logger = logging.getLogger(__name__)

ANNOTATOR_RULES = ("mean", "best")
MATCH_RULES = ("hungarian", "majority")
IGNORE = 255  # VOC "void"; the masks of the other datasets have no ignore label
CORLOC_THR = 0.5  # LOST / TokenCut / DeepCut: IoU >= 0.5 with any ground-truth box
# A run whose first items all fail with unexpected errors (not bad images) stops instead of
# "skipping" the whole dataset.
_MAX_FIRST_FAILURES = 3

#: What each summary metric means (copied into summary.json and summary.md).
METRIC_DEFINITIONS: dict[str, str] = {
    "iou": "fg/bg: IoU of the predicted foreground (label > 0) per image, mean over images",
    "accuracy": "fg/bg: pixel accuracy per image, mean over images",
    "max_f": f"fg/bg: max over {N_THRESHOLDS} thresholds of the image-mean F-beta "
             f"(beta^2 = {FBETA_SQ}); binary predictions",
    "iou_annotators": "fg/bg: IoU against each annotator's object pixels, combined per image "
                      "by the annotator rule, mean over images",
    "corloc": f"boxes: share of images whose predicted box has IoU >= {CORLOC_THR} with any "
              "ground-truth box (original pixels; no box = miss)",
    "nmi": "regions: NMI (arithmetic normaliser) per image, annotator rule, mean over images",
    "ari": "regions: adjusted Rand index per image, annotator rule, mean over images",
    "purity": "regions: purity per image (share of pixels in their cluster's majority "
              "segment), annotator rule, mean over images",
    "miou": "regions: mIoU after matching clusters to segments/classes per image "
            "(match rule; on class maps hungarian merges background clusters many-to-one, "
            "DiffCut's rule), mean over images",
    "miou_pooled": "regions, class maps: per-image matching, TP/FP/FN summed over the "
                   "dataset, mean over classes (DiffCut's pooling; its matching maximises "
                   "pixel counts, this one IoU)",
    "miou_dataset": "regions, class maps: one matching on the dataset's summed confusion "
                    "(needs cluster ids consistent across images)",
    "nmi_pooled": "regions, class maps: NMI of all pixels of the dataset as one labelling "
                  "(needs cluster ids consistent across images)",
    "ari_pooled": "regions, class maps: ARI of all pixels of the dataset as one labelling "
                  "(needs cluster ids consistent across images)",
    "part_nmi": "parts: NMI of the label under each visible keypoint vs the keypoint id, "
                "pooled over the dataset",
    "part_ari": "parts: ARI of the label under each visible keypoint vs the keypoint id, "
                "pooled over the dataset",
    "n_clusters": "K the method used per image (non-empty clusters), mean",
    "ncut": "discrete K-way NCut of the method's labelling, mean",
    "seconds_per_image": "prediction time per image (load + features + solve + upsample), mean",
}
_PERCENT = {"iou", "accuracy", "max_f", "iou_annotators", "corloc", "nmi", "ari", "purity",
            "miou", "miou_pooled", "miou_dataset", "nmi_pooled", "ari_pooled", "part_nmi",
            "part_ari"}


def scoring_kind(task: str) -> str:
    """``"foreground"`` for the fg/bg task ``segment``, ``"regions"`` for every other task."""
    return "foreground" if task == "segment" else "regions"


def parse_eval_size(size: Any) -> tuple[int, int] | None:
    """Normalise a scoring resolution: None/``"original"`` -> None; ``128``, ``"128"``,
    ``"128x96"`` or ``(128, 96)`` -> ``(height, width)``.

    Raises:
        ConfigError: anything else.
    """
    if size is None or (isinstance(size, str) and size.strip().lower() == "original"):
        return None
    try:
        if isinstance(size, str):
            parts = [int(p) for p in size.lower().replace(",", "x").split("x")]
        elif isinstance(size, (int, np.integer)):
            parts = [int(size)]
        else:
            parts = [int(p) for p in size]
        if len(parts) == 1:
            parts = parts * 2
        if len(parts) != 2 or min(parts) < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"eval size must be 'original', N or HxW with positive ints. "
                          f"Got {size!r} instead.") from None
    return parts[0], parts[1]


@dataclass
class EvalResult:
    """What :func:`evaluate` returns (everything is also on disk in ``out_dir``).

    Attributes:
        summary: the dataset table with its provenance (the content of ``summary.json``).
        rows: one dict per item (the rows of ``per_image.csv``).
        out_dir: the output folder.
    """

    summary: dict[str, Any]
    rows: list[dict[str, Any]] = field(repr=False)
    out_dir: Path

    @property
    def metrics(self) -> dict[str, float]:
        """Metric name -> dataset value (fractions in [0, 1], not percent)."""
        return self.summary["metrics"]

    @property
    def failed(self) -> list[dict[str, str]]:
        """``[{"id", "error"}]`` of the items that were reported and skipped."""
        return self.summary["failed"]


# --------------------------------------------------------------------------------------------
# the entry point
def check_settings(annotators: str = "mean", match: str = "hungarian",
                   limit: int | None = None, size: Any = None) -> None:
    """Raise :class:`ConfigError` on a bad ``annotators``, ``match``, ``limit`` or eval
    ``size`` (the command line checks them before it makes any folder)."""
    parse_eval_size(size)
    if annotators not in ANNOTATOR_RULES:
        raise ConfigError(f"annotators must be one of {ANNOTATOR_RULES}. Got {annotators!r}.")
    if match not in MATCH_RULES:
        raise ConfigError(f"match must be one of {MATCH_RULES}. Got {match!r}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float))
                              or int(limit) != limit or limit < 1):
        raise ConfigError(f"limit must be a positive int. Got {limit!r} instead.")


def evaluate(
    dataset,
    segmenter,
    task: str | None = None,
    out_dir: str | Path = "out/eval",
    *,
    size: Any = None,
    annotators: str = "mean",
    match: str = "hungarian",
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> EvalResult:
    """Run a method over a dataset, save its predictions, score them and write the tables.

    Args:
        dataset: a :mod:`deepcut.data` loader (sized, indexable, ``ids``), e.g.
            ``get_dataset("sod", root)``.
        segmenter: a :class:`~deepcut.pipeline.Segmenter` (or any callable ``PIL image ->
            Prediction`` with a ``config``), a :class:`~deepcut.config.SegmenterConfig` or a
            dict of its values.
        task: the method's task (``segment``, ``parts``, ``kless``, ...); None = the config's.
            With a config it replaces ``config.task``; with a built segmenter it must agree.
        out_dir: output folder (created; reused to resume).
        size: scoring resolution: None/``"original"`` (the ground truth's grid) or ``(H, W)``.
        annotators: ``"mean"`` or ``"best"``: how per-annotator scores are combined per image.
        match: ``"hungarian"`` (one-to-one; on class maps with DiffCut's many-to-one background
            merge) or ``"majority"`` (many-to-one: each cluster to its best segment/class).
        limit: evaluate only the first ``limit`` items (quick runs).
        overwrite: recompute every prediction instead of reusing those on disk.
        progress: show the progress bar.

    Returns:
        :class:`EvalResult`.

    Raises:
        ConfigError: invalid option, or the task cannot be scored on this dataset.
        DeepCutError: ``out_dir`` holds predictions of another dataset or config (use
            ``overwrite=True`` or another folder); the backbone cannot be built.
    """
    t_start = time.perf_counter()
    check_settings(annotators, match, limit)
    eval_size = parse_eval_size(size)
    seg = _as_segmenter(segmenter, task)
    cfg = seg.config
    kind = scoring_kind(cfg.task)
    ids = list(getattr(dataset, "ids", None) or [dataset[i].id for i in range(len(dataset))])
    ids = ids[:limit] if limit else ids
    if not ids:
        raise ConfigError("the dataset has no items to evaluate")
    try:
        first = dataset[0]
    except Exception:  # noqa: BLE001 - a broken item is reported per item below
        first = None
    if first is not None:
        _check_scorable(first, kind, cfg.task, getattr(dataset, "name", "dataset"))

    out = Path(out_dir)
    pred_dir = out / "predictions"
    pred_dir.mkdir(parents=True, exist_ok=True)
    backbone = getattr(seg, "backbone", None)  # resolved once: missing weights fail here
    identity = _jsonable({
        "dataset": getattr(dataset, "name", type(dataset).__name__),
        "root": str(getattr(dataset, "root", "")),
        # as each prediction records it (the graph resolved for the backbone that ran)
        "config": cfg.resolved(getattr(backbone, "name", cfg.backbone)).to_dict(),
        "backbone": getattr(backbone, "name", cfg.backbone),
        "weights_id": getattr(backbone, "weights_id", None),
    })
    _check_run(out, identity, overwrite)

    failures, n_cached = _predict(seg, dataset, ids, pred_dir, identity, overwrite, progress,
                                  desc=f"{identity['dataset']} {cfg.task}/{cfg.solver}")
    scorer = _Scorer(kind, eval_size, annotators, match)
    rows = _score(dataset, ids, pred_dir, failures, scorer)
    summary = _summarise(dataset, identity, cfg, kind, ids, rows, scorer, eval_size,
                         annotators, match, limit)
    summary["this_run"] = {"wall_seconds": round(time.perf_counter() - t_start, 3),
                           "predicted": len(ids) - n_cached - len(failures),
                           "reused": n_cached}
    _write_tables(out, rows, summary)
    return EvalResult(summary=summary, rows=rows, out_dir=out)


# --------------------------------------------------------------------------------------------
# set-up helpers
def _as_segmenter(method, task: str | None):
    from deepcut.config import SegmenterConfig
    from deepcut.pipeline import Segmenter

    if isinstance(method, dict):
        method = SegmenterConfig.from_dict(method)
    if isinstance(method, SegmenterConfig):
        if task is not None and task != method.task:
            method = SegmenterConfig.from_dict({**method.to_dict(), "task": task})
        return Segmenter(method)
    if not callable(method) or not hasattr(method, "config"):
        raise TypeError("segmenter must be a Segmenter, a SegmenterConfig or a dict of its "
                        f"values; got {type(method).__name__}.")
    if task is not None and method.config.task != task:
        raise ConfigError(f"task={task!r} but the segmenter is configured for task "
                          f"{method.config.task!r}; build it with task={task!r}.")
    return method


def _check_scorable(sample, kind: str, task: str, name: str) -> None:
    """Fail early, with the remedy, when this task has nothing to be scored against here."""
    if kind == "foreground":
        ok = any(x is not None for x in (sample.mask, sample.labels, sample.boxes))
        need = "a mask, a class map or boxes"
        hint = "use a multi-region task (e.g. parts, kless)"
    else:
        # a fg/bg mask scores the parts task's object (the union of its parts) only: the
        # other region tasks have no object to compare with it
        ok = any(x is not None for x in (sample.annotations, sample.labels, sample.parts)) or \
            (task == "parts" and sample.mask is not None)
        need = ("annotator segmentations, a class map, part keypoints or a mask"
                if task == "parts" else "annotator segmentations, a class map or part keypoints")
        hint = "use --task segment (or parts) for fg/bg ground truth"
    if not ok:
        raise ConfigError(f"task {task!r} cannot be scored on {name}: its items have no {need}; "
                          f"{hint}.")


def _jsonable(obj: Any) -> Any:
    """Round-trip through JSON so stored and fresh values compare equal (tuples -> lists)."""
    from deepcut.io.writers import _default

    return json.loads(json.dumps(obj, default=_default))


def _check_run(out: Path, identity: dict[str, Any], overwrite: bool) -> None:
    from deepcut.io import save_json

    path = out / "run.json"
    if path.is_file() and not overwrite:
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = {}
        diff = [k for k in ("dataset", "root", "backbone", "weights_id")
                if old.get(k) != identity[k]]
        old_cfg, new_cfg = old.get("config", {}), identity["config"]
        diff += [f"config.{k}" for k in sorted(set(old_cfg) | set(new_cfg))
                 if old_cfg.get(k) != new_cfg.get(k)]
        if diff:
            raise DeepCutError(
                f"{out} holds predictions made with a different {', '.join(diff)}; pass "
                "--overwrite (overwrite=True) to replace them, or choose another output folder")
    save_json(identity, path)


# --------------------------------------------------------------------------------------------
# pass 1: predict
def _file_stem(item: str) -> str:
    """File name of an item's outputs (ids with path separators stay inside the folder)."""
    return item.replace("/", "__").replace("\\", "__")


def _is_done(record_path: Path, identity: dict[str, Any]) -> bool:
    """A record exists and was made by this very method (config, backbone, weights)."""
    if not record_path.is_file():
        return False
    try:
        rec = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return False
    return (rec.get("config") == identity["config"]
            and rec.get("backbone", identity["backbone"]) == identity["backbone"]
            and rec.get("weights_id", identity["weights_id"]) == identity["weights_id"])


def _predict(seg, dataset, ids: list[str], pred_dir: Path, identity: dict[str, Any],
             overwrite: bool, progress: bool, desc: str) -> tuple[dict[str, str], int]:
    """Segment every item without a matching record; returns ``({id: error}, n_reused)``.

    A record made with another config (e.g. left by an interrupted ``overwrite`` run) never
    counts as done, so predictions of two methods are never mixed.
    """
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from deepcut.io import load_image, save_json, save_label_map
    from deepcut.io.depth import depth_for

    todo = [(i, item) for i, item in enumerate(ids)
            if overwrite or not _is_done(pred_dir / f"{_file_stem(item)}.json", identity)]
    n_cached = len(ids) - len(todo)
    if n_cached and progress:
        logger.info("%s: reusing %d finished predictions", desc, n_cached)
    failures: dict[str, str] = {}
    n_ok = unexpected = 0
    with logging_redirect_tqdm():
        for index, item in tqdm(todo, desc=desc, unit="img", disable=not progress,
                                file=sys.stderr, dynamic_ncols=True):
            record_path = pred_dir / f"{_file_stem(item)}.json"
            record_path.unlink(missing_ok=True)  # a stale record must not outlive a failure
            t0 = time.perf_counter()
            sample = None
            try:
                sample = dataset[index]
                image = load_image(sample.image_path)
                depth = depth_for(getattr(getattr(seg, "config", None), "depth", None),
                                  sample.image_path, image.size)
                from deepcut.io.outputs import warnings_said_per_file

                with warnings_said_per_file():  # logged below, naming the file
                    pred = seg(image) if depth is None else seg(image, depth=depth)
            except Exception as e:  # report the item and go on (Ctrl-C stops)
                failures[item] = str(e) if isinstance(e, DeepCutError) else \
                    f"{type(e).__name__}: {e}"
                if sample is not None:  # every skip line names its file
                    failures[item] = name_file(sample.image_path, failures[item])
                logger.warning("skipped %s: %s", item, failures[item])
                unexpected = 0 if isinstance(e, DeepCutError) else unexpected + 1
                if unexpected >= _MAX_FIRST_FAILURES and n_ok == 0:
                    raise DeepCutError(
                        f"the method failed on the first {unexpected} items ({failures[item]}); "
                        "stopping: that is a bug or a bad config, not bad images") from e
                continue
            n_ok += 1
            record = pred.record()
            record.update(id=item, image=str(sample.image_path),
                          seconds=round(time.perf_counter() - t0, 6))
            from deepcut.io.outputs import result_warnings

            for w in result_warnings(pred):  # a degenerate result: one line naming the file
                logger.warning("%s: %s", sample.image_path, w)
            try:
                save_label_map(pred.labels, pred_dir / f"{_file_stem(item)}.png")
                save_json(record, record_path)  # last: marks the item done
            except OSError as e:  # the output disk, not the item: stop, naming the folder
                from deepcut.io.folders import FATAL_WRITE_ERRNOS, output_error

                if e.errno in FATAL_WRITE_ERRNOS:
                    raise output_error(e, pred_dir) from None
                raise
    return failures, n_cached


# --------------------------------------------------------------------------------------------
# pass 2: score
def _score(dataset, ids: list[str], pred_dir: Path, failures: dict[str, str],
           scorer: _Scorer) -> list[dict[str, Any]]:
    from deepcut.io import read_label_map

    rows = []
    for index, item in enumerate(ids):
        row: dict[str, Any] = {"id": item}
        if item not in failures:
            try:
                record = json.loads((pred_dir / f"{_file_stem(item)}.json").read_text())
                labels = read_label_map(pred_dir / f"{_file_stem(item)}.png")
                row.update(scorer.add(dataset[index], labels, record))
                row.update(status="ok", n_clusters=record.get("n_clusters"),
                           ncut=record.get("ncut"), seconds=record.get("seconds"),
                           box=" ".join(map(str, record["box"])) if record.get("box") else "")
            except Exception as e:  # noqa: BLE001 - bad ground truth: report, skip, count
                failures[item] = str(e) if isinstance(e, DeepCutError) else \
                    f"{type(e).__name__}: {e}"
                logger.warning("not scored %s: %s", item, failures[item])
        if item in failures:
            row = {"id": item, "status": "failed", "error": failures[item]}
        rows.append(row)
    return rows


def _combine(values: list[float], rule: str) -> float:
    arr = np.asarray(values, dtype=np.float64)
    if not np.isfinite(arr).any():
        return float("nan")
    return float(np.nanmean(arr) if rule == "mean" else np.nanmax(arr))


class _Scorer:
    """Per-image scores plus the dataset meters (the meters see images in dataset order)."""

    def __init__(self, kind: str, size: tuple[int, int] | None, annotators: str, match: str):
        self.kind, self.size, self.annotators, self.match = kind, size, annotators, match
        # Maps are resized here before scoring, so the meters work at the given grid (size=None).
        self.fg = ForegroundMeter(ignore_index=IGNORE)
        # DiffCut's many-to-one background on class maps (every mIoU of a run: one rule)
        self.background = 0 if match == "hungarian" else None
        self.per_image_match = PerImageHungarianMeter(method=match, background=self.background,
                                                      ignore_index=IGNORE)
        self.dataset_match = DatasetHungarianMeter(method=match, background=self.background,
                                                   ignore_index=IGNORE)
        self.keypoints = ClusteringMeter(ignore_index=None)
        self.pooled = ClusteringMeter(ignore_index=IGNORE)
        self.values: dict[str, list[float]] = defaultdict(list)
        self.pred_boxes: list[Any] = []
        self.gt_boxes: list[np.ndarray] = []
        self.multi_annotator = False

    def _resize(self, a: np.ndarray) -> np.ndarray:
        return a if self.size is None else resize_labels(a, self.size)

    def add(self, sample, labels: np.ndarray, record: dict[str, Any]) -> dict[str, Any]:
        """Score one item; checks every shape first so a failure leaves the meters untouched."""
        labels = np.asarray(labels)
        for what, gt in (("mask", sample.mask), ("class map", sample.labels),
                         *((f"annotation {k + 1}", a) for k, a in
                           enumerate(sample.annotations or []))):
            if gt is not None and np.shape(gt) != labels.shape:
                raise DeepCutError(f"{sample.id}: prediction is {labels.shape[1]}x"
                                   f"{labels.shape[0]} px but the {what} is {np.shape(gt)[1]}x"
                                   f"{np.shape(gt)[0]} px")
        row: dict[str, Any] = {}
        names = record.get("label_names") or {}
        has_background = self.kind == "foreground" or names.get("0") == "background"
        pred = self._resize(labels)
        if has_background:
            row.update(self._foreground(sample, pred > 0))
        if self.kind == "foreground" and sample.boxes is not None:
            row.update(self._boxes(sample, record.get("box")))
        if self.kind == "regions":
            row.update(self._regions(sample, pred, labels))
        for k, v in row.items():
            if k in METRIC_DEFINITIONS:
                self.values[k].append(v)
        for k in ("n_clusters", "ncut", "seconds"):
            v = record.get(k)
            self.values[k].append(float("nan") if v is None else float(v))
        return row

    def _foreground(self, sample, fg: np.ndarray) -> dict[str, Any]:
        if sample.mask is not None:
            gt = sample.mask
        elif sample.labels is not None:  # class map: any class is foreground, void stays void
            gt = np.where(sample.labels == IGNORE, IGNORE, sample.labels > 0).astype(np.uint8)
        else:
            return {}
        gt = self._resize(gt)
        row = {"iou": self.fg.update(fg, gt), "accuracy": pixel_accuracy(fg, gt, IGNORE)}
        if sample.annotations and self.kind == "foreground":
            self.multi_annotator = True
            ious = [foreground_iou(fg, (self._resize(a) > 0).astype(np.uint8), None)
                    for a in sample.annotations]
            row["iou_annotators"] = _combine(ious, self.annotators)
        return row

    def _boxes(self, sample, box) -> dict[str, Any]:
        gts = np.asarray(sample.boxes, dtype=np.int64).reshape(-1, 4)
        self.pred_boxes.append(None if box is None else np.asarray(box, dtype=np.float64))
        self.gt_boxes.append(gts)
        best = float(box_iou(box, gts).max()) if box is not None and len(gts) else 0.0
        return {"box_iou": best, "corloc": float(best >= CORLOC_THR)}

    def _regions(self, sample, pred: np.ndarray, labels_full: np.ndarray) -> dict[str, Any]:
        row: dict[str, Any] = {"n_regions": int(np.unique(pred).size)}
        if sample.annotations:
            self.multi_annotator = True
            per_ann = [self._region_scores(pred, self._resize(a), None)
                       for a in sample.annotations]
            for key in ("nmi", "ari", "purity", "miou"):
                row[key] = _combine([s[key] for s in per_ann], self.annotators)
        elif sample.labels is not None:
            gt = self._resize(sample.labels)
            # class maps: the per-image mIoU takes the meters' background rule, so miou,
            # miou_pooled and miou_dataset share one convention
            row.update(self._region_scores(pred, gt, IGNORE, self.background))
            self.per_image_match.update(pred, gt)
            self.dataset_match.update(pred, gt)
            self.pooled.update(pred, gt)
        if sample.parts is not None and len(sample.parts):
            kp = np.asarray(sample.parts, dtype=np.float64)
            values, index = labels_at_points(labels_full, kp[:, :2], kp[:, 2] > 0)
            if values.size:
                self.keypoints.update(values, index)
                row["n_keypoints"] = int(values.size)
        return row

    def _region_scores(self, pred: np.ndarray, gt: np.ndarray, ignore: int | None,
                       background: int | None = None) -> dict:
        # One contingency table gives NMI/ARI/purity (scikit-learn's formulas) and the match
        # (``background``: the class merged many-to-one, class maps only; None for BSDS's
        # segments, where no label means background).
        table, classes, clusters = contingency_table(pred, gt, ignore)
        s = scores_from_contingency(table)
        m = match_confusion(table, self.match, "iou", background, classes, clusters)
        return {"nmi": s["nmi"], "ari": s["ari"], "purity": s["purity"], "miou": m.miou}

    def results(self, kind: str) -> tuple[dict[str, float], dict[str, int]]:
        metrics: dict[str, float] = {}
        counts: dict[str, int] = {}

        def put(key: str, value: float, n: int) -> None:
            if n:
                metrics[key], counts[key] = float(value), int(n)

        if self.fg.compute().n_images:
            s = self.fg.compute()
            put("iou", s.iou, s.n_images)
            put("accuracy", s.accuracy, s.n_images)
            put("max_f", s.max_f, s.n_images)
        if self.pred_boxes:
            put("corloc", corloc(self.pred_boxes, self.gt_boxes, CORLOC_THR), len(self.pred_boxes))
        for key in ("iou_annotators", "nmi", "ari", "purity", "miou"):
            vals = np.asarray(self.values.get(key, []), dtype=np.float64)
            if vals.size and np.isfinite(vals).any():
                put(key, np.nanmean(vals), int(np.isfinite(vals).sum()))
        if self.per_image_match.per_image_:
            put("miou_pooled", self.per_image_match.compute().miou,
                len(self.per_image_match.per_image_))
            put("miou_dataset", self.dataset_match.compute().miou, self.dataset_match.n_images_)
            pooled = self.pooled.compute()
            put("nmi_pooled", pooled.nmi, self.dataset_match.n_images_)
            put("ari_pooled", pooled.ari, self.dataset_match.n_images_)
        if self.keypoints.table_.size:
            k = self.keypoints.compute()
            put("part_nmi", k.nmi, k.n_pixels)
            put("part_ari", k.ari, k.n_pixels)
        for key in ("n_clusters", "ncut", "seconds"):
            vals = np.asarray(self.values.get(key, []), dtype=np.float64)
            if vals.size and np.isfinite(vals).any():
                name = "seconds_per_image" if key == "seconds" else key
                put(name, np.nanmean(vals), int(np.isfinite(vals).sum()))
        return metrics, counts


# --------------------------------------------------------------------------------------------
# tables
def _describe_split(dataset) -> str:
    split = getattr(dataset, "split", None)
    task = getattr(dataset, "task", None)  # VOC: detection (all annotated) or segmentation
    base = getattr(dataset, "voc_root", None) or getattr(dataset, "base", None) or \
        getattr(dataset, "root", None)
    text = str(split) if split else "default"
    if not split and base is not None and (Path(base) / "list.txt").is_file():
        text += " (ids of list.txt)"
    if isinstance(task, str):
        text += f", {task} ids"
    return text


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def _summarise(dataset, identity, cfg, kind, ids, rows, scorer: _Scorer, eval_size, annotators,
               match, limit) -> dict[str, Any]:
    import deepcut

    metrics, counts = scorer.results(kind)
    failed = [{"id": r["id"], "error": r["error"]} for r in rows if r["status"] == "failed"]
    resolution = resolution_tag(eval_size)
    return {
        "dataset": identity["dataset"],
        "root": identity["root"],
        "split": _describe_split(dataset),
        "n_items": len(ids),
        "n_dataset": len(dataset),
        "limit": limit,
        "n_scored": len(ids) - len(failed),
        "n_failed": len(failed),
        "failed": failed,
        "task": cfg.task,
        "scoring": kind,
        "resolution": resolution,
        "resolution_note": (
            "scored at each ground truth's own pixel grid (predictions are at the original "
            "image size)" if eval_size is None else
            f"prediction and ground truth resized to {resolution} (nearest) before scoring"),
        "annotators": annotators if scorer.multi_annotator else None,
        "match": match if kind == "regions" else None,
        "metrics": metrics,
        "counts": counts,
        "definitions": {k: METRIC_DEFINITIONS[k] for k in metrics},
        "method": {"task": cfg.task, "solver": cfg.solver, "backbone": identity["backbone"],
                   "weights_id": identity["weights_id"], "size": cfg.size,
                   "n_clusters": cfg.n_clusters, "loss": cfg.loss, "seed": cfg.seed},
        "config": identity["config"],
        "deepcut_version": deepcut.__version__,
        "git_sha": _git_sha(),
    }


def _fmt(key: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if key in _PERCENT:
        return f"{100 * value:.1f}"
    return f"{value:.3f}" if key != "n_clusters" else f"{value:.2f}"


def summary_markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown: what was measured, on what, how, then the scores and config."""
    s = summary
    m = s["method"]
    limit = f" (limit {s['limit']})" if s["limit"] else ""
    lines = [
        f"# {s['dataset']}: {m['task']} with {m['solver']} ({m['backbone']})",
        "",
        "| | |",
        "|---|---|",
        f"| dataset | `{s['dataset']}` at `{s['root']}` |",
        f"| split | {s['split']} |",
        (f"| items | {s['n_items']} evaluated of {s['n_dataset']}{limit}; "
         f"{s['n_scored']} scored, {s['n_failed']} failed |"),
        f"| resolution | {s['resolution']}: {s['resolution_note']} |",
        f"| scoring | {s['scoring']}"
        + (f"; annotators: {s['annotators']} over annotators" if s["annotators"] else "")
        + (f"; matching: {s['match']}" if s["match"] else "") + " |",
        (f"| method | task={m['task']} solver={m['solver']} backbone={m['backbone']} "
         f"weights={m['weights_id']} size={m['size']} K={m['n_clusters']} loss={m['loss']} "
         f"seed={m['seed']} |"),
        f"| version | deepcut {s['deepcut_version']}"
        + (f", git {s['git_sha']}" if s.get("git_sha") else "") + " |",
        "",
        "| metric | value | n | definition |",
        "|---|---|---|---|",
    ]
    for key, value in s["metrics"].items():
        unit = " (%)" if key in _PERCENT else ""
        lines.append(f"| {key}{unit} | {_fmt(key, value)} | {s['counts'][key]} | "
                     f"{s['definitions'][key]} |")
    if s["failed"]:
        lines += ["", f"Failed items ({s['n_failed']}, reported and skipped):", ""]
        lines += [f"- `{f['id']}`: {f['error']}" for f in s["failed"]]
    lines += ["", "Full method config:", "", "```json",
              json.dumps(s["config"], indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)


def _write_tables(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    from deepcut.io import atomic_path, save_json

    columns: list[str] = ["id", "status"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)  # floats as repr: the CSV round-trips exactly
    with atomic_path(out / "per_image.csv") as tmp:
        tmp.write_text(buf.getvalue())
    save_json(summary, out / "summary.json")
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(summary_markdown(summary))


# --------------------------------------------------------------------------------------------
# Weights & Biases
def log_to_wandb(result: EvalResult, project: str = "deepcut-eval",
                 name: str | None = None) -> str:
    """Log the summary (and the per-image rows) as ``wandb.Table`` s; works with
    ``WANDB_MODE=offline``. Returns the run's local folder.

    Raises:
        DeepCutError: wandb is not installed.
    """
    try:
        import wandb
    except ImportError:
        raise DeepCutError("--wandb needs the wandb package: pip install wandb") from None
    s = result.summary
    name = name or f"{s['dataset']}-{s['task']}-{s['method']['solver']}"
    run = wandb.init(project=project, name=name, job_type="eval", dir=str(result.out_dir),
                     config={"dataset": s["dataset"], "split": s["split"],
                             "resolution": s["resolution"], "annotators": s["annotators"],
                             "match": s["match"], **s["config"]})
    head = ["dataset", "split", "items", "scored", "failed", "resolution", "task", "solver",
            "backbone"]
    cols = head + list(s["metrics"])
    row = [s["dataset"], s["split"], s["n_items"], s["n_scored"], s["n_failed"],
           s["resolution"], s["task"], s["method"]["solver"], s["method"]["backbone"],
           *s["metrics"].values()]
    columns: list[str] = []
    for r in result.rows:
        columns += [k for k in r if k not in columns]
    per_image = [[r.get(c) for c in columns] for r in result.rows]
    run.log({"eval/summary": wandb.Table(columns=cols, data=[row]),
             "eval/per_image": wandb.Table(columns=columns, data=per_image)})
    run.summary.update({f"eval/{k}": v for k, v in s["metrics"].items()})
    folder = run.dir
    run.finish()
    return folder
