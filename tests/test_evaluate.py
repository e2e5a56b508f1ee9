"""Tests for deepcut/evaluate.py and eval.py on small generated folders (nothing from shared/)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image
from PIL import Image
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from deepcut.cli.evaluate import main
from deepcut.config import SegmenterConfig
from deepcut.data import get_dataset
from deepcut.errors import ConfigError, DeepCutError, ImageReadError
from deepcut.evaluate import evaluate, parse_eval_size, scoring_kind
from deepcut.io import read_label_map
from deepcut.metrics import (
    ForegroundMeter,
    box_iou,
    corloc,
    foreground_iou,
    hungarian_miou,
    many_to_one_miou,
    nmi,
    pixel_accuracy,
    purity,
)
from deepcut.pipeline import Prediction, Segmenter
from deepcut.tasks import list_tasks

W, H = 96, 64  # conftest.make_image: a red square at rows H/4..3H/4, columns W/3..2W/3
CFG = {"backbone": "classic", "size": 64, "task": "segment", "solver": "gnn", "seed": 0}
FAST = ["--backbone", "classic", "--size", "64", "--task", "segment", "--solver", "gnn",
        "--quiet"]


def _object_mask(shift: int = 0) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[H // 4: 3 * H // 4, W // 3 + shift: 2 * W // 3 + shift] = 1
    return m


@pytest.fixture
def sod_root(tmp_path) -> Path:
    """Mask-folder layout (images/ + masks/ 0/255 + list.txt), 4 items."""
    root = tmp_path / "sod"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    ids = [f"im{i}" for i in range(4)]
    for i, item in enumerate(ids):
        make_image(root / "images" / f"{item}.png", size=(W, H), seed=i)
        Image.fromarray(_object_mask(shift=4 * i) * 255).save(root / "masks" / f"{item}.png")
    (root / "list.txt").write_text("\n".join(ids) + "\n")
    return root


def _voc_xml(item: str, boxes: list[tuple[int, int, int, int]]) -> str:
    objs = "".join(
        f"<object><name>cat</name><difficult>0</difficult><truncated>0</truncated><bndbox>"
        f"<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for x0, y0, x1, y1 in boxes)
    return (f"<annotation><filename>{item}.jpg</filename><size><width>{W}</width>"
            f"<height>{H}</height><depth>3</depth></size>{objs}</annotation>")


@pytest.fixture
def voc_root(tmp_path) -> Path:
    """Flat VOC layout: JPEGImages, Annotations (1-based inclusive boxes), SegmentationClass for
    two of three items (palette PNG, 8 = cat, 255 = void band), list.txt."""
    root = tmp_path / "voc"
    for d in ("JPEGImages", "Annotations", "SegmentationClass"):
        (root / d).mkdir(parents=True)
    boxes = {"a": [(33, 17, 64, 48)], "b": [(1, 1, 20, 20), (33, 17, 64, 48)],
             "c": [(1, 1, 10, 10)]}
    for i, (item, bx) in enumerate(boxes.items()):
        src = make_image(root / f"{item}.png", size=(W, H), seed=i)
        Image.open(src).save(root / "JPEGImages" / f"{item}.jpg", quality=95)
        src.unlink()
        (root / "Annotations" / f"{item}.xml").write_text(_voc_xml(item, bx))
        if item != "c":
            cls = _object_mask() * 8
            cls[H // 4 - 1, :] = 255  # void boundary row
            im = Image.fromarray(cls).convert("P")
            im.putpalette([v for k in range(256) for v in (k, k, k)])
            im.save(root / "SegmentationClass" / f"{item}.png")
    (root / "list.txt").write_text("a\nb\nc\n")
    return root


@pytest.fixture
def bsds_root(tmp_path) -> Path:
    """BSDS flat layout with two annotators per image (segment ids 1..N)."""
    root = tmp_path / "bsds"
    (root / "images").mkdir(parents=True)
    (root / "segmentations").mkdir()
    for i, item in enumerate(("x1", "x2")):
        make_image(root / "images" / f"{item}.png", size=(W, H), seed=i)
        Image.open(root / "images" / f"{item}.png").save(root / "images" / f"{item}.jpg")
        a1 = np.ones((H, W), np.uint8)
        a1[:, W // 2:] = 2
        a2 = a1.copy()
        a2[: H // 2] = 3
        for k, a in enumerate((a1, a2), start=1):
            Image.fromarray(a).save(root / "segmentations" / f"{item}_{k}.png")
    return root


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "per_image.csv", newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------------------------
def test_numbers_equal_metrics_on_saved_predictions(sod_root, tmp_path):
    ds = get_dataset("sod", sod_root)
    res = evaluate(ds, SegmenterConfig(**CFG), "segment", tmp_path / "out", progress=False)
    meter = ForegroundMeter()
    rows = {r["id"]: r for r in _rows(tmp_path / "out")}
    for s in ds:
        pred = read_label_map(tmp_path / "out" / "predictions" / f"{s.id}.png") > 0
        meter.update(pred, s.mask)
        assert float(rows[s.id]["iou"]) == foreground_iou(pred, s.mask)  # CSV round-trips
        assert float(rows[s.id]["accuracy"]) == pixel_accuracy(pred, s.mask)
    ref = meter.compute()
    assert res.metrics["iou"] == ref.iou and res.metrics["accuracy"] == ref.accuracy
    assert res.metrics["max_f"] == ref.max_f
    assert res.summary["counts"]["iou"] == 4 and res.summary["n_failed"] == 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["metrics"] == res.metrics
    assert 0.0 <= res.metrics["iou"] <= 1.0 and res.metrics["n_clusters"] == 5  # classic: 5-way cut, saliency rule


def test_scoring_resolution_resizes_both_maps(sod_root, tmp_path):
    ds = get_dataset("sod", sod_root)
    res = evaluate(ds, SegmenterConfig(**CFG), "segment", tmp_path / "o", size="32x48",
                   progress=False)
    assert res.summary["resolution"] == "32x48"
    meter = ForegroundMeter(size=(32, 48))
    for s in ds:
        meter.update(read_label_map(tmp_path / "o" / "predictions" / f"{s.id}.png") > 0, s.mask)
    assert res.metrics["iou"] == pytest.approx(meter.compute().iou, abs=1e-12)
    assert "32x48" in (tmp_path / "o" / "summary.md").read_text()


def test_voc_corloc_from_predicted_boxes_and_ignored_void(voc_root, tmp_path):
    ds = get_dataset("voc12", voc_root)
    # 128 px: at 64 px (an 8 x 12 grid) the classic features' context windows widen the mask
    # by one patch on each side, and the planted 4 x 4-patch object's box falls to IoU 0.44
    cfg = SegmenterConfig(**{**CFG, "size": 128})
    res = evaluate(ds, cfg, "segment", tmp_path / "out", progress=False)
    pred_boxes, gts, meter = [], [], ForegroundMeter()
    for s in ds:
        rec = json.loads((tmp_path / "out" / "predictions" / f"{s.id}.json").read_text())
        pred_boxes.append(rec["box"])
        gts.append(s.boxes)
        if s.labels is not None:
            fg = np.where(s.labels == 255, 255, s.labels > 0).astype(np.uint8)
            meter.update(read_label_map(tmp_path / "out" / "predictions" / f"{s.id}.png") > 0, fg)
    assert res.metrics["corloc"] == corloc(pred_boxes, gts)
    assert res.summary["counts"]["corloc"] == 3 and res.summary["counts"]["iou"] == 2
    assert res.metrics["iou"] == meter.compute().iou
    rows = _rows(tmp_path / "out")
    for row, box, gt in zip(rows, pred_boxes, gts):
        assert float(row["box_iou"]) == pytest.approx(box_iou(box, gt).max())
        assert float(row["corloc"]) == float(box_iou(box, gt).max() >= 0.5)
    # the planted object matches box a: that image must be localised
    assert rows[0]["corloc"] == "1.0"


class _Interrupting:
    """A segmenter that counts its calls and raises KeyboardInterrupt after ``after`` calls."""

    def __init__(self, after: int | None = None, **overrides):
        self.seg = Segmenter(SegmenterConfig(**{**CFG, **overrides}))
        self.config, self.after, self.calls = self.seg.config, after, 0

    @property
    def backbone(self):
        return self.seg.backbone

    def __call__(self, image):
        if self.after is not None and self.calls >= self.after:
            raise KeyboardInterrupt
        self.calls += 1
        return self.seg(image)


@pytest.mark.slow  # end to end: tens of seconds on a busy 2-core machine
def test_resume_after_interruption_equals_uninterrupted_run(sod_root, tmp_path):
    ds = get_dataset("sod", sod_root)
    full = evaluate(ds, SegmenterConfig(**CFG), None, tmp_path / "full", progress=False)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        evaluate(ds, _Interrupting(after=2), None, out, progress=False)
    done = sorted(p.name for p in (out / "predictions").glob("*.json"))
    assert done == ["im0.json", "im1.json"]
    stamps = {p: (out / "predictions" / p).stat().st_mtime_ns for p in done}
    second = _Interrupting()
    res = evaluate(ds, second, None, out, progress=False)
    assert second.calls == 2  # only the two unfinished items were segmented
    assert all((out / "predictions" / p).stat().st_mtime_ns == t for p, t in stamps.items())
    assert (res.summary["this_run"]["predicted"], res.summary["this_run"]["reused"]) == (2, 2)
    drop = {"seconds_per_image"}  # timing differs between runs; every score must not
    assert {k: v for k, v in res.metrics.items() if k not in drop} == \
        {k: v for k, v in full.metrics.items() if k not in drop}
    assert res.summary["counts"] == full.summary["counts"]
    strip = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in _rows(out)] == \
        [{k: v for k, v in r.items() if k not in strip} for r in _rows(tmp_path / "full")]
    # a third run recomputes nothing at all
    third = _Interrupting(after=0)
    assert evaluate(ds, third, None, out, progress=False).metrics == res.metrics


def test_summary_states_dataset_split_count_resolution_config(sod_root, tmp_path):
    ds = get_dataset("sod", sod_root)
    res = evaluate(ds, SegmenterConfig(**CFG), "segment", tmp_path / "o", limit=3,
                   progress=False)
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["dataset"] == "sod" and s["root"] == str(sod_root)
    assert s["split"] == "default (ids of list.txt)"
    assert (s["n_items"], s["n_dataset"], s["n_scored"], s["limit"]) == (3, 4, 3, 3)
    assert s["resolution"] == "original" and "original image size" in s["resolution_note"]
    # the config that ran: the graph resolved for the backbone (classic's segment: ncut)
    assert s["config"] == SegmenterConfig(**CFG).resolved("classic").to_dict()
    assert s["config"]["graph"] == "ncut"
    assert s["method"]["backbone"] == "classic" and s["method"]["weights_id"] == "none"
    assert set(s["definitions"]) == set(s["metrics"])
    md = (tmp_path / "o" / "summary.md").read_text()
    for text in ("`sod`", "default (ids of list.txt)", "3 evaluated of 4 (limit 3)",
                 "| resolution | original", '"solver": "gnn"', '"size": 64', "iou (%)"):
        assert text in md, text
    assert len(_rows(tmp_path / "o")) == 3 and res.summary["n_scored"] == 3


def test_bad_image_reported_skipped_and_counted(sod_root, tmp_path, capsys):
    (sod_root / "images" / "im2.png").write_bytes(b"not a png at all")
    out = tmp_path / "o"
    code = main(["--dataset", "sod", "--root", str(sod_root), "--out", str(out), *FAST])
    assert code == 1  # the others were scored; one failed
    err = capsys.readouterr().err
    assert "skipped im2" in err and "not a readable image" in err
    s = json.loads((out / "summary.json").read_text())
    assert (s["n_items"], s["n_scored"], s["n_failed"]) == (4, 3, 1)
    assert s["failed"][0]["id"] == "im2" and "not a readable image" in s["failed"][0]["error"]
    assert s["counts"]["iou"] == 3
    rows = {r["id"]: r for r in _rows(out)}
    assert rows["im2"]["status"] == "failed" and rows["im2"]["iou"] == ""
    assert rows["im1"]["status"] == "ok"
    assert "Failed items (1" in (out / "summary.md").read_text()


def test_cli_flags_and_yaml_config_give_the_same_table(sod_root, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["--dataset", "sod", "--root", str(sod_root), "--out", str(a), "--limit", "2",
                 *FAST]) == 0
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(f"dataset: sod\nroot: {sod_root}\nlimit: 2\nout: {b}\n"
                   "task: segment\nsolver: gnn\nbackbone: classic\nsize: 64\n")
    assert main(["--config", str(cfg), "--quiet"]) == 0
    ja, jb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert ja["metrics"].keys() == jb["metrics"].keys() and ja["config"] == jb["config"]
    assert ja["metrics"]["iou"] == jb["metrics"]["iou"] and jb["n_items"] == 2
    capsys.readouterr()
    # the table is printed, and one-line errors for bad input
    assert main(["--dataset", "sod", "--root", str(sod_root), "--out", str(a), "--limit", "2",
                 "--backbone", "classic", "--size", "64"]) == 0
    assert "| iou (%) |" in capsys.readouterr().out
    assert main(["--root", str(sod_root), *FAST]) == 2
    assert "--dataset is required" in capsys.readouterr().err
    assert main(["--dataset", "sod", "--root", str(tmp_path / "nope"), *FAST]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--dataset", "sod", "--root", str(sod_root), "--split", "test", *FAST]) == 2
    assert "does not accept" in capsys.readouterr().err
    out = tmp_path / "bad_size"
    assert main(["--dataset", "sod", "--root", str(sod_root), "--eval-size", "x", "--out",
                 str(out), *FAST]) == 2
    assert "eval size must be" in capsys.readouterr().err
    assert not out.exists()  # refused before any folder was made


def test_html_is_infer_only_and_eval_refuses_it(tmp_path, capsys):
    """eval.py writes no explorer page, so it does not take (or advertise) infer's --html."""
    from deepcut.cli.evaluate import build_parser

    assert "--html" not in build_parser().format_help()
    with pytest.raises(SystemExit) as e:
        main(["--dataset", "sod", "--root", str(tmp_path), "--task", "hierarchy", "--html"])
    assert e.value.code == 2
    assert "unrecognized arguments: --html" in capsys.readouterr().err


