r"""Multi-K segmentation hierarchy: eigenvectors once for max(K), every level from them.

:class:`SpectralHierarchy` segments one node set at several K (e.g. 10, 25, 50, 100):

* The NCut eigenvectors are computed **once**, for ``max(n_segments)`` (exactly, or by Nystrom
  above :data:`~deepcut.tasks.nystrom.EXACT_MAX_NODES` nodes or when ``n_sample`` is given;
  :mod:`deepcut.tasks.nystrom`). No level recomputes them.
* ``nested=False`` (ncut-pytorch's behaviour): level K is k-means on the row-normalised first K
  eigenvectors (Ng-Jordan-Weiss, as :class:`~deepcut.solvers.SpectralNCut` ``mode="kway"``).
  Levels are independent: a fine segment may straddle two coarse ones.
* ``nested=True``: only the finest level is discretised; coarser levels come from a greedy
  agglomeration of its segments that at each step merges the pair whose union lowers the
  discrete NCut ``K - sum_k assoc_k / vol_k`` the most (:func:`ncut_merge`; the cluster-level
  affinity ``X^T W X`` is exact, or estimated from the Nystrom landmarks). Every fine segment then
  lies inside exactly one coarse segment, at every pair of levels, and any K below the finest is
  available for free by cutting the merge tree.

:class:`HierarchyPredictor` wraps it with a backbone and images (the ncut-pytorch tutorial's API):
``set_images`` runs the backbone once per image and builds **one joint graph** over all images'
patches by default (``joint=True``: segment ids are shared across images, an "aligned" cut as in
ncut-pytorch; ``joint=False`` solves each image on its own graph); ``segments(k)`` gives one
``(H, W)`` label map per image; ``summary(...)`` a PIL grid; ``preview(point)`` the segment under a
pixel at every level. The ``hierarchy`` task (``infer.py --task hierarchy --levels 10,25,50,100``)
runs the same core on one image's features and writes one label map per level plus the summary.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from deepcut._validation import Interval, Options, check_n_clusters, validate_params
from deepcut.backbones.base import PatchFeatures
from deepcut.config import SegmenterConfig
from deepcut.errors import ConfigError
from deepcut.refine.upsample import patch_index, upsample_labels
from deepcut.solvers.base import DegenerateResultWarning
from deepcut.tasks.base import TaskOutput, register_task
from deepcut.tasks.nystrom import EXACT_MAX_NODES, NCutKernel
from deepcut.viz.summary import summary_grid

__all__ = [
    "DEFAULT_LEVELS",
    "HierarchyOutput",
    "HierarchyPredictor",
    "SpectralHierarchy",
    "hierarchy_task",
    "kway_labels",
    "ncut_merge",
    "nested_level",
    "overlay_level",
    "parse_levels",
]

#: Levels of the tutorial's ``summary(n_segments=[10, 25, 50, 100])``.
DEFAULT_LEVELS = (10, 25, 50, 100)


# --------------------------------------------------------------------------------------------
# Discretisation and nesting
# --------------------------------------------------------------------------------------------
def kway_labels(V: torch.Tensor, k: int, seed: int | None = 0, n_init: int = 2) -> np.ndarray:
    """k-means (seeded) on the row-normalised first ``k`` columns of ``V: (N, m)``; ``(N,)`` labels.

    Labels are renumbered 0..k'-1 (k' < k only if k-means finds duplicate points).
    """
    from deepcut.solvers.spectral import kmeans_discretize

    lab, _ = kmeans_discretize(V.float(), k, n_init, random_state=seed)
    return np.unique(lab, return_inverse=True)[1].astype(np.int64)


def ncut_merge(A: torch.Tensor) -> np.ndarray:
    r"""Greedy NCut agglomeration of K clusters down to one; returns the merges, ``(K-1, 2)``.

    ``A: (K, K)`` is the symmetric cluster affinity :math:`X^\top W X` (diagonal ``assoc_k``, row
    sums ``vol_k``). Merging a and b changes the discrete NCut by
    :math:`-1 - g_{ab}` with

    .. math:: g_{ab} = \frac{2A_{ab} - vol_b\, r_a - vol_a\, r_b}{vol_a + vol_b},
              \quad r_k = assoc_k / vol_k,

    so each step merges the pair of largest :math:`g` (the union that costs the least
    within-segment association). Row ``t`` is ``(keep, drop)``: after step t, cluster ``drop`` is
    part of ``keep``. One ``K x K`` vectorised step per merge (a loop over segments, not nodes).
    """
    A = A.double().clone()
    K = A.shape[0]
    active = torch.ones(K, dtype=torch.bool)
    merges = np.zeros((max(K - 1, 0), 2), dtype=np.int64)
    for t in range(K - 1):
        vol = A.sum(1).clamp(min=1e-12)
        r = A.diagonal() / vol
        g = (2 * A - vol[None, :] * r[:, None] - vol[:, None] * r[None, :]) \
            / (vol[:, None] + vol[None, :])
        ok = active[:, None] & active[None, :]
        ok.fill_diagonal_(False)
        g = torch.where(ok, g, torch.full_like(g, -float("inf")))
        a, b = divmod(int(torch.argmax(g)), K)
        a, b = min(a, b), max(a, b)  # keep the smaller id: deterministic
        A[a] += A[b]
        A[:, a] += A[:, b]
        A[b] = 0
        A[:, b] = 0
        active[b] = False
        merges[t] = (a, b)
    return merges


def cut_merges(merges: np.ndarray, n_fine: int, k: int) -> np.ndarray:
    """``(n_fine,)`` map fine id -> coarse id (0..k-1) after the first ``n_fine - k`` merges."""
    parent = np.arange(n_fine)
    for a, b in merges[: max(n_fine - k, 0)]:
        parent[parent == b] = a
    return np.unique(parent, return_inverse=True)[1]


# --------------------------------------------------------------------------------------------
# The estimator on one node set
# --------------------------------------------------------------------------------------------
class SpectralHierarchy:
    """Segment ``N`` nodes at several K from one set of NCut eigenvectors.

    Args:
        n_segments: the levels K (each ``>= 2``); eigenvectors are computed for the largest.
        nested: coarser levels by NCut merging of the finest (every fine segment inside one
            coarse segment) instead of independent k-means per level.
        metric: similarity of the NCut graph: ``dot`` (DeepCut Eq. 6) or ``cosine``.
        n_sample: Nystrom landmarks; None = exact up to ``exact_max_nodes`` nodes (then 2048).
        exact_max_nodes: the largest N solved exactly when ``n_sample`` is None.
        n_init: k-means restarts per discretised level.
        seed: seeds the landmarks, the eigensolver and k-means.

    Fitted attributes:
        eigenvalues_: ``(m,)`` ascending normalised-Laplacian eigenvalues, ``m = max(K)``.
        eigenvectors_: ``(N, m)`` generalised eigenvectors (computed once).
        levels_: ``{K: (N,) int64 labels}`` for every requested level.
        merges_: ``(K_f - 1, 2)`` merge tree of the finest level (``nested=True``), else None.
        method_: ``exact`` or ``nystrom``.
        timings_: seconds for ``graph``, ``eigen`` and ``levels``.

    Example:
        >>> F = torch.cat([torch.randn(40, 8) + 4 * i for i in range(4)])
        >>> h = SpectralHierarchy((2, 4), nested=True).fit(F)
        >>> sorted(h.levels_), int(h.levels_[4].max()) + 1
        ([2, 4], 4)
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "n_segments": [lambda v: _valid_levels(v)],
        "nested": ["boolean"],
        "metric": [Options({"dot", "cosine"})],
        "n_sample": [Interval(Integral, 2, None, closed="left"), None],
        "exact_max_nodes": [Interval(Integral, 1, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "seed": ["random_state"],
    }

    def __init__(self, n_segments: Sequence[int] = DEFAULT_LEVELS, *, nested: bool = False,
                 metric: str = "dot", n_sample: int | None = None,
                 exact_max_nodes: int = EXACT_MAX_NODES, n_init: int = 2,
                 seed: int | None = 0) -> None:
        self.n_segments = n_segments
        self.nested = nested
        self.metric = metric
        self.n_sample = n_sample
        self.exact_max_nodes = exact_max_nodes
        self.n_init = n_init
        self.seed = seed

    def fit(self, F: torch.Tensor) -> SpectralHierarchy:
        """Compute the eigenvectors once and every level from ``F: (N, D)`` (or ``(h, w, D)``)."""
        validate_params({k: getattr(self, k) for k in self._parameter_constraints},
                        self._parameter_constraints, type(self).__name__)
        levels = sorted({int(k) for k in self.n_segments})
        X = F.reshape(-1, F.shape[-1]).float()
        kmax = levels[-1]
        check_n_clusters(X.shape[0], kmax, type(self).__name__)
        self.timings_ = {}
        t0 = time.perf_counter()
        self.kernel_ = NCutKernel(X, metric=self.metric, n_sample=self.n_sample, seed=self.seed,
                                  exact_max_nodes=self.exact_max_nodes)
        self.method_ = self.kernel_.method
        if self.kernel_.landmarks.numel() < kmax:
            raise ConfigError(f"n_sample={self.kernel_.landmarks.numel()} should be >= "
                              f"the largest level K={kmax} (SpectralHierarchy).")
        t1 = time.perf_counter()
        self.eigenvalues_, self.eigenvectors_ = self.kernel_.eigenpairs(kmax)  # once
        t2 = time.perf_counter()
        self.levels_: dict[int, np.ndarray] = {}
        self.merges_ = None
        if self.nested:
            fine = kway_labels(self.eigenvectors_, kmax, self.seed, self.n_init)
            self._fine = fine
            n_fine = int(fine.max()) + 1
            self.merges_ = ncut_merge(self.kernel_.assoc(_onehot(fine, n_fine)))
        for k in levels:
            self.labels(k)
        self.timings_ = {"graph": t1 - t0, "eigen": t2 - t1, "levels": time.perf_counter() - t2}
        return self

    def labels(self, k: int) -> np.ndarray:
        """``(N,)`` labels at level ``k`` (any ``2 <= k <= max(n_segments)``; cached)."""
        if k in self.levels_:
            return self.levels_[k]
        kmax = self.eigenvectors_.shape[1]
        if k < 1:
            raise ConfigError(f"k must be >= 1. Got {k!r} instead.")
        if k > kmax:
            raise ConfigError(f"k={k} is above the largest level K={kmax} fitted; include it in "
                              "n_segments to compute enough eigenvectors.")
        if self.nested:
            n_fine = int(self._fine.max()) + 1
            lab = cut_merges(self.merges_, n_fine, k)[self._fine]
        else:
            lab = kway_labels(self.eigenvectors_, k, self.seed, self.n_init)
        self.levels_[k] = lab
        return lab

    def ncut(self, k: int) -> float:
        """Discrete NCut ``K - sum_k assoc_k / vol_k`` of level ``k`` (estimated if Nystrom)."""
        lab = self.labels(k)
        A = self.kernel_.assoc(_onehot(lab, int(lab.max()) + 1))
        return float(A.shape[0] - (A.diagonal() / A.sum(1).clamp(min=1e-12)).sum())


def _valid_levels(v: Any) -> bool:
    """a non-empty sequence of ints >= 2"""
    if isinstance(v, (str, bytes)) or not isinstance(v, Iterable):
        return False
    ks = list(v)
    return bool(ks) and all(isinstance(k, Integral) and not isinstance(k, bool) and k >= 2
                            for k in ks)


def _onehot(labels: np.ndarray, k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(labels).long(), k).float()


def parse_levels(levels: str | Iterable[int] | None) -> list[int]:
    """``"10,25,50,100"`` or ``[10, 25]`` -> sorted unique ints (None -> :data:`DEFAULT_LEVELS`)."""
    if levels is None:
        return list(DEFAULT_LEVELS)
    items = levels.split(",") if isinstance(levels, str) else list(levels)
    try:
        ks = sorted({int(str(k).strip()) for k in items if str(k).strip()})
    except ValueError:
        raise ConfigError(f"levels must be comma-separated integers like '10,25,50,100'. "
                          f"Got {levels!r} instead.") from None
    if not ks or ks[0] < 2:
        raise ConfigError(f"levels must be integers >= 2. Got {levels!r} instead.")
    return ks


# --------------------------------------------------------------------------------------------
# The predictor: backbone + images
# --------------------------------------------------------------------------------------------
class HierarchyPredictor:
    """Hierarchical segmentation of images (ncut-pytorch's predictor API, nested on demand).

    Args:
        backbone: a registry name (``auto``, ``classic``, ``dino_vits8`` ...) or a built
            :class:`~deepcut.backbones.Backbone`.
        n_segments: levels computed by :meth:`set_images` (eigenvectors for the largest).
        nested: every fine segment inside exactly one coarse segment (see module docstring).
        joint: one graph over all images' patches (shared segment ids) or one graph per image.
        n_sample: Nystrom landmarks (None: exact up to 5000 nodes).
        metric: ``dot`` (DeepCut) or ``cosine``.
        seed: seeds every random choice.
        weights, size, stride, device: backbone options (as in ``infer.py``).
        resize, resample, pos_embed, channel_layout, dino_head: the backbone's preprocessing
            (None = its own default; DeepCut's values in
            :data:`deepcut.backbones.paper.PAPER_PREPROCESSING`).
        refine: patch to pixel labels of :meth:`segments`, :meth:`summary` and :meth:`preview`:
            ``nearest`` or any method of :func:`deepcut.refine.refine_labels` (``dream``,
            ``pamr`` ...; image-guided ones need the images of :meth:`set_images`).
        refine_params: keyword options of the refinement.

    Example:
        >>> p = HierarchyPredictor("classic", n_segments=(4, 8))          # doctest: +SKIP
        >>> p.set_images(["examples/chelsea.png"])                        # doctest: +SKIP
        >>> p.summary(n_segments=[4, 8]).save("summary.png")              # doctest: +SKIP
        >>> masks = p.preview((120, 80))  # {4: (H, W) bool, 8: (H, W) bool}  # doctest: +SKIP
    """

    def __init__(self, backbone: Any = "auto", *, n_segments: Sequence[int] = DEFAULT_LEVELS,
                 nested: bool = False, joint: bool = True, n_sample: int | None = None,
                 metric: str = "dot", seed: int | None = 0, weights: str | None = None,
                 size: int = 280, stride: int | None = None, device: str = "cpu",
                 refine: str = "nearest", refine_params: dict[str, Any] | None = None,
                 resize: str | None = None, resample: str | None = None,
                 pos_embed: str | None = None, channel_layout: str | None = None,
                 dino_head: str | None = None) -> None:
        self.backbone = backbone
        self.n_segments = n_segments
        self.nested = nested
        self.joint = joint
        self.n_sample = n_sample
        self.metric = metric
        self.seed = seed
        self.weights = weights
        self.size = size
        self.stride = stride
        self.device = device
        self.refine = refine
        self.refine_params = refine_params
        self.resize = resize
        self.resample = resample
        self.pos_embed = pos_embed
        self.channel_layout = channel_layout
        self.dino_head = dino_head

    def _backbone(self):
        if isinstance(self.backbone, str):
            from deepcut.backbones import resolve_backbone

            self.backbone = resolve_backbone(
                self.backbone, weights=self.weights, size=self.size, stride=self.stride,
                device=self.device, resize=self.resize, resample=self.resample,
                pos_embed=self.pos_embed, channel_layout=self.channel_layout,
                dino_head=self.dino_head)
        return self.backbone

    def set_images(self, images: Sequence[Image.Image | str | Path] | Image.Image | str | Path
                   ) -> HierarchyPredictor:
        """Run the backbone once per image, then the eigenvectors and every level.

        Args:
            images: PIL images (any mode) or paths, or a single one.
        """
        from deepcut.io.images import load_image, to_rgb

        if isinstance(images, (Image.Image, str, Path)):
            images = [images]
        self.images_ = [to_rgb(im) if isinstance(im, Image.Image) else load_image(im)
                        for im in images]
        bb = self._backbone()
        return self.set_features([bb(im) for im in self.images_], self.images_)

    def set_features(self, features: Sequence[PatchFeatures],
                     images: Sequence[Image.Image] | None = None) -> HierarchyPredictor:
        """Like :meth:`set_images` on precomputed :class:`PatchFeatures` (no backbone run).

        Args:
            features: one :class:`PatchFeatures` per image.
            images: the RGB images for :meth:`summary` (None: grey placeholders).
        """
        self.features_ = list(features)
        self._pixel_cache: dict[int, list[np.ndarray]] = {}
        self.images_ = list(images) if images is not None else [
            Image.new("RGB", (pf.image_size[1], pf.image_size[0]), (128, 128, 128))
            for pf in self.features_]
        est = {"n_segments": self.n_segments, "nested": self.nested, "metric": self.metric,
               "n_sample": self.n_sample, "seed": self.seed}
        sizes = [pf.grid[0] * pf.grid[1] for pf in self.features_]
        if self.joint:
            F = torch.cat([pf.flat for pf in self.features_])
            self.estimators_ = [SpectralHierarchy(**est).fit(F)]
        else:
            self.estimators_ = [SpectralHierarchy(**est).fit(pf.flat) for pf in self.features_]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)])
        return self

    def patch_segments(self, k: int) -> list[np.ndarray]:
        """Per image, ``(h, w)`` labels on its patch grid at level ``k``."""
        out = []
        for i, pf in enumerate(self.features_):
            if self.joint:
                lab = self.estimators_[0].labels(k)[self._offsets[i]:self._offsets[i + 1]]
            else:
                lab = self.estimators_[i].labels(k)
            out.append(lab.reshape(pf.grid))
        return out

    def segments(self, k: int) -> list[np.ndarray]:
        """Per image, ``(H, W)`` int64 labels at the original image size, level ``k``.

        With ``joint=True`` an id means the same segment in every image. Any ``k`` up to the
        largest level of ``n_segments`` works (others are computed from the cached eigenvectors
        or cut from the merge tree).
        """
        if self.refine == "nearest":
            return [upsample_labels(lab, pf.image_size, pf.input_size, pf.patch_size, pf.stride)
                    for lab, pf in zip(self.patch_segments(k), self.features_)]
        finest = max(parse_levels(self.n_segments))
        if self.nested and k != finest:
            # the refined finest level mapped through the tree: refining each level on its own
            # would move coarse boundaries off the fine ones, and the levels would not nest
            return [nested_level(px, fine, coarse) for px, fine, coarse in
                    zip(self.segments(finest), self.patch_segments(finest),
                        self.patch_segments(k))]
        if k not in self._pixel_cache:  # refinements cost more: once per level
            from deepcut.refine import refine_labels

            self._pixel_cache[k] = [
                refine_labels(self.refine, im, lab, pf.input_size, pf.patch_size, pf.stride,
                              features=pf.features if self.refine == "centres" else None,
                              **(self.refine_params or {}))
                for im, lab, pf in zip(self.images_, self.patch_segments(k), self.features_)]
        return self._pixel_cache[k]

    def summary(self, n_segments: Sequence[int] | None = None, draw_border: bool = True,
                max_side: int | None = 512, captions: bool = True) -> Image.Image:
        """PIL grid: one row per image, the original then one coloured map per level
        (captioned ``K=<k>`` above each column unless ``captions=False``)."""
        ks = parse_levels(n_segments if n_segments is not None else self.n_segments)
        per_level = [self.segments(k) for k in ks]
        maps = [[lv[i] for lv in per_level] for i in range(len(self.images_))]
        return summary_grid(self.images_, maps, draw_border=draw_border, max_side=max_side,
                            captions=[f"K={k}" for k in ks] if captions else None)

    def preview(self, point: tuple[int, int], image_index: int = 0,
                n_segments: Sequence[int] | None = None) -> dict[int, np.ndarray]:
        """The segment containing pixel ``point = (x, y)`` at every level.

        Returns:
            ``{K: (H, W) bool mask}`` of image ``image_index``. In nested mode the masks shrink
            (weakly) as K grows.
        """
        pf = self.features_[image_index]
        x, y = int(point[0]), int(point[1])
        H, W = pf.image_size
        if not (0 <= x < W and 0 <= y < H):
            raise ValueError(f"point (x={x}, y={y}) lies outside the {W}x{H} image.")
        h, w = pf.grid
        r = int(patch_index(H, pf.input_size[0], h, pf.patch_size, pf.stride)[y])
        c = int(patch_index(W, pf.input_size[1], w, pf.patch_size, pf.stride)[x])
        out = {}
        for k in parse_levels(n_segments if n_segments is not None else self.n_segments):
            lab = self.segments(k)[image_index]
            out[k] = lab == (self.patch_segments(k)[image_index][r, c] if self.refine == "nearest"
                             else lab[y, x])
        return out


