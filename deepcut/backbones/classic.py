"""``classic``: a weight-free backbone of colour, texture and position statistics in context.

The original normalised-cut setting (Shi & Malik, PAMI 2000) groups pixels by brightness/colour,
position and texture. ``classic`` computes such statistics on the same patch grid as the ViTs
(patch 8, stride 8 by default; ``1 + (H_in - p) // s`` per side), so every graph, solver and task
runs with no download. A patch alone is too small to say what surface it lies on (a dark fur stripe
and the shadow beside it differ; their neighbourhoods do not), so colour and texture are also
measured over windows of ``k x k`` patches centred on each patch (``colour_scales = (1, 3)``,
``texture_scales = (1, 2, 4)``). All statistics are vectorised with ``avg_pool2d`` over the whole
image (a window cut by the border averages what is inside it).

Channels (38 with the default scales), each standardised over the image, then weighted by group:

============== ======================================================= ======== ======
group          channels                                                channels share
============== ======================================================= ======== ======
colour         mean R, G, B and mean L*, a*, b* (CIE Lab, D65)          6        0.35
colour context mean L*, a*, b* over 3 x 3 patches                      3        0.20
colour spread  std of L*, a*, b* over the patch and over 3 x 3 patches  6        0.10
texture        per window of 1, 2, 4 patches: mean Sobel magnitude     21       0.25
               and its 6-bin orientation histogram (sums to 1)
position       patch centre (y, x), normalised to [0, 1]                2        0.10
============== ======================================================= ======== ======

A group's *share* is its part of the expected squared norm of a feature (each of its channels is
scaled by ``sqrt(share / channels)``), hence of the squared distance between two patches: colour
dominates and position is a mild prior that favours spatially compact segments. These features
compare well between neighbours, less so across the image: their default graph is the local one
(:mod:`deepcut.graphs.local`), whose intervening-contour cue reads the image's edge map that
this backbone puts in ``PatchFeatures.extra["edges"]`` (:meth:`ClassicBackbone.feature_extra`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import ConfigError
from ._registry import register_backbone
from .base import Backbone, pil_to_tensor
from .resize import RESAMPLE_FILTERS, RESIZE_MODES, check_geometry, grid_size_for, input_size_for

__all__ = ["GROUP_SHARES", "ClassicBackbone", "rgb_to_lab"]

#: Share of the expected squared feature norm per channel group (see the module docstring).
GROUP_SHARES: dict[str, float] = {
    "colour": 0.35,
    "colour_context": 0.2,
    "colour_spread": 0.1,
    "texture": 0.25,
    "position": 0.1,
}
#: Window sides (in patches) of the colour statistics: the patch, then its 3 x 3 neighbourhood.
COLOUR_SCALES = (1, 3)
#: Window sides (in patches) of the texture statistics.
TEXTURE_SCALES = (1, 2, 4)
#: Orientation bins of the gradient histogram (unsigned orientation, [0, pi)).
N_ORIENT_BINS = 6

# sRGB (D65) -> CIE XYZ, IEC 61966-2-1.
_RGB_TO_XYZ = torch.tensor(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_D65_WHITE = torch.tensor([0.95047, 1.0, 1.08883])


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """Convert sRGB to CIE L*a*b* (D65), in torch.

    Args:
        rgb: ``(B, 3, H, W)`` sRGB in [0, 1].

    Returns:
        ``(B, 3, H, W)`` with L* in [0, 100] and a*, b* roughly in [-128, 127].
    """
    # Undo the sRGB transfer curve to get linear light.
    lin = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055).clamp_min(0) ** 2.4)
    m = _RGB_TO_XYZ.to(rgb)
    xyz = torch.einsum("ij,bjhw->bihw", m, lin) / _D65_WHITE.to(rgb).view(1, 3, 1, 1)
    eps = (6 / 29) ** 3  # CIE: linear segment below this keeps f continuous
    f = torch.where(xyz > eps, xyz.clamp_min(eps) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(1)
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=1)


def _mean_std(x: torch.Tensor, patch: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-patch mean and std of each channel: ``(B, C, H, W)`` -> two ``(B, C, h, w)``."""
    mean = F.avg_pool2d(x, patch, stride)
    sq = F.avg_pool2d(x * x, patch, stride)
    return mean, (sq - mean * mean).clamp_min(0).sqrt()


