r"""Pixel-adaptive mask refinement (PAMR; Araslanov & Roth, CVPR 2020, "Single-Stage Semantic
Segmentation from Image Labels"), as DiffCut and the Falcon reimplementation apply it after
upsampling.

Each pixel ``i`` looks at its 8 neighbours at every dilation ``r`` (``P = 8 * len(dilations)``
neighbours ``j``). Their affinity from the image ``I`` (``C`` channels) is

.. math:: a_{ij} = \operatorname{softmax}_j\Big(-\frac{1}{C}\sum_c
          \frac{|I_c(j) - I_c(i)|}{\epsilon + 0.1\,\sigma_c(i)}\Big),

with ``sigma_c(i)`` the standard deviation of channel ``c`` over the pixel and its neighbours (so
the affinity adapts to the local contrast), and the soft masks are propagated ``n_iter`` times,
``m(i) <- sum_j a_ij m(j)``: labels spread along regions of similar colour and stop at edges.
Borders are replicate-padded. Everything is a shifted view of the padded arrays (a loop over the
``P`` offsets, never over pixels): memory ``O((P + C + K) H W)``, time ``O(n_iter P K H W)``
(on one CPU thread about 70 ms for K = 2 and 0.2 s for K = 8 at 320 x 240).

:func:`pamr_labels` is the refinement step of the pipeline (``refine="pamr"``): nearest patch
labels at a working resolution (longer side at most ``max_side``), one-hot masks refined by PAMR,
argmax, a 3 x 3 majority filter (DiffCut's median filter, which it equals for two labels), and
nearest upsampling to the image size.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as Fn
from PIL import Image

from deepcut.refine.upsample import nearest_resize, upsample_labels, working_size

__all__ = ["majority_filter", "neighbours", "pamr", "pamr_labels"]

_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def _shifted(x: torch.Tensor, dilations: Sequence[int]) -> Iterator[torch.Tensor]:
    """Views ``(C, H, W)`` of ``x`` moved to each of the 8 neighbours at each dilation
    (replicate-padded borders), in the order of :func:`neighbours`."""
    _, H, W = x.shape
    for r in dilations:
        xp = Fn.pad(x[None], (r, r, r, r), mode="replicate")[0]
        for dy, dx in _OFFSETS:
            yield xp[:, r + dy * r:r + dy * r + H, r + dx * r:r + dx * r + W]


def neighbours(x: torch.Tensor, dilations: Sequence[int]) -> torch.Tensor:
    """The 8 neighbours at each dilation: ``x: (C, H, W)`` -> ``(C, 8 * len(dilations), H, W)``."""
    return torch.stack(list(_shifted(x, dilations)), 1)


def local_std(x: torch.Tensor, dilations: Sequence[int]) -> torch.Tensor:
    """``(C, H, W)`` std of each channel of ``x: (C, H, W)`` over each pixel and its
    ``8 * len(dilations)`` neighbours (:func:`neighbours`), from running sums (a stacked
    ``(C, P, H, W)`` neighbourhood cost 3x more). PAMR's and DREAM's local contrast."""
    s1, s2, n = x.clone(), x * x, 1 + 8 * len(dilations)
    for v in _shifted(x, dilations):
        s1 += v
        s2.addcmul_(v, v)
    return ((s2 - s1 * s1 / n) / (n - 1)).clamp(min=0).sqrt()


def pamr(image: torch.Tensor, masks: torch.Tensor, n_iter: int = 10,
         dilations: Sequence[int] = (1, 2, 4, 8)) -> torch.Tensor:
    """Refine soft masks along the image.

    Shapes:
        image: ``(C, H, W)`` float (any scale: the affinity is contrast-normalised);
        masks: ``(K, H, W)``; returns ``(K, H, W)`` (rows of a distribution stay one).
    """
    if image.shape[-2:] != masks.shape[-2:]:
        raise ValueError(f"image {tuple(image.shape)} and masks {tuple(masks.shape)} must share "
                         f"(H, W).")
    x = image.float()
    inv = 1.0 / (1e-8 + 0.1 * local_std(x, dilations))
    logits = torch.stack([-((v - x).abs_() * inv).mean(0) for v in _shifted(x, dilations)])
    aff = torch.softmax(logits, 0)  # (P, H, W)
    m = masks.float()
    for _ in range(n_iter):
        acc = torch.zeros_like(m)
        for a, v in zip(aff, _shifted(m, dilations)):
            acc.addcmul_(v, a)
        m = acc
    return m


def majority_filter(labels: torch.Tensor, n_labels: int, size: int = 3) -> torch.Tensor:
    """Each pixel takes the most frequent label of its ``size x size`` window (``(H, W)`` long).

    Ties keep the lowest label id; windows are cut at the border (no padding votes).
    """
    onehot = Fn.one_hot(labels, n_labels).permute(2, 0, 1).float()[None]  # (1, K, H, W)
    votes = Fn.avg_pool2d(onehot, size, stride=1, padding=size // 2, count_include_pad=False)
    return votes[0].max(0).indices  # argmax(0) is 20x slower on CPU, same first-max ties


def pamr_labels(image: Image.Image, patch_labels: np.ndarray, input_size: tuple[int, int],
                patch: int, stride: int, max_side: int = 320, n_iter: int = 10,
                dilations: Sequence[int] = (1, 2, 4, 8), *, depth: np.ndarray | None = None,
                features: torch.Tensor | None = None) -> np.ndarray:
    """Pixel labels ``(H, W)`` of ``image`` from ``patch_labels: (h, w)`` refined by PAMR.

    Args:
        image: the RGB image the patches come from (its size is the output size).
        patch_labels: labels of the patch grid, ids ``>= 0``.
        input_size, patch, stride: the backbone geometry (as for ``upsample_labels``).
        max_side: PAMR runs with the image shrunk to at most this longer side (DiffCut: 128).
        depth, features: the refinement interface's common keywords; PAMR uses neither (a depth
            map is refused: use ``dream``).
    """
    from deepcut.refine.interface import refuse_depth

    refuse_depth("pamr", depth)
    W, H = image.size
    h, w = working_size((H, W), max_side)
    small = np.asarray(image.convert("RGB").resize((w, h), Image.BILINEAR), dtype=np.float32)
    lab = torch.from_numpy(upsample_labels(patch_labels, (h, w), input_size, patch, stride)
                           .astype(np.int64))
    K = int(lab.max()) + 1
    masks = Fn.one_hot(lab, K).permute(2, 0, 1).float()
    refined = pamr(torch.from_numpy(small).permute(2, 0, 1), masks, n_iter, dilations)
    lab = majority_filter(refined.max(0).indices, K)
    return nearest_resize(lab.numpy(), (H, W))
