"""Colours for label ids: 0 is black (background), then well-separated hues."""
from __future__ import annotations

import numpy as np

__all__ = ["label_palette"]


def label_palette(n: int = 256) -> np.ndarray:
    """``(n, 3)`` uint8 colours; id 0 is black, ids 1.. follow the PASCAL VOC bit-interleaved map."""
    ids = np.arange(n)
    pal = np.zeros((n, 3), dtype=np.int64)
    c = ids.copy()
    for j in range(8):  # 8 bit planes, not a loop over pixels
        for ch in range(3):
            pal[:, ch] |= ((c >> ch) & 1) << (7 - j)
        c >>= 3
    return pal.astype(np.uint8)
