"""Resize arithmetic shared by every backbone: pure functions, no tensors.

A backbone sees an ``(H_in, W_in)`` input and cuts it into ``p x p`` patches every ``s`` pixels,
so its token grid is ``h = 1 + (H_in - p) // s`` (paper section 3.1.4). We choose the input size
so that each side has the form ``p + s * m``: then the patches tile the input exactly, with no
leftover rows or columns that the network would silently drop. That is ``resize="aspect"`` (our
default). ``resize="square"`` is DeepCut's: every image is squashed to ``size x size`` whatever its
aspect ratio, with no snapping (the patch grid drops leftover pixels exactly as the reference).

Example:
    >>> input_size_for((200, 300), size=280, patch=8, stride=8)
    (280, 424)
    >>> grid_size_for((280, 424), patch=8, stride=8)
    (35, 53)
    >>> grid_size_for(input_size_for((200, 300), 280, 8, 4), patch=8, stride=4)
    (69, 104)
    >>> input_size_for((200, 300), size=280, patch=8, stride=4, resize="square")
    (280, 280)
"""

from __future__ import annotations

import math

from ..errors import ConfigError, ImageReadError

__all__ = [
    "RESAMPLE_FILTERS",
    "RESIZE_MODES",
    "check_geometry",
    "grid_size_for",
    "input_size_for",
    "snap_to_grid",
]

#: Accepted values of the ``resize`` option: keep the aspect ratio, or squash to a square.
RESIZE_MODES = ("aspect", "square")
#: Accepted values of the ``resample`` option (PIL filter names; DeepCut uses ``lanczos``).
RESAMPLE_FILTERS = ("bicubic", "bilinear", "lanczos", "nearest")


def check_geometry(size: int, patch: int, stride: int, max_size: int | None = None) -> None:
    """Validate the resize options of a backbone.

    Args:
        size: target length of the short side in pixels.
        patch: patch side ``p`` in pixels.
        stride: distance ``s`` between patches in pixels, ``1 <= s <= p``.
        max_size: cap on the long side in pixels, or None.

    Raises:
        ConfigError: if a value is out of range.
    """
    if patch < 1:
        raise ConfigError(f"patch size must be >= 1, got {patch}.")
    if not 1 <= stride <= patch:
        raise ConfigError(
            f"stride must be in [1, patch size={patch}] (overlapping patches need stride < patch), "
            f"got {stride}."
        )
    if size < patch:
        raise ConfigError(f"size must be >= the patch size {patch}, got {size}.")
    if max_size is not None and max_size < size:
        raise ConfigError(f"max_size must be >= size={size}, got {max_size}.")


def snap_to_grid(length: float, patch: int, stride: int) -> int:
    """Nearest length of the form ``patch + stride * m`` (``m >= 0``); ties round up.

    Args:
        length: a side length in pixels (may be fractional).
        patch: patch side ``p`` in pixels.
        stride: stride ``s`` in pixels.

    Returns:
        The snapped length, at least ``patch``.
    """
    m = max(0, math.floor((length - patch) / stride + 0.5))
    return patch + stride * m


def input_size_for(
    image_size: tuple[int, int],
    size: int,
    patch: int,
    stride: int,
    max_size: int | None = None,
    resize: str = "aspect",
) -> tuple[int, int]:
    """Network input size for an image: short side to ``size``, aspect ratio kept, sides snapped.

    With ``resize="square"`` the answer is ``(size, size)`` for every image (DeepCut squashes
    each image to ``res=(280, 280)``); the rest of this docstring is about ``"aspect"``.

    The short side is scaled to ``size`` and the long side by the same factor. If the long side
    would exceed ``max_size`` (default ``4 * size``), the image is scaled so that the long side
    is ``max_size`` instead. Each side is then snapped to the nearest ``p + s * m`` (never above
    ``max_size`` on the long side), so the token grid covers the input exactly.

    Args:
        image_size: original ``(H, W)`` in pixels.
        size: target short side in pixels (280 in DeepCut).
        patch: patch side ``p`` in pixels.
        stride: stride ``s`` in pixels.
        max_size: cap on the long side in pixels; None means ``4 * size``.
        resize: ``"aspect"`` or ``"square"``.

    Returns:
        ``(H_in, W_in)`` in pixels, each of the form ``p + s * m`` (``"aspect"``).

    Raises:
        ConfigError: if size, patch or stride are invalid.
        ImageReadError: if the image is empty, or so elongated that the capped short side
            would be smaller than one patch.
    """
    max_size = 4 * size if max_size is None else max_size
    check_geometry(size, patch, stride, max_size)
    H, W = int(image_size[0]), int(image_size[1])
    if H < 1 or W < 1:
        raise ImageReadError(f"image has an empty side: {H}x{W} (H x W).")
    if resize == "square":
        return size, size
    if resize != "aspect":
        raise ConfigError(f"resize must be one of {RESIZE_MODES}, got {resize!r}.")
    scale = size / min(H, W)
    if max(H, W) * scale > max_size:
        scale = max_size / max(H, W)
    new_h, new_w = H * scale, W * scale
    if min(new_h, new_w) < patch:
        raise ImageReadError(
            f"image too elongated: {H}x{W} (H x W) would need a short side of "
            f"{min(new_h, new_w):.1f} px < patch size {patch} once the long side is capped at "
            f"max_size={max_size}; crop it or raise max_size."
        )

    def snap(length: float) -> int:
        snapped = snap_to_grid(length, patch, stride)
        if snapped > max_size:  # rounding up must not break the cap
            snapped = patch + stride * ((max_size - patch) // stride)
        return snapped

    return snap(new_h), snap(new_w)


def grid_size_for(input_size: tuple[int, int], patch: int, stride: int) -> tuple[int, int]:
    """Token grid ``(h, w)`` of an ``(H_in, W_in)`` input: ``1 + (H_in - p) // s`` per side.

    Args:
        input_size: ``(H_in, W_in)`` in pixels, each ``>= patch``.
        patch: patch side ``p`` in pixels.
        stride: stride ``s`` in pixels.

    Returns:
        ``(h, w)`` number of patch rows and columns.
    """
    H_in, W_in = input_size
    if H_in < patch or W_in < patch:
        raise ImageReadError(f"input {H_in}x{W_in} is smaller than one patch ({patch} px).")
    return 1 + (H_in - patch) // stride, 1 + (W_in - patch) // stride
