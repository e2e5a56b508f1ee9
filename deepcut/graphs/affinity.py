r"""Graph builders: patch features ``F: (N, D)`` to a :class:`~deepcut.graphs.Graph`.

* :func:`ncut_graph` -- DeepCut Eq. 6: :math:`W = FF^\top \odot [FF^\top > 0]`, divided by its max.
* :func:`cc_graph` -- DeepCut Eq. 7, signed: :math:`W = S - t` with the threshold
  :math:`t = \mu + (\overline{S_{ii}} - \mu)/\alpha` (``shift="mean"``, default: ``mu`` is
  the mean off-diagonal similarity, :math:`\overline{S_{ii}}` the mean self-similarity) or the
  paper's :math:`t = \max(S)/\alpha`
  (``shift="max"``).
* :func:`falcon_graph` -- cosine, min-max normalised to [0, 1], raised to ``beta``,
  plus ``lam * diag(d)``.
* :func:`~deepcut.graphs.local.local_graph` -- Shi and Malik's sparse local graph (feature
  similarity times spatial proximity within a radius on the patch grid), kind ``local``.
* :func:`knn_graph` -- a sparse symmetric kNN version of any of the above, built in row chunks so
  N x N is never held in memory (16k nodes for a 1024 px image at stride 8).

``metric="dot"`` uses the raw dot product (DeepCut's choice: keys are not normalised);
``metric="cosine"`` L2-normalises the rows first.
"""
from __future__ import annotations

import torch
import torch.nn.functional as Fn

from deepcut.graphs.graph import Graph
from deepcut.graphs.local import local_graph

__all__ = [
    "CC_SHIFTS",
    "GRAPH_KINDS",
    "build_graph",
    "cc_graph",
    "cc_threshold",
    "falcon_graph",
    "knn_graph",
    "ncut_graph",
    "similarity",
]

GRAPH_KINDS = ("ncut", "cc", "falcon", "local")
CC_SHIFTS = ("mean", "max")


def _prep(F: torch.Tensor, metric: str) -> torch.Tensor:
    if F.dim() == 3:  # (h, w, D) grid
        F = F.reshape(-1, F.shape[-1])
    if metric not in ("dot", "cosine"):
        raise ValueError(f"metric must be 'dot' or 'cosine'. Got {metric!r} instead.")
    F = F.float()
    return Fn.normalize(F, dim=-1) if metric == "cosine" else F


def similarity(F: torch.Tensor, metric: str = "dot") -> torch.Tensor:
    """``(N, N)`` pairwise similarity of ``F: (N, D)`` (dot or cosine)."""
    X = _prep(F, metric)
    return X @ X.T


def _degree(W: torch.Tensor) -> torch.Tensor:
    return W.sum(dim=1)


def ncut_graph(F: torch.Tensor, metric: str = "dot", grid=None) -> Graph:
    """DeepCut's NCut graph (Eq. 6): negative similarities clipped to 0, then ``W / max(W)``.

    Args:
        F: ``(N, D)`` or ``(h, w, D)`` node features.
        metric: ``dot`` (DeepCut) or ``cosine``.
    """
    if F.dim() == 3 and grid is None:
        grid = (int(F.shape[0]), int(F.shape[1]))
    W = similarity(F, metric).clamp_(min=0)
    W /= W.max().clamp(min=1e-12)
    return Graph(W=W, degree=_degree(W), grid=grid, kind="ncut", params={"metric": metric})


def cc_threshold(X: torch.Tensor, alpha: float, shift: str = "mean") -> torch.Tensor:
    r"""The CC graph's threshold ``t`` (``W = S - t``) for prepared rows ``X: (N, D)``, in O(ND).

    ``max S`` lies on the diagonal (Cauchy-Schwarz: :math:`|x_i^\top x_j| \le \max_i \|x_i\|^2`),
    and the mean off-diagonal similarity is
    :math:`\mu = (\|\sum_i x_i\|^2 - \sum_i \|x_i\|^2) / (N(N-1))`, so neither needs S.

    * ``shift="max"`` (DeepCut Eq. 7): ``t = max(S) / alpha``. Where the similarities sit
      relative to ``max(S)`` changes from image to image (raw non-negative features have ``mu``
      near ``max``), and with the dot product ``max S`` is the largest squared norm, one outlier
      patch (on ``classic`` features about 5x the mean: 99% of the pairs then repel at alpha 3),
      so one alpha does not mean the same on every graph.
    * ``shift="mean"`` (default): Eq. 7 applied to the similarities centred at their mean, with
      the mean self-similarity in place of the max:
      ``t = mu + (mean_i S_ii - mu) / alpha``. alpha is the fraction of the way from the mean
      pair to the mean node's similarity with itself, the same on every image and invariant to
      a scale or an offset of the similarities; ``alpha -> inf`` repels exactly the pairs less
      similar than average. For the cosine ``mean_i S_ii = max S = 1``.
    """
    if alpha < 1:
        raise ValueError(f"The 'alpha' parameter of cc_graph must be >= 1. Got {alpha!r} instead.")
    if shift not in CC_SHIFTS:
        raise ValueError(f"The CC 'shift' must be one of {CC_SHIFTS}. Got {shift!r} instead.")
    sq = X.pow(2).sum(1)
    if shift == "max":
        return sq.max() / alpha
    N = X.shape[0]
    mu = (X.sum(0).pow(2).sum() - sq.sum()) / max(N * (N - 1), 1)
    return mu + (sq.mean() - mu) / alpha


