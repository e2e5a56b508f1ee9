"""CUB-200-2011: bird masks (single-object segmentation) and 15 part keypoints (part protocol)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from deepcut.data.base import Sample, SegmentationDataset
from deepcut.data.masks import load_binary_mask

__all__ = ["CUB"]

_SPLITS = ("train", "test", "all")


def _table(path: Path, n_cols: int) -> np.ndarray:
    # One split() over the whole file: much faster than np.loadtxt on part_locs.txt (173k rows).
    values = np.asarray(path.read_text().split(), dtype=np.float64)
    return values.reshape(-1, n_cols)


class CUB(SegmentationDataset):
    """Caltech-UCSD Birds-200-2011.

    Layout (``root`` is the ``CUB_200_2011`` folder)::

        images.txt                      "<img_id> <class_dir>/<name>.jpg"
        train_test_split.txt            "<img_id> <1 = train, 0 = test>"
        images/<class_dir>/<name>.jpg
        segmentations/<class_dir>/<name>.png   soft masks (annotator average, 0..255); the
                                                separate download, also found next to root
        parts/part_locs.txt             "<img_id> <part_id> <x> <y> <visible>"
        parts/parts.txt                 "<part_id> <name>"  (optional, for part names)
        bounding_boxes.txt              "<img_id> <x> <y> <w> <h>"  (optional)

    ``Sample.id`` is the image file stem; ``Sample.mask`` ``(H, W)`` uint8 {0, 1} is the soft
    mask thresholded at ``threshold``; ``Sample.parts`` is ``(15, 3)`` float32 ``(x, y,
    visible)`` ordered by part id, coordinates as stored in ``part_locs.txt`` (pixels; invisible
    parts are 0, 0); ``Sample.boxes`` ``(1, 4)`` the bird box ``(x, y, x + w, y + h)`` rounded.
    DeepSpectral scores CUB masks after a centre crop; that is a transform for the evaluator.

    Args:
        root: the ``CUB_200_2011`` folder.
        split: ``"test"`` (5794 images), ``"train"`` (5994) or ``"all"``.
        segmentation_dir: mask folder relative to ``root`` (then to ``root.parent``), or None to
            load no masks.
        threshold: mask threshold on 0..255 (128: at least half the annotators).
    """

    name = "cub"
    layout = "CUB_200_2011/ with images.txt, train_test_split.txt, images/ and parts/part_locs.txt"

    def __init__(
        self,
        root: str | Path,
        split: str = "test",
        segmentation_dir: str | None = "segmentations",
        threshold: int = 128,
    ) -> None:
        super().__init__(root)
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}. Got {split!r} instead.")
        self.split, self.threshold = split, threshold
        self.image_dir = self._require_dir("images")
        rel = {}
        for line in self._require_file("images.txt").read_text().splitlines():
            if line.strip():
                img_id, path = line.split(maxsplit=1)
                rel[int(img_id)] = path.strip()
        is_train = {int(a): b == "1" for a, b in
                    (ln.split() for ln in self._require_file("train_test_split.txt").read_text().splitlines() if ln.strip())}
        keep = [i for i in sorted(rel) if split == "all" or is_train.get(i) == (split == "train")]
        self._rel = {Path(rel[i]).stem: (i, rel[i]) for i in keep}
        self._ids = list(self._rel)
        self.seg_dir = self._find_segmentations(segmentation_dir)
        self._parts = self._read_parts()
        self._boxes = self._read_boxes()
        names = self.root / "parts" / "parts.txt"
        self.part_names = (
            [ln.split(maxsplit=1)[1].strip() for ln in names.read_text().splitlines() if ln.strip()]
            if names.is_file() else None
        )
        self._check_not_empty()

    def _find_segmentations(self, segmentation_dir: str | None) -> Path | None:
        if segmentation_dir is None:
            return None
        for base in (self.root, self.root.parent):
            if (base / segmentation_dir).is_dir():
                return base / segmentation_dir
        self._fail(
            f"no {segmentation_dir}/ folder in {self.root} or {self.root.parent} "
            "(pass segmentation_dir=None to load without masks)"
        )

    def _read_parts(self) -> dict[int, np.ndarray]:
        table = _table(self._require_file("parts", "part_locs.txt"), 5)
        n_parts = int(table[:, 1].max()) if len(table) else 0
        img_ids = table[:, 0].astype(np.int64)
        unique = np.unique(img_ids)
        stacked = np.zeros((unique.size, n_parts, 3), np.float32)  # (n_images, P, 3)
        stacked[np.searchsorted(unique, img_ids), table[:, 1].astype(np.int64) - 1] = table[:, 2:5]
        return dict(zip(unique.tolist(), stacked))

    def _read_boxes(self) -> dict[int, np.ndarray]:
        path = self.root / "bounding_boxes.txt"
        if not path.is_file():
            return {}
        table = _table(path, 5)
        xyxy = np.concatenate([table[:, 1:3], table[:, 1:3] + table[:, 3:5]], axis=1)
        return {int(i): np.rint(b).astype(np.int64)[None] for i, b in zip(table[:, 0], xyxy)}

    def _load(self, item_id: str) -> Sample:
        img_id, rel = self._rel[item_id]
        mask = None
        if self.seg_dir is not None:
            mask_path = (self.seg_dir / rel).with_suffix(".png")
            if not mask_path.is_file():
                self._fail(f"item {item_id!r} has no mask {mask_path}")
            mask = load_binary_mask(mask_path, self.threshold)
        return Sample(
            id=item_id,
            image_path=self.image_dir / rel,
            mask=mask,
            boxes=self._boxes.get(img_id),
            parts=self._parts.get(img_id),
            extra={"image_id": img_id, "class_dir": Path(rel).parent.name},
        )
