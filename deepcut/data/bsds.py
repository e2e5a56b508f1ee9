"""BSDS500: natural images with 4-8 human segmentations each (multi-region, no classes)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from scipy.io import loadmat

from deepcut.data.base import Sample, SegmentationDataset, read_id_list
from deepcut.data.masks import load_label_map

__all__ = ["BSDS500", "load_bsds_mat"]

_SOURCES = ("auto", "png", "mat")


def load_bsds_mat(path: Path) -> list[np.ndarray]:
    """Segmentations of one BSDS ``groundTruth/<id>.mat`` file, in annotator order.

    Returns:
        One ``(H, W)`` uint16 label map per annotator (segment ids 1..N, no classes).
    """
    gt = loadmat(str(path), simplify_cells=True)["groundTruth"]
    cells = gt if isinstance(gt, (list, np.ndarray)) else [gt]  # one annotator: a bare struct
    return [np.asarray(c["Segmentation"], dtype=np.uint16) for c in cells]


class BSDS500(SegmentationDataset):
    """Berkeley Segmentation Dataset 500, in the official or a flat layout.

    Flat layout (e.g. ``$DATA/bsds500_test``)::

        images/<id>.jpg
        groundTruth/<id>.mat             MATLAB cell array groundTruth{k}.Segmentation
        segmentations/<id>_<k>.png       the same maps as 8-bit PNGs, k = 1..K (optional)
        list.txt                         ids (optional; else every image)

    Official layout (``root`` is ``BSDS500/``, ``BSDS500/data`` or its parent)::

        data/images/<split>/<id>.jpg
        data/groundTruth/<split>/<id>.mat

    ``Sample.annotations`` is the list of ``(H, W)`` integer segment maps (ids 1..N, arbitrary
    per annotator: score with NMI/ARI or per-image Hungarian IoU against each annotator).
    ``Sample.extra["n_annotators"]`` gives K.

    Args:
        root: dataset root (see above).
        split: ``"test"``, ``"val"`` or ``"train"`` (official layout only).
        source: ``"png"``, ``"mat"`` or ``"auto"`` (PNG when ``segmentations/`` exists: faster).
    """

    name = "bsds500"
    layout = "<root>/images/<id>.jpg with groundTruth/<id>.mat or segmentations/<id>_<k>.png, or the official BSDS500/data/{images,groundTruth}/<split>/"

    def __init__(self, root: str | Path, split: str = "test", source: str = "auto") -> None:
        super().__init__(root)
        if source not in _SOURCES:
            raise ValueError(f"source must be one of {_SOURCES}. Got {source!r} instead.")
        self.split = split
        self.image_dir, self.mat_dir, self.png_dir = self._find_folders()
        if source == "auto":
            source = "png" if self.png_dir is not None else "mat"
        if source == "png" and self.png_dir is None:
            self._fail(f"no segmentations/ folder in {self.root} (use source='mat')")
        if source == "mat" and self.mat_dir is None:
            self._fail(f"no groundTruth/ folder in {self.root} (use source='png')")
        self.source = source
        if (self.root / "list.txt").is_file() and self.image_dir.parent == self.root:
            self._ids = read_id_list(self.root / "list.txt")
        else:
            self._ids = sorted(p.stem for p in self.image_dir.glob("*.jpg"))
        self._check_not_empty()

    def _find_folders(self) -> tuple[Path, Path | None, Path | None]:
        flat = self.root / "images"
        if flat.is_dir() and any(flat.glob("*.jpg")):
            mat, png = self.root / "groundTruth", self.root / "segmentations"
            return flat, (mat if mat.is_dir() else None), (png if png.is_dir() else None)
        for data in (self.root / "data", self.root / "BSDS500" / "data", self.root):
            images = data / "images" / self.split
            if images.is_dir():
                mat = data / "groundTruth" / self.split
                return images, (mat if mat.is_dir() else None), None
        self._fail(f"no images/ (flat) or data/images/{self.split}/ (official) folder in {self.root}")

    def _pngs(self, item_id: str) -> list[Path]:
        pattern = re.compile(rf"^{re.escape(item_id)}_(\d+)\.png$")
        found = [(int(m.group(1)), p) for p in self.png_dir.glob(f"{item_id}_*.png")
                 if (m := pattern.match(p.name))]
        return [p for _, p in sorted(found)]

    def _load(self, item_id: str) -> Sample:
        image = self.image_dir / f"{item_id}.jpg"
        if self.source == "png":
            paths = self._pngs(item_id)
            if not paths:
                self._fail(f"item {item_id!r} has no {self.png_dir}/{item_id}_<k>.png")
            annotations = [load_label_map(p).astype(np.uint16) for p in paths]
        else:
            mat = self.mat_dir / f"{item_id}.mat"
            if not mat.is_file():
                self._fail(f"item {item_id!r} has no {mat}")
            annotations = load_bsds_mat(mat)
        return Sample(id=item_id, image_path=image, annotations=annotations,
                      extra={"n_annotators": len(annotations)})
