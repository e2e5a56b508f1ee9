"""Patch saliency by robust background detection (Zhu, Liang, Wei, Sun, CVPR 2014), on the grid.

W. Zhu, S. Liang, Y. Wei, J. Sun, "Saliency optimization from robust background detection",
CVPR 2014, computed on superpixels there and on the patch grid here (a grid cell plays the role
of a superpixel; grids above :data:`MAX_NODES` cells are average-pooled first, so the cost stays
bounded at any input size). Three steps, every one vectorised:

1. **Boundary connectivity.** Neighbouring cells (8-connected; all border cells are also linked to
   each other) are joined by edges of length ``||F_p - F_q||``; ``d_geo(p, q)`` is
   the shortest path (:func:`scipy.sparse.csgraph.dijkstra`). With
   ``w(p, q) = exp(-d_geo^2 / 2 sigma_geo^2)``, a cell's soft region has area
   ``A(p) = sum_q w(p, q)`` and border length ``L(p) = sum_{q on the border} w(p, q)``;
   ``BndCon(p) = L(p) / sqrt(A(p))``, and the background probability is
   ``w_bg(p) = 1 - exp(-BndCon(p)^2 / 2)``.
2. **Background-weighted contrast.** ``wCtr(p) = sum_q ||F_p - F_q|| exp(-|x_p - x_q|^2 /
   2 sigma_spa^2) w_bg(q)`` (positions in [0, 1], ``sigma_spa = 0.4``), scaled to [0, 1]; values
   under Otsu's threshold are set to 0 (a cleaner foreground cue, as in the authors' code).
3. **Saliency optimisation.** The saliency ``s`` minimises
   ``sum_p lambda w_bg(p) s_p^2 + sum_p wCtr(p) (s_p - 1)^2 + sum_{pq} w_pq (s_p - s_q)^2``
   (``lambda = 5``; smoothness ``w_pq = exp(-||F_p - F_q||^2 / 2 sigma_nei^2) + mu`` over 2-ring
   neighbours and border pairs, ``mu = 0.1`` on direct neighbours; cells with ``BndCon > 3`` get
   a background weight of 1000): a sparse symmetric positive definite linear system
   (:func:`scipy.sparse.linalg.spsolve`).

The colour distance of the paper (Lab) is the feature distance ``||F_p - F_q||`` here; the
paper's Lab-unit constants become the authors' *dynamic* ones, read from the image's own
neighbour distances (``EstimateDynamicParas`` in their code): ``sigma_geo = min(3 m1, t / 10)``
and ``sigma_nei = min(3 m1, t / 5)``, with ``m1`` the mean smallest distance to a direct neighbour
and ``t`` the mean of the largest 1 % of neighbour distances (both floored at ``t / 100``). Their
Lab-unit clamps (``sigma_geo`` in [5, 10], ``sigma_nei <= 20``) have no meaning for standardised
features and are dropped, and so is their edge clip (the mean smallest 2-ring distance; measured
worse here, :data:`CLIP_SCALE`).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as tF
from scipy.sparse.csgraph import dijkstra
from scipy.sparse.linalg import spsolve
from scipy.spatial.distance import cdist

__all__ = [
    "MAX_NODES",
    "background_probability",
    "boundary_connectivity_map",
    "grid_adjacency",
    "optimised_saliency",
    "otsu_threshold",
    "saliency_map",
    "weighted_contrast",
]

#: Largest grid the saliency is computed on (cells); larger grids are average-pooled to fit.
#: The geodesic step holds an ``(N, N)`` distance matrix: 1024 cells = 8 MiB. The pooling factor
#: is a whole number per side (``ceil(sqrt(N / MAX_NODES))``): at ``--size 224`` a square image's
#: 28 x 28 grid is kept, a 2:3 image's 28 x 42 grid becomes 14 x 21 (as in the tuning runs).
MAX_NODES = 1024
#: Spatial spread of the contrast weights (positions in [0, 1]; the authors' value).
SIGMA_SPATIAL = 0.4
#: Weight of the background term over the foreground term (the authors' value).
BG_LAMBDA = 5.0
#: Regularisation weight on direct neighbours (the authors' value).
MU = 0.1
#: Multiplier of the authors' dynamic edge clip (the mean smallest 2-ring distance). 0: no clip.
#: On the tune halves (spectral, 91 SOD / 25 Weizmann 1obj images, ``benchmarks/saliency_tune.py``)
#: clip x 0 / 0.5 / 1 gave IoU 48.8 / 47.8 / 47.4 (SOD) and 57.0 / 55.6 / 54.5 (Weizmann) for
#: the Otsu mask of the saliency alone: small feature steps inside a region are not noise to clip.
CLIP_SCALE = 0.0
#: Cells more border-connected than this are fixed as background (weight 1000; the authors').
HIGH_BNDCON = 3.0


def grid_adjacency(h: int, w: int, diagonal: bool = True) -> sp.csr_matrix:
    """``(N, N)`` 0/1 symmetric adjacency of the ``h x w`` grid (row-major), 8- or 4-connected."""
    idx = np.arange(h * w).reshape(h, w)
    pairs = [(idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :])]
    if diagonal:
        pairs += [(idx[:-1, :-1], idx[1:, 1:]), (idx[:-1, 1:], idx[1:, :-1])]
    a = np.concatenate([p.reshape(-1) for p, _ in pairs])
    b = np.concatenate([q.reshape(-1) for _, q in pairs])
    n = h * w
    m = sp.coo_matrix((np.ones(a.size), (a, b)), shape=(n, n)).tocsr()
    return ((m + m.T) > 0).astype(np.float64).tocsr()


def border_ids(h: int, w: int) -> np.ndarray:
    """Row-major indices of the border cells of an ``h x w`` grid."""
    mask = np.zeros((h, w), dtype=bool)
    mask[0], mask[-1], mask[:, 0], mask[:, -1] = True, True, True, True
    return np.flatnonzero(mask)


def otsu_threshold(x: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of values ``x`` in [0, 1] (the maximiser of the between-class variance)."""
    hist, edges = np.histogram(np.clip(x, 0, 1), bins=bins, range=(0.0, 1.0))
    p = hist / max(hist.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centres)
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m0) ** 2 / (w0 * (1 - w0))
    between = np.nan_to_num(between, nan=0.0, posinf=0.0)
    return float(edges[int(np.argmax(between)) + 1])