@pytest.mark.slow  # end to end: tens of seconds on a busy 2-core machine
def test_changed_config_never_mixes_with_old_predictions(sod_root, tmp_path):
    ds = get_dataset("sod", sod_root)
    evaluate(ds, SegmenterConfig(**CFG), None, tmp_path / "o", limit=1, progress=False)
    with pytest.raises(DeepCutError, match="different config.seed"):
        evaluate(ds, SegmenterConfig(**{**CFG, "seed": 1}), None, tmp_path / "o", limit=1,
                 progress=False)
    res = evaluate(ds, SegmenterConfig(**{**CFG, "seed": 1}), None, tmp_path / "o", limit=1,
                   overwrite=True, progress=False)
    assert res.summary["config"]["seed"] == 1 and res.summary["this_run"]["predicted"] == 1
    # an overwrite run interrupted half-way leaves records of two configs on disk; resuming
    # recomputes the stale ones instead of mixing them into the table
    evaluate(ds, SegmenterConfig(**CFG), None, tmp_path / "p", limit=3, progress=False)
    with pytest.raises(KeyboardInterrupt):
        evaluate(ds, _Interrupting(after=1, seed=2), None, tmp_path / "p", limit=3,
                 overwrite=True, progress=False)
    resumed = _Interrupting(seed=2)
    res = evaluate(ds, resumed, None, tmp_path / "p", limit=3, progress=False)
    assert resumed.calls == 2 and res.summary["this_run"]["reused"] == 1
    seeds = {json.loads(p.read_text())["config"]["seed"]
             for p in (tmp_path / "p" / "predictions").glob("*.json")}
    assert seeds == {2}