# --------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------
def overlay_level(level_labels: dict[int, np.ndarray], requested: int | None = None) -> int:
    """The level the overlay shows: ``requested`` if given (one of the levels), else the
    coarsest level with at least two segments found (the finest when none has two).

    The finest level (K = 100 by default) is confetti at image scale; the coarsest level that
    still splits the image is the readable one. ``level_labels``: ``{K: labels}`` (any shape).
    """
    if requested is not None:
        if int(requested) not in level_labels:
            raise ConfigError(f"overlay_level must be one of the levels "
                              f"{sorted(level_labels)}. Got {requested!r} instead.")
        return int(requested)
    for k in sorted(level_labels):
        if len(np.unique(level_labels[k])) >= 2:
            return k
    return max(level_labels)


def _level_captions(level_labels: dict[int, np.ndarray]) -> list[str]:
    """``"K=10"`` per level, with the number of segments found where it differs."""
    out = []
    for k, lab in level_labels.items():
        found = len(np.unique(lab))
        out.append(f"K={k}" if found == k else f"K={k} ({found} found)")
    return out


@dataclass
class HierarchyOutput(TaskOutput):
    """A :class:`TaskOutput` plus one pixel label map per level (written by ``write_outputs``).

    ``level_labels`` are nearest-upsampled by the task; the pipeline replaces them with the
    refined labels of ``level_patch_labels`` when ``refine`` is not ``nearest``, so the ``_k<K>``
    maps, the summary and the overlay are refined alike. The main label map is the finest
    level; the overlay shows level ``overlay_level`` (:func:`overlay_level`).
    """

    level_labels: dict[int, np.ndarray] = field(default_factory=dict)
    level_patch_labels: dict[int, np.ndarray] = field(default_factory=dict)
    overlay_level: int | None = None

    @property
    def overlay_labels(self) -> np.ndarray | None:
        """``(H, W)`` pixel labels of the overlay's level (None: no levels)."""
        if not self.level_labels:
            return None
        k = self.overlay_level if self.overlay_level in self.level_labels \
            else overlay_level(self.level_labels)
        return self.level_labels[k]

    def extra_outputs(self, image: Image.Image) -> dict[str, np.ndarray | Image.Image]:
        """Files beside the main outputs: ``_k<K>`` label maps and the ``_summary`` grid."""
        out: dict[str, np.ndarray | Image.Image] = {
            f"_k{k}": lab for k, lab in self.level_labels.items()}
        out["_summary"] = summary_grid([image], [list(self.level_labels.values())],
                                       captions=_level_captions(self.level_labels))
        return out


