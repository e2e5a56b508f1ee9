"""PASCAL VOC 2007 / 2012: boxes for CorLoc (LOST/TokenCut protocol) and class masks for mIoU."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from deepcut.data.base import Sample, SegmentationDataset, read_id_list
from deepcut.data.masks import load_label_map

__all__ = ["VOC07", "VOC12", "VOC_CLASSES", "VOCDataset", "parse_voc_xml"]

# Index = class id in SegmentationClass PNGs (0 background, 255 void).
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip


def parse_voc_xml(path: Path) -> dict:
    """Objects of one VOC annotation file.

    Returns:
        ``{"boxes": (M, 4) int64, "classes": [str] * M, "difficult": (M,) bool,
        "truncated": (M,) bool, "size": (height, width) or None}``. Boxes are converted from VOC's
        1-based inclusive ``xmin..xmax`` to deepcut's 0-based exclusive ``(xmin - 1, ymin - 1,
        xmax, ymax)``, as LOST does, so ``(1, 1, W, H)`` becomes the full image ``(0, 0, W, H)``.
    """
    tree = ET.parse(path).getroot()
    boxes, classes, difficult, truncated = [], [], [], []
    for obj in tree.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        # A few VOC2012 files store coordinates as decimals ("273.5"): int(float()) reads both.
        xmin, ymin, xmax, ymax = (int(float(bb.findtext(k, "0"))) for k in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append((xmin - 1, ymin - 1, xmax, ymax))
        classes.append((obj.findtext("name") or "").strip())
        difficult.append(obj.findtext("difficult", "0").strip() == "1")
        truncated.append(obj.findtext("truncated", "0").strip() == "1")
    size = tree.find("size")
    hw = None
    if size is not None and size.findtext("height") and size.findtext("width"):
        hw = (int(size.findtext("height")), int(size.findtext("width")))
    return {
        "boxes": np.asarray(boxes, dtype=np.int64).reshape(-1, 4),
        "classes": classes,
        "difficult": np.asarray(difficult, dtype=bool),
        "truncated": np.asarray(truncated, dtype=bool),
        "size": hw,
    }


class VOCDataset(SegmentationDataset):
    """PASCAL VOC, devkit layout or a flat layout (e.g. ``$DATA/voc2012_subset``).

    Layout (``root`` is the ``VOC<year>`` folder, or a folder holding ``VOC<year>/`` or
    ``VOCdevkit/VOC<year>/``)::

        JPEGImages/<id>.jpg
        Annotations/<id>.xml                 boxes: 1-based inclusive xmin..xmax (converted)
        SegmentationClass/<id>.png           palette indices: 0 bg, 1..20 classes, 255 void
        ImageSets/Main/<split>.txt           detection lists (trainval, test, ...)
        ImageSets/Segmentation/<split>.txt   segmentation lists (train, val, ...)
        list.txt, list_with_segmentation.txt flat-layout lists (used when ImageSets is absent)

    Which ids are used: ``list_file`` if given; else ``ImageSets/<Main|Segmentation>/<split>.txt``
    when ``split`` is given (an error if missing); else ``ImageSets/Main/trainval.txt`` (detection)
    or ``ImageSets/Segmentation/val.txt`` (segmentation) if present, else ``list.txt`` /
    ``list_with_segmentation.txt``, else every XML (detection) or PNG (segmentation).

    ``Sample.boxes`` ``(M, 4)`` int64 exclusive-corner boxes, ``Sample.box_classes`` names,
    ``Sample.extra["difficult"|"truncated"]`` ``(M,)`` bool; ``Sample.labels`` ``(H, W)`` uint8
    class map when a PNG exists (always for ``task="segmentation"``), else None.

    Args:
        root: see above.
        year: ``"2007"`` or ``"2012"`` (used to find ``VOC<year>`` below ``root``).
        split: image set name, or None for the default list described above.
        task: ``"detection"`` (all annotated images) or ``"segmentation"`` (images with masks).
        list_file: an explicit id list, relative to the VOC folder or absolute.
        remove_hards: LOST/TokenCut's "no hards" variant: drop difficult or truncated objects
            and the images left with none (parses every XML at construction).
    """

    name = "voc"
    layout = "a VOC folder with JPEGImages/ and Annotations/ (or VOCdevkit/VOC<year>/)"

    def __init__(
        self,
        root: str | Path,
        year: str | None = None,
        split: str | None = None,
        task: str = "detection",
        list_file: str | None = None,
        remove_hards: bool = False,
    ) -> None:
        super().__init__(root)
        if task not in ("detection", "segmentation"):
            raise ValueError(f"task must be 'detection' or 'segmentation'. Got {task!r} instead.")
        self.year, self.split, self.task, self.remove_hards = year, split, task, remove_hards
        self.voc_root = self._find_voc_root()
        self.image_dir = self.voc_root / "JPEGImages"
        self.ann_dir = self.voc_root / "Annotations"
        self.seg_dir = self.voc_root / "SegmentationClass"
        if task == "detection" and not self.ann_dir.is_dir():
            self._fail(f"missing folder {self.ann_dir}")
        if task == "segmentation" and not self.seg_dir.is_dir():
            self._fail(f"missing folder {self.seg_dir}")
        self._ids = self._list_ids(list_file)
        if remove_hards:
            self._ids = [i for i in self._ids if self._objects(i, drop_hards=True)["boxes"].size]
        self._check_not_empty()

    def _find_voc_root(self) -> Path:
        candidates = [self.root]
        if self.year:
            candidates += [self.root / f"VOC{self.year}", self.root / "VOCdevkit" / f"VOC{self.year}"]
        for c in candidates:
            if (c / "JPEGImages").is_dir():
                return c
        self._fail(f"no JPEGImages/ folder in {', '.join(str(c) for c in candidates)}")

    def _list_ids(self, list_file: str | None) -> list[str]:
        sets = self.voc_root / "ImageSets" / ("Main" if self.task == "detection" else "Segmentation")
        if list_file is not None:
            path = self.voc_root / list_file
            if not path.is_file():
                self._fail(f"missing list file {path}")
            return read_id_list(path)
        if self.split is not None:
            path = sets / f"{self.split}.txt"
            if not path.is_file():
                self._fail(f"missing split list {path} (pass list_file= for other layouts)")
            return read_id_list(path)
        default = sets / ("trainval.txt" if self.task == "detection" else "val.txt")
        flat = self.voc_root / ("list.txt" if self.task == "detection" else "list_with_segmentation.txt")
        for path in (default, flat):
            if path.is_file():
                return read_id_list(path)
        folder, ext = (self.ann_dir, ".xml") if self.task == "detection" else (self.seg_dir, ".png")
        return sorted(p.stem for p in folder.glob(f"*{ext}"))

    def _objects(self, item_id: str, drop_hards: bool) -> dict:
        path = self.ann_dir / f"{item_id}.xml"
        if not path.is_file():
            if self.task == "detection":
                self._fail(f"item {item_id!r} has no annotation {path}")
            return {"boxes": np.zeros((0, 4), np.int64), "classes": [],
                    "difficult": np.zeros(0, bool), "truncated": np.zeros(0, bool)}
        objs = parse_voc_xml(path)
        if drop_hards:
            keep = ~(objs["difficult"] | objs["truncated"])
            objs = {
                "boxes": objs["boxes"][keep],
                "classes": [c for c, k in zip(objs["classes"], keep) if k],
                "difficult": objs["difficult"][keep],
                "truncated": objs["truncated"][keep],
            }
        return objs

    def _load(self, item_id: str) -> Sample:
        image = self.image_dir / f"{item_id}.jpg"
        if not image.is_file():
            self._fail(f"item {item_id!r} has no image {image}")
        objs = self._objects(item_id, drop_hards=self.remove_hards)
        seg = self.seg_dir / f"{item_id}.png"
        if self.task == "segmentation" and not seg.is_file():
            self._fail(f"item {item_id!r} has no mask {seg}")
        labels = load_label_map(seg) if seg.is_file() else None
        return Sample(
            id=item_id,
            image_path=image,
            boxes=objs["boxes"],
            box_classes=objs["classes"],
            labels=labels,
            extra={"difficult": objs["difficult"], "truncated": objs["truncated"]},
        )


class VOC07(VOCDataset):
    """PASCAL VOC 2007 (CorLoc on ``trainval``, 5011 images). See :class:`VOCDataset`."""

    name = "voc07"

    def __init__(self, root: str | Path, year: str | None = "2007", **kwargs) -> None:
        super().__init__(root, year=year, **kwargs)


class VOC12(VOCDataset):
    """PASCAL VOC 2012 (CorLoc on ``trainval``, 11540 images; segmentation ``val``, 1449).
    See :class:`VOCDataset`."""

    name = "voc12"

    def __init__(self, root: str | Path, year: str | None = "2012", **kwargs) -> None:
        super().__init__(root, year=year, **kwargs)
