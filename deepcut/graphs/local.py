r"""Shi and Malik's local graph: feature similarity times spatial proximity, within a radius.

.. math::

    W_{ij} = \exp\!\Big(-\frac{\lVert F_i - F_j\rVert^2}{\sigma_F^2}\Big)
             \exp\!\Big(-\frac{\lVert X_i - X_j\rVert^2}{\sigma_X^2}\Big)
             \quad\text{if } \lVert X_i - X_j\rVert \le r, \text{ else } 0,

with ``X`` the (row, col) position of a patch on the ``(h, w)`` grid (in patches) and ``F`` its
feature (J. Shi and J. Malik, "Normalized cuts and image segmentation", PAMI 2000, Sec. 4).

``sigma_F`` is set from the data (local scaling): ``sigma_F^2 = sigma_scale * median`` of
``||F_i - F_j||^2`` over the graph's edges, so the weights do not depend on the scale of the
features (classic statistics or ViT keys) and half of the edges weigh less than
``exp(-1 / sigma_scale)`` before the spatial term. ``sigma_scale = 0.1`` and ``r = 5`` were chosen
on the first 40 images of BSDS500 test (6-way spectral NCut, classic features): NMI/ARI 48.9/31.7
at (1.0, r=3), 53.6/40.6 at (0.25, r=3), 49.1/40.5 at (0.1, r=3), 55.2/46.3 at (0.1, r=5),
39.6/28.9 at (0.05, r=3): too small a sigma_F cuts off small noisy pieces, too large a one gives
cuts that follow the grid rather than the image. ``sigma_F^2`` from the *mean* instead of the
median scored 55.3/43.3 at 0.1 and 52.1/37.2 at 0.25. Limitation: features that are i.i.d. noise
around region means (no spatial smoothness, unlike image statistics) make within-region weights
``exp(-d^2 / (0.1 median))`` vary over orders of magnitude and the graph fragments; raise
``sigma_scale`` (or use a dense graph) for such features.

Intervening-contour cue (Malik, Belongie, Leung, Shi, IJCV 2001), on with ``contour``: an edge
also gets ``exp(-c_ij^2 / sigma_IC^2)``. With an image edge map ``E`` (``edges``;
:func:`image_edges`: Lab gradient magnitude after a 1 px Gaussian blur, max-pooled to 3 x 3
cells per patch and divided by its 90th percentile over the image), ``c_ij`` is the largest ``E``
on the straight segment joining the centres of ``i`` and ``j`` (one sample per cell along it):
two patches on either side of a thin dark line are weakly linked even when their features match,
and so are adjacent patches with a contour between them. Without a map, ``c_ij`` is the largest
*feature* edge strength of the patches strictly between ``i`` and ``j`` (a patch's largest
feature distance to a 4-neighbour less its median over the image, clipped at 0), with
``sigma_C = contour * sigma_F``.

Built offset by offset (one vectorised pass per ``(dy, dx)`` with ``dy^2 + dx^2 <= r^2``, about
``pi r^2 / 2`` of them; no loop over nodes), so memory is ``O(N r^2)``: a 1024 px image at stride 8
(16k nodes) with ``r = 5`` (80 neighbours) has about 1.3M stored entries, with ``r = 9`` (~250)
about 4M. The contour cue adds one strided view of ``E`` per sample along each offset's segment
(``3 max(|dy|, |dx|) + 1`` samples), again no loop over nodes.

Defaults of the pipeline (:class:`~deepcut.config.SegmenterConfig`: ``radius = 9``,
``contour = 1`` on the ``classic`` backbone's edge map) were chosen on the *tuning half* of
BSDS500 test (63 images, ``benchmarks/split.py``; 6-way ``clusters``, 224 px) and then checked once
on the evaluation half (71 images). NMI / ARI, spectral | falcon:

======================== =================== =================== ===================
graph                    tuning half         evaluation half     full set
======================== =================== =================== ===================
r 5, no contour (before) 52.1/41.5|50.0/38.3 57.4/48.8|54.7/44.9 54.9/45.4|52.5/41.8
r 9, no contour          52.9/42.7|51.2/39.3 57.5/47.9|56.3/45.6
r 9, contour 1           53.7/43.4|51.1/39.7 59.2/50.2|56.7/46.6
======================== =================== =================== ===================

On the tuning half (spectral): contour 1 at r 5 / 7 / 11: 52.6/42.0, 53.4/42.5, 52.7/41.4;
sigma_IC 0.5 / 2 (r 5): 50.8/39.9, 52.2/41.7; absolute Lab units instead of the 90th
percentile (sigma_IC 2 / 4 / 8 / 16): 44.1/31.5 to 52.1/41.6; 2 or 1 cells per patch: 52.9/42.0
and 52.2/41.7 (r 9 / r 5); blur 2 px: 52.2/41.6; sigma_scale 0.07 / 0.15 at r 9: 53.1/43.1,
52.8/40.8. The earlier feature-edge cue gave 54.6/46.4 against 55.2/46.3 without it (first 40
images, r 5). The long-range edges of ``global_knn`` are off: with 32 of them (r = 3,
sigma_scale 0.25) Weizmann 1obj IoU rose from 37.4 to 50.2 on its first 40 images, but SOD IoU
and BSDS NMI fell.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as Fn

from deepcut.graphs.graph import Graph

__all__ = ["contour_edges", "current_edges", "grid_offsets", "image_edges", "local_graph"]

#: Weight floor of a within-radius edge: keeps the grid graph connected, so every node has a
#: positive degree and spectral methods see no spurious components.
MIN_WEIGHT = 1e-6


_EDGES: ContextVar[torch.Tensor | None] = ContextVar("deepcut_contour_edges", default=None)


@contextmanager
def contour_edges(edges: torch.Tensor | None) -> Iterator[None]:
    """Within the block, :func:`current_edges` returns ``edges`` (the edge map of the image being
    segmented, e.g. ``PatchFeatures.extra["edges"]``): how the pipeline hands the image's edge map
    to :func:`~deepcut.graphs.affinity.build_graph` without threading it through every task."""
    token = _EDGES.set(edges)
    try:
        yield
    finally:
        _EDGES.reset(token)


def current_edges(grid: tuple[int, int]) -> torch.Tensor | None:
    """The edge map set by :func:`contour_edges` when it fits ``grid`` (``(m h, m w)``), else None
    (no map, or a graph on another grid)."""
    E = _EDGES.get()
    if E is None or E.dim() != 2:
        return None
    h, w = grid
    m = E.shape[0] // h if h else 0
    return E if m >= 1 and E.shape == (m * h, m * w) else None


def grid_offsets(radius: float) -> torch.Tensor:
    """Half of the integer offsets within ``radius``: ``(M, 2)`` (dy, dx) with ``dy > 0`` or
    ``dy == 0, dx > 0``. The other half are their negatives (the graph is symmetric)."""
    r = math.floor(radius)
    dy, dx = torch.meshgrid(torch.arange(0, r + 1), torch.arange(-r, r + 1), indexing="ij")
    keep = (dy * dy + dx * dx <= radius * radius) & ((dy > 0) | (dx > 0))
    return torch.stack([dy[keep], dx[keep]], 1)


def _pair_slices(h: int, w: int, dy: int, dx: int) -> tuple[slice, slice, slice, slice]:
    """Row/col slices of the sources ``(y, x)`` and targets ``(y + dy, x + dx)`` inside the grid."""
    ys, yt = slice(0, h - dy), slice(dy, h)
    if dx >= 0:
        xs, xt = slice(0, w - dx), slice(dx, w)
    else:
        xs, xt = slice(-dx, w), slice(0, w + dx)
    return ys, xs, yt, xt


def _edge_strength(G: torch.Tensor) -> torch.Tensor:
    """``(h, w)`` largest feature distance of each patch to its 4-neighbours, less its median
    over the image (clipped at 0); ``G: (h, w, D)``."""
    h, w, _ = G.shape
    e = torch.zeros(h, w, dtype=G.dtype, device=G.device)
    dv = (G[1:] - G[:-1]).norm(dim=-1)
    dh = (G[:, 1:] - G[:, :-1]).norm(dim=-1)
    e[1:] = torch.maximum(e[1:], dv)
    e[:-1] = torch.maximum(e[:-1], dv)
    e[:, 1:] = torch.maximum(e[:, 1:], dh)
    e[:, :-1] = torch.maximum(e[:, :-1], dh)
    # only contrast above the image's typical neighbour difference counts as a contour, so noise
    # inside a region does not cut its long edges
    return (e - e.median()).clamp_(min=0)


def _intervening(e: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Max of ``e: (h, w)`` over the patches strictly between ``(y, x)`` and ``(y+dy, x+dx)``,
    for every valid source: ``(h - dy, w - |dx|)`` (zeros when the two patches touch)."""
    h, w = e.shape
    ys, xs, _, _ = _pair_slices(h, w, dy, dx)
    out = torch.zeros(ys.stop - ys.start, xs.stop - xs.start, dtype=e.dtype, device=e.device)
    steps = max(abs(dy), abs(dx))
    for t in range(1, steps):  # at most r - 1 samples along the line, each a shifted view
        oy, ox = round(dy * t / steps), round(dx * t / steps)
        out = torch.maximum(out, e[ys.start + oy: ys.stop + oy, xs.start + ox: xs.stop + ox])
    return out


