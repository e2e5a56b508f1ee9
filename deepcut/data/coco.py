"""COCO20k: the 19,817-image subset of COCO train2014 used for CorLoc by LOST, TokenCut and DeepCut."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from deepcut.data.base import Sample, SegmentationDataset

__all__ = ["COCO20k"]


class COCO20k(SegmentationDataset):
    """COCO boxes for single-object discovery, restricted to an image list.

    Layout::

        root/
          train2014/COCO_train2014_<12 digits>.jpg     (or images/train2014/, see image_dir)
          annotations/instances_train2014.json          COCO instances JSON
          coco_20k_filenames.txt                        LOST's list, lines like
                                                        "train2014/COCO_train2014_000000000009.jpg"

    List lines are matched to the JSON's ``file_name`` by base name; a line of digits is read as
    an image id. ``Sample.id`` is the file stem, ``Sample.boxes`` the ``(M, 4)`` int64 boxes
    ``(x, y, x + w, y + h)`` rounded to the nearest pixel (COCO's continuous ``xywh`` edges
    become exclusive pixel corners), ``Sample.box_classes`` category names, and
    ``Sample.extra`` holds ``image_id``, ``category_ids`` and ``iscrowd``.

    Args:
        root: dataset root.
        annotation_file: instances JSON, relative to ``root`` or absolute.
        image_list: list of images to keep (relative or absolute), or None for every image
            of the JSON that has at least one annotation.
        image_dir: image folder, or None for the first existing of ``train2014``,
            ``images/train2014``, ``images``.
        include_crowd: keep ``iscrowd`` boxes. False by default, as LOST scores CorLoc
            (``extract_gt_COCO(targets, remove_iscrowd=True)``; its 20k JSON keeps them, and a
            crowd box can only add hits); an image whose boxes are all crowd then has none
            and counts as a miss.
    """

    name = "coco20k"
    layout = (
        "<root>/train2014/*.jpg, <root>/annotations/instances_train2014.json and "
        "<root>/coco_20k_filenames.txt"
    )

    def __init__(
        self,
        root: str | Path,
        annotation_file: str = "annotations/instances_train2014.json",
        image_list: str | None = "coco_20k_filenames.txt",
        image_dir: str | None = None,
        include_crowd: bool = False,
    ) -> None:
        super().__init__(root)
        self.include_crowd = include_crowd
        ann_path = self._require_file(annotation_file)
        self.image_dir = self._pick_image_dir(image_dir)
        with open(ann_path) as f:
            coco = json.load(f)
        self._categories = {c["id"]: c.get("name", str(c["id"])) for c in coco.get("categories", [])}
        self._images = {img["id"]: img for img in coco.get("images", [])}
        self._anns: dict[int, list[dict]] = {}
        for ann in coco.get("annotations", []):
            if include_crowd or not ann.get("iscrowd", 0):
                self._anns.setdefault(ann["image_id"], []).append(ann)
        if image_list is None:
            keep = sorted(i for i in self._images if i in self._anns)
        else:
            keep = self._select(self._require_file(image_list))
        self._by_stem = {Path(self._images[i]["file_name"]).stem: i for i in keep}
        self._ids = list(self._by_stem)
        self._check_not_empty()

    def _pick_image_dir(self, image_dir: str | None) -> Path:
        if image_dir is not None:
            return self._require_dir(image_dir)
        for name in ("train2014", "images/train2014", "images"):
            if (self.root / name).is_dir():
                return self.root / name
        self._fail(f"no image folder (train2014/, images/train2014/ or images/) in {self.root}")

    def _select(self, list_path: Path) -> list[int]:
        by_name = {Path(img["file_name"]).name: i for i, img in self._images.items()}
        keep, missing = [], []
        for line in list_path.read_text().split():
            if line.isdigit() and int(line) in self._images:
                keep.append(int(line))
            elif Path(line).name in by_name:
                keep.append(by_name[Path(line).name])
            else:
                missing.append(line)
        if missing:
            self._fail(f"{len(missing)} listed images (e.g. {missing[0]!r}) are not in the JSON")
        return keep

    def _load(self, item_id: str) -> Sample:
        image_id = self._by_stem[item_id]
        info = self._images[image_id]
        path = self.image_dir / Path(info["file_name"]).name
        anns = self._anns.get(image_id, [])
        xywh = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        return Sample(
            id=item_id,
            image_path=path,
            boxes=np.rint(xyxy).astype(np.int64),
            box_classes=[self._categories.get(a["category_id"], str(a["category_id"])) for a in anns],
            extra={
                "image_id": image_id,
                "category_ids": [a["category_id"] for a in anns],
                "iscrowd": np.asarray([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool),
            },
        )