def cc_graph(F: torch.Tensor, alpha: float = 3.0, metric: str = "dot", grid=None,
             shift: str = "mean") -> Graph:
    """DeepCut's correlation-clustering graph (Eq. 7): ``W = S - t``, signed.

    ``S`` is the dot or cosine similarity; ``t`` is :func:`cc_threshold` (``shift="mean"``, the
    default: ``t = mu + (mean_i S_ii - mu) / alpha`` with ``mu`` the mean off-diagonal similarity;
    ``shift="max"``: the paper's ``t = max(S) / alpha``). ``alpha >= 1`` is the
    "k-sensitivity": lower alpha, more repulsion, more clusters.
    The degree stored is that of the positive part (what message passing and NCut use).
    """
    if F.dim() == 3 and grid is None:
        grid = (int(F.shape[0]), int(F.shape[1]))
    X = _prep(F, metric)
    t = cc_threshold(X, alpha, shift)
    W = X @ X.T
    W -= t
    return Graph(W=W, degree=W.clamp(min=0).sum(1), grid=grid, kind="cc",
                 params={"metric": metric, "alpha": alpha, "shift": shift,
                         "threshold": float(t)})


def falcon_graph(F: torch.Tensor, beta: float = 4.5, lam: float = 0.0, grid=None) -> Graph:
    """Falcon's affinity: cosine, min-max normalised to [0, 1], ``** beta``, ``+ lam * diag(d)``.

    ``beta`` sharpens the affinity (DiffCut uses 10; a public Falcon reimplementation 4.5);
    ``lam * diag(d)`` is the degree-proportional regulariser against poor local minima.
    """
    if F.dim() == 3 and grid is None:
        grid = (int(F.shape[0]), int(F.shape[1]))
    W = similarity(F, "cosine")
    lo, hi = W.min(), W.max()
    W = ((W - lo) / (hi - lo).clamp(min=1e-12)).pow_(beta)
    if lam:
        W += torch.diag(lam * W.sum(1))
    return Graph(W=W, degree=_degree(W), grid=grid, kind="falcon",
                 params={"beta": beta, "lam": lam})