def _pair_maxes(E: torch.Tensor) -> dict[tuple[bool, bool], torch.Tensor]:
    """``E`` and its maxima over vertical, horizontal and 2 x 2 cell pairs, keyed by
    (row between two cells, column between two cells): a segment sample that falls between
    cells reads one view of the right map at its floor index."""
    Ey = torch.maximum(E[:-1], E[1:])
    return {(False, False): E, (True, False): Ey, (False, True): torch.maximum(E[:, :-1], E[:, 1:]),
            (True, True): torch.maximum(Ey[:, :-1], Ey[:, 1:])}


def _segment_max(maps: dict[tuple[bool, bool], torch.Tensor], grid: tuple[int, int], dy: int,
                 dx: int) -> torch.Tensor:
    """Max of an edge map ``E: (m h, m w)`` along the segment joining the centres of patches
    ``(y, x)`` and ``(y + dy, x + dx)``, both ends included, for every valid source:
    ``(h - dy, w - |dx|)``; ``maps`` is :func:`_pair_maxes` of ``E``.

    Patch ``(y, x)`` covers the cells ``[m y, m y + m) x [m x, m x + m)`` of ``E``; its centre is
    at ``m y + (m - 1) / 2``. The segment is sampled once per cell along its longer axis
    (``m * max(|dy|, |dx|) + 1`` samples, each one strided view: a loop over samples, not nodes);
    a sample between two cells takes both, so the max is symmetric in ``i, j``.
    """
    h, w = grid
    E = maps[(False, False)]
    m = E.shape[0] // h
    ys, xs, _, _ = _pair_slices(h, w, dy, dx)
    ny, nx = ys.stop - ys.start, xs.stop - xs.start
    out = torch.zeros(ny, nx, dtype=E.dtype, device=E.device)
    steps = m * max(abs(dy), abs(dx))
    c = (m - 1) / 2
    for t in range(steps + 1):
        py, px = c + dy * m * t / steps, c + dx * m * t / steps
        fy, fx = math.floor(py + 1e-9), math.floor(px + 1e-9)
        M = maps[(py - fy > 1e-9, px - fx > 1e-9)]
        y0, x0 = m * ys.start + fy, m * xs.start + fx
        out = torch.maximum(out, M[y0: y0 + m * (ny - 1) + 1: m, x0: x0 + m * (nx - 1) + 1: m])
    return out


