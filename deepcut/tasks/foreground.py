"""Object segmentation: which clusters are background, for any K.

Two kinds of rule:

* **border** / **corners**: one background cluster, the one owning most border patches (Deep
  Spectral's rule) or most of the four corners (DeepCut's vote). Made for a 2-way cut of features
  that already separate the object (DINO keys).
* **saliency**: the robust background detection of saliency (W. Zhu, S. Liang, Y. Wei, J. Sun,
  "Saliency optimization from robust background detection", CVPR 2014) on the patch grid
  (:mod:`deepcut.tasks.saliency`: geodesic boundary connectivity per patch, background-weighted
  contrast, and the optimised saliency map ``s``, scaled to [0, 1]), read through the clusters
  of a K-way cut: each patch scores

  .. math:: m_p = (1 - a) \\, s_p + a \\, \\bar s_{c(p)}

  (``a = 0.5``; ``\\bar s_c`` the mean saliency of cluster ``c``, so the cut's boundaries shape
  the mask) and the object is ``m >= `` Otsu's threshold of ``m``. Background regions are heavily
  connected to the image border, objects are not, even when they touch it. It is the default of
  the weight-free ``classic`` backbone, whose 2-way cut often splits two background surfaces
  (sky / ground); ViT features keep the border rule.

  The cluster-level form of the boundary prior (:func:`cluster_saliency`, :func:`salient_clusters`:
  ``BndCon(c) = border patches / sqrt(|c|)`` and the contrast of each cluster's mean to the
  border-connected ones) is kept as a function; it was this rule's first form and did not hold
  on images no tuning saw (SOD eval half 33.6-34.7 IoU, below a centre rectangle).

  .. math:: \\mathrm{BndCon}(c) = \\frac{|\\{p \\in c : p \\text{ on the border}\\}|}{\\sqrt{|c|}},
            \\quad S(c) = (1 - w_{bg}(c)) \\frac{\\sum_{c'} |c'| \\, w_{bg}(c') \\,
            \\lVert \\mu_c - \\mu_{c'} \\rVert^2}{\\sum_{c'} |c'| \\, w_{bg}(c')}

  with ``w_bg(c) = 1 - exp(-BndCon(c)^2 / (2 sigma^2))``; its object is every cluster with
  ``S(c) >= threshold * max S``.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "SALIENCY_K",
    "SALIENCY_MIX",
    "SALIENCY_SIGMA",
    "SALIENCY_THRESHOLD",
    "background_cluster",
    "border_counts",
    "boundary_connectivity",
    "cluster_mean",
    "cluster_saliency",
    "corner_background",
    "foreground_mask",
    "salient_clusters",
    "salient_mask",
]

#: Clusters of the cut the ``saliency`` rule reads the saliency map through (segment task).
#: Chosen with :data:`SALIENCY_MIX` on the tune halves only (91 SOD / 25 Weizmann 1obj images of
#: ``benchmarks/split.py``; ``benchmarks/saliency_tune.py``), spectral: K = 4 / 5 / 6 gave IoU
#: 49.3 / 50.2 / 49.7 (SOD) and 59.2 / 58.9 / 59.1 (Weizmann); falcon 49.7 / 50.3 / 49.7 and
#: 60.5 / 58.6 / 60.3.
SALIENCY_K = 5
#: Weight ``a`` of the cluster mean in a patch's score (0: the saliency map alone, 1: whole
#: clusters). Tune halves, spectral K = 5: a = 0 / 0.3 / 0.5 / 0.7 gave SOD 48.8 / 49.7 / 50.2 /
#: 48.0, Weizmann 57.0 / 58.1 / 58.9 / 57.4; whole clusters by their mean (a = 1) 45.1 / 56.4.
SALIENCY_MIX = 0.5
#: Object clusters of the cluster-level rule (:func:`salient_clusters`): saliency at least this
#: fraction of the largest (tuned on the first 40 SOD and 30 Weizmann images).
SALIENCY_THRESHOLD = 0.5
#: Spread of the cluster-level background weight over boundary connectivity (Zhu et al.'s value).
SALIENCY_SIGMA = 1.0


def border_counts(labels: np.ndarray, n_clusters: int | None = None) -> np.ndarray:
    """``(K,)`` number of border patches (first/last row and column) in each cluster."""
    labels = np.asarray(labels)
    h, w = labels.shape
    border = np.concatenate([labels[0], labels[-1], labels[1:h - 1, 0], labels[1:h - 1, -1]]) \
        if h > 1 and w > 1 else labels.reshape(-1)
    k = int(labels.max()) + 1 if n_clusters is None else n_clusters
    return np.bincount(border.astype(np.int64), minlength=k)


def boundary_connectivity(labels: np.ndarray, n_clusters: int | None = None) -> np.ndarray:
    """``(K,)`` border patches of each cluster over the square root of its size (0 if empty)."""
    labels = np.asarray(labels).astype(np.int64)
    k = int(labels.max()) + 1 if n_clusters is None else n_clusters
    area = np.bincount(labels.reshape(-1), minlength=k).astype(np.float64)
    return border_counts(labels, k) / np.sqrt(np.maximum(area, 1.0))


def cluster_saliency(labels: np.ndarray, F: torch.Tensor, n_clusters: int | None = None,
                     sigma: float = SALIENCY_SIGMA) -> np.ndarray:
    """``(K,)`` saliency ``S(c)`` of each cluster (module docstring); -1 for empty clusters.

    Args:
        labels: ``(h, w)`` integer cluster ids on the grid.
        F: ``(h * w, D)`` patch features, row-major like ``labels``.
        n_clusters: K (default: ``labels.max() + 1``).
        sigma: spread of the background weight over boundary connectivity.
    """
    labels = np.asarray(labels).astype(np.int64)
    k = int(labels.max()) + 1 if n_clusters is None else n_clusters
    flat = torch.from_numpy(labels.reshape(-1))
    F = F.reshape(flat.numel(), -1).double().cpu()
    area = torch.bincount(flat, minlength=k).double()  # (K,)
    mu = torch.zeros(k, F.shape[1], dtype=F.dtype).index_add_(0, flat, F)
    mu = mu / area.clamp_min(1.0)[:, None]  # (K, D) cluster means
    bc = torch.from_numpy(boundary_connectivity(labels, k))
    w_bg = 1.0 - torch.exp(-bc * bc / (2.0 * sigma * sigma))  # (K,)
    mass = area * w_bg  # background mass of each cluster
    d2 = torch.cdist(mu, mu).square()  # (K, K)
    contrast = (d2 @ mass) / mass.sum().clamp_min(1e-12)
    sal = (1.0 - w_bg) * contrast
    return torch.where(area > 0, sal, torch.full_like(sal, -1.0)).numpy()


def salient_clusters(labels: np.ndarray, F: torch.Tensor, n_clusters: int | None = None,
                     threshold: float = SALIENCY_THRESHOLD,
                     sigma: float = SALIENCY_SIGMA) -> np.ndarray:
    """``(K,)`` bool: the object clusters by the ``saliency`` rule (module docstring).

    Never all nor none of the non-empty clusters: when every cluster is as salient as the
    others (e.g. identical means), the border rule decides the one background cluster.
    """
    labels = np.asarray(labels).astype(np.int64)
    k = int(labels.max()) + 1 if n_clusters is None else n_clusters
    sal = cluster_saliency(labels, F, k, sigma)
    present = sal >= 0
    top = sal.max()
    fg = present & (sal >= threshold * top) if top > 0 else np.zeros(k, dtype=bool)
    if not fg.any() or fg.sum() == present.sum():
        fg = present.copy()
        fg[background_cluster(labels)] = False
    return fg


def cluster_mean(labels: np.ndarray, values: np.ndarray,
                 n_clusters: int | None = None) -> np.ndarray:
    """``(K,)`` mean of ``values: (h, w)`` over each cluster of ``labels: (h, w)`` (0 if empty)."""
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    k = int(labels.max()) + 1 if n_clusters is None else n_clusters
    size = np.bincount(labels, minlength=k)
    total = np.bincount(labels, weights=np.asarray(values, dtype=np.float64).reshape(-1),
                        minlength=k)
    return total / np.maximum(size, 1)


def salient_mask(labels: np.ndarray, saliency: np.ndarray, n_clusters: int | None = None,
                 mix: float = SALIENCY_MIX) -> tuple[np.ndarray, float, np.ndarray]:
    """The object of the ``saliency`` rule (module docstring) from a saliency map and a cut.

    Args:
        labels: ``(h, w)`` cluster ids of the cut.
        saliency: ``(h, w)`` saliency (any scale; it is min-max scaled to [0, 1] first).
        n_clusters: K (default: ``labels.max() + 1``).
        mix: weight ``a`` of the cluster mean in each patch's score.

    Returns:
        ``(fg, threshold, means)``: the ``(h, w)`` bool object mask, the Otsu threshold on the
        scores and the ``(K,)`` mean scaled saliency of each cluster. Never all nor none of the
        patches: a map without contrast (flat, or an Otsu split that keeps everything) falls
        back to the border rule (background = the cluster that owns most of the border).
    """
    from deepcut.tasks.saliency import otsu_threshold

    labels = np.asarray(labels).astype(np.int64)
    k = int(labels.max()) + 1 if n_clusters is None else n_clusters
    s = np.asarray(saliency, dtype=np.float64)
    lo, hi = float(s.min()), float(s.max())
    s = (s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)
    means = cluster_mean(labels, s, k)
    score = (1.0 - mix) * s + mix * means[labels]
    threshold = otsu_threshold(score)
    fg = score >= threshold
    if hi <= lo or not fg.any() or fg.all():
        fg = labels != background_cluster(labels)
    return fg, threshold, means


def background_cluster(labels: np.ndarray) -> int:
    """The cluster holding the largest share of the border patches (Deep Spectral's rule).

    Works for any K (DeepCut's 4-corner vote and its ``1 - S`` flip only make sense for K = 2).
    Ties go to the larger cluster, then to the smaller id, so the choice is deterministic.

    Args:
        labels: ``(h, w)`` integer patch labels on the grid.
    """
    labels = np.asarray(labels).astype(np.int64)
    k = int(labels.max()) + 1
    counts = border_counts(labels, k)
    sizes = np.bincount(labels.reshape(-1), minlength=k)
    order = np.lexsort((np.arange(k), -sizes, -counts))  # primary key: border count
    return int(order[0])


def corner_background(labels: np.ndarray) -> int:
    """DeepCut's rule, generalised: the most frequent label among the four corner patches."""
    labels = np.asarray(labels).astype(np.int64)
    corners = np.array([labels[0, 0], labels[0, -1], labels[-1, 0], labels[-1, -1]])
    vals, cnt = np.unique(corners, return_counts=True)
    return int(vals[np.argmax(cnt)])


def foreground_mask(labels: np.ndarray, rule: str = "border",
                    F: torch.Tensor | None = None) -> np.ndarray:
    """``(h, w)`` bool mask of the object clusters (``rule``: ``border``, ``corners`` or
    ``saliency``; the last needs the ``(h * w, D)`` features ``F``)."""
    labels = np.asarray(labels)
    if rule == "saliency":
        if F is None:
            raise ValueError("foreground_mask(rule='saliency') needs the patch features F")
        from deepcut.tasks.saliency import saliency_map

        sal = saliency_map(F.reshape(labels.size, -1), labels.shape)["saliency"]
        return salient_mask(labels, sal)[0]
    bg = background_cluster(labels) if rule == "border" else corner_background(labels)
    return labels != bg