def nested_level(fine_pixels: np.ndarray, fine_patches: np.ndarray,
                 coarse_patches: np.ndarray) -> np.ndarray:
    """A coarse level's pixel labels from the finest level's: each fine segment takes the
    coarse id its patches have (one, since the levels are nested). ``fine_pixels: (H, W)``,
    ``fine_patches``/``coarse_patches: (h, w)``."""
    to_coarse = np.zeros(int(fine_patches.max()) + 1, dtype=np.int64)
    to_coarse[np.asarray(fine_patches).ravel()] = np.asarray(coarse_patches).ravel()
    return to_coarse[np.asarray(fine_pixels)]


def check_hierarchy_solver(settings: dict[str, Any]) -> None:
    """Refuse a hierarchy with a solver other than spectral, chosen explicitly in ``settings``
    (the keys a user gave: flags, YAML). The task computes NCut eigenvectors once and derives
    every level from them; the GNN and Falcon solvers have no such multi-K form, and silently
    printing spectral's result under their name would mislead."""
    if settings.get("task") == "hierarchy" and settings.get("solver") not in (None, "spectral"):
        raise ConfigError(
            f"--task hierarchy is spectral only (NCut eigenvectors once, every level from them); "
            f"solver {settings['solver']!r} has no hierarchy. Drop --solver or use --solver "
            "spectral; for one K with that solver use --task clusters --k K.")