def _neighbour_stats(adj: sp.csr_matrix, dist: np.ndarray,
                     ring2: bool = True) -> tuple[float, float, float]:
    """``(m1, top, m2)``: mean smallest distance to a direct neighbour, mean of the largest 1 %
    of neighbour distances, mean smallest distance to a 2-ring neighbour (0 when not
    ``ring2``: only the edge clip reads it, and it is off by default)."""
    n = adj.shape[0]
    a1 = adj.toarray().astype(bool)
    np.fill_diagonal(a1, False)
    m1 = float(np.where(a1, dist, np.inf).min(1).mean())
    tri = dist[np.triu(a1, 1)]
    top = float(np.sort(tri)[::-1][:max(1, round(0.01 * tri.size))].mean())
    if not ring2:
        return m1, top, 0.0
    a2 = (adj @ adj + adj).toarray() > 0
    a2[np.arange(n), np.arange(n)] = False
    m2 = float(np.where(a2, dist, np.inf).min(1).mean())
    return m1, top, m2


def boundary_connectivity_map(dist: np.ndarray, adj: sp.csr_matrix, border: np.ndarray,
                              clip: float, sigma_geo: float) -> np.ndarray:
    """``(N,)`` geodesic boundary connectivity ``L(p) / sqrt(A(p))`` (module docstring, step 1).

    Args:
        dist: ``(N, N)`` feature distances; only those of linked cells are read.
        adj: ``(N, N)`` 0/1 adjacency of the cells.
        border: indices of the border cells (linked to each other as well).
        clip: subtracted from every edge length (floored at 0), so that small variations inside
            a region add no length.
        sigma_geo: spread of ``exp(-d_geo^2 / 2 sigma_geo^2)``.
    """
    n = dist.shape[0]
    link = adj.tolil(copy=True)
    link[np.ix_(border, border)] = 1.0
    link = sp.triu(link.tocsr(), 1).tocoo()
    # Zero-length edges vanish from a sparse matrix; a tiny length keeps them as edges.
    length = np.maximum(dist[link.row, link.col] - clip, 0.0) + 1e-12
    g = sp.coo_matrix((length, (link.row, link.col)), shape=(n, n)).tocsr()
    # The search stops at the cut-off below (farther pairs get weight 0 anyway, as inf): the
    # same map in a fifth of the time (20 BSDS images, identical values).
    d_geo = dijkstra(g, directed=False, limit=3 * sigma_geo)  # (N, N)
    wgeo = np.exp(-d_geo ** 2 / (2 * sigma_geo ** 2))
    wgeo[d_geo > 3 * sigma_geo] = 0.0  # the authors' cut-off
    area = wgeo.sum(1)
    length_bnd = wgeo[:, border].sum(1)
    return length_bnd / np.sqrt(area)


