"""Tests for deepcut/data: tiny generated folders in each documented layout (nothing from shared/)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from deepcut.data import (
    BSDS500,
    CUB,
    DATASETS,
    ECSSD,
    SOD,
    COCO20k,
    DatasetLayoutError,
    VOCDataset,
    WeizmannSED,
    get_dataset,
)


def _rgb(path: Path, w: int, h: int, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (value, 50, 200)).save(path)


def _gray(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)


def _palette(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr.astype(np.uint8)).convert("P")
    im.putpalette([v for i in range(256) for v in (i * 7 % 256, i * 13 % 256, i * 29 % 256)])
    im.save(path)


# --------------------------------------------------------------------------------------------
# mask folders (ECSSD, DUTS-TE, DUT-OMRON, SOD)
def _mask_folder(root: Path, img_dir: str, mask_dir: str, ids=("b", "a")) -> None:
    for i, item in enumerate(ids):
        _rgb(root / img_dir / f"{item}.jpg", 6, 4)
        m = np.zeros((4, 6), np.uint8)
        m[1:3, i : i + 3] = 255
        m[0, 0] = 127  # anti-aliased edge below the 128 threshold
        _gray(root / mask_dir / f"{item}.png", m)


def test_sod_reads_list_and_binarises_masks(tmp_path):
    _mask_folder(tmp_path, "images", "masks")
    (tmp_path / "list.txt").write_text("b\na\n")
    ds = get_dataset("sod", tmp_path)
    assert isinstance(ds, SOD) and len(ds) == 2 and ds.ids == ["b", "a"]
    s = ds[1]
    assert s.id == "a" and s.image_path == tmp_path / "images" / "a.jpg"
    assert s.mask.dtype == np.uint8 and s.mask.shape == (4, 6)
    assert set(np.unique(s.mask)) == {0, 1} and s.mask.sum() == 6 and s.mask[0, 0] == 0
    assert s.image().mode == "RGB" and s.image().size == (6, 4)
    assert s.boxes is None and s.labels is None


def test_ecssd_finds_alternative_folder_names_sorted(tmp_path):
    _mask_folder(tmp_path, "img", "gt")  # TokenCut's ECSSD layout, no list.txt
    ds = ECSSD(tmp_path)
    assert ds.ids == ["a", "b"]
    assert ds[0].mask[1, 1] == 1


def test_mask_folder_custom_dirs_and_duts_names(tmp_path):
    _mask_folder(tmp_path, "DUTS-TE-Image", "DUTS-TE-Mask")
    assert get_dataset("DUTS-TE", tmp_path).ids == ["a", "b"]
    _mask_folder(tmp_path / "x", "pics", "gts")
    assert get_dataset("dut_omron", tmp_path / "x", image_dir="pics", mask_dir="gts").ids == ["a", "b"]


def test_mask_folder_bad_roots(tmp_path):
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        get_dataset("ecssd", tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="none of the folders"):
        get_dataset("ecssd", tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DatasetLayoutError, match="no items"):
        get_dataset("sod", tmp_path)


# --------------------------------------------------------------------------------------------
# PASCAL VOC
VOC_XML = """<annotation><filename>{id}.jpg</filename>
<size><width>10</width><height>8</height><depth>3</depth></size>{objects}</annotation>"""
VOC_OBJ = """<object><name>{name}</name><truncated>{trunc}</truncated><difficult>{diff}</difficult>
<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"""


def _voc(root: Path, with_sets: bool) -> None:
    objs = {
        "2007_000001": [("dog", 0, 0, 1, 1, 10, 8), ("cat", 1, 0, 3, 2, 5.0, 6)],
        "2007_000002": [("person", 0, 1, 2, 2, 4, 4)],
    }
    for item, obs in objs.items():
        _rgb(root / "JPEGImages" / f"{item}.jpg", 10, 8)
        body = "".join(
            VOC_OBJ.format(name=n, trunc=t, diff=d, x0=a, y0=b, x1=c, y1=e) for n, t, d, a, b, c, e in obs
        )
        (root / "Annotations").mkdir(exist_ok=True)
        (root / "Annotations" / f"{item}.xml").write_text(VOC_XML.format(id=item, objects=body))
    seg = np.zeros((8, 10), np.uint8)
    seg[2:6, 2:5] = 12
    seg[1, :] = 255
    _palette(root / "SegmentationClass" / "2007_000001.png", seg)
    if with_sets:
        (root / "ImageSets" / "Main").mkdir(parents=True)
        (root / "ImageSets" / "Main" / "trainval.txt").write_text("2007_000002\n2007_000001\n")
        (root / "ImageSets" / "Segmentation").mkdir(parents=True)
        (root / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000001\n")
    else:
        (root / "list.txt").write_text("2007_000001\n2007_000002\n")
        (root / "list_with_segmentation.txt").write_text("2007_000001\n")


def test_voc_devkit_layout_boxes_and_palette_labels(tmp_path):
    _voc(tmp_path / "VOCdevkit" / "VOC2007", with_sets=True)
    ds = get_dataset("voc07", tmp_path)
    assert ds.ids == ["2007_000002", "2007_000001"]
    s = ds[1]
    # 1-based inclusive (1, 1, 10, 8) is the whole 10x8 image: (0, 0, 10, 8) exclusive.
    assert s.boxes.dtype == np.int64
    assert s.boxes.tolist() == [[0, 0, 10, 8], [2, 1, 5, 6]]
    assert s.box_classes == ["dog", "cat"]
    assert s.extra["truncated"].tolist() == [False, True]
    assert s.labels.shape == (8, 10) and s.labels[3, 3] == 12 and s.labels[1, 0] == 255
    assert set(np.unique(s.labels)) == {0, 12, 255}  # palette indices, not colours
    assert ds[0].labels is None and ds[0].extra["difficult"].tolist() == [True]
    seg = get_dataset("voc07", tmp_path, task="segmentation")
    assert seg.ids == ["2007_000001"]


def test_voc_flat_layout_and_remove_hards(tmp_path):
    _voc(tmp_path, with_sets=False)
    ds = VOCDataset(tmp_path)
    assert ds.ids == ["2007_000001", "2007_000002"] and len(ds[1].boxes) == 1
    assert VOCDataset(tmp_path, task="segmentation").ids == ["2007_000001"]
    hard = VOCDataset(tmp_path, remove_hards=True)
    assert hard.ids == ["2007_000001"]  # 2007_000002 has only a difficult object
    assert hard[0].box_classes == ["dog"]  # the truncated cat is dropped


def test_voc_errors(tmp_path):
    _voc(tmp_path, with_sets=False)
    with pytest.raises(DatasetLayoutError, match="missing split list"):
        VOCDataset(tmp_path, split="trainval")
    with pytest.raises(DatasetLayoutError, match="JPEGImages"):
        get_dataset("voc12", tmp_path / "Annotations")
    with pytest.raises(ValueError, match="task"):
        VOCDataset(tmp_path, task="boxes")


# --------------------------------------------------------------------------------------------
# COCO20k
def test_coco20k_list_and_xywh_boxes(tmp_path):
    names = {9: "COCO_train2014_000000000009.jpg", 25: "COCO_train2014_000000000025.jpg",
             30: "COCO_train2014_000000000030.jpg"}
    for name in names.values():
        _rgb(tmp_path / "train2014" / name, 20, 10)
    coco = {
        "images": [{"id": i, "file_name": n, "width": 20, "height": 10} for i, n in names.items()],
        "annotations": [
            {"id": 1, "image_id": 9, "bbox": [1.2, 2.0, 5.6, 3.0], "category_id": 18, "iscrowd": 0},
            {"id": 2, "image_id": 9, "bbox": [0, 0, 20, 10], "category_id": 1, "iscrowd": 1},
            {"id": 3, "image_id": 25, "bbox": [3, 4, 2, 2], "category_id": 1, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train2014.json").write_text(json.dumps(coco))
    (tmp_path / "coco_20k_filenames.txt").write_text(
        "train2014/COCO_train2014_000000000025.jpg\ntrain2014/COCO_train2014_000000000009.jpg\n"
    )
    ds = get_dataset("coco20k", tmp_path)
    assert isinstance(ds, COCO20k) and ds.ids == ["COCO_train2014_000000000025", "COCO_train2014_000000000009"]
    s = ds[1]
    assert s.image_path == tmp_path / "train2014" / names[9]
    # (x, y, x + w, y + h) rounded: (1.2, 2, 6.8, 5) -> (1, 2, 7, 5)
    # the crowd box is dropped, as LOST scores CorLoc (remove_iscrowd=True)
    assert s.boxes.tolist() == [[1, 2, 7, 5]]
    assert s.box_classes == ["dog"] and s.extra["image_id"] == 9
    kept = COCO20k(tmp_path, include_crowd=True)[1]
    assert kept.boxes.tolist() == [[1, 2, 7, 5], [0, 0, 20, 10]]
    assert kept.box_classes == ["dog", "person"] and kept.extra["iscrowd"].tolist() == [0, 1]
    assert len(COCO20k(tmp_path, image_list=None)) == 2  # image 30 has no annotation
    (tmp_path / "bad.txt").write_text("train2014/COCO_train2014_000000099999.jpg\n")
    with pytest.raises(DatasetLayoutError, match="not in the JSON"):
        COCO20k(tmp_path, image_list="bad.txt")
    with pytest.raises(DatasetLayoutError, match="missing file"):
        COCO20k(tmp_path, annotation_file="annotations/none.json")


# --------------------------------------------------------------------------------------------
# CUB-200-2011
def test_cub_split_masks_parts_and_boxes(tmp_path):
    root = tmp_path / "CUB_200_2011"
    rels = {1: "001.Albatross/Albatross_0001_1.jpg", 2: "001.Albatross/Albatross_0002_2.jpg",
            3: "002.Auklet/Auklet_0003_3.jpg"}
    for rel in rels.values():
        _rgb(root / "images" / rel, 8, 6)
        soft = np.zeros((6, 8), np.uint8)
        soft[1:4, 2:6] = 200  # most annotators
        soft[4, 2:6] = 100  # a minority: below 128
        _gray((tmp_path / "segmentations" / rel).with_suffix(".png"), soft)  # next to root
    (root / "images.txt").write_text("".join(f"{i} {r}\n" for i, r in rels.items()))
    (root / "train_test_split.txt").write_text("1 1\n2 0\n3 0\n")
    (root / "parts").mkdir()
    locs = [f"{i} {p} {p + 0.5} {i} {int(p != 2)}" for i in rels for p in (1, 2, 3)]
    (root / "parts" / "part_locs.txt").write_text("\n".join(reversed(locs)) + "\n")
    (root / "parts" / "parts.txt").write_text("1 back\n2 beak\n3 belly\n")
    (root / "bounding_boxes.txt").write_text("1 1.0 1.0 4.0 3.0\n2 0.4 1.0 6.2 4.0\n3 0 0 8 6\n")
    ds = get_dataset("cub", root)
    assert ds.ids == ["Albatross_0002_2", "Auklet_0003_3"]
    assert [s.id for s in CUB(root, split="train")] == ["Albatross_0001_1"]
    assert len(CUB(root, split="all")) == 3
    s = ds[0]
    assert s.image_path == root / "images" / rels[2]
    assert s.mask.shape == (6, 8) and s.mask.sum() == 12 and s.mask[4, 3] == 0
    assert s.parts.shape == (3, 3) and s.parts.dtype == np.float32
    np.testing.assert_allclose(s.parts, [[1.5, 2, 1], [2.5, 2, 0], [3.5, 2, 1]])
    assert s.boxes.tolist() == [[0, 1, 7, 5]]
    assert ds.part_names == ["back", "beak", "belly"]
    assert CUB(root, segmentation_dir=None)[0].mask is None
    with pytest.raises(DatasetLayoutError, match="segmentation_dir=None"):
        CUB(root, segmentation_dir="masks_missing")


# --------------------------------------------------------------------------------------------
# BSDS500
def _bsds_mat(path: Path, maps: list[np.ndarray]) -> None:
    cells = np.empty((1, len(maps)), dtype=object)
    for k, m in enumerate(maps):
        cells[0, k] = {"Segmentation": m.astype(np.uint16), "Boundaries": np.zeros(m.shape, bool)}
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), {"groundTruth": cells})


def test_bsds_flat_layout_png_and_mat_agree(tmp_path):
    rng = np.random.default_rng(0)
    maps = {"12003": [rng.integers(1, 5, (6, 9)) for _ in range(3)], "2018": [rng.integers(1, 3, (6, 9))]}
    for item, ms in maps.items():
        _rgb(tmp_path / "images" / f"{item}.jpg", 9, 6)
        _bsds_mat(tmp_path / "groundTruth" / f"{item}.mat", ms)
        for k, m in enumerate(ms, start=1):
            _gray(tmp_path / "segmentations" / f"{item}_{k}.png", m)
    _gray(tmp_path / "segmentations" / "120030_1.png", maps["12003"][0])  # must not be picked up
    (tmp_path / "list.txt").write_text("2018\n12003\n")
    png, mat = get_dataset("bsds500", tmp_path), BSDS500(tmp_path, source="mat")
    assert png.source == "png" and png.ids == mat.ids == ["2018", "12003"]
    for a, b, item in zip(png, mat, png.ids):
        assert len(a.annotations) == len(b.annotations) == len(maps[item]) == a.extra["n_annotators"]
        for x, y, ref in zip(a.annotations, b.annotations, maps[item]):
            np.testing.assert_array_equal(x, ref)
            np.testing.assert_array_equal(y, ref)
            assert x.dtype == y.dtype == np.uint16


def test_bsds_official_layout(tmp_path):
    data = tmp_path / "BSDS500" / "data"
    m = np.arange(1, 13).reshape(3, 4)
    for split, item in (("test", "100007"), ("val", "3096")):
        _rgb(data / "images" / split / f"{item}.jpg", 4, 3)
        _bsds_mat(data / "groundTruth" / split / f"{item}.mat", [m, m + 1])
    ds = BSDS500(tmp_path)
    assert ds.ids == ["100007"] and ds.source == "mat"
    np.testing.assert_array_equal(ds[0].annotations[1], m + 1)
    assert BSDS500(tmp_path / "BSDS500", split="val").ids == ["3096"]
    with pytest.raises(DatasetLayoutError, match="segmentations"):
        BSDS500(tmp_path, source="png")


# --------------------------------------------------------------------------------------------
# Weizmann SED
def _weizmann(base: Path, item: str, anns: dict[int, np.ndarray], consensus: bool) -> None:
    _rgb(base / "images" / f"{item}.png", 5, 4)
    for k, a in anns.items():
        _gray(base / "annotations" / f"{item}_ann{k}.png", a)
    if consensus:
        votes = np.sum([a > 0 for a in anns.values()], axis=0)
        _gray(base / "masks" / f"{item}.png", (2 * votes > len(anns)) * 255)


def test_weizmann_sed1_and_sed2(tmp_path):
    a = np.zeros((4, 5), np.uint8)
    a[1:3, 1:4] = 1
    b = a.copy()
    b[3, :] = 1
    c = np.zeros_like(a)
    c[0, 0] = 1
    _weizmann(tmp_path / "1obj", "img_x", {9: a, 10: b, 7: c}, consensus=True)
    two = a * 2
    two[3, :] = 1
    _weizmann(tmp_path / "2obj", "pair", {3: two}, consensus=False)
    sed1 = get_dataset("weizmann_sed1", tmp_path)
    s = sed1[0]
    assert s.id == "img_x" and s.extra["annotators"] == [7, 9, 10]
    np.testing.assert_array_equal(s.annotations[0], c)
    np.testing.assert_array_equal(s.mask, a)  # majority of 3: a (= b minus a row shared by 1)
    sed2 = get_dataset("weizmann_sed2", tmp_path)
    s2 = sed2[0]
    assert set(np.unique(s2.annotations[0])) == {0, 1, 2}
    np.testing.assert_array_equal(s2.mask, (two > 0).astype(np.uint8))  # recomputed consensus
    assert WeizmannSED(tmp_path / "2obj", n_objects=2).ids == ["pair"]  # root = the obj folder
    with pytest.raises(DatasetLayoutError, match="annotations"):
        _rgb(tmp_path / "bare" / "images" / "q.png", 2, 2)
        WeizmannSED(tmp_path / "bare")


# --------------------------------------------------------------------------------------------
# registry and Sample
def test_registry_names_and_unknown_name():
    assert set(DATASETS) == {
        "ecssd", "duts_te", "dut_omron", "sod", "voc07", "voc12", "coco20k", "cub", "bsds500",
        "weizmann_sed1", "weizmann_sed2",
    }
    with pytest.raises(ValueError, match=r"Unknown dataset 'imagenet'; choose one of: bsds500, coco20k"):
        get_dataset("imagenet", ".")


def test_error_is_one_line(tmp_path):
    with pytest.raises(DatasetLayoutError) as info:
        get_dataset("bsds500", tmp_path)
    assert "\n" not in str(info.value) and str(info.value).startswith("bsds500: ")


def test_sample_image_applies_exif_orientation(tmp_path):
    _mask_folder(tmp_path, "images", "masks", ids=("a",))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.new("RGB", (6, 4), (10, 20, 30)).save(tmp_path / "images" / "a.jpg", exif=exif)
    img = SOD(tmp_path)[0].image()
    assert img.size == (4, 6) and img.mode == "RGB"


def test_binary_masks_by_gray_value_or_palette_index(tmp_path):
    """A grayscale (or gray-palette) mask is thresholded at 128; a colour-palette mask (VOC's
    palette on 0/1 indices, whose index 1 is dark red, luminance 38) is read by index."""
    from deepcut.data.masks import load_binary_mask

    idx = np.zeros((4, 6), np.uint8)
    idx[1:3, 2:5] = 1
    voc = Image.fromarray(idx, "P")
    voc.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
    voc.save(tmp_path / "voc.png")
    assert np.array_equal(load_binary_mask(tmp_path / "voc.png"), idx)
    gray = Image.fromarray(idx * 255, "L")
    gray.save(tmp_path / "gray.png")
    gray.convert("P").save(tmp_path / "gray_p.png")  # a gray palette: by value
    assert Image.open(tmp_path / "gray_p.png").mode == "P"
    for name in ("gray.png", "gray_p.png"):
        assert np.array_equal(load_binary_mask(tmp_path / name), idx), name
    Image.fromarray(idx * 100, "L").save(tmp_path / "soft.png")  # 100 < 128: background
    assert not load_binary_mask(tmp_path / "soft.png").any()