def hierarchy_settings(cfg: SegmenterConfig) -> tuple[list[int], bool, int | None, int | None]:
    """``(levels, nested, n_sample, overlay_level)`` from ``cfg.task_params``, each checked."""
    if cfg.graph not in (None, "ncut"):
        raise ConfigError(f"the hierarchy task cuts the NCut graph (its spectral embedding, "
                          f"dense or Nystrom); graph={cfg.graph!r} would not be used.")
    tp = cfg.task_params
    levels = parse_levels(tp.get("levels"))
    nested = tp.get("nested") or False
    if not isinstance(nested, bool):
        raise ConfigError(f"The 'nested' task parameter must be true or false. Got {nested!r} "
                          "instead.")
    n_sample = tp.get("n_sample")
    if n_sample is not None and (isinstance(n_sample, bool) or
                                 not isinstance(n_sample, (int, np.integer)) or n_sample < 2):
        raise ConfigError(f"The 'n_sample' task parameter must be an int >= 2. Got {n_sample!r} "
                          "instead.")
    shown = tp.get("overlay_level")
    if shown is not None:
        overlay_level(dict.fromkeys(levels), shown)  # one of the levels
    return levels, nested, n_sample, shown


@register_task("hierarchy", params=("levels", "nested", "n_sample", "overlay_level"),
               check=hierarchy_settings)
