"""Mask-folder datasets (images + one binary mask each): ECSSD, DUTS-TE, DUT-OMRON, SOD.

Also holds the PNG readers shared by the other loaders.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from deepcut.data.base import (
    IMAGE_EXTENSIONS,
    Sample,
    SegmentationDataset,
    find_with_ext,
    read_id_list,
)

__all__ = [
    "DUTOMRON",
    "DUTSTE",
    "ECSSD",
    "SOD",
    "MaskFolderDataset",
    "load_binary_mask",
    "load_label_map",
]


def load_label_map(path: Path) -> np.ndarray:
    """Read a label PNG as integers: palette ('P') images give their indices, never colours.

    Returns:
        ``(H, W)`` uint8 (8-bit and palette PNGs) or uint16/int32 (16-bit PNGs) array.
    """
    with Image.open(path) as im:
        if im.mode in ("RGB", "RGBA"):
            raise ValueError(
                f"{path} is a colour image; label maps must be palette ('P') or grayscale PNGs."
            )
        return np.array(im)


def load_binary_mask(path: Path, threshold: int = 128) -> np.ndarray:
    """Read a 0/255 (or soft 0..255) mask as uint8 {0, 1}.

    Args:
        path: grayscale, palette or 1-bit image. A palette image whose colours are not grays
            (e.g. VOC's palette on a 0/1 mask) is read by index: index 0 is background, any
            other foreground; a gray palette is read by its gray values, as a grayscale mask.
        threshold: pixels ``>= threshold`` are foreground; 128 = half of 255 (the usual rule for
            anti-aliased DUTS/ECSSD masks and CUB's annotator-averaged masks).

    Returns:
        ``(H, W)`` uint8 with values in {0, 1}.
    """
    with Image.open(path) as im:
        if im.mode == "1":
            return np.array(im, dtype=np.uint8)
        if im.mode == "P":
            pal = np.asarray(im.getpalette() or [0, 0, 0], dtype=np.uint8).reshape(-1, 3)
            if not ((pal == pal[:, :1]).all()):  # colours: the index is the label
                return (np.array(im) > 0).astype(np.uint8)
        arr = np.array(im.convert("L"))
    return (arr >= threshold).astype(np.uint8)


class MaskFolderDataset(SegmentationDataset):
    """Images and binary masks in two folders, matched by file stem.

    Layout::

        root/
          <image_dir>/<id>.jpg      RGB images (any of ``image_exts``)
          <mask_dir>/<id>.png       masks, 0 = background, >= 128 = object (0/255 or anti-aliased)
          list.txt                  optional: ids, one per line (used when present)

    ``Sample.mask`` is ``(H, W)`` uint8 {0, 1}. Items are sorted by id when no list is given.

    Args:
        root: dataset root.
        image_dir: image sub-folder, or None to use the first of the class's known names that
            exists (``image_dirs``).
        mask_dir: mask sub-folder, or None for the first existing of ``mask_dirs``.
        image_exts: image extensions tried in order.
        mask_exts: mask extensions tried in order.
        list_file: id list relative to ``root`` (default ``list.txt`` if it exists).
        threshold: mask threshold on the 0..255 scale.
    """

    name = "mask_folder"
    image_dirs: tuple[str, ...] = ("images",)
    mask_dirs: tuple[str, ...] = ("masks",)

    def __init__(
        self,
        root: str | Path,
        image_dir: str | None = None,
        mask_dir: str | None = None,
        image_exts: Sequence[str] = IMAGE_EXTENSIONS,
        mask_exts: Sequence[str] = (".png", ".jpg", ".bmp"),
        list_file: str | None = None,
        threshold: int = 128,
    ) -> None:
        self.layout = (
            f"<root>/{{{'|'.join(self.image_dirs)}}}/<id>.jpg and "
            f"<root>/{{{'|'.join(self.mask_dirs)}}}/<id>.png"
        )
        super().__init__(root)
        self.image_exts = tuple(image_exts)
        self.mask_exts = tuple(mask_exts)
        self.threshold = threshold
        self.image_dir = self._pick_dir(image_dir, self.image_dirs)
        self.mask_dir = self._pick_dir(mask_dir, self.mask_dirs)
        if list_file is not None:
            self._ids = read_id_list(self._require_file(list_file))
        elif (self.root / "list.txt").is_file():
            self._ids = read_id_list(self.root / "list.txt")
        else:
            stems = {p.stem for p in self.mask_dir.iterdir() if p.suffix.lower() in self.mask_exts}
            self._ids = sorted(s for s in stems if find_with_ext(self.image_dir, s, self.image_exts))
        self._check_not_empty()

    def _pick_dir(self, given: str | None, known: tuple[str, ...]) -> Path:
        if given is not None:
            return self._require_dir(given)
        for name in known:
            if (self.root / name).is_dir():
                return self.root / name
        self._fail(f"none of the folders {list(known)} exists in {self.root}")

    def _load(self, item_id: str) -> Sample:
        image = find_with_ext(self.image_dir, item_id, self.image_exts)
        mask = find_with_ext(self.mask_dir, item_id, self.mask_exts)
        if image is None or mask is None:
            missing = self.image_dir if image is None else self.mask_dir
            self._fail(f"item {item_id!r} has no file in {missing}")
        return Sample(id=item_id, image_path=image, mask=load_binary_mask(mask, self.threshold))


class ECSSD(MaskFolderDataset):
    """ECSSD (1000 images): ``images/`` + ``ground_truth_mask/`` (official zips), or TokenCut's
    ``img/`` + ``gt/``. See :class:`MaskFolderDataset` for the arguments."""

    name = "ecssd"
    image_dirs = ("images", "img")
    mask_dirs = ("ground_truth_mask", "gt", "masks")


class DUTSTE(MaskFolderDataset):
    """DUTS test set (5019 images): ``DUTS-TE-Image/`` + ``DUTS-TE-Mask/`` (official layout).
    See :class:`MaskFolderDataset` for the arguments."""

    name = "duts_te"
    image_dirs = ("DUTS-TE-Image", "images")
    mask_dirs = ("DUTS-TE-Mask", "masks")


class DUTOMRON(MaskFolderDataset):
    """DUT-OMRON (5168 images): ``DUT-OMRON-image/`` + ``pixelwiseGT-new-PNG/`` (official
    layout). See :class:`MaskFolderDataset` for the arguments."""

    name = "dut_omron"
    image_dirs = ("DUT-OMRON-image", "images")
    mask_dirs = ("pixelwiseGT-new-PNG", "masks")


class SOD(MaskFolderDataset):
    """SOD (300 BSDS images, Movahedi & Elder 2010): ``images/<id>.jpg`` + ``masks/<id>.png``
    (0/255) + ``list.txt``, the layout of ``$DATA/sod`` (docs/DATA.md). See :class:`MaskFolderDataset`."""

    name = "sod"
    image_dirs = ("images", "Imgs")
    mask_dirs = ("masks", "GT")
