"""Reading images robustly: every odd mode becomes 8-bit RGB, every bad file one clear error."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deepcut.errors import ImageReadError

__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "list_images", "load_image", "to_rgb"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm",
                    ".pgm")
#: Largest image accepted (pixels). Bigger files are refused before decoding, as a
#: decompression-bomb guard; the segmentation itself runs on a resized copy anyway.
MAX_PIXELS = 200_000_000


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


def load_image(path: str | Path, max_pixels: int | None = None) -> Image.Image:
    """Open ``path`` as an 8-bit RGB PIL image (EXIF-rotated).

    Raises:
        ImageReadError: missing file, not an image, truncated data, or more than ``max_pixels``
            (default :data:`MAX_PIXELS`).
    """
    path = Path(path)
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > max_pixels:
                    raise ImageReadError(
                        f"{path}: image is {im.width}x{im.height} px "
                        f"({im.width * im.height / 1e6:.0f} MP), above the {max_pixels / 1e6:.0f} "
                        "MP limit; downscale it first")
                im.load()
                return to_rgb(im)
    except ImageReadError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:
        kind = "too large to decode safely" if "ecompression" in type(e).__name__ else \
            "not a readable image"
        raise ImageReadError(f"{path}: {kind}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"{path}: cannot read image ({e})") from None


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files (by extension, case-insensitive) directly inside ``folder``."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
