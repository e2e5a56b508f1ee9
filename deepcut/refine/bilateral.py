r"""Fast bilateral solver (Barron & Poole, ECCV 2016) for label maps, as DeepCut and TokenCut use it.

The image's pixels are splatted onto a bilateral grid, a 5-D lattice over
``(x / sigma_spatial, y / sigma_spatial, luma / sigma_luma, u / sigma_chroma, v / sigma_chroma)``
(YUV, 0-255) that keeps only the occupied vertices. ``S: (V, P)`` splats pixels to vertices,
``B`` is the sum of the +-1 neighbours along each of the 5 axes, and the grid is bistochastised
(``Dn``, ``Dm``, 10 Sinkhorn-like iterations) so that the smoothing operator is doubly stochastic.
For a target ``t: (P, K)`` with confidence ``c: (P,)`` the vertex values ``y`` solve

.. math:: (\lambda (D_m - D_n B D_n) + \mathrm{diag}(S c))\, y = S (c \odot t),

by Jacobi-preconditioned conjugate gradients (scipy), one right-hand side per label, and the
pixels read them back by slicing, ``S^T y``. For label maps the target is the one-hot encoding and
each pixel takes the argmax; for two labels this is DeepCut's and TokenCut's threshold at 0.5.

The defaults are DeepCut's: ``sigma_spatial=24, sigma_luma=4, sigma_chroma=4, lam=256``,
confidence 0.999, 25 CG iterations at tol 1e-5 (TokenCut's saliency runs use 16 / 16 / 8).
TokenCut then fills holes and keeps the largest component of the foreground; that is a task rule,
not part of the solver, and is not applied here. Unlike the reference port, the vertex hash is a
mixed-radix index with room for the -1 / +1 neighbours (the reference's base-255 hash can alias a
neighbour of one vertex onto another vertex), and no Python loop runs over pixels or components.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from PIL import Image
from scipy.sparse.linalg import cg

from deepcut.refine.upsample import nearest_resize, upsample_labels, working_size

__all__ = ["BilateralGrid", "bilateral_labels", "bilateral_solve"]

_RGB_TO_YUV = np.array([[0.299, 0.587, 0.114],
                        [-0.168736, -0.331264, 0.5],
                        [0.5, -0.418688, -0.081312]])
_YUV_OFFSET = np.array([0.0, 128.0, 128.0])


class BilateralGrid:
    """The occupied vertices of an image's 5-D bilateral grid.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        sigma_spatial, sigma_luma, sigma_chroma: grid cell sizes (pixels, and 0-255 YUV units).

    Attributes:
        S: ``(V, H*W)`` CSR splat matrix; blurs: one ``(V, V)`` CSR neighbour matrix per axis;
        B: their sum plus ``2 * 5`` times the identity (the grid's blur).
    """

    def __init__(self, image: np.ndarray, sigma_spatial: float = 24, sigma_luma: float = 4,
                 sigma_chroma: float = 4) -> None:
        image = np.asarray(image, dtype=np.float64)
        H, W = image.shape[:2]
        yuv = image @ _RGB_TO_YUV.T + _YUV_OFFSET
        iy, ix = np.mgrid[:H, :W]
        coords = np.stack([ix / sigma_spatial, iy / sigma_spatial, yuv[..., 0] / sigma_luma,
                           yuv[..., 1] / sigma_chroma, yuv[..., 2] / sigma_chroma], -1)
        coords = np.floor(coords.reshape(-1, 5)).astype(np.int64)
        coords -= coords.min(0) - 1  # >= 1, so the -1 neighbour of a vertex is still >= 0
        radix = coords.max(0) + 2  # ... and the +1 neighbour still inside its axis
        self._mult = np.cumprod(np.concatenate([[1], radix[:-1]]))
        keys, idx = np.unique(coords @ self._mult, return_inverse=True)
        self.n_pixels, self.n_vertices = H * W, keys.size
        self.S = sp.csr_matrix((np.ones(self.n_pixels), (idx.ravel(), np.arange(self.n_pixels))),
                               shape=(self.n_vertices, self.n_pixels))
        self.blurs = []
        for d in range(5):
            blur = sp.csr_matrix((self.n_vertices, self.n_vertices))
            for step in (-1, 1):
                nkeys = keys + step * self._mult[d]
                loc = np.clip(np.searchsorted(keys, nkeys), 0, keys.size - 1)
                hit = np.flatnonzero(keys[loc] == nkeys)
                blur = blur + sp.csr_matrix((np.ones(hit.size), (hit, loc[hit])),
                                            shape=(self.n_vertices, self.n_vertices))
            self.blurs.append(blur)
        # the whole blur, B = 2 * dims * I + sum of the per-axis neighbour matrices
        self.B = (sum(self.blurs) + 2 * len(self.blurs) * sp.identity(self.n_vertices)).tocsr()

    def splat(self, x: np.ndarray) -> np.ndarray:
        return self.S @ x

    def slice(self, y: np.ndarray) -> np.ndarray:
        return self.S.T @ y

    def blur(self, x: np.ndarray) -> np.ndarray:
        return self.B @ x


def _bistochastize(grid: BilateralGrid, n_iter: int = 10) -> tuple[sp.dia_matrix, sp.dia_matrix]:
    m = grid.splat(np.ones(grid.n_pixels))
    n = np.ones(grid.n_vertices)
    for _ in range(n_iter):
        n = np.sqrt(n * m / grid.blur(n))
    return sp.diags(n), sp.diags(n * grid.blur(n))


def bilateral_solve(image: np.ndarray, target: np.ndarray, confidence: np.ndarray | float = 0.999,
                    sigma_spatial: float = 24, sigma_luma: float = 4, sigma_chroma: float = 4,
                    lam: float = 256, cg_maxiter: int = 25, cg_tol: float = 1e-5) -> np.ndarray:
    """Edge-aware smoothing of ``target: (H, W)`` or ``(H, W, K)`` along ``image: (H, W, 3)``.

    Returns the solver output with the shape of ``target`` (float64).
    """
    H, W = image.shape[:2]
    t = np.asarray(target, dtype=np.float64).reshape(H * W, -1)
    c = np.broadcast_to(np.asarray(confidence, dtype=np.float64), (H, W)).reshape(-1)
    grid = BilateralGrid(image, sigma_spatial, sigma_luma, sigma_chroma)
    Dn, Dm = _bistochastize(grid)
    c_splat = grid.splat(c)
    A = (lam * (Dm - Dn @ grid.B @ Dn) + sp.diags(c_splat)).tocsr()
    b = grid.splat(t * c[:, None])
    M = sp.diags(1.0 / np.maximum(A.diagonal(), 1e-5))
    y0 = b / np.maximum(c_splat, 1e-12)[:, None]
    y = np.empty_like(b)
    for k in range(t.shape[1]):  # one CG per label channel (K is small)
        y[:, k], _ = cg(A, b[:, k], x0=y0[:, k], M=M, maxiter=cg_maxiter, rtol=cg_tol)
    return grid.slice(y).reshape(np.shape(target))


def bilateral_labels(image: Image.Image, patch_labels: np.ndarray, input_size: tuple[int, int],
                     patch: int, stride: int, max_side: int = 640, *,
                     depth: np.ndarray | None = None, features=None, **params) -> np.ndarray:
    """Pixel labels ``(H, W)``: nearest patch labels smoothed by the bilateral solver (argmax
    over the solved one-hot channels), computed on the image shrunk to at most ``max_side``.

    ``params`` go to :func:`bilateral_solve` (sigmas, ``lam``, CG settings); ``depth`` and
    ``features`` are the refinement interface's common keywords, unused here (a depth map is
    refused: use ``dream``).
    """
    from deepcut.refine.interface import refuse_depth

    refuse_depth("bilateral", depth)
    W, H = image.size
    h, w = working_size((H, W), max_side)
    small = np.asarray(image.convert("RGB").resize((w, h), Image.BILINEAR))
    lab = upsample_labels(patch_labels, (h, w), input_size, patch, stride).astype(np.int64)
    K = int(lab.max()) + 1
    onehot = np.eye(K, dtype=np.float64)[lab]  # (h, w, K)
    lab = bilateral_solve(small, onehot, **params).argmax(-1)
    return nearest_resize(lab, (H, W))
