"""Atomic writers for label maps, overlays and JSON records.

Each file is written to a temporary sibling and moved into place with :func:`os.replace`, so an
interrupted run never leaves a partial file under the final name; a rerun can trust what exists.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepcut.viz.palette import label_palette

__all__ = ["atomic_path", "read_label_map", "save_image", "save_json", "save_label_map"]


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The temporary name ``.<name>.<pid>-<random>.part`` records the writing process, so that a
    later run can remove the file if this process is killed mid-write
    (:func:`~deepcut.io.folders.clean_stale_parts`) while leaving a live writer's alone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".part",
                               dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; finished outputs get normal permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_label_map(labels: np.ndarray, path: str | Path) -> None:
    """Write ``labels: (H, W)`` integer ids as a PNG: indexed (palette) when ids < 256, else 16-bit.

    The pixel values are the label ids themselves (0 = background where that applies); the
    palette only makes the file viewable.
    """
    labels = np.asarray(labels)
    if labels.min() < 0 or labels.max() > 65535:
        raise ValueError("label ids must lie in [0, 65535]")
    if labels.max() < 256:
        im = Image.fromarray(labels.astype(np.uint8))  # mode L; putpalette makes it P
        im.putpalette(label_palette(256).reshape(-1).tolist())
    else:
        im = Image.fromarray(labels.astype(np.uint16))
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")


def read_label_map(path: str | Path) -> np.ndarray:
    """Read a label PNG written by :func:`save_label_map` back to ``(H, W)`` ids."""
    with Image.open(path) as im:
        return np.array(im)


_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def save_image(img: Image.Image, path: str | Path, **params: Any) -> None:
    """Save a PIL image atomically (format from the suffix; ``params`` go to Pillow's encoder,
    e.g. ``compress_level=1`` for a PNG or ``quality=90`` for a JPEG)."""
    suffix = Path(path).suffix.lower()
    # The formats the CLI writes are named here: Image.registered_extensions() first imports
    # every Pillow plugin (~0.15 s on the first image of a run)
    fmt = _FORMATS.get(suffix) or Image.registered_extensions().get(suffix, "PNG")
    with atomic_path(path) as tmp:
        img.save(tmp, format=fmt, **params)


def _default(o: Any):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def save_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_default, sort_keys=False) + "\n")
