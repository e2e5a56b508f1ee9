"""Reading images robustly: every odd mode becomes 8-bit RGB, every bad file one clear error."""
from __future__ import annotations

import errno
import os
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deepcut.errors import ImageReadError

__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "default_max_pixels", "list_images", "load_image",
           "to_rgb"]

#: The one list of image suffixes (lower case) that infer.py, cluster.py, train.py and the
#: dataset loaders of eval.py accept.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm",
                    ".pgm")
#: Largest image accepted (pixels), checked from the file header before anything is decoded (a
#: decompression-bomb guard; the segmentation runs on a resized copy anyway). Set another limit
#: with the ``DEEPCUT_MAX_PIXELS`` environment variable, ``--max-pixels`` of infer.py and
#: cluster.py, or ``load_image(max_pixels=...)``. It replaces Pillow's own limit
#: (``Image.MAX_IMAGE_PIXELS``, about 89 MP) while deepcut opens a file.
MAX_PIXELS = 200_000_000

# Pillow's bomb limit is a module global; it is swapped only while a header is read.
_PIL_LIMIT_LOCK = threading.Lock()


def default_max_pixels() -> int:
    """``$DEEPCUT_MAX_PIXELS`` when set (an integer, e.g. ``300000000``), else :data:`MAX_PIXELS`."""
    from deepcut.errors import ConfigError

    value = os.environ.get("DEEPCUT_MAX_PIXELS", "").strip().replace("_", "")
    if not value:
        return MAX_PIXELS
    try:
        n = int(float(value))
    except ValueError:
        raise ConfigError(f"DEEPCUT_MAX_PIXELS must be a number of pixels. Got {value!r}.") \
            from None
    if n < 1:
        raise ConfigError(f"DEEPCUT_MAX_PIXELS must be >= 1. Got {n}.")
    return n


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB.

    * EXIF orientation is applied (a phone photo is segmented the way it is displayed).
    * 16-bit and 32-bit grey (``I;16``, ``I``, ``F``) are rescaled by their own range, because
      PIL's ``convert("RGB")`` would clip them to 255.
    * Alpha (``RGBA``, ``LA``, ``PA``) is composited over white so transparent areas are uniform.
    * Palette, CMYK, YCbCr, 1-bit and grey go through PIL's own conversion.
    """
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
        return Image.fromarray(np.nan_to_num(a).round().astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, img).convert("RGB")
    return img.convert("RGB") if mode != "RGB" else img


def _open(path: Path) -> Image.Image:
    """``Image.open`` with Pillow's bomb check off: :func:`load_image` checks the size itself."""
    with _PIL_LIMIT_LOCK:
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = old


def _link_problem(path: Path) -> str | None:
    """``"symlink loop"`` / ``"broken symlink to X"`` for a link that leads nowhere, else None."""
    if not path.is_symlink():
        return None
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop this way
        return "symlink loop"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink loop"
        return f"broken symlink to {os.readlink(path)}"
    return None


def _unidentified(path: Path) -> str:
    """Why Pillow could not open ``path``: empty, a damaged file of a known format, or no image."""
    try:
        with open(path, "rb") as f:
            prefix = f.read(16)
    except OSError as e:
        return f"cannot read file ({e.strerror or e})"
    if not prefix:
        return "empty file (0 bytes), not a readable image"
    Image.init()
    for fmt in Image.ID:  # whose signature the file carries, although Pillow cannot open it
        accept = Image.OPEN[fmt][1]
        try:
            known = accept is not None and bool(accept(prefix))
        except Exception:  # noqa: BLE001 - a format's check that fails on a short prefix
            known = False
        if known:
            return f"not a readable image (a damaged {fmt} file: its header is broken)"
    return "not a readable image (unknown format or not an image file)"


def load_image(path: str | Path, max_pixels: int | None = None,
               draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Open ``path`` as an 8-bit RGB PIL image (EXIF-rotated).

    Args:
        path: the image file.
        max_pixels: refuse images with more pixels (read from the header, before decoding);
            None = :func:`default_max_pixels`.
        draft_size: ``(width, height)`` the caller needs at least; a JPEG is then decoded at the
            smallest of 1/1, 1/2, 1/4, 1/8 scale that is still at least this large (Pillow's
            ``draft``: less memory and time for huge photos). Other formats are decoded in full.
            Only for callers that do not need the original pixel grid (image-level features).

    Animated files (GIF, WebP, APNG) are read at their first frame, with one warning naming the
    file.

    Raises:
        ImageReadError: missing file, symlink loop, not an image, truncated data, or more than
            ``max_pixels``. The message starts with the file name.
    """
    path = Path(path)
    max_pixels = default_max_pixels() if max_pixels is None else int(max_pixels)
    link = _link_problem(path)
    if link:
        raise ImageReadError(f"{path}: {link}")
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image")
    try:
        with _open(path) as im:
            if im.width * im.height > max_pixels:
                raise ImageReadError(
                    f"{path}: image is {im.width}x{im.height} px "
                    f"({im.width * im.height / 1e6:.1f} MP), above the {max_pixels / 1e6:.1f} "
                    "MP limit; downscale it first, or raise the limit (DEEPCUT_MAX_PIXELS or "
                    "--max-pixels)")
            n_frames = getattr(im, "n_frames", 1)
            if n_frames > 1:
                warnings.warn(f"{path}: animated ({n_frames} frames); only the first frame is "
                              "segmented", stacklevel=2)
            if draft_size is not None and im.format == "JPEG":
                im.draft("RGB", (int(draft_size[0]), int(draft_size[1])))
            im.load()
            return to_rgb(im)
    except ImageReadError:
        raise
    except Image.DecompressionBombError:
        raise ImageReadError(f"{path}: too large to decode safely") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: {_unidentified(path)}") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageReadError(f"{path}: cannot read image ({detail})") from None


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files (by extension, case-insensitive) directly inside ``folder``.

    A link with an image extension that leads nowhere (a symlink loop, a broken link) is listed
    too, so that the run reports it by name instead of passing over it in silence.
    """
    folder = Path(folder)
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_EXTENSIONS
                  and (p.is_file() or _link_problem(p) is not None))
