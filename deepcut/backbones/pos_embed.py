"""Position-embedding resampling: timm's (exact grid, antialiased) or DINO's (scale factor).

A ViT pretrained at 224 px with patch ``p`` holds an ``n x n`` grid of position embeddings
(``n = 224 / p``: 28 for ViT-S/8). Any other token grid ``(h, w)`` needs them resampled. Two
recipes are in use, and they give different embeddings (keys differ by 0.4-0.6%, relative
Frobenius, at 280 px):

- ``"timm"`` (our default): ``timm.layers.resample_abs_pos_embed``, bicubic to exactly
  ``(h, w)`` with ``antialias=True`` (``F.interpolate(size=(h, w))``: sample positions follow
  ``n / h``).
- ``"dino"``: DINO's ``VisionTransformer.interpolate_pos_encoding`` (Caron et al. 2021,
  facebookresearch/dino), which DeepCut's extractor (from dino-vit-features) uses, also at
  stride ``s < p``: bicubic with ``scale_factor = ((h + 0.1) / n, (w + 0.1) / n)``, no
  antialiasing, ``align_corners=False``. The 0.1 makes ``floor(n * scale)`` land on ``h``
  despite rounding (DINO issue #8); since the scale factor, not the output size, sets the
  sample positions, output row ``i`` reads input row ``(i + 0.5) * n / (h + 0.1) - 0.5``.
  When the grid already has ``N`` tokens and the input is square, DINO returns the table
  unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["POS_EMBED_MODES", "dino_interpolate_pos_encoding"]

#: Accepted values of the ``pos_embed`` option.
POS_EMBED_MODES = ("timm", "dino")


def dino_interpolate_pos_encoding(
    pos_embed: torch.Tensor,
    grid: tuple[int, int],
    input_size: tuple[int, int],
    num_prefix_tokens: int = 1,
) -> torch.Tensor:
    """DINO's ``interpolate_pos_encoding`` for a ``(h, w)`` token grid.

    Args:
        pos_embed: ``(1, P + n*n, D)`` pretrained table, the ``P`` prefix (class) entries first.
        grid: ``(h, w)`` token grid of the input.
        input_size: ``(H_in, W_in)`` input pixels (DINO keeps the table as is only for a square
            input whose grid has ``n*n`` tokens).
        num_prefix_tokens: ``P``, prefix entries passed through unchanged (1: DINO's CLS).

    Returns:
        ``(1, P + h*w, D)`` position embeddings, rows in row-major grid order.
    """
    h, w = int(grid[0]), int(grid[1])
    n_pos = pos_embed.shape[1] - num_prefix_tokens
    n = math.isqrt(n_pos)
    if n * n != n_pos:
        raise ValueError(f"DINO's interpolation needs a square table, got {n_pos} positions.")
    if h * w == n_pos and input_size[0] == input_size[1]:
        return pos_embed
    prefix, table = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim = table.shape[-1]
    table = table.reshape(1, n, n, dim).permute(0, 3, 1, 2)  # (1, D, n, n)
    # DINO's expression, evaluated in the same order ((h + 0.1) / sqrt(N)), so the float
    # scale factors, hence the sample positions, are bit-identical to the reference.
    out = F.interpolate(
        table.to(torch.promote_types(table.dtype, torch.float32)),  # float32, or float64 if so
        scale_factor=((h + 0.1) / math.sqrt(n_pos), (w + 0.1) / math.sqrt(n_pos)),
        mode="bicubic",
        align_corners=False,
        recompute_scale_factor=False,
    ).to(table.dtype)
    if out.shape[-2:] != (h, w):  # cannot happen for h, w >= 1: floor(n * (h + 0.1) / n) = h
        raise RuntimeError(f"DINO interpolation gave {tuple(out.shape[-2:])}, not {(h, w)}.")
    out = out.permute(0, 2, 3, 1).reshape(1, h * w, dim)
    return torch.cat((prefix, out), dim=1)