def background_probability(bndcon: np.ndarray) -> np.ndarray:
    """``(N,)`` ``1 - exp(-BndCon^2 / 2)``."""
    return 1.0 - np.exp(-bndcon ** 2 / 2.0)


def weighted_contrast(dist: np.ndarray, pos: np.ndarray, bg: np.ndarray,
                      sigma_spatial: float = SIGMA_SPATIAL, clean: bool = True) -> np.ndarray:
    """``(N,)`` background-weighted contrast in [0, 1] (module docstring, step 2).

    ``pos: (N, 2)`` cell centres in [0, 1]; ``clean``: zero the values under Otsu's threshold.
    """
    d2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
    w_spa = np.exp(-d2 / (2 * sigma_spatial ** 2))
    ctr = (dist * w_spa) @ bg
    lo, hi = ctr.min(), ctr.max()
    ctr = (ctr - lo) / (hi - lo + 1e-12)
    if clean:
        ctr = np.where(ctr < otsu_threshold(ctr), 0.0, ctr)
    return ctr


def optimised_saliency(dist: np.ndarray, adj: sp.csr_matrix, border: np.ndarray,
                       bg_weight: np.ndarray, fg_weight: np.ndarray, sigma_nei: float,
                       bg_lambda: float = BG_LAMBDA, mu: float = MU) -> np.ndarray:
    """``(N,)`` the minimiser of the saliency energy (module docstring, step 3).

    Solves ``(L + diag(lambda w_bg + w_fg)) s = w_fg`` with ``L`` the Laplacian of the
    smoothness weights; ``L`` is positive semi-definite and the diagonal term positive wherever a
    cue is, so the system has one solution for any image with some background or foreground cue.
    """
    n = dist.shape[0]
    reach = (adj @ adj + adj).tolil()
    reach[np.ix_(border, border)] = 1.0
    reach = sp.triu(reach.tocsr(), 1).tocoo()
    d = dist[reach.row, reach.col]
    wn = np.where(d > 3 * sigma_nei, 0.0, np.exp(-d ** 2 / (2 * sigma_nei ** 2)))
    wn = sp.coo_matrix((wn, (reach.row, reach.col)), shape=(n, n))
    W = (wn + wn.T + mu * adj).tocsr()
    W.setdiag(0.0)
    lap = sp.diags(np.asarray(W.sum(1)).ravel()) - W
    A = (lap + sp.diags(bg_lambda * bg_weight + fg_weight)).tocsc()
    # A cue-free image (no background and no foreground weight anywhere) has no saliency.
    A = A + sp.identity(n, format="csc") * 1e-9
    return np.asarray(spsolve(A, fg_weight), dtype=np.float64)


