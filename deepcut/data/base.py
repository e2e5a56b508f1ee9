"""The dataset contract: a sized, indexable list of :class:`Sample` records read from local folders.

Loaders never download. A loader lists its items in ``__init__`` (cheap: file names and small
list/annotation files) and reads pixels only when an item is asked for, so building one over a
large dataset is fast and a missing or malformed root fails at once with a one-line
:class:`DatasetLayoutError`.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from PIL import Image, ImageOps

from deepcut.errors import DeepCutError
from deepcut.io.images import IMAGE_EXTENSIONS  # the one suffix list of every command

__all__ = ["IMAGE_EXTENSIONS", "DatasetLayoutError", "Sample", "SegmentationDataset"]


class DatasetLayoutError(DeepCutError, FileNotFoundError):
    """The dataset root is missing, empty, or not in the layout the loader documents."""


@dataclass
class Sample:
    """One evaluation item. Fields a dataset does not provide are None.

    Attributes:
        id: item id, unique within the dataset (usually the image file stem).
        image_path: path of the RGB image.
        mask: ``(H, W)`` uint8 foreground mask, 1 = object, 0 = background, 255 = ignore.
        boxes: ``(M, 4)`` int64 ground-truth boxes ``(x0, y0, x1, y1)`` in pixels, ``x1``/``y1``
            exclusive (see :mod:`deepcut.metrics.boxes`).
        box_classes: ``M`` class names of ``boxes``.
        labels: ``(H, W)`` integer class/segment map (VOC: 0 background, 1..20 classes,
            255 void).
        annotations: per-annotator ``(H, W)`` integer label maps (BSDS500, Weizmann SED).
        parts: ``(P, 3)`` float32 part keypoints ``(x, y, visible)`` in pixels (CUB).
        extra: dataset-specific metadata (difficult flags, annotator ids, split, ...).
    """

    id: str
    image_path: Path
    mask: np.ndarray | None = None
    boxes: np.ndarray | None = None
    box_classes: list[str] | None = None
    labels: np.ndarray | None = None
    annotations: list[np.ndarray] | None = None
    parts: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def image(self) -> Image.Image:
        """The image as an RGB PIL image, EXIF orientation applied.

        The ground truth is stored in the pixel order of the file; the evaluation images of these
        datasets carry no EXIF rotation, so the two stay aligned (check sizes if in doubt).
        """
        with Image.open(self.image_path) as im:
            im = ImageOps.exif_transpose(im)
            return im.convert("RGB")


class SegmentationDataset:
    """Base class: subclasses fill ``self._ids`` in ``__init__`` and implement :meth:`_load`.

    Args:
        root: dataset root folder.
    """

    #: Registry name, set by subclasses (used in error messages).
    name: str = "dataset"
    #: One line describing the expected layout, shown when the root does not match.
    layout: str = ""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            self._fail(f"root folder {self.root} does not exist")
        self._ids: list[str] = []

    # -- helpers for subclasses -------------------------------------------------------------
    def _fail(self, problem: str) -> NoReturn:
        raise DatasetLayoutError(f"{self.name}: {problem}; expected {self.layout}.")

    def _require_dir(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        if not path.is_dir():
            self._fail(f"missing folder {path}")
        return path

    def _require_file(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        if not path.is_file():
            self._fail(f"missing file {path}")
        return path

    def _check_not_empty(self) -> None:
        if not self._ids:
            self._fail(f"no items found under {self.root}")

    # -- the sequence protocol ----------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        """Item ids in index order."""
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: int) -> Sample:
        if not -len(self._ids) <= index < len(self._ids):
            raise IndexError(f"{self.name}: index {index} out of range for {len(self)} items")
        return self._load(self._ids[index])

    def __iter__(self) -> Iterator[Sample]:
        for item_id in self._ids:
            yield self._load(item_id)

    def _load(self, item_id: str) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, n={len(self)})"


def read_id_list(path: Path) -> list[str]:
    """Non-empty, stripped lines of a list file; the first whitespace-separated token of each."""
    lines = path.read_text().splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def find_with_ext(folder: Path, stem: str, extensions: Sequence[str]) -> Path | None:
    """First ``folder/stem+ext`` that exists, trying ``extensions`` in order (each also in
    upper case: ``.JPG`` is a JPEG too)."""
    for ext in extensions:
        for e in dict.fromkeys((ext, ext.upper())):
            path = folder / f"{stem}{e}"
            if path.is_file():
                return path
    return None
