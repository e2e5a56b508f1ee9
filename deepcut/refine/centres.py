r"""Mask generation by partition centres (DiffCut's "concept assignment", Falcon v1 Sec. 3.4).

Each segment ``k`` of a patch labelling gets a centre ``c_k``: the mean of the L2-normalised patch
features of its patches. The feature map is upsampled bilinearly to the output size and every
pixel ``p`` takes the segment whose centre is most similar, ``argmax_k cos(f(p), c_k)``.

Bilinear upsampling is linear, so ``<up(F)(p), c_k> = up(F c_k)(p)``, and the per-pixel norm
``||f(p)||`` does not change an argmax over ``k``. We therefore upsample the ``K`` patch-level
score maps ``F_hat c_k / ||c_k||`` instead of the ``D``-channel features: the result is exactly
the argmax over the upsampled features, at ``K/D`` of the cost. Output rows are produced in
chunks, so memory stays ``O(chunk_rows * W * K)`` whatever the output size.

DiffCut upsamples to 128 x 128 and takes the dot product with the (unnormalised) centres; here the
centres are normalised (cosine), as the Falcon paper's Eq. 22-23 describe it, and any output size
works.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as Fn

__all__ = ["assign_by_centres", "partition_centres"]


def partition_centres(features: torch.Tensor, labels: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-norm centres of the segments.

    Args:
        features: ``(N, D)`` or ``(h, w, D)`` patch features.
        labels: ``(N,)`` or ``(h, w)`` integer segment ids (any values).

    Returns:
        ``(ids, centres)``: ``ids: (K,)`` the sorted segment ids present, ``centres: (K, D)`` the
        L2-normalised mean of the L2-normalised features of each segment.
    """
    D = features.shape[-1]
    X = Fn.normalize(features.reshape(-1, D).float(), dim=1)
    lab = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    lab = lab.reshape(-1).long()
    if lab.numel() != X.shape[0]:
        raise ValueError(f"labels have {lab.numel()} entries but features have {X.shape[0]} "
                         "patches; they must share the patch grid.")
    ids, inv = torch.unique(lab, return_inverse=True)
    C = torch.zeros(ids.numel(), D, dtype=X.dtype).index_add_(0, inv, X)
    return ids, Fn.normalize(C, dim=1)


def _interp_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """``(n_out, n_in)`` 1-D bilinear weights, as ``F.interpolate(..., align_corners=False)``."""
    scale = n_in / n_out
    src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * scale - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    w1 = (src - i0).float()
    A = torch.zeros(n_out, n_in)
    A[torch.arange(n_out), i0] += 1 - w1
    A[torch.arange(n_out), i1] += w1
    return A


@torch.no_grad()
def assign_by_centres(features_hw_d: torch.Tensor, labels_hw: torch.Tensor,
                      out_size: tuple[int, int], *, max_chunk_elems: int = 1 << 24
                      ) -> torch.Tensor:
    """Pixel labels: each pixel to the most similar partition centre on upsampled features.

    Args:
        features_hw_d: ``(h, w, D)`` patch features.
        labels_hw: ``(h, w)`` integer patch labels (torch or numpy; any ids).
        out_size: ``(H, W)`` output size in pixels.
        max_chunk_elems: upper bound on ``rows * W * K`` held at once (memory control).

    Returns:
        ``(H, W)`` int64 labels using the ids of ``labels_hw``.

    Example:
        >>> F = torch.zeros(2, 2, 3); F[:, 0, 0] = 1; F[:, 1, 1] = 1
        >>> assign_by_centres(F, torch.tensor([[0, 1], [0, 1]]), (2, 4)).tolist()
        [[0, 0, 1, 1], [0, 0, 1, 1]]
    """
    if features_hw_d.dim() != 3:
        raise ValueError(f"features_hw_d must be (h, w, D); got shape {tuple(features_hw_d.shape)}.")
    h, w, D = features_hw_d.shape
    lab = torch.as_tensor(np.asarray(labels_hw) if not isinstance(labels_hw, torch.Tensor)
                          else labels_hw)
    if tuple(lab.shape) != (h, w):
        raise ValueError(f"labels_hw must be ({h}, {w}) like the feature grid; "
                         f"got {tuple(lab.shape)}.")
    H, W = (int(out_size[0]), int(out_size[1]))
    if H < 1 or W < 1:
        raise ValueError(f"out_size must be positive; got {out_size}.")
    ids, C = partition_centres(features_hw_d.cpu(), lab.cpu())
    K = ids.numel()
    X = Fn.normalize(features_hw_d.reshape(-1, D).float().cpu(), dim=1)
    scores = (X @ C.T).reshape(h, w, K)  # patch-level cosine to each (unit) centre
    Ay = _interp_matrix(H, h)  # (H, h)
    Ax = _interp_matrix(W, w)  # (W, w)
    # columns first (cheap: h rows), then output rows in chunks
    cols = torch.einsum("xj,ijk->ixk", Ax, scores)  # (h, W, K)
    out = torch.empty(H, W, dtype=torch.long)
    rows = max(1, int(max_chunk_elems // max(1, W * K)))
    flat = cols.reshape(h, W * K)
    for r0 in range(0, H, rows):
        up = (Ay[r0:r0 + rows] @ flat).reshape(-1, W, K)  # (rows, W, K)
        out[r0:r0 + rows] = up.argmax(-1)
    return ids[out]