@torch.no_grad()
def image_edges(
    rgb: torch.Tensor,
    grid: tuple[int, int],
    patch: int,
    stride: int,
    cells: int = 3,
    smooth: float = 1.0,
    quantile: float | None = 0.9,
    lab: torch.Tensor | None = None,
) -> torch.Tensor:
    """Edge map ``E`` of an image on the patch grid, ``cells`` cells per patch side.

    ``E`` is the gradient magnitude of the image in CIE Lab (L* in [0, 100]; Sobel, per pixel,
    over the three channels) after a Gaussian blur of ``smooth`` pixels, max-pooled onto a
    ``(cells h, cells w)`` grid over the pixels the patches cover, so a one-pixel contour
    survives the pooling; then divided by its ``quantile`` over the image, so ``sigma_IC`` is
    relative to the image's strong edges (a faint contour counts in a low-contrast image).

    Args:
        rgb: ``(3, H, W)`` or ``(1, 3, H, W)`` RGB in [0, 1] (the backbone's input).
        grid: ``(h, w)`` patch grid.
        patch: patch side in pixels.
        stride: stride in pixels.
        cells: cells per patch side (1 = one value per patch).
        smooth: Gaussian sigma in pixels (0 = none).
        quantile: divide by this quantile of ``E`` (None = keep Lab units per pixel).
        lab: ``rgb_to_lab`` of ``rgb`` (same shape) when the caller has it already (the
            classic backbone's features need it too); computed here otherwise.

    Returns:
        ``(cells h, cells w)`` float32.
    """
    from deepcut.backbones.classic import rgb_to_lab

    x = rgb.reshape(1, 3, *rgb.shape[-2:]).float()
    h, w = grid
    Hc, Wc = (h - 1) * stride + patch, (w - 1) * stride + patch
    if lab is None:
        lab = rgb_to_lab(x[..., :Hc, :Wc])
    else:  # a pixelwise conversion: the crop of the whole image's Lab
        lab = lab.reshape(1, 3, *lab.shape[-2:]).float()[..., :Hc, :Wc]
    if smooth > 0:
        rad = max(1, math.ceil(3 * smooth))
        k = torch.exp(-torch.arange(-rad, rad + 1, dtype=lab.dtype) ** 2 / (2 * smooth**2))
        k = (k / k.sum()).to(lab.device)
        lab = Fn.pad(lab, (rad, rad, rad, rad), mode="replicate")
        lab = Fn.conv2d(lab, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
        lab = Fn.conv2d(lab, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],
                      device=lab.device) / 8
    # one grouped conv over the three Lab channels (the classic texture's Sobel is per gray
    # image); a flat region gives exactly 0 here
    kern = torch.stack((kx, kx.t())).unsqueeze(1).repeat(3, 1, 1, 1)  # (6, 1, 3, 3)
    g = Fn.conv2d(Fn.pad(lab, (1, 1, 1, 1), mode="replicate"), kern, groups=3)
    mag = g.pow(2).sum(1, keepdim=True).sqrt()
    E = Fn.adaptive_max_pool2d(mag, (cells * h, cells * w))[0, 0]
    if quantile is not None:
        flat = E.flatten()
        if flat.numel() > 2**24:  # torch.quantile's input limit: a regular subsample
            flat = flat[:: math.ceil(flat.numel() / 2**24)]
        E = E / flat.quantile(quantile).clamp_min(1e-6)  # a flat image stays all 0
    return E