class _FixedRegions:
    """A 'regions' method returning a fixed 3-region labelling (ids 4, 7, 9)."""

    def __init__(self, task: str = "fixed_regions"):
        self.config = SegmenterConfig(backbone="classic", task=task)

    def __call__(self, image) -> Prediction:
        lab = np.full((image.height, image.width), 4, np.uint8)
        lab[:, image.width // 2:] = 7
        lab[: image.height // 4] = 9
        return Prediction(labels=lab, patch_labels=lab[::8, ::8], label_names={}, box=None,
                          n_clusters=3, ncut=0.5, timings={},
                          meta={"config": self.config.to_dict()})


@pytest.mark.parametrize("rule", ["mean", "best"])
def test_regions_scored_against_each_annotator(bsds_root, tmp_path, rule):
    ds = get_dataset("bsds500", bsds_root)
    res = evaluate(ds, _FixedRegions(), None, tmp_path / rule, annotators=rule, progress=False)
    assert scoring_kind("fixed_regions") == "regions" and res.summary["annotators"] == rule
    combine = np.mean if rule == "mean" else np.max
    for key, fn in (("nmi", lambda p, a: normalized_mutual_info_score(a.ravel(), p.ravel())),
                    ("ari", lambda p, a: adjusted_rand_score(a.ravel(), p.ravel())),
                    ("miou", lambda p, a: hungarian_miou(p, a, ignore_index=None).miou),
                    ("purity", lambda p, a: purity(p, a, ignore_index=None))):
        per_image = []
        for s in ds:
            pred = read_label_map(tmp_path / rule / "predictions" / f"{s.id}.png")
            per_image.append(combine([fn(pred, a) for a in s.annotations]))
        assert res.metrics[key] == pytest.approx(np.mean(per_image), abs=1e-12), key
    assert res.summary["counts"]["nmi"] == 2 and "iou" not in res.metrics


def test_regions_many_to_one_and_class_maps(voc_root, tmp_path):
    ds = get_dataset("voc12", voc_root, task="segmentation")
    res = evaluate(ds, _FixedRegions(), None, tmp_path / "m", match="majority", progress=False)
    per_image = []
    for s in ds:
        pred = read_label_map(tmp_path / "m" / "predictions" / f"{s.id}.png")
        per_image.append(many_to_one_miou(pred, s.labels).miou)
        assert nmi(pred, s.labels) == pytest.approx(
            float(next(r["nmi"] for r in _rows(tmp_path / "m") if r["id"] == s.id)), abs=1e-12)
    assert res.metrics["miou"] == pytest.approx(np.mean(per_image), abs=1e-12)
    assert {"miou_pooled", "miou_dataset", "nmi_pooled", "ari_pooled"} <= set(res.metrics)
    preds = [read_label_map(tmp_path / "m" / "predictions" / f"{s.id}.png") for s in ds]
    valid = [s.labels != 255 for s in ds]
    pooled_pred = np.concatenate([p[v] for p, v in zip(preds, valid)])
    pooled_gt = np.concatenate([s.labels[v] for s, v in zip(ds, valid)])
    assert res.metrics["nmi_pooled"] == pytest.approx(
        normalized_mutual_info_score(pooled_gt, pooled_pred), abs=1e-12)
    assert res.summary["match"] == "majority"


def test_task_without_matching_ground_truth_is_refused(bsds_root, tmp_path):
    with pytest.raises(ConfigError, match="cannot be scored on bsds500"):
        evaluate(get_dataset("bsds500", bsds_root), SegmenterConfig(**CFG), None, tmp_path / "o")


def test_region_tasks_other_than_parts_are_refused_on_masks(sod_root, tmp_path):
    """A fg/bg mask scores the parts task's object; kless (or clusters, hierarchy) would run
    and score nothing at all."""
    from deepcut.evaluate import _check_scorable

    ds = get_dataset("sod", sod_root)
    with pytest.raises(ConfigError, match="'kless' cannot be scored on sod: its items have no "
                                          "annotator segmentations, a class map or part keypoints"):
        evaluate(ds, SegmenterConfig(**{**CFG, "task": "kless"}), None, tmp_path / "o")
    assert not (tmp_path / "o").exists()
    _check_scorable(ds[0], "regions", "parts", "sod")  # accepted


def test_parse_eval_size():
    assert parse_eval_size(None) is None and parse_eval_size("original") is None
    assert parse_eval_size(128) == (128, 128) and parse_eval_size("32x48") == (32, 48)
    assert parse_eval_size((10, 20)) == (10, 20)
    with pytest.raises(ConfigError, match="eval size"):
        parse_eval_size("0x5")


def test_wandb_offline_logs_the_table(sod_root, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "o"
    assert main(["--dataset", "sod", "--root", str(sod_root), "--out", str(out), "--limit", "1",
                 "--wandb", *FAST]) == 0
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))


@pytest.mark.skipif(not ({"kless", "parts"} & set(list_tasks())),
                    reason="no multi-region task registered yet")
@pytest.mark.slow  # end to end: tens of seconds on a busy 2-core machine
def test_real_multi_region_task_on_annotators(bsds_root, tmp_path):
    task = "kless" if "kless" in list_tasks() else "parts"
    res = evaluate(get_dataset("bsds500", bsds_root), SegmenterConfig(**{**CFG, "task": task}),
                   None, tmp_path / "o", progress=False)
    assert res.summary["n_failed"] == 0 and {"nmi", "ari", "miou", "purity"} <= set(res.metrics)


class _Broken(_FixedRegions):
    """A method that always raises ``error``."""

    def __init__(self, error: Exception):
        super().__init__(task="segment")
        self.error = error

    def __call__(self, image):
        raise self.error


def test_a_method_that_always_crashes_stops_instead_of_skipping_everything(sod_root, tmp_path):
    ds = get_dataset("sod", sod_root)
    with pytest.raises(DeepCutError, match="failed on the first 3 items .*TypeError: boom"):
        evaluate(ds, _Broken(TypeError("boom")), None, tmp_path / "a", progress=False)
    # unreadable images are the data's fault: every one is reported, skipped and counted
    res = evaluate(ds, _Broken(ImageReadError("x.png: not a readable image")), None,
                   tmp_path / "b", progress=False)
    assert (res.summary["n_failed"], res.summary["n_scored"], res.metrics) == (4, 0, {})


def test_per_image_miou_on_class_maps_merges_background_as_the_pooled_ones():
    """VOC-style class map, the object found exactly and the background cut into 3 bands: under
    hungarian every mIoU (per image, pooled, dataset) merges background clusters many-to-one
    (DiffCut's rule), so all three are 1; plain one-to-one matching would give (3/8 + 1) / 2."""
    from deepcut.data.base import Sample
    from deepcut.evaluate import _Scorer

    gt = np.zeros((12, 12), np.int64)
    gt[4:8, 4:8] = 5
    pred = np.repeat(np.array([1, 2, 3]), 4)[:, None].repeat(12, 1)
    pred[4:8, 4:8] = 0
    scorer = _Scorer("regions", None, "mean", "hungarian")
    row = scorer.add(Sample(id="a", image_path=Path("a.png"), labels=gt), pred, {})
    metrics, _ = scorer.results("regions")
    assert row["miou"] == metrics["miou_pooled"] == metrics["miou_dataset"] == 1.0
    plain = _Scorer("regions", None, "mean", "hungarian")._region_scores(pred, gt, 255)
    assert plain["miou"] == pytest.approx((48 / 128 + 1) / 2)  # bg matched to one 48 px band
