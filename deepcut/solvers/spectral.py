r"""Spectral NCut baseline: eigenvectors of the normalised Laplacian, then a discretisation.

With :math:`d = W\mathbf{1}` and :math:`M = D^{-1/2} W D^{-1/2}`, the normalised Laplacian is
:math:`L_{sym} = I - M`; its smallest eigenpairs :math:`(\lambda, u)` are the largest of ``M``
(:math:`\mu = 1 - \lambda`). The generalised eigenvectors of :math:`(D - W) v = \lambda D v`
(Shi & Malik 2000) are :math:`v = D^{-1/2} u`; they are what :attr:`SpectralNCut.eigenvectors_`
holds, ``D``-orthonormal, each with a deterministic sign (its entry of largest ``|value|`` is
positive, as DiffCut and TokenCut fix it).

Three discretisations (``mode``):

* ``"kway"`` -- k-means (scikit-learn, seeded) on the **row-normalised** first K eigenvectors,
  the trivial one *included* (Ng, Jordan & Weiss 2001). Row-normalising ``v_i = u_i / sqrt(d_i)``
  gives the same points as row-normalising ``u_i``; the first column ``u_1 ~ sqrt(d)`` is then
  not trivial: it is needed so that K ideal blocks map to K orthogonal points. (Dropping it, as
  DeepSpectral and TokenCut do for *un-normalised* vectors, would put K points in K-1 dimensions
  and make the row normalisation ill-posed.) ``n_init=4`` seeded k-means++ restarts
  (scikit-learn's ``"auto"`` would run one): on an ``(N, K)`` embedding they cost a few ms up to
  N=4761 and 0.1-0.5 s at N=16384, K=27.
* ``"fiedler"`` -- 2-way TokenCut-style: threshold the Fiedler vector ``v_2`` at its mean; the side
  that holds ``argmax |v_2|`` is cluster 1 (deterministic whatever the eigensolver's sign).
* ``"recursive"`` -- 2-way cuts, DiffCut-style: on each segment's own subgraph, scan
  ``n_thresholds`` (100) evenly spaced thresholds of its Fiedler vector and keep the one with the
  lowest 2-way NCut; a segment is split while that NCut is below ``tau`` (DiffCut default 0.5).
  Splits are taken best-first (lowest NCut first) until ``n_clusters`` segments (``"auto"``: no
  cap, ``tau`` alone stops).

``n_clusters="auto"`` (``kway``) picks K by the largest eigengap :math:`\lambda_{K+1} - \lambda_K`
over ``K in [2, k_max]`` (:func:`eigengap`; the k-less baseline of DeepCut Table 5).

Eigensolvers (``eigen_solver``; timings on the 2-core CPU of ``benchmarks/solvers.py``):

* ``"dense"`` -- exact LAPACK ``syevr`` for the wanted subset (``scipy.linalg.eigh``,
  ``subset_by_index``); on CUDA ``torch.linalg.eigh``. ``torch.linalg.eigh`` computes the full
  spectrum and was 5-30x slower here (0.23 s at N=1225, 15 s at N=3025).
* ``"randomized"`` -- block subspace iteration with Rayleigh-Ritz (Halko et al. 2011, Alg. 4.4 +
  5.3), ``oversampling`` extra columns, stopped when the wanted Ritz values move less than
  ``eigen_tol``. One ``W @ Q`` block product per iteration (GEMM or sparse SpMM). Dense patch
  graphs have a fast-decaying spectrum, so 3-6 iterations suffice: 5-10 ms at N=1225 and
  0.05-0.4 s at N=4761, against 0.1-2 s for ARPACK's matrix-vector products.
* ``"arpack"`` -- ``scipy.sparse.linalg.eigsh`` (implicitly restarted Lanczos) with a seeded
  ``v0``. kNN graphs have many eigenvalues clustered near 1, where subspace iteration stalls and
  Lanczos does not (0.2-1.5 s at N=16384, K<=27). On the local graph (radius 5, classic
  features, one loaded CPU thread) it took 3.1 / 4.7 s at N=16384 and 9.3 / 8.8 s at N=65536
  (K = 2 / 8); lobpcg took 88-261 s for the same eigenvalues and randomized stopped after
  1.3-3.9 s on eigenvalues 0.14-0.26 where the true ones are < 1e-3 (a 10-20x higher NCut), so
  ARPACK stays the sparse choice.
* ``"lobpcg"`` -- ``torch.lobpcg`` (seeded start block); offered for completeness, it was the
  slowest here.
* ``"auto"`` -- ``dense`` for N <= 512 (or when K is close to N), ``randomized`` for larger dense
  graphs, ``arpack`` for sparse graphs.
"""
from __future__ import annotations