def _feature_knn(X: torch.Tensor, k: int, chunk: int = 2048) -> tuple[torch.Tensor, ...]:
    """``(row, col, d2)`` of each node's ``k`` nearest other nodes in feature space, each
    ``(N * k,)``; built in row blocks, so memory is ``O(chunk * N + N * k)``."""
    N = X.shape[0]
    k = min(k, N - 1)
    rows, cols, d2s = [], [], []
    sq = X.pow(2).sum(1)
    for start in range(0, N, chunk):  # loop over row blocks, not nodes
        blk = X[start:start + chunk]
        d2 = (sq[start:start + chunk, None] + sq[None] - 2 * blk @ X.T).clamp_(min=0)
        d2[torch.arange(blk.shape[0]), torch.arange(start, start + blk.shape[0])] = float("inf")
        v, c = d2.topk(k, dim=1, largest=False)
        rows.append(torch.arange(start, start + blk.shape[0], device=X.device).repeat_interleave(k))
        cols.append(c.reshape(-1))
        d2s.append(v.reshape(-1))
    return torch.cat(rows), torch.cat(cols), torch.cat(d2s)


@torch.no_grad()
def local_graph(
    F: torch.Tensor,
    grid: tuple[int, int] | None = None,
    radius: float = 5.0,
    sigma_x: float | None = None,
    sigma_scale: float = 0.1,
    sigma_f: float | None = None,
    contour: float | None = None,
    edges: torch.Tensor | None = None,
    metric: str = "dot",
    global_knn: int = 0,
    global_weight: float = 1.0,
) -> Graph:
    """Shi-Malik local graph on a patch grid (module docstring).

    Args:
        F: ``(N, D)`` node features in row-major grid order, or ``(h, w, D)``.
        grid: ``(h, w)`` with ``h * w = N``; required when ``F`` is flat.
        radius: ``r`` in patches; only pairs with ``||X_i - X_j|| <= r`` are linked (>= 1).
        sigma_x: spatial scale in patches (None = ``radius``: the farthest edge keeps ``exp(-1)``).
        sigma_scale: ``sigma_F^2 = sigma_scale * median ||F_i - F_j||^2`` over the edges.
        sigma_f: a fixed ``sigma_F`` instead of the data's (for reproducing Shi-Malik's values).
        contour: ``sigma_IC`` of the intervening-contour term (module docstring); None = off.
            With ``edges`` the term is ``exp(-max_{segment ij} E^2 / sigma_IC^2)``; without, the
            patch feature edge strength is used with ``sigma_C = contour * sigma_F`` (``True``
            means 1).
        edges: ``(m h, m w)`` edge map ``E`` of the image at ``m`` cells per patch side (e.g.
            :func:`image_edges`); used only with ``contour``.
        metric: ``dot`` (raw features) or ``cosine`` (rows L2-normalised first).
        global_knn: also link each patch to its ``global_knn`` nearest patches in feature space
            anywhere in the image, with weight ``global_weight * exp(-||F_i - F_j||^2 / sigma_F^2)``
            (no spatial term): similar regions apart from each other join the same segment.
        global_weight: weight factor of those long-range edges.

    Returns:
        A :class:`Graph` of kind ``local`` whose ``W`` is a coalesced sparse COO ``(N, N)``
        tensor: symmetric, non-negative, no self-loops; ``params`` records the ``sigma_f`` used.
    """
    if F.dim() == 3:
        h, w = int(F.shape[0]), int(F.shape[1])
        if grid is not None and tuple(grid) != (h, w):
            raise ValueError(f"grid {tuple(grid)} does not match the feature grid {(h, w)}.")
    elif grid is None:
        raise ValueError("local_graph needs the patch grid (h, w) of flat features F: (N, D).")
    else:
        h, w = int(grid[0]), int(grid[1])
        if h * w != F.shape[0]:
            raise ValueError(f"grid {(h, w)} has {h * w} cells but F has {F.shape[0]} rows.")
    if radius < 1:
        raise ValueError(f"The 'radius' parameter of local_graph must be >= 1. Got {radius!r}.")
    if metric not in ("dot", "cosine"):
        raise ValueError(f"metric must be 'dot' or 'cosine'. Got {metric!r} instead.")
    G = F.reshape(h, w, -1).float()
    if metric == "cosine":
        G = Fn.normalize(G, dim=-1)
    N = h * w
    sx = float(radius if sigma_x is None else sigma_x)
    idx = torch.arange(N, device=G.device).reshape(h, w)
    use_c = contour is not None and contour is not False
    if use_c and float(contour) <= 0:
        raise ValueError(f"contour (sigma_IC) must be > 0 or None. Got {contour!r}.")
    if use_c and edges is not None:
        if edges.dim() != 2 or edges.shape[0] % h or edges.shape[1] % w \
                or edges.shape[0] // h != edges.shape[1] // w:
            raise ValueError(f"edges {tuple(edges.shape)} must be (m h, m w) for the grid "
                             f"{(h, w)}.")
        E = edges.to(G.device, torch.float32)
        maps = _pair_maxes(E)
    else:
        E = None
    e = _edge_strength(G) if use_c and E is None else None
    rows, cols, d2s, cs, spat = [], [], [], [], []
    for dy, dx in grid_offsets(radius).tolist():  # ~pi r^2 / 2 offsets, each one vectorised pass
        if dy >= h or abs(dx) >= w:
            continue
        ys, xs, yt, xt = _pair_slices(h, w, dy, dx)
        rows.append(idx[ys, xs].reshape(-1))
        cols.append(idx[yt, xt].reshape(-1))
        d2s.append((G[ys, xs] - G[yt, xt]).pow(2).sum(-1).reshape(-1))
        spat.append(torch.full_like(d2s[-1], -(dy * dy + dx * dx) / sx**2))
        if E is not None:
            cs.append(_segment_max(maps, (h, w), dy, dx).reshape(-1))
        elif e is not None:
            cs.append(_intervening(e, dy, dx).reshape(-1))
    if not rows:  # a 1 x 1 grid: no pairs
        W = torch.sparse_coo_tensor(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), (N, N))
        return Graph(W=W.coalesce(), degree=torch.zeros(N), grid=(h, w), kind="local",
                     params={"radius": radius, "sigma_x": sx, "sigma_f": 0.0,
                             "contour": contour if use_c else None})
    r, c, d2, logs = torch.cat(rows), torch.cat(cols), torch.cat(d2s), torch.cat(spat)
    if sigma_f is None:
        s2 = float(d2.median()) * sigma_scale
        s2 = s2 if s2 > 1e-12 else 1.0  # a constant image: every feature term is 1
    else:
        s2 = float(sigma_f) ** 2
    logw = logs - d2 / s2
    if E is not None:
        ci = torch.cat(cs)
        logw = logw - ci * ci / float(contour) ** 2
    elif e is not None:
        ci = torch.cat(cs)
        logw = logw - ci * ci / (s2 * float(contour) ** 2)
    v = logw.exp().clamp_(min=MIN_WEIGHT)
    if global_knn:
        gr, gc, gd2 = _feature_knn(G.reshape(N, -1), global_knn)
        r, c = torch.cat([r, gr]), torch.cat([c, gc])
        v = torch.cat([v, (global_weight * (-gd2 / s2).exp()).clamp_(min=MIN_WEIGHT)])
    # both directions: (i, j) and (j, i) with the same weight, so W is exactly symmetric; an
    # edge found twice (local and global) keeps its largest weight
    ind = torch.stack([torch.cat([r, c]), torch.cat([c, r])])
    lin = ind[0] * N + ind[1]
    if global_knn:
        uniq, inv = torch.unique(lin, return_inverse=True)
        val = torch.zeros(uniq.numel(), dtype=v.dtype, device=v.device)
        val.scatter_reduce_(0, inv, torch.cat([v, v]), reduce="amax")
        ind = torch.stack([uniq // N, uniq % N])
        W = torch.sparse_coo_tensor(ind, val, (N, N), check_invariants=False).coalesce()
    else:  # each pair once per direction by construction: one sort puts W in coalesced order
        order = torch.argsort(lin)
        W = torch.sparse_coo_tensor(ind[:, order], torch.cat([v, v])[order], (N, N),
                                    check_invariants=False, is_coalesced=True)
    deg = torch.zeros(N, device=G.device).index_add_(0, W.indices()[0], W.values())
    return Graph(W=W, degree=deg, grid=(h, w), kind="local",
                 params={"radius": radius, "sigma_x": sx, "sigma_f": math.sqrt(s2),
                         "sigma_scale": sigma_scale, "contour": float(contour) if use_c else None,
                         "contour_edges": ("image" if E is not None
                                           else "features" if use_c else None),
                         "metric": metric,
                         "global_knn": global_knn, "global_weight": global_weight})