def _pooled(F: torch.Tensor, grid: tuple[int, int], max_nodes: int) -> tuple[np.ndarray,
                                                                               tuple[int, int]]:
    """``F: (h * w, D)`` average-pooled to at most ``max_nodes`` cells: ``((n, D), (h', w'))``."""
    h, w = grid
    f = max(1, math.ceil(math.sqrt(h * w / max_nodes)))
    x = F.reshape(h, w, -1).permute(2, 0, 1)[None].double().cpu()
    if f > 1:
        x = tF.adaptive_avg_pool2d(x, (max(1, math.ceil(h / f)), max(1, math.ceil(w / f))))
    hh, ww = x.shape[-2:]
    return x[0].permute(1, 2, 0).reshape(hh * ww, -1).numpy(), (int(hh), int(ww))


def saliency_map(F: torch.Tensor, grid: tuple[int, int], max_nodes: int = MAX_NODES,
                 diagonal: bool = True, clip_scale: float = CLIP_SCALE, geo_scale: float = 1.0,
                 nei_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Robust-background saliency of the patch grid (module docstring).

    Args:
        F: ``(h * w, D)`` patch features, row-major.
        grid: ``(h, w)``.
        max_nodes: grids with more cells are average-pooled to at most this many first.
        diagonal: 8-connected cells (else 4-connected).
        clip_scale, geo_scale, nei_scale: multipliers of the dynamic ``clip``, ``sigma_geo``
            and ``sigma_nei`` (:data:`CLIP_SCALE`: no clip by default).

    Returns:
        ``{"saliency", "background", "contrast", "bndcon"}``, each ``(h, w)`` float on the patch
        grid (nearest-upsampled from the pooled grid when it was pooled); ``saliency`` is the
        optimised one, ``background`` the probability ``w_bg``.
    """
    h, w = grid
    X, (hh, ww) = _pooled(F, grid, max_nodes)
    n = hh * ww
    dist = cdist(X, X)  # (n, n) feature distances
    adj = grid_adjacency(hh, ww, diagonal)
    border = border_ids(hh, ww)
    if n < 4 or hh < 2 or ww < 2:
        zero = np.zeros(grid)
        return {"saliency": zero, "background": zero + 1, "contrast": zero, "bndcon": zero}
    m1, top, m2 = _neighbour_stats(adj, dist, ring2=clip_scale != 0)
    # Floors at 1 % of the top contrast: a noise-free image has m1 = 0 (identical neighbours).
    floor = max(top / 100, 1e-9)
    clip = clip_scale * m2
    sigma_geo = max(geo_scale * min(3 * m1, top / 10), floor)
    sigma_nei = max(nei_scale * min(3 * m1, top / 5), floor)
    bndcon = boundary_connectivity_map(dist, adj, border, clip, sigma_geo)
    bg = background_probability(bndcon)
    yy, xx = np.meshgrid((np.arange(hh) + 0.5) / hh, (np.arange(ww) + 0.5) / ww, indexing="ij")
    pos = np.stack([yy.reshape(-1), xx.reshape(-1)], 1)
    ctr = weighted_contrast(dist, pos, bg)
    bg_weight = np.where(bndcon > HIGH_BNDCON, 1000.0, bg)
    sal = optimised_saliency(dist, adj, border, bg_weight, ctr, sigma_nei)
    out = {"saliency": sal, "background": bg, "contrast": ctr, "bndcon": bndcon}
    ry = (np.arange(h) * hh) // h  # nearest cell of the pooled grid for each patch
    rx = (np.arange(w) * ww) // w
    return {k: v.reshape(hh, ww)[np.ix_(ry, rx)] for k, v in out.items()}
