"""Depth maps the user provides for ``--refine dream --depth DIR`` (no depth model is bundled).

One depth map per image, in a folder, with the image's file stem: ``DIR/<stem>.png`` (8- or
16-bit grey), ``.tif`` / ``.tiff`` (16-bit or 32-bit float grey) or ``.npy`` (a 2-D array).
Any scale works (metric, relative or inverse depth, as Depth Pro, Depth Anything, MiDaS or
ZoeDepth write them): DREAM rescales each map to [0, 1] itself. The map must have the image's
size. A missing, unreadable, mis-sized or non-finite map raises :class:`DepthReadError`, one line
naming the file; a folder run reports it and goes on with the next image.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from deepcut.errors import DeepCutError

__all__ = ["DEPTH_EXTENSIONS", "DepthReadError", "depth_for", "find_depth", "load_depth"]

#: Depth file extensions, in the order they are looked for.
DEPTH_EXTENSIONS = (".png", ".tif", ".tiff", ".npy")


class DepthReadError(DeepCutError):
    """A depth map is missing, unreadable or does not fit its image."""


def find_depth(folder: str | Path, stem: str) -> Path:
    """The depth file of image ``stem`` in ``folder`` (first of :data:`DEPTH_EXTENSIONS`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DepthReadError(f"{folder}: depth folder does not exist")
    for ext in DEPTH_EXTENSIONS:
        for cand in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if cand.is_file():
                return cand
    raise DepthReadError(f"{folder / stem}.*: no depth map for image {stem!r} (looked for "
                         f"{', '.join(DEPTH_EXTENSIONS)})")


def load_depth(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a depth map as ``(H, W)`` float32.

    Args:
        path: a ``.png``, ``.tif``/``.tiff`` or ``.npy`` file.
        size: the image's ``(W, H)`` (PIL order); a map of another size is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise DepthReadError(f"{path}: no such depth file")
    try:
        if path.suffix.lower() == ".npy":
            a = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as im:
                if im.mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV"):
                    raise DepthReadError(f"{path}: depth map must be a single-channel image "
                                         f"(8/16-bit grey or float); got mode {im.mode}")
                a = np.asarray(im)
    except DepthReadError:
        raise
    except (OSError, ValueError, UnidentifiedImageError) as e:
        raise DepthReadError(f"{path}: unreadable depth map ({e})") from None
    a = np.squeeze(a)
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype,
                                                                            np.complexfloating):
        raise DepthReadError(f"{path}: depth map must be a 2-D numeric array; got shape "
                             f"{a.shape} dtype {a.dtype}")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise DepthReadError(f"{path}: depth map holds {int((~np.isfinite(a)).sum())} NaN or "
                             "infinite values; fill them (e.g. with the largest depth) first")
    if size is not None and (a.shape[1], a.shape[0]) != tuple(size):
        raise DepthReadError(f"{path}: depth map is {a.shape[1]}x{a.shape[0]} px but its image "
                             f"is {size[0]}x{size[1]}; they must have the same size")
    return a


def depth_for(folder: str | Path | None, image_path: str | Path,
              size: tuple[int, int] | None = None) -> np.ndarray | None:
    """The depth map of ``image_path`` from ``folder`` (None when ``folder`` is None)."""
    if folder is None:
        return None
    return load_depth(find_depth(folder, Path(image_path).stem), size)