import heapq
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch

from deepcut._validation import Interval, Options, check_n_clusters
from deepcut.graphs.graph import Graph
from deepcut.seeding import numpy_rng, torch_generator
from deepcut.solvers.base import BaseSolver, register_solver, relabel_consecutive

__all__ = ["EIGEN_SOLVERS", "SpectralNCut", "eigengap", "kmeans_discretize", "spectral_embedding",
           "spectral_ncut"]

EIGEN_SOLVERS = ("auto", "dense", "randomized", "arpack", "lobpcg")
# Up to this many nodes the exact subset eigensolver costs < 10 ms here; above it the
# randomized block solver is faster on dense graphs (benchmarks/solvers.py).
_DENSE_EXACT_MAX_NODES = 512


def _sym_mm(W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``W @ X`` for a dense *symmetric* ``W: (N, N)`` and ``X: (N, b)``.

    For skinny ``X`` (b <= 32) this computes ``(X^T W)^T``: on the 2-core CPU of
    ``benchmarks/solvers.py`` that was 2.5-3.5x faster than ``W @ X`` at N=4761 for b <= 8 and
    about 10% faster at b=32, both being one memory-bound pass over ``W``.
    """
    if X.shape[1] <= 32:
        return (X.T.contiguous() @ W).T
    return W @ X


def _to_csr(W: torch.Tensor) -> torch.Tensor:
    """Sparse CSR copy of a sparse ``W`` (torch's "CSR support is in beta" warning silenced)."""
    if W.layout == torch.sparse_csr:
        return W
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return W.to_sparse_csr()


# --------------------------------------------------------------------------------------------
# The normalised affinity as an operator
# --------------------------------------------------------------------------------------------
class _NormalizedAffinity:
    """``M = D^{-1/2} W D^{-1/2}`` applied without forming it (dense or sparse CSR ``W``)."""

    def __init__(self, graph: Graph) -> None:
        g = graph.positive()
        self.sparse = g.is_sparse
        W = g.W
        if self.sparse:
            W = _to_csr(W)
        self.W = W.float() if W.dtype != torch.float32 else W
        d = g.degree.to(self.W.device).float()
        self.d = d
        self.dinv = torch.where(d > 0, d.clamp(min=1e-30).rsqrt(), torch.zeros_like(d))
        self.N = int(d.numel())

    def matmul(self, X: torch.Tensor) -> torch.Tensor:
        """``M @ X`` for ``X: (N, b)``."""
        Y = self.dinv[:, None] * X
        Y = torch.sparse.mm(self.W, Y) if self.sparse else _sym_mm(self.W, Y)
        return self.dinv[:, None] * Y

    def dense(self) -> torch.Tensor:
        W = self.W.to_dense() if self.sparse else self.W
        return self.dinv[:, None] * W * self.dinv[None, :]

    def scipy_operator(self):
        """A float32 scipy operator (CSR matrix, or a LinearOperator over the dense numpy W)."""
        import scipy.sparse as sp
        from scipy.sparse.linalg import LinearOperator

        dinv = self.dinv.cpu().numpy()
        if self.sparse:
            W = self.W.cpu()
            crow, col = W.crow_indices().numpy(), W.col_indices().numpy()
            vals = W.values().numpy()
            rows = np.repeat(np.arange(self.N), np.diff(crow))
            return sp.csr_matrix((vals * dinv[rows] * dinv[col], col, crow), shape=(self.N, self.N))
        Wn = self.W.cpu().numpy()

        def mv(x):
            x = np.asarray(x, dtype=np.float32).reshape(self.N, -1)
            return (dinv[:, None] * (Wn @ (dinv[:, None] * x))).squeeze()

        return LinearOperator((self.N, self.N), matvec=mv, matmat=mv, dtype=np.float32)


def _fix_signs(V: torch.Tensor) -> torch.Tensor:
    """Flip each column so that its entry of largest ``|value|`` is positive."""
    idx = V.abs().argmax(dim=0)
    s = torch.sign(V[idx, torch.arange(V.shape[1], device=V.device)])
    s[s == 0] = 1
    return V * s


def _eig_dense(op: _NormalizedAffinity, m: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    M = op.dense()
    N = op.N
    if M.device.type == "cpu":
        import scipy.linalg as sla

        mu, U = sla.eigh(M.numpy(), subset_by_index=[N - m, N - 1], driver="evr",
                         overwrite_a=True, check_finite=False)
        return torch.from_numpy(mu.astype(np.float32)), torch.from_numpy(U.astype(np.float32)), 1
    mu, U = torch.linalg.eigh(M)
    return mu[-m:], U[:, -m:], 1


def _eig_randomized(op: _NormalizedAffinity, m: int, tol: float, max_iter: int, oversampling: int,
                    seed: int | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Block subspace iteration + Rayleigh-Ritz; stops when the top-m Ritz values settle."""
    N = op.N
    b = min(N, m + oversampling)
    gen = torch_generator(seed)
    Q = torch.randn(N, b, generator=gen).to(op.W.device)
    Q, _ = torch.linalg.qr(Q)
    prev = None
    for it in range(1, max_iter + 1):
        Z = op.matmul(Q)  # (N, b): the one product of this iteration
        T = Q.T @ Z
        mu, V = torch.linalg.eigh(0.5 * (T + T.T))  # ascending Ritz values
        top = mu[-m:]
        if (prev is not None and float((top - prev).abs().max()) < tol) or it == max_iter:
            return top, Q @ V[:, -m:], it
        prev = top
        Q, _ = torch.linalg.qr(Z)
    raise AssertionError("unreachable")


def _eigsh(A, m: int, tol: float, max_iter: int, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Top-m eigenpairs of a symmetric scipy operator (ascending); dense LAPACK when tiny."""
    from scipy.sparse.linalg import eigsh

    n = A.shape[0]
    if m + 2 >= n or n <= 64:
        import scipy.linalg as sla

        dense = A.toarray() if hasattr(A, "toarray") else A @ np.eye(n, dtype=np.float32)
        return sla.eigh(dense, subset_by_index=[n - m, n - 1], check_finite=False)
    v0 = numpy_rng(seed).uniform(-1.0, 1.0, n).astype(np.float32)  # seeded start vector
    mu, U = eigsh(A, k=m, which="LA", v0=v0, tol=tol, maxiter=max_iter * n)
    order = np.argsort(mu)
    return mu[order], U[:, order]


def _eig_arpack(op: _NormalizedAffinity, m: int, tol: float, max_iter: int,
                seed: int | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """ARPACK, one connected component at a time.

    A graph with c components has eigenvalue 1 of ``M`` with multiplicity c, which a
    single-vector Krylov method does not resolve (in exact arithmetic it sees one vector per
    eigenspace): planted, well-separated blocks gave ARI 0.73 instead of 1. The spectrum of a
    block-diagonal ``M`` is the union of its blocks' spectra, so each component is solved on its
    own and the top ``m`` pairs of the union are kept.
    """
    from scipy.sparse.csgraph import connected_components

    A = op.scipy_operator()
    if not hasattr(A, "tocsr"):  # dense operator: no component split
        mu, U = _eigsh(A, m, tol, max_iter, seed)
        return torch.from_numpy(mu.astype(np.float32)), torch.from_numpy(U.astype(np.float32)), 1
    A = A.tocsr()
    n_comp, comp = connected_components(A, directed=False)
    if n_comp == 1:
        mu, U = _eigsh(A, m, tol, max_iter, seed)
        return torch.from_numpy(mu.astype(np.float32)), torch.from_numpy(U.astype(np.float32)), 1
    sizes = np.bincount(comp, minlength=n_comp)
    order = np.argsort(-sizes, kind="stable")  # largest components first (deterministic)
    members = np.split(np.argsort(comp, kind="stable"), np.cumsum(sizes)[:-1])
    vals, cols = [], []
    # Each component contributes eigenvalue 1 (its sqrt(d) indicator) and smaller ones. With
    # n_comp >= m the top m are the indicators of the m largest components (later ones could only
    # tie at 1): known, no solve. Otherwise each component is asked for m pairs; asking only for
    # the m - n_comp + 1 it can contribute lost near-degenerate eigenvalues at tol=1e-3 (Lanczos
    # needs the slack), which raised a planted K=27 NCut from 0.004 to 0.68.
    c_used = min(n_comp, m)
    sqrt_d = np.sqrt(op.d.cpu().numpy().astype(np.float64))
    for c in order[:c_used]:
        idx = members[c]
        k = 1 if n_comp >= m else min(m, len(idx))
        U = np.zeros((op.N, k), dtype=np.float32)
        if k == 1:
            u = sqrt_d[idx]
            U[idx, 0] = u / max(np.linalg.norm(u), 1e-30)
            mu = np.array([1.0 if u.any() else 0.0])
        else:
            mu, Uc = _eigsh(A[idx][:, idx], k, tol, max_iter, seed)
            U[idx] = Uc
        vals.append(mu)
        cols.append(U)
    mu = np.concatenate(vals)
    U = np.concatenate(cols, axis=1)
    top = np.argsort(-mu, kind="stable")[:m][::-1]  # ascending, like the other solvers
    return (torch.from_numpy(mu[top].astype(np.float32)),
            torch.from_numpy(np.ascontiguousarray(U[:, top], dtype=np.float32)), n_comp)


def _eig_lobpcg(op: _NormalizedAffinity, m: int, tol: float, max_iter: int,
                seed: int | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    M = op.dense() if not op.sparse else _sparse_normalized(op)
    X0 = torch.randn(op.N, m, generator=torch_generator(seed)).to(op.W.device)
    mu, U = torch.lobpcg(M, k=m, X=X0, largest=True, tol=tol, niter=max_iter * 10)
    order = torch.argsort(mu)
    return mu[order], U[:, order], max_iter


def _sparse_normalized(op: _NormalizedAffinity) -> torch.Tensor:
    W = op.W.to_sparse_coo().coalesce()
    i = W.indices()
    return torch.sparse_coo_tensor(i, W.values() * op.dinv[i[0]] * op.dinv[i[1]], W.shape,
                                   check_invariants=False).coalesce()


def _resolve_solver(name: str, op: _NormalizedAffinity, m: int) -> str:
    if name == "auto":
        if op.N <= _DENSE_EXACT_MAX_NODES or m + 10 >= op.N // 2:
            return "dense"
        return "arpack" if op.sparse else "randomized"
    if name in ("arpack", "randomized") and m + 2 >= op.N:
        return "dense"  # Krylov / block methods need m well below N
    if name == "lobpcg" and 3 * m > op.N:
        return "dense"  # torch.lobpcg needs N >= 3 m
    return name


@torch.no_grad()
def spectral_embedding(
    graph: Graph,
    n_components: int,
    *,
    eigen_solver: str = "auto",
    eigen_tol: float = 1e-3,
    max_iter: int = 30,
    oversampling: int = 10,
    random_state: int | None = 0,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    r"""The ``n_components`` smallest eigenpairs of :math:`L_{sym} = I - D^{-1/2} W D^{-1/2}`.

    Args:
        graph: the graph (its positive part is used).
        n_components: m, the number of eigenpairs (the trivial one included).
        eigen_solver: ``auto``, ``dense``, ``randomized``, ``arpack`` or ``lobpcg`` (module doc).
        eigen_tol: stop tolerance (change of the Ritz values for ``randomized``; ARPACK's
            relative accuracy; LOBPCG's residual).
        max_iter: iteration cap of the iterative solvers.
        oversampling: extra columns of the randomized block.
        random_state: seed of the start block / vector.

    Returns:
        ``(eigenvalues, eigenvectors, info)``: ``eigenvalues: (m,)`` of :math:`L_{sym}`,
        ascending (the first ~0); ``eigenvectors: (N, m)`` generalised eigenvectors
        ``v = D^{-1/2} u`` with deterministic signs; ``info`` with the solver used and its
        iterations.
    """
    op = _NormalizedAffinity(graph)
    m = int(n_components)
    if not 1 <= m <= op.N:
        raise ValueError(f"n_components={m} must be in [1, n_nodes={op.N}].")
    solver = _resolve_solver(eigen_solver, op, m)
    if solver == "dense":
        mu, U, it = _eig_dense(op, m)
    elif solver == "randomized":
        mu, U, it = _eig_randomized(op, m, eigen_tol, max_iter, oversampling, random_state)
    elif solver == "arpack":
        mu, U, it = _eig_arpack(op, m, eigen_tol, max_iter, random_state)
    elif solver == "lobpcg":
        mu, U, it = _eig_lobpcg(op, m, eigen_tol, max_iter, random_state)
    else:
        raise ValueError(f"eigen_solver must be one of {EIGEN_SOLVERS}. Got {eigen_solver!r}.")
    # ascending Laplacian eigenvalues = descending mu
    lam = (1.0 - mu).flip(0).clamp(min=0.0)
    U = U.flip(1).to(op.dinv.device)
    V = _fix_signs(op.dinv[:, None] * U)
    return lam, V, {"solver": solver, "n_iter": it}


def kmeans_discretize(V: torch.Tensor, k: int, n_init: int = 4, max_iter: int = 300,
                      random_state: int | None = 0) -> tuple[np.ndarray, int]:
    """Seeded k-means on the row-normalised first ``k`` columns of ``V: (N, m)`` (the K-way
    discretisation of a spectral embedding): ``((N,) labels as k-means numbers them, n_iter)``.

    Shared by :class:`SpectralNCut`, the k-less :class:`~deepcut.cluster.EigengapClustering`
    and the hierarchy's levels, so that one K gets the same labels on every path.
    """
    from sklearn.cluster import KMeans

    E = torch.nn.functional.normalize(V[:, :k], dim=1).cpu().numpy().astype(np.float64)
    seed = 0 if random_state is None else int(random_state) % (2**32)
    km = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        # duplicate rows (e.g. identical nodes) are legitimate here; the caller reports a K-drop
        warnings.simplefilter("ignore", category=UserWarning)
        labels = km.fit_predict(E)
    return labels, int(km.n_iter_)


def eigengap(eigenvalues: torch.Tensor, k_max: int = 10, k_min: int = 2) -> int:
    r"""K with the largest eigengap :math:`\lambda_{K+1} - \lambda_K`, ``K in [k_min, k_max]``.

    Args:
        eigenvalues: ``(m,)`` ascending eigenvalues of the normalised Laplacian, ``m >= k_max + 1``
            (:attr:`SpectralNCut.eigenvalues_` or :func:`spectral_embedding`).

    Example:
        >>> eigengap(torch.tensor([0.0, 0.01, 0.02, 0.9, 0.95]), k_max=4)
        3
    """
    lam = torch.as_tensor(eigenvalues).reshape(-1).float()
    if k_min < 1 or k_max < k_min:
        raise ValueError(f"eigengap needs 1 <= k_min <= k_max. Got k_min={k_min}, k_max={k_max}.")
    if lam.numel() < k_max + 1:
        raise ValueError(f"eigengap with k_max={k_max} needs {k_max + 1} eigenvalues; "
                         f"got {lam.numel()}.")
    gaps = lam[k_min:k_max + 1] - lam[k_min - 1:k_max]
    return k_min + int(torch.argmax(gaps))


def _fiedler_split(v: torch.Tensor) -> torch.Tensor:
    """TokenCut bipartition: ``v > mean(v)``; the side of ``argmax |v|`` becomes label 1."""
    fg = v > v.mean()
    seed = int(v.abs().argmax())
    if not bool(fg[seed]):
        fg = ~fg
    return fg.long()


# --------------------------------------------------------------------------------------------
# Recursive 2-way (DiffCut)
# --------------------------------------------------------------------------------------------
class _SubgraphView:
    """Induced subgraphs of a dense or sparse graph, built on demand."""

    def __init__(self, graph: Graph) -> None:
        g = graph.positive()
        self.sparse = g.is_sparse
        if self.sparse:
            import scipy.sparse as sp

            W = g.W.to_sparse_coo().coalesce()
            i = W.indices().numpy()
            self.csr = sp.csr_matrix((W.values().float().numpy(), (i[0], i[1])), shape=W.shape)
        else:
            self.W = g.W.float()

    def sub(self, idx: torch.Tensor) -> Graph:
        if self.sparse:
            n = idx.numel()
            S = self.csr[idx.numpy()][:, idx.numpy()].tocoo()
            ind = torch.from_numpy(np.vstack([S.row, S.col]).astype(np.int64))
            W = torch.sparse_coo_tensor(ind, torch.from_numpy(S.data), (n, n),
                                        check_invariants=False).coalesce()
            deg = torch.zeros(n).index_add_(0, ind[0], torch.from_numpy(S.data))
        else:
            W = self.W.index_select(0, idx).index_select(1, idx)
            deg = W.sum(1)
        return Graph(W=W, degree=deg, kind="sub")


def _best_threshold_split(sub: Graph, v: torch.Tensor, n_thresholds: int
                          ) -> tuple[float, torch.Tensor | None]:
    """Lowest 2-way NCut over ``n_thresholds`` cuts of ``v``; returns ``(ncut, mask)``."""
    lo, hi = float(v.min()), float(v.max())
    if not hi > lo:
        return float("inf"), None
    t = torch.linspace(lo, hi, n_thresholds + 2, dtype=v.dtype)[1:-1]  # strictly inside
    X = (v[:, None] > t[None, :]).float()  # (n, T): side A of each candidate
    ncut = split_ncuts(sub.matmul(X), X, sub.degree.float())
    j = int(torch.argmin(ncut))
    return float(ncut[j]), X[:, j].bool()


def split_ncuts(WX: torch.Tensor, X: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """2-way NCut ``cut/vol_A + cut/vol_B`` of each candidate split ``X: (n, T)`` (column t is
    the indicator of side A) given ``WX = W @ X`` and degrees ``d: (n,)``; ``inf`` where a side
    has no volume. Returns ``(T,)``."""
    vol_a = d @ X
    cut = (vol_a - (X * WX).sum(0)).clamp(min=0)
    vol_b = d.sum() - vol_a
    valid = (vol_a > 0) & (vol_b > 0)
    return torch.where(valid, cut / vol_a.clamp(min=1e-30) + cut / vol_b.clamp(min=1e-30),
                       torch.full_like(cut, float("inf")))


# --------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------
@register_solver("spectral")
class SpectralNCut(BaseSolver):
    """Spectral NCut: normalised-Laplacian eigenvectors + k-means / Fiedler / recursive cuts.

    Args:
        n_clusters: K (``>= 2``), or ``"auto"``: eigengap over ``[2, k_max]`` for ``kway``, no
            segment cap for ``recursive``. ``fiedler`` needs 2 (or ``"auto"``).
        mode: ``kway``, ``fiedler`` or ``recursive`` (module docstring).
        eigen_solver: ``auto``, ``dense``, ``randomized``, ``arpack`` or ``lobpcg``.
        eigen_tol: eigensolver tolerance (see :func:`spectral_embedding`).
        max_iter: iteration cap of the iterative eigensolvers.
        k_max: largest K considered by the eigengap (``n_clusters="auto"``).
        n_init: k-means restarts (``kway``).
        kmeans_max_iter: Lloyd iterations per k-means run.
        tau: stop threshold of ``recursive``: split only while the 2-way NCut is below it
            (DiffCut default 0.5).
        n_thresholds: thresholds scanned per 2-way cut of ``recursive`` (DiffCut: 100).
        random_state: seed of the eigensolver start and of k-means.

    Fitted attributes (besides those of :class:`~deepcut.solvers.base.BaseSolver`):
        eigenvalues_: ``(m,)`` ascending eigenvalues of :math:`L_{sym}` (the whole graph's).
        eigenvectors_: ``(N, m)`` generalised eigenvectors ``D^{-1/2} u`` (sign-fixed).
        eigen_solver_: the eigensolver actually used.

    Example:
        >>> from deepcut.graphs import ncut_graph
        >>> F = torch.cat([torch.randn(20, 8) + 3, torch.randn(20, 8) - 3])
        >>> labels = SpectralNCut(2).fit_predict(ncut_graph(F, metric="cosine"))
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "n_clusters": [Interval(Integral, 2, None, closed="left"), Options({"auto"})],
        "mode": [Options({"kway", "fiedler", "recursive"})],
        "eigen_solver": [Options(set(EIGEN_SOLVERS))],
        "eigen_tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "k_max": [Interval(Integral, 2, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "kmeans_max_iter": [Interval(Integral, 1, None, closed="left")],
        "tau": [Interval(Real, 0, None, closed="neither")],
        "n_thresholds": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_clusters: int | str = 2, *, mode: str = "kway",
                 eigen_solver: str = "auto", eigen_tol: float = 1e-3, max_iter: int = 30,
                 k_max: int = 10, n_init: int = 4, kmeans_max_iter: int = 300, tau: float = 0.5,
                 n_thresholds: int = 100, random_state: int | None = 0) -> None:
        self.n_clusters = n_clusters
        self.mode = mode
        self.eigen_solver = eigen_solver
        self.eigen_tol = eigen_tol
        self.max_iter = max_iter
        self.k_max = k_max
        self.n_init = n_init
        self.kmeans_max_iter = kmeans_max_iter
        self.tau = tau
        self.n_thresholds = n_thresholds
        self.random_state = random_state

    # ---------------------------------------------------------------------------------------
    def _embed(self, graph: Graph, m: int) -> None:
        with self._timer("eigen"):
            lam, V, info = spectral_embedding(
                graph, m, eigen_solver=self.eigen_solver, eigen_tol=self.eigen_tol,
                max_iter=self.max_iter, random_state=self.random_state)
        self.eigenvalues_, self.eigenvectors_ = lam.cpu(), V.cpu()
        self.eigen_solver_ = info["solver"]
        self.n_eigen_iter_ = info["n_iter"]

    def _check(self, graph: Graph) -> None:
        auto = self.n_clusters == "auto"
        self._validate(graph, None if auto else self.n_clusters)
        N = graph.num_nodes
        if self.mode == "fiedler" and not (auto or self.n_clusters == 2):
            raise ValueError(f"mode='fiedler' gives 2 clusters; got n_clusters={self.n_clusters}. "
                             "Use mode='kway' or 'recursive' for more.")
        if auto and self.mode == "kway":
            check_n_clusters(N, self.k_max + 1, type(self).__name__ + " (k_max + 1)")

    def fit(self, graph: Graph, features: torch.Tensor | None = None) -> SpectralNCut:
        """Solve on ``graph`` (``features`` are ignored) and set the fitted attributes."""
        labels = self.partition(graph)
        K = int(labels.max()) + 1
        assignment = torch.nn.functional.one_hot(labels, K).float()
        self._finish(graph, assignment, labels)
        return self

    def partition(self, graph: Graph) -> torch.Tensor:
        """The labels ``(N,)`` of :meth:`fit` without its NCut and assignment (one O(N^2) pass
        less on a dense graph): for a caller that scores the partition itself, such as the
        GNN's warm start. Sets the spectral attributes (``eigenvalues_``, ``timings_``...)."""
        self._check(graph)
        self.timings_ = {}
        self.n_iter_ = 0
        if self.mode == "kway":
            labels = self._fit_kway(graph)
        elif self.mode == "fiedler":
            self._embed(graph, 2)
            with self._timer("discretize"):
                labels = _fiedler_split(self.eigenvectors_[:, 1])
        else:
            labels = self._fit_recursive(graph)
        return labels.long().cpu()

    def _fit_kway(self, graph: Graph) -> torch.Tensor:
        auto = self.n_clusters == "auto"
        self._embed(graph, self.k_max + 1 if auto else self.n_clusters)
        K = eigengap(self.eigenvalues_, self.k_max) if auto else self.n_clusters
        self.n_clusters_chosen_ = K
        with self._timer("discretize"):
            labels, self.n_iter_ = kmeans_discretize(self.eigenvectors_, K, self.n_init,
                                                     self.kmeans_max_iter, self.random_state)
        return relabel_consecutive(torch.from_numpy(labels.astype(np.int64)))

    def _fit_recursive(self, graph: Graph) -> torch.Tensor:
        # On the CPU whatever the graph's device: many small eigenproblems and scipy's CSR
        # slicing of sparse subgraphs (a documented fallback of --device cuda).
        graph = graph.to("cpu")
        N = graph.num_nodes
        cap = N if self.n_clusters == "auto" else int(self.n_clusters)
        view = _SubgraphView(graph)
        counter = 0
        heap: list = []

        def propose(idx: torch.Tensor, root: bool = False) -> None:
            nonlocal counter
            if idx.numel() < 3:
                return
            sub = graph.positive() if root else view.sub(idx)
            if root:
                self._embed(graph, 2)
                v = self.eigenvectors_[:, 1]
            else:
                with self._timer("eigen"):
                    _, V, _ = spectral_embedding(sub, 2, eigen_solver=self.eigen_solver,
                                                 eigen_tol=self.eigen_tol, max_iter=self.max_iter,
                                                 random_state=self.random_state)
                v = V[:, 1]
            with self._timer("discretize"):
                val, mask = _best_threshold_split(sub, v, self.n_thresholds)
            if mask is not None and val < self.tau:
                counter += 1
                heapq.heappush(heap, (val, counter, idx, mask))

        segments_done: list[torch.Tensor] = []
        n_segments = 1
        propose(torch.arange(N), root=True)
        splits = 0
        while heap and n_segments < cap:
            _, _, idx, mask = heapq.heappop(heap)
            a, b = idx[mask], idx[~mask]
            n_segments += 1
            splits += 1
            for part in (a, b):
                before = len(heap)
                propose(part)
                if len(heap) == before:
                    segments_done.append(part)
        segments = segments_done + [item[2] for item in heap]
        if not segments:
            segments = [torch.arange(N)]
        labels = torch.empty(N, dtype=torch.long)
        # deterministic numbering: by the smallest node index of each segment
        for k, seg in enumerate(sorted(segments, key=lambda s: int(s.min()))):
            labels[seg] = k
        self.n_iter_ = splits
        return labels


def spectral_ncut(graph: Graph, n_clusters: int | str = 2, **params) -> torch.Tensor:
    """Functional face of :class:`SpectralNCut`: returns ``labels: (N,)``.

    Example:
        >>> from deepcut.graphs import ncut_graph
        >>> F = torch.cat([torch.randn(20, 8) + 3, torch.randn(20, 8) - 3])
        >>> spectral_ncut(ncut_graph(F, metric="cosine"), 2).unique().numel()
        2
    """
    return SpectralNCut(n_clusters, **params).fit_predict(graph)