def hierarchy_task(pf: PatchFeatures, cfg: SegmenterConfig) -> HierarchyOutput:
    """Segments at every level of ``task_params["levels"]`` (default 10,25,50,100).

    Always spectral (eigenvectors once for the largest K). ``solver="falcon"`` is refused; the
    default ``gnn`` cannot be told from an explicit one here, so the command lines refuse an
    explicit ``--solver gnn`` (:func:`check_hierarchy_solver`). Task params: ``levels``,
    ``nested`` (bool), ``n_sample`` (Nystrom landmarks), ``overlay_level`` (the K the overlay
    shows; default :func:`overlay_level`'s rule: the coarsest level with two or more segments).
    The main label map is the finest level; ``extra`` records each level's K found and NCut,
    and the overlay's level.
    """
    if cfg.solver == "falcon":
        check_hierarchy_solver({"task": "hierarchy", "solver": cfg.solver})
    levels, nested, n_sample, shown = hierarchy_settings(cfg)
    est = SpectralHierarchy(levels, nested=nested, metric=cfg.metric,
                            n_sample=n_sample, seed=cfg.seed).fit(pf.flat)
    h, w = pf.grid
    level_patch_labels = {k: est.labels(k).reshape(h, w) for k in levels}
    level_labels = {k: upsample_labels(lab, pf.image_size, pf.input_size, pf.patch_size,
                                       pf.stride) for k, lab in level_patch_labels.items()}
    shown = overlay_level(level_patch_labels, shown)
    fine = est.labels(levels[-1])
    n_fine = int(fine.max()) + 1
    ncuts = {k: est.ncut(k) for k in levels}
    timings = {k: round(v, 6) for k, v in est.timings_.items()}
    found = {k: int(est.labels(k).max()) + 1 for k in levels}
    short = [f"K={k}: {found[k]}" for k in levels if found[k] < k]
    said = []
    if short:  # e.g. an image with fewer distinct regions than a level asks for
        said = [f"spectral-hierarchy: fewer segments than asked at {len(short)} level(s) "
                + f"({', '.join(short)})"]
        warnings.warn(said[0], DegenerateResultWarning, stacklevel=2)
    return HierarchyOutput(
        patch_labels=fine.reshape(h, w),
        label_names={i: f"segment {i}" for i in range(n_fine)},
        solver={"solver": "spectral-hierarchy", "n_clusters": n_fine,
                "n_clusters_requested": levels[-1], "ncut": ncuts[levels[-1]],
                "n_iter": 0, "timings": timings, "warnings": said},
        extra={"levels": levels, "nested": est.nested, "method": est.method_,
               "n_segments_found": {str(k): found[k] for k in levels},
               "ncut_per_level": {str(k): round(v, 6) for k, v in ncuts.items()},
               "label_maps": {str(k): f"_k{k}.png" for k in levels},
               "overlay_level": shown},
        level_labels=level_labels,
        level_patch_labels=level_patch_labels,
        overlay_level=shown,
    )
