"""Tests for deepcut/metrics: hand-computed values, scikit-learn references, ignore-label invariance."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from deepcut.metrics import (
    ClusteringMeter,
    DatasetHungarianMeter,
    ForegroundMeter,
    PerImageHungarianMeter,
    ari,
    box_iou,
    confusion_matrix,
    corloc,
    corloc_hits,
    foreground_iou,
    hungarian_miou,
    labels_at_points,
    many_to_one_miou,
    mask_to_box,
    mask_to_boxes,
    max_f_beta,
    nmi,
    pixel_accuracy,
    precision_recall_curve,
    purity,
    resize_labels,
    resolution_tag,
    scores_from_contingency,
)


# --------------------------------------------------------------------------------------------
# boxes and CorLoc
def test_box_iou_hand_values_and_shape():
    a = np.array([[0, 0, 4, 4], [0, 0, 2, 1]])
    b = np.array([[2, 2, 6, 6], [0, 0, 1, 1], [10, 10, 10, 10]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    # 2x2 overlap of two 4x4 boxes: 4 / (16 + 16 - 4)
    assert iou[0, 0] == pytest.approx(4 / 28)
    assert iou[0, 1] == pytest.approx(1 / 16)
    assert iou[1, 1] == 0.5
    assert iou[0, 2] == 0.0  # zero-area box never overlaps


def test_box_iou_exclusive_convention():
    # (0, 0, 1, 1) is exactly one pixel: adjacent one-pixel boxes do not overlap.
    assert box_iou([0, 0, 1, 1], [1, 0, 2, 1])[0, 0] == 0.0
    assert box_iou([0, 0, 1, 1], [0, 0, 1, 1])[0, 0] == 1.0


def test_corloc_counts_exactly_at_threshold_and_not_below():
    gt = [np.array([[0, 0, 1, 1]]), np.array([[0, 0, 100, 1]])]
    at_edge = [0, 0, 2, 1]  # IoU = 1/2 exactly
    below = [0, 0, 201, 1]  # IoU = 100/201 < 1/2
    assert corloc_hits([at_edge, below], gt).tolist() == [True, False]
    assert corloc([at_edge, below], gt) == 0.5


def test_corloc_any_gt_box_and_missing_prediction():
    gts = [np.array([[50, 50, 60, 60], [0, 0, 10, 10]]), np.array([[0, 0, 10, 10]]), np.zeros((0, 4))]
    preds = [[0, 0, 10, 10], None, [0, 0, 10, 10]]
    assert corloc_hits(preds, gts).tolist() == [True, False, False]
    assert corloc(preds, gts) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="one predicted box"):
        corloc(preds[:2], gts)


def test_mask_to_box_and_components():
    m = np.zeros((6, 8), bool)
    m[1:3, 2:5] = True
    m[4:6, 6:8] = True
    assert mask_to_box(m).tolist() == [2, 1, 8, 6]
    assert mask_to_boxes(m).tolist() == [[2, 1, 5, 3], [6, 4, 8, 6]]
    assert mask_to_box(np.zeros((3, 3))) is None
    assert mask_to_boxes(np.zeros((3, 3))).shape == (0, 4)


# --------------------------------------------------------------------------------------------
# foreground
PRED = np.array([[1, 1, 0, 0], [0, 0, 0, 0]])
GT = np.array([[0, 1, 1, 0], [0, 0, 0, 0]])


def test_foreground_iou_and_accuracy_hand_values():
    assert foreground_iou(PRED, GT) == pytest.approx(1 / 3)
    assert pixel_accuracy(PRED, GT) == pytest.approx(6 / 8)
    # soft predictions are binarised at > 0.5 (TokenCut)
    assert foreground_iou(PRED * 0.7, GT) == pytest.approx(1 / 3)
    assert foreground_iou(PRED * 0.5, GT) == 0.0


def test_foreground_empty_union():
    z = np.zeros((2, 2))
    assert foreground_iou(z, z) == 1.0
    assert foreground_iou(z, z, empty_value=0.0) == 0.0
    assert pixel_accuracy(z, np.full((2, 2), 255)) != pixel_accuracy(z, np.full((2, 2), 255))  # nan


def test_foreground_ignore_pixels_change_nothing():
    gt = GT.copy()
    gt[1, :2] = 255
    p1, p2 = PRED.astype(float), PRED.astype(float)
    p2[1, :2] = [1.0, 0.3]  # only under ignore pixels
    assert foreground_iou(p1, gt) == foreground_iou(p2, gt) == pytest.approx(1 / 3)
    assert pixel_accuracy(p1, gt) == pixel_accuracy(p2, gt) == pytest.approx(4 / 6)
    for a, b in zip(precision_recall_curve(p1, gt), precision_recall_curve(p2, gt)):
        np.testing.assert_array_equal(a, b)
    # ...while the same change on a scored pixel does change the score
    p3 = p1.copy()
    p3[1, 2] = 1.0
    assert foreground_iou(p3, gt) == pytest.approx(1 / 4)


def test_foreground_rejects_0_255_masks():
    with pytest.raises(ValueError, match="0/1"):
        foreground_iou(PRED, GT * 255, ignore_index=None)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        foreground_iou(PRED * 255, GT)
    with pytest.raises(ValueError, match="does not match"):
        foreground_iou(PRED, GT[:, :2])


def _tokencut_max_f(preds, gts, beta_sq=0.3, bins=255):
    """Direct transcription of the TokenCut loop (thresholds j/255, pred > t), for reference."""
    f_all = []
    for pred, gt in zip(preds, gts):
        row = []
        for t in np.arange(0.0, 1.0, 1.0 / bins):
            m, g = pred > t, gt.astype(bool)
            tp = (m & g).sum()
            p = tp / m.sum() if m.sum() else 1.0
            r = tp / g.sum() if g.sum() else 1.0
            den = beta_sq * p + r
            row.append((1 + beta_sq) * p * r / den if den else 0.0)
        f_all.append(row)
    return np.mean(f_all, axis=0).max()


def test_max_f_beta_hand_value():
    # Image 1 F by threshold range: 13/23 (all on), 13/18 (P=2/3, R=1), 1/2, 13/16, 0.
    # Image 2: 13/23 (both on), then 0. Best mean: thresholds 39..63 -> (13/18 + 13/23) / 2.
    preds = [np.array([[0.9, 0.65, 0.35, 0.15]]), np.array([[0.25, 0.85]])]
    gts = [np.array([[1, 0, 1, 0]]), np.array([[1, 0]])]
    assert max_f_beta(preds[:1], gts[:1]) == pytest.approx(13 / 16)
    assert max_f_beta(preds, gts) == pytest.approx((13 / 18 + 13 / 23) / 2)
    meter = ForegroundMeter()
    for p, g in zip(preds, gts):
        meter.update(p, g)
    s = meter.compute()
    assert s.max_f == pytest.approx((13 / 18 + 13 / 23) / 2)
    assert s.best_threshold == pytest.approx(39 / 255)
    assert s.n_images == 2 and s.resolution == "original"


def test_max_f_beta_matches_tokencut_loop_on_random_maps():
    rng = np.random.default_rng(0)
    preds = [rng.random((7, 9)) for _ in range(3)] + [rng.integers(0, 2, (5, 5)).astype(bool)]
    gts = [rng.integers(0, 2, (7, 9)) for _ in range(3)] + [np.zeros((5, 5), int)]
    assert max_f_beta(preds, gts) == pytest.approx(_tokencut_max_f(preds, gts), abs=1e-12)


def test_foreground_meter_summary_and_resolution():
    meter = ForegroundMeter(size=(4, 8))
    meter.update(np.kron(PRED, np.ones((2, 2), int)), GT)  # pred at 2x, scored at 4x8
    meter.update(GT, GT)
    s = meter.compute()
    assert s.resolution == "4x8"
    assert s.iou == pytest.approx((1 / 3 + 1) / 2)
    assert s.accuracy == pytest.approx((0.75 + 1) / 2)
    np.testing.assert_allclose(s.per_image_iou, [1 / 3, 1])


# --------------------------------------------------------------------------------------------
# Hungarian and many-to-one matching
def test_permuted_labelling_scores_one_per_image_and_dataset():
    rng = np.random.default_rng(1)
    perm = np.array([3, 0, 4, 1, 2]) + 10
    gts = [rng.integers(0, 5, (12, 12)) for _ in range(3)]
    ds = DatasetHungarianMeter()
    for gt in gts:
        gt[0, :3] = 255
        pred = np.where(gt == 255, 7, perm[np.minimum(gt, 4)])
        r = hungarian_miou(pred, gt)
        assert r.miou == 1.0 and r.accuracy == 1.0
        assert r.mapping == {int(perm[c]): c for c in range(5)}
        ds.update(np.where(gt == 255, 0, pred - 10), gt)  # small non-negative ids
    assert ds.compute().miou == 1.0


def test_dataset_level_differs_from_per_image_when_labels_swap():
    gt = np.array([[0, 0, 1, 1]])
    preds = [np.array([[0, 0, 1, 1]]), np.array([[1, 1, 0, 0]])]
    ds, per = DatasetHungarianMeter(), PerImageHungarianMeter()
    for p in preds:
        ds.update(p, gt)
        per.update(p, gt)
    np.testing.assert_array_equal(ds.confusion_, [[2, 2], [2, 2]])
    assert ds.compute().miou == pytest.approx(1 / 3)  # 2 / (4 + 4 - 2)
    assert per.compute().miou == 1.0
    assert per.compute().mean_image_miou == 1.0


def test_more_clusters_than_classes():
    gt = np.array([[0, 0, 0, 0, 1, 1, 1, 1]])
    pred = np.array([[0, 0, 0, 2, 1, 1, 1, 1]])
    r = hungarian_miou(pred, gt)
    assert r.mapping == {0: 0, 1: 1}  # cluster 2 stays unmatched
    np.testing.assert_allclose(r.iou, [0.75, 1.0])
    assert r.miou == pytest.approx(0.875)
    m = many_to_one_miou(pred, gt)
    assert m.mapping == {0: 0, 1: 1, 2: 0}
    assert m.miou == 1.0


def test_more_classes_than_clusters():
    gt = np.array([[0, 0, 1, 1, 2, 2]])
    pred = np.array([[0, 0, 0, 0, 1, 1]])
    r = hungarian_miou(pred, gt)
    assert sorted(r.iou.tolist()) == [0.0, 0.5, 1.0]
    assert r.miou == pytest.approx(0.5)
    assert len(r.mapping) == 2


def test_count_and_iou_objectives_can_differ():
    # conf = [[0, 2], [2, 5]]: counts favour the diagonal (0 + 5 > 2 + 2), while IoU favours the
    # swap (2/7 + 2/7 > 0 + 5/9), so each objective attains the higher mIoU of its own choice.
    gt = np.array([[0, 0, 1, 1, 1, 1, 1, 1, 1]])
    pred = np.array([[1, 1, 0, 0, 1, 1, 1, 1, 1]])
    by_iou = hungarian_miou(pred, gt, match_on="iou")
    by_count = hungarian_miou(pred, gt, match_on="count")
    assert by_iou.mapping == {0: 1, 1: 0} and by_iou.miou == pytest.approx(2 / 7)
    assert by_count.mapping == {0: 0, 1: 1} and by_count.miou == pytest.approx(5 / 18)
    with pytest.raises(ValueError, match="match_on"):
        hungarian_miou(pred, gt, match_on="dice")


def test_background_merge_diffcut_rule():
    gt = np.array([[0, 0, 0, 0, 1, 1, 1, 2, 2, 2]])
    pred = np.array([[5, 5, 6, 6, 7, 7, 7, 8, 8, 8]])
    plain = hungarian_miou(pred, gt)
    assert plain.miou == pytest.approx((0.5 + 1 + 1) / 3)
    merged = hungarian_miou(pred, gt, background=0)
    assert merged.mapping == {5: 0, 6: 0, 7: 1, 8: 2}
    assert merged.miou == 1.0
    meter = DatasetHungarianMeter(background=0)
    meter.update(pred - 5, gt)
    assert meter.compute().miou == 1.0


def test_diffcut_all_classes_mode_and_summed_counts():
    per = PerImageHungarianMeter(match_on="count", n_classes=3)
    a = per.update(np.array([[0, 0, 1, 2]]), np.array([[0, 0, 1, 1]]))
    # The surplus cluster goes to the absent class 2, which then has FP = 1 and IoU 0.
    np.testing.assert_allclose(a.iou, [1.0, 0.5, 0.0])
    assert a.miou == pytest.approx(0.5)
    assert hungarian_miou(np.array([[0, 0, 1, 2]]), np.array([[0, 0, 1, 1]])).miou == 0.75
    b = per.update(np.array([[3, 3, 3, 3]]), np.array([[2, 2, 2, 2]]))
    assert b.miou == 1.0  # classes 0 and 1 absent from both: nan, skipped
    s = per.compute()
    # tp = [2, 1, 4], fp = [0, 0, 1], fn = [0, 1, 0]
    np.testing.assert_allclose(s.iou, [1.0, 0.5, 0.8])
    assert s.miou == pytest.approx(2.3 / 3)
    assert s.mean_image_miou == pytest.approx(0.75)
    assert s.accuracy == pytest.approx(7 / 8)


def test_matching_ignores_void_pixels():
    gt = np.array([[0, 0, 255, 1, 1, 255]])
    p1 = np.array([[4, 4, 4, 9, 9, 9]])
    p2 = np.array([[4, 4, 9, 9, 9, 4]])  # differs only under 255
    for fn in (hungarian_miou, many_to_one_miou):
        assert fn(p1, gt).miou == fn(p2, gt).miou == 1.0
    np.testing.assert_array_equal(confusion_matrix(p1, gt), confusion_matrix(p2, gt))
    assert confusion_matrix(p1, gt).sum() == 4


def test_matching_rejects_bad_input():
    with pytest.raises(ValueError, match="non-negative"):
        hungarian_miou(np.array([[-1, 0]]), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="n_classes"):
        hungarian_miou(np.array([[0, 0]]), np.array([[0, 5]]), n_classes=3)
    with pytest.raises(ValueError, match="method"):
        DatasetHungarianMeter(method="greedy")


def test_meter_resolution_128():
    gt = np.zeros((256, 200), int)
    gt[:, 100:] = 1
    pred = 1 - gt
    m = DatasetHungarianMeter(size=(128, 128))
    m.update(pred, gt)
    r = m.compute()
    assert r.resolution == "128x128" and r.miou == 1.0
    assert m.confusion_.sum() == 128 * 128


# --------------------------------------------------------------------------------------------
# clustering scores
def test_nmi_ari_equal_sklearn_on_valid_pixels():
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 4, (20, 20))
    pred = (gt + (rng.random((20, 20)) < 0.3) * rng.integers(0, 3, (20, 20))) % 5
    gt[rng.random((20, 20)) < 0.2] = 255
    v = gt != 255
    assert nmi(pred, gt) == pytest.approx(normalized_mutual_info_score(gt[v], pred[v]), abs=1e-12)
    assert ari(pred, gt) == pytest.approx(adjusted_rand_score(gt[v], pred[v]), abs=1e-12)
    assert 0 < nmi(pred, gt) < 1
    fg = v & (gt != 0)
    assert nmi(pred, gt, mask=gt != 0) == pytest.approx(
        normalized_mutual_info_score(gt[fg], pred[fg]), abs=1e-12
    )
    # changing predictions under ignore pixels changes nothing
    pred2 = np.where(v, pred, 3)
    assert nmi(pred2, gt) == nmi(pred, gt) and ari(pred2, gt) == ari(pred, gt)


def test_clustering_meter_equals_sklearn_on_pooled_pixels():
    rng = np.random.default_rng(3)
    gts = [rng.integers(0, 3, (9, 11)) for _ in range(3)]
    preds = [(g + rng.integers(0, 2, g.shape)) % 4 for g in gts]
    m = ClusteringMeter(foreground_only=True)
    for p, g in zip(preds, gts):
        m.update(p, g)
    g_all = np.concatenate([g.ravel() for g in gts])
    p_all = np.concatenate([p.ravel() for p in preds])
    fg = g_all != 0
    s = m.compute()
    assert s.n_pixels == fg.sum()
    assert s.nmi == pytest.approx(normalized_mutual_info_score(g_all[fg], p_all[fg]), abs=1e-12)
    assert s.ari == pytest.approx(adjusted_rand_score(g_all[fg], p_all[fg]), abs=1e-12)
    assert s.purity == pytest.approx(purity(p_all[fg], g_all[fg]))


@pytest.mark.parametrize(
    "pred, gt",
    [([0, 0, 0], [1, 1, 1]), ([0, 1, 2], [0, 0, 0]), ([0, 0, 1, 1], [0, 1, 0, 1]), ([0, 1], [1, 0])],
)
def test_contingency_scores_match_sklearn_special_cases(pred, gt):
    table = np.zeros((3, 3), int)
    np.add.at(table, (np.array(gt), np.array(pred)), 1)
    s = scores_from_contingency(table)
    assert s["nmi"] == pytest.approx(normalized_mutual_info_score(gt, pred))
    assert s["ari"] == pytest.approx(adjusted_rand_score(gt, pred))


def test_purity_hand_value():
    pred = np.array([0, 0, 0, 1, 1, 1])
    gt = np.array([0, 0, 1, 1, 1, 2])
    assert purity(pred, gt) == pytest.approx(4 / 6)  # majorities: 2 (class 0) + 2 (class 1)
    assert purity(np.arange(6), gt) == 1.0  # over-segmentation is always pure


def test_labels_at_points():
    labels = np.arange(12).reshape(3, 4)
    vals, idx = labels_at_points(labels, [[0, 0], [3.4, 2.2], [1, 1], [9, 9]], [1, 1, 0, 1])
    assert vals.tolist() == [0, 11, 11] and idx.tolist() == [0, 1, 3]


# --------------------------------------------------------------------------------------------
# resolution
def test_resize_labels_nearest_and_dtype():
    lab = np.array([[0, 1], [2, 255]], dtype=np.uint16)
    up = resize_labels(lab, (4, 4))
    assert up.dtype == np.uint16
    assert up.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 255], [2, 2, 255, 255]]
    assert resize_labels(up, (2, 2)).tolist() == lab.tolist()
    assert set(np.unique(resize_labels(np.arange(35).reshape(5, 7), (128, 128)))) <= set(range(35))
    assert resolution_tag(None) == "original" and resolution_tag((128, 128)) == "128x128"
    with pytest.raises(ValueError, match="height, width"):
        resize_labels(lab, (0, 4))