def _context_pool(x: torch.Tensor, patch: int, stride: int, scale: int) -> torch.Tensor:
    """Mean of ``x: (B, C, H, W)`` over the ``scale * patch`` window centred on each patch:
    ``(B, C, h, w)`` on the patch grid (windows cut by the border average what is inside).

    The reference definition; :func:`_context_pools` gives the same means (to float rounding)
    for several scales at a fraction of the cost."""
    if scale == 1:
        return F.avg_pool2d(x, patch, stride)
    k = scale * patch
    pad = (k - patch) // 2
    # odd excess: pad one more pixel at the end so the window stays centred to within 1 px
    extra = (k - patch) - 2 * pad
    if extra:
        x = F.pad(x, (0, extra, 0, extra), mode="replicate")
    return F.avg_pool2d(x, k, stride, padding=pad, count_include_pad=False)


def _context_pools(x: torch.Tensor, patch: int, stride: int,
                   scales: tuple[int, ...]) -> list[torch.Tensor]:
    """``[_context_pool(x, patch, stride, k) for k in scales]``, the windows of more than one
    patch summed from ``c x c`` cells instead of pixels.

    Every window edge and every stride falls on a multiple of ``c = gcd(patch, stride, pad)``
    (``pad`` = how far a window reaches beyond its patch), so a window's sum is a sum of whole
    cells: one pass over the pixels into cell sums, then a ``(k / c)``-cell pool on a grid
    ``c^2`` times smaller (4-patch window, patch 8: 16 cells instead of 1024 pixels). Cells cut
    by the border are counted by the pixels they hold, so the border windows average what is
    inside, as ``count_include_pad=False`` does. Where no common cell exists (an odd excess:
    see :func:`_context_pool`) the window is pooled from the pixels.
    """
    H, W = x.shape[-2:]
    pads = {k: (k * patch - patch) // 2 for k in scales if k > 1}
    c = math.gcd(patch, stride, *pads.values()) if pads else 0
    if c > 1 and all(2 * p == (k - 1) * patch for k, p in pads.items()):
        Hc, Wc = -(-H // c), -(-W // c)  # cells, the last ones cut by the border
        sums = F.avg_pool2d(F.pad(x, (0, Wc * c - W, 0, Hc * c - H)), c, c, divisor_override=1)
        rows = torch.full((Hc,), float(c), dtype=x.dtype, device=x.device)
        cols = torch.full((Wc,), float(c), dtype=x.dtype, device=x.device)
        rows[-1], cols[-1] = H - (Hc - 1) * c, W - (Wc - 1) * c  # pixels in the last cells
        counts = (rows[:, None] * cols[None, :]).expand(1, 1, Hc, Wc)
    h, w = 1 + (H - patch) // stride, 1 + (W - patch) // stride
    out = []
    for k in scales:
        if k == 1 or c <= 1 or k not in pads:
            out.append(_context_pool(x, patch, stride, k))
            continue
        pool = {"kernel_size": k * patch // c, "stride": stride // c,
                "padding": pads[k] // c,  # zeros: add nothing to a sum or a count
                "divisor_override": 1}
        s = F.avg_pool2d(sums, **pool)[..., :h, :w]
        n = F.avg_pool2d(counts, **pool)[..., :h, :w]
        out.append(s / n)
    return out


def _sobel(gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel gradients of ``(B, 1, H, W)``, replicate-padded: two ``(B, 1, H, W)``."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8
    kernels = torch.stack((kx, kx.t())).unsqueeze(1).to(gray)  # (2, 1, 3, 3): d/dx, d/dy
    g = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels)
    return g[:, :1], g[:, 1:]


def _texture(
    gray: torch.Tensor, patch: int, stride: int, bins: int, scales: tuple[int, ...]
) -> torch.Tensor:
    """Gradient energy and a magnitude-weighted orientation histogram over windows of
    ``scale * patch`` pixels around each patch, for each scale (texture in context).

    Args:
        gray: ``(B, 1, H, W)`` lightness in [0, 1].
        patch: patch side in pixels.
        stride: stride in pixels.
        bins: orientation bins over [0, pi).
        scales: window sides in patches, e.g. ``(1, 2, 4)``.

    Returns:
        ``(B, len(scales) * (1 + bins), h, w)``: per scale the mean gradient magnitude, then the
        histogram (sums to 1 on textured windows, 0 on flat ones).
    """
    gx, gy = _sobel(gray)
    mag = (gx * gx + gy * gy).sqrt()
    theta = torch.atan2(gy, gx).remainder(math.pi)  # unsigned orientation in [0, pi)
    idx = (theta * (bins / math.pi)).long().clamp_(0, bins - 1)
    # each pixel's magnitude into its bin, 0 in the others: (B, bins, H, W) (the same values
    # as one_hot(idx) * mag, without its int64 (B, H, W, bins) temporary: 5x faster)
    votes = mag.new_zeros(mag.shape[0], bins, *mag.shape[2:]).scatter_(1, idx, mag)
    stack = torch.cat((mag, votes), 1)
    out = []
    for pooled in _context_pools(stack, patch, stride, scales):
        hist = pooled[:, 1:] / pooled[:, 1:].sum(1, keepdim=True).clamp_min(1e-6)
        out += [pooled[:, :1], hist]
    return torch.cat(out, dim=1)


def _positions(
    B: int, h: int, w: int, H_in: int, W_in: int, patch: int, stride: int, like: torch.Tensor
) -> torch.Tensor:
    """Patch centres ``(B, 2, h, w)``: (y, x) divided by the input size, in [0, 1]."""
    ys = (torch.arange(h, device=like.device) * stride + patch / 2) / H_in
    xs = (torch.arange(w, device=like.device) * stride + patch / 2) / W_in
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"))  # (2, h, w)
    return grid.to(like).unsqueeze(0).expand(B, -1, -1, -1)


def _standardise(x: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per channel over the image; constant channels become 0."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = x.std(dim=(2, 3), keepdim=True, unbiased=False)
    return torch.where(std > 1e-6, (x - mean) / std.clamp_min(1e-6), torch.zeros_like(x))


class ClassicBackbone(Backbone):
    """Weight-free colour/texture/position patch features in context (see module docstring).

    Args:
        patch_size: patch side in input pixels.
        stride: stride in input pixels; None means ``patch_size``.
        size: short side of the input in pixels (as the ViTs: 280).
        max_size: cap on the long side; None means ``4 * size``.
        resize: ``"aspect"`` or ``"square"``, as the ViTs (:func:`~.resize.input_size_for`).
        resample: PIL filter name of the resize; None means bicubic.
        colour_scales: window sides (in patches) of the colour statistics; the first is the
            patch itself.
        texture_scales: window sides (in patches) of the texture statistics.

    Example:
        >>> from PIL import Image
        >>> bb = ClassicBackbone()
        >>> bb(Image.new("RGB", (300, 200))).features.shape
        torch.Size([35, 53, 38])
    """

    name = "classic"
    weights_id = "none"

    def __init__(
        self,
        *,
        patch_size: int = 8,
        stride: int | None = None,
        size: int = 280,
        max_size: int | None = None,
        resize: str = "aspect",
        resample: str | None = None,
        colour_scales: tuple[int, ...] = COLOUR_SCALES,
        texture_scales: tuple[int, ...] = TEXTURE_SCALES,
    ) -> None:
        super().__init__()
        if resize not in RESIZE_MODES:
            raise ConfigError(f"resize must be one of {RESIZE_MODES}, got {resize!r}.")
        if resample not in (None, *RESAMPLE_FILTERS):
            raise ConfigError(f"resample must be one of {RESAMPLE_FILTERS}, got {resample!r}.")
        self.resize = resize
        self.resample = Image.Resampling[(resample or "bicubic").upper()]
        self.patch_size = int(patch_size)
        self.stride = self.patch_size if stride is None else int(stride)
        self.size = size
        self.max_size = 4 * size if max_size is None else max_size
        check_geometry(self.size, self.patch_size, self.stride, self.max_size)
        if not colour_scales or not texture_scales or min(*colour_scales, *texture_scales) < 1:
            raise ConfigError("classic: colour_scales and texture_scales need one or more "
                              "window sides >= 1 (in patches).")
        self.colour_scales = tuple(int(k) for k in colour_scales)
        self.texture_scales = tuple(int(k) for k in texture_scales)
        self.bins = N_ORIENT_BINS
        nc = len(self.colour_scales)
        sizes = {"colour": 6, "colour_context": 3 * (nc - 1), "colour_spread": 3 * nc,
                 "texture": len(self.texture_scales) * (1 + self.bins), "position": 2}
        shares = dict(GROUP_SHARES)
        if nc == 1:  # no context: its share goes to the patch colour
            shares["colour"] += shares.pop("colour_context")
        weights = [math.sqrt(shares[g] / n) for g, n in sizes.items() for _ in range(n)]
        self.channel_weights = torch.tensor(weights)  # (D,), in the order of `extract`
        self.feature_dim = len(weights)

    @property
    def preprocessing(self) -> dict[str, str]:
        """The resize options (for provenance, as :attr:`ViTBackbone.preprocessing`)."""
        return {"resize": self.resize, "resample": self.resample.name.lower()}

    def input_size_for(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """Network input ``(H_in, W_in)`` for an original ``(H, W)``; same rule as the ViTs."""
        return input_size_for(
            image_size, self.size, self.patch_size, self.stride, self.max_size, self.resize
        )

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """``(1, 3, H_in, W_in)`` float32 RGB in [0, 1], resized (bicubic unless ``resample``)."""
        H_in, W_in = self.input_size_for((image.height, image.width))
        image = image.convert("RGB").resize((W_in, H_in), resample=self.resample)
        return pil_to_tensor(image).float().div_(255.0).unsqueeze(0)

    @torch.no_grad()
    def feature_extra(self, x: torch.Tensor, grid: tuple[int, int]) -> dict[str, Any]:
        """``{"edges": E}``: the image's edge map on the patch grid
        (:func:`deepcut.graphs.local.image_edges`, 3 cells per patch side), the local graph's
        intervening-contour cue; ``x: (1, 3, H_in, W_in)``."""
        from deepcut.graphs.local import image_edges

        return {"edges": image_edges(x[0].cpu(), grid, self.patch_size, self.stride)}

    @torch.no_grad()
    def extract_with_extra(self, x: torch.Tensor
                           ) -> tuple[torch.Tensor, None, list[dict[str, Any]]]:
        """:meth:`extract` and each image's edge map (:meth:`feature_extra`) from one Lab
        conversion of ``x: (B, 3, H_in, W_in)``: the same values as the two calls, for one
        ``rgb_to_lab`` instead of two (about 10 ms of a 280 x 416 image on one CPU thread)."""
        from deepcut.graphs.local import image_edges

        x = x.to(self.input_device())
        lab = rgb_to_lab(x)
        feats, cls = self._extract(x, lab)
        grid = (int(feats.shape[1]), int(feats.shape[2]))
        xc, labc = x.cpu(), lab.cpu()
        return feats, cls, [{"edges": image_edges(xc[b], grid, self.patch_size, self.stride,
                                                  lab=labc[b])} for b in range(x.shape[0])]

    @torch.no_grad()
    def extract(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Patch statistics.

        Args:
            x: ``(B, 3, H_in, W_in)`` RGB in [0, 1].

        Returns:
            ``features: (B, h, w, D)`` and ``None`` (no CLS token); D = 38 by default.
        """
        return self._extract(x, rgb_to_lab(x))

    def _extract(self, x: torch.Tensor, lab: torch.Tensor) -> tuple[torch.Tensor, None]:
        """:meth:`extract` given ``lab = rgb_to_lab(x)``."""
        B, _, H_in, W_in = x.shape
        p, s = self.patch_size, self.stride
        h, w = grid_size_for((H_in, W_in), p, s)
        # Scale Lab to about [0, 1] like RGB; standardisation makes this cosmetic.
        lab = lab / torch.tensor([100.0, 128.0, 128.0]).to(x).view(1, 3, 1, 1)
        groups = [F.avg_pool2d(torch.cat((x, lab), 1), p, s)]  # colour: (B, 6, h, w)
        spreads = []
        pooled = _context_pools(torch.cat((lab, lab * lab), 1), p, s, self.colour_scales)
        for k, both in zip(self.colour_scales, pooled):  # Lab mean (beyond the patch), spread
            mean, sq = both.chunk(2, 1)
            if k != self.colour_scales[0]:
                groups.append(mean)
            spreads.append((sq - mean * mean).clamp_min(0).sqrt())
        groups += spreads
        groups.append(_texture(lab[:, :1], p, s, self.bins, self.texture_scales))
        groups.append(_positions(B, h, w, H_in, W_in, p, s, like=x))  # (B, 2, h, w)
        feats = _standardise(torch.cat(groups, dim=1))
        feats = feats * self.channel_weights.to(feats).view(1, -1, 1, 1)
        return feats.permute(0, 2, 3, 1).contiguous(), None


@register_backbone("classic")
def classic(
    *,
    weights: str | None = None,
    pretrained: bool = True,
    device: Any = None,
    **kwargs: Any,
) -> ClassicBackbone:
    """Weight-free colour/texture/position statistics in context (Shi-Malik setting), D=38.

    ``pretrained`` and ``device`` are accepted for a uniform factory and ignored: there are no
    weights, and the statistics are cheap, so they run on the CPU.
    """
    if weights is not None:
        raise ConfigError("the 'classic' backbone has no weights; drop --weights or pick a ViT.")
    return ClassicBackbone(**kwargs)