@torch.no_grad()
def knn_graph(
    F: torch.Tensor,
    k: int = 32,
    kind: str = "ncut",
    metric: str = "dot",
    alpha: float = 3.0,
    beta: float = 4.5,
    lam: float = 0.0,
    chunk_size: int = 2048,
    grid=None,
    cc_shift: str = "mean",
) -> Graph:
    """Sparse symmetric kNN graph: each node keeps its ``k`` most similar nodes (itself among
    them with ``metric="cosine"``; with the raw ``dot`` product a neighbour of larger norm can
    outrank a node's own similarity, so the self-loop is not guaranteed).

    The edge weights follow ``kind`` (``ncut``: clip and divide by the global max; ``falcon``:
    cosine min-max normalised then ``** beta``; ``cc``: ``s - t``, :func:`cc_threshold`
    with ``cc_shift``). Built in row chunks,
    so memory is ``O(chunk_size * N + N * k)``. Symmetrised by ``max(W, W^T)``.

    Returns:
        A :class:`Graph` whose ``W`` is a coalesced sparse COO ``(N, N)`` tensor.
    """
    if F.dim() == 3 and grid is None:
        grid = (int(F.shape[0]), int(F.shape[1]))
    X = _prep(F, "cosine" if kind == "falcon" else metric)
    N = X.shape[0]
    k = min(k, N)
    vals, cols = [], []
    gmax, gmin = torch.tensor(-float("inf")), torch.tensor(float("inf"))
    XT = X.T.contiguous()
    # one reused block buffer: a fresh (chunk, N) result each time cost more in page faults than
    # the product itself (93 vs 36 ms per 2048 x 16384 block at D=22 on one CPU thread)
    buf = torch.empty(min(chunk_size, N), N, dtype=X.dtype, device=X.device)
    for start in range(0, N, chunk_size):  # loop over row blocks, not nodes
        rows = X[start:start + chunk_size]
        sim = torch.mm(rows, XT, out=buf[: rows.shape[0]])
        gmax = torch.maximum(gmax, sim.max())
        gmin = torch.minimum(gmin, sim.min())
        v, c = sim.topk(k, dim=1)
        vals.append(v)
        cols.append(c)
    v = torch.cat(vals).reshape(-1)
    c = torch.cat(cols).reshape(-1)
    r = torch.arange(N, device=X.device).repeat_interleave(k)
    if kind == "ncut":
        v = v.clamp(min=0) / gmax.clamp(min=1e-12)
    elif kind == "falcon":
        v = ((v - gmin) / (gmax - gmin).clamp(min=1e-12)).pow(beta)
    elif kind == "cc":
        v = v - cc_threshold(X, alpha, cc_shift)
    else:
        raise ValueError(f"kind must be one of {GRAPH_KINDS}. Got {kind!r} instead.")
    # symmetrise with max(W, W^T): stack both directions and reduce duplicates by amax
    idx = torch.stack([torch.cat([r, c]), torch.cat([c, r])])
    val = torch.cat([v, v])
    lin = idx[0] * N + idx[1]
    uniq, inv = torch.unique(lin, return_inverse=True)
    out = torch.full((uniq.numel(),), -float("inf"), dtype=val.dtype, device=val.device)
    out.scatter_reduce_(0, inv, val, reduce="amax")
    idx = torch.stack([uniq // N, uniq % N])
    if lam and kind == "falcon":
        d = torch.zeros(N, device=out.device).index_add_(0, idx[0], out)
        idx = torch.cat([idx, torch.arange(N, device=idx.device).repeat(2, 1)], 1)
        out = torch.cat([out, lam * d])
    W = torch.sparse_coo_tensor(idx, out, (N, N), check_invariants=False).coalesce()
    deg = torch.zeros(N, device=W.device).index_add_(0, W.indices()[0], W.values().clamp(min=0))
    return Graph(W=W, degree=deg, grid=grid, kind=kind,
                 params={"knn": k, "metric": metric, "alpha": alpha, "beta": beta, "lam": lam,
                         **({"shift": cc_shift} if kind == "cc" else {})})


def build_graph(
    F: torch.Tensor,
    kind: str = "ncut",
    *,
    metric: str = "dot",
    alpha: float = 3.0,
    beta: float = 4.5,
    lam: float = 0.0,
    knn: int | None = None,
    dense_max_nodes: int = 6000,
    grid=None,
    radius: float = 5.0,
    landmarks: int | None = None,
    seed: int | None = 0,
    cc_shift: str = "mean",
    contour: float | None = None,
) -> Graph:
    """Build the graph of ``kind`` (``ncut``, ``cc``, ``falcon`` or ``local``) from ``F: (N, D)``
    or ``(h, w, D)``.

    ``local`` is always sparse (``radius`` in patches; it needs ``grid`` for flat ``F``). For the
    others a sparse kNN graph is used when ``knn`` is given. Above ``dense_max_nodes`` nodes the
    graph is a :class:`~deepcut.graphs.landmarks.LandmarkGraph` on ``landmarks`` seeded landmarks
    when ``landmarks`` is given (fit it with :func:`~deepcut.graphs.landmarks.fit_on_landmarks`:
    linear in N), else a kNN graph with ``knn=32`` (quadratic in N to build), so large images fit
    in memory. ``cc_shift``: the CC threshold rule (:func:`cc_threshold`; dense and kNN graphs).
    ``contour``: ``sigma_IC`` of the local graph's intervening-contour cue, applied when an image
    edge map of this grid is set (:func:`~deepcut.graphs.local.contour_edges`; the ``classic``
    backbone gives one), else ignored.
    """
    if kind not in GRAPH_KINDS:
        raise ValueError(f"The graph kind must be one of {GRAPH_KINDS}. Got {kind!r} instead.")
    if kind == "local":
        from deepcut.graphs.local import current_edges

        hw = tuple(F.shape[:2]) if F.dim() == 3 else grid
        E = current_edges(hw) if contour is not None and hw is not None else None
        return local_graph(F, grid=grid, radius=radius, metric=metric,
                           contour=contour if E is not None else None, edges=E)
    N = F.shape[0] * F.shape[1] if F.dim() == 3 else F.shape[0]
    if knn is None and N > dense_max_nodes:
        if landmarks is not None:
            from deepcut.graphs.landmarks import landmark_graph

            return landmark_graph(F, kind, n_landmarks=landmarks, metric=metric, alpha=alpha,
                                  beta=beta, lam=lam, seed=seed, grid=grid, cc_shift=cc_shift)
        knn = 32
    if knn is not None:
        return knn_graph(F, k=knn, kind=kind, metric=metric, alpha=alpha, beta=beta, lam=lam,
                         grid=grid, cc_shift=cc_shift)
    if kind == "ncut":
        return ncut_graph(F, metric=metric, grid=grid)
    if kind == "cc":
        return cc_graph(F, alpha=alpha, metric=metric, grid=grid, shift=cc_shift)
    return falcon_graph(F, beta=beta, lam=lam, grid=grid)
