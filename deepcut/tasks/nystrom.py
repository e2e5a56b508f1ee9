r"""NCut eigenvectors from node features, exact or by the Nystrom approximation (large N).

The exact path builds DeepCut's NCut graph (Eq. 6, :func:`deepcut.graphs.ncut_graph`) and calls
the spectral solver's eigensolver (:func:`deepcut.solvers.spectral.spectral_embedding`). It holds
an ``N x N`` matrix, so above ``exact_max_nodes`` the Nystrom path is taken instead:

1. **Sample** ``m = n_sample`` landmark nodes uniformly without replacement, from a generator
   seeded with ``seed`` (same seed, same landmarks, same result; no global RNG is touched).
2. **Columns** ``C = [sim(F, F_S)]_+  : (N, m)``: the NCut kernel (clipped dot or cosine similarity;
   the ``/ max`` of Eq. 6 is a global scale that the normalisation cancels) between every node
   and the landmarks. Memory ``O(N m)``, time ``O(N m D)``.
3. **Degrees** by Monte-Carlo: ``d_i ~ (N / m) sum_{j in S} C_ij``.
4. **Eigenpairs** of the landmark block of :math:`M = D^{-1/2} W D^{-1/2}`, rescaled by ``N/m``
   (the quadrature weight of each landmark): :math:`\tfrac{N}{m} M_{SS} u_S = \mu u_S`.
5. **Extension** to every node by the Nystrom formula
   :math:`u_i = \tfrac{N}{m\mu} \sum_{j \in S} M_{ij} u_j` (on a landmark it returns ``u_j``
   itself), then each column is rescaled to unit norm.

With ``n_sample >= N`` every step is exact: the result equals the exact path's up to the
eigensolver's precision. Eigenvectors are returned in the spectral solver's convention:
generalised eigenvectors ``v = D^{-1/2} u`` (trivial one first), each column's entry of largest
``|value|`` positive, with ascending eigenvalues of :math:`L_{sym} = I - M`.

This is the classical one-shot Nystrom extension for spectral grouping (Fowlkes, Belongie, Chung &
Malik, PAMI 2004), written for the non-PSD clipped kernel: it never inverts ``W_SS``. ncut-pytorch
instead samples by farthest-point sampling on a random projection and propagates by kNN in
eigenvector space (ncut-pytorch 3.1, ``ncuts/ncut_nystrom.py``); uniform sampling keeps this one-pass and seeded.
"""
from __future__ import annotations

import torch

from deepcut.graphs import ncut_graph
from deepcut.seeding import torch_generator
from deepcut.solvers.spectral import spectral_embedding

__all__ = [
    "DEFAULT_N_SAMPLE",
    "EXACT_MAX_NODES",
    "NCutKernel",
    "ncut_eigenvectors",
    "similarity_cols",
]

#: Up to this many nodes the dense graph is built and solved exactly (a dense N x N float32
#: matrix is 100 MB at 5000 nodes).
EXACT_MAX_NODES = 5000
#: Landmarks used when Nystrom is chosen automatically (``n_sample=None`` and N above the limit).
DEFAULT_N_SAMPLE = 2048


def _fix_signs(V: torch.Tensor) -> torch.Tensor:
    """Flip each column so that its entry of largest ``|value|`` is positive (deterministic)."""
    idx = V.abs().argmax(dim=0)
    s = torch.sign(V[idx, torch.arange(V.shape[1], device=V.device)])
    return V * torch.where(s == 0, torch.ones_like(s), s)


def similarity_cols(X: torch.Tensor, cols: torch.Tensor, metric: str) -> torch.Tensor:
    """``(N, m)`` NCut kernel ``max(sim(x_i, x_j), 0)`` between all nodes and the nodes ``cols``."""
    if metric == "cosine":
        X = torch.nn.functional.normalize(X, dim=-1)
    elif metric != "dot":
        raise ValueError(f"metric must be 'dot' or 'cosine'. Got {metric!r} instead.")
    return (X @ X[cols].T).clamp_(min=0)


class NCutKernel:
    """The NCut affinity of ``F`` held as columns: all ``N`` (exact) or ``m`` landmarks (Nystrom).

    One object serves both what the hierarchy needs: the eigenpairs (:meth:`eigenpairs`) and the
    cluster-level association ``X^T W X`` used to merge segments (:meth:`assoc`), from the same
    columns ``C: (N, m)``. Exact: ``C = W`` (DeepCut's NCut graph, Eq. 6). Nystrom: ``C`` are the
    kernel columns of ``m`` seeded landmarks and every sum over nodes ``j`` is estimated by
    ``N/m`` times the sum over the landmarks (the quadrature of the module docstring).

    Args:
        F: ``(N, D)`` or ``(h, w, D)`` node features.
        metric: ``dot`` (DeepCut) or ``cosine``.
        n_sample: landmarks; None = exact up to ``exact_max_nodes`` nodes, else
            :data:`DEFAULT_N_SAMPLE`. An int always takes the Nystrom path (exact if ``>= N``).
        seed: seeds the landmark draw and the exact eigensolver's start block.
        exact_max_nodes: the largest N solved exactly when ``n_sample`` is None.

    Attributes:
        method: ``exact`` or ``nystrom``.
        landmarks: ``(m,)`` sorted landmark indices (``arange(N)`` when exact).
        columns: ``(N, m)`` non-negative kernel columns.
        scale: ``N / m``.
    """

    def __init__(self, F: torch.Tensor, *, metric: str = "dot", n_sample: int | None = None,
                 seed: int | None = 0, exact_max_nodes: int = EXACT_MAX_NODES) -> None:
        X = F.reshape(-1, F.shape[-1]).float()
        N = X.shape[0]
        self.metric, self.seed, self.n_nodes = metric, seed, N
        if n_sample is None and N > exact_max_nodes:
            n_sample = DEFAULT_N_SAMPLE
        if n_sample is None:
            self.method = "exact"
            self.graph = ncut_graph(X, metric=metric)
            self.columns = self.graph.W
            self.landmarks = torch.arange(N, device=X.device)
        else:
            self.method = "nystrom"
            self.graph = None
            m = min(int(n_sample), N)
            self.landmarks = torch.randperm(N, generator=torch_generator(seed))[:m].sort().values
            self.landmarks = self.landmarks.to(X.device)
            self.columns = similarity_cols(X, self.landmarks, metric)
        self.scale = N / self.landmarks.numel()

    @torch.no_grad()
    def eigenpairs(self, n_components: int, eigen_solver: str = "auto"
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(eigenvalues (m,), eigenvectors (N, m))``: ascending :math:`L_{sym}` eigenvalues and
        sign-fixed generalised eigenvectors (the spectral solver's convention)."""
        if self.graph is not None:
            lam, V, _ = spectral_embedding(self.graph, n_components, eigen_solver=eigen_solver,
                                           random_state=self.seed)
            return lam, V
        return _nystrom_eigenpairs(self.columns, self.landmarks, n_components)

    @torch.no_grad()
    def assoc(self, X: torch.Tensor) -> torch.Tensor:
        """``(K, K)`` symmetric ``X^T W X`` for ``X: (N, K)`` memberships (estimated if Nystrom).

        ``[X^T W X]_kl`` is the total affinity between clusters k and l; its diagonal holds
        ``assoc_k`` and its row sums the volumes ``vol_k``.
        """
        X = X.to(self.columns.dtype)
        A = self.scale * (X.T @ (self.columns @ X[self.landmarks]))  # (K, K)
        return 0.5 * (A + A.T)


def _nystrom_eigenpairs(C: torch.Tensor, S: torch.Tensor, n_components: int
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 3-5 of the module docstring on kernel columns ``C: (N, m)`` of landmarks ``S``."""
    N, m = C.shape
    if not 1 <= n_components <= m:
        raise ValueError(f"n_components={n_components} must be in [1, n_sample={m}].")
    scale = N / m  # quadrature weight of one landmark
    d = (C.sum(1) * scale).clamp(min=1e-12)  # (N,) Monte-Carlo degrees
    dinv = d.rsqrt()
    Mc = dinv[:, None] * C * dinv[S][None, :]  # (N, m): rows of M restricted to the landmarks
    Ms = scale * Mc[S]  # (m, m)
    mu, U = _top_eigh(0.5 * (Ms + Ms.T), n_components)  # the largest first
    V = scale * (Mc @ U) / mu.clamp(min=1e-6)[None, :]  # (N, m) Nystrom extension
    V = V / V.norm(dim=0, keepdim=True).clamp(min=1e-12)
    return (1.0 - mu).clamp(min=0.0), _fix_signs(dinv[:, None] * V)


def _top_eigh(M: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest eigenpairs of the symmetric ``M: (m, m)``, descending.

    On the CPU only the wanted subset is computed (LAPACK ``syevr`` through scipy), which is what
    makes a 2048-landmark block cheap; on CUDA ``torch.linalg.eigh``.
    """
    m = M.shape[0]
    if M.device.type == "cpu":
        import scipy.linalg as sla

        mu, U = sla.eigh(M.numpy(), subset_by_index=[m - k, m - 1], driver="evr",
                         check_finite=False)
        mu, U = torch.from_numpy(mu).to(M.dtype), torch.from_numpy(U).to(M.dtype)
    else:
        mu, U = torch.linalg.eigh(M)
        mu, U = mu[-k:], U[:, -k:]
    return mu.flip(0), U.flip(1)


def ncut_eigenvectors(
    F: torch.Tensor,
    n_components: int,
    *,
    metric: str = "dot",
    n_sample: int | None = None,
    seed: int | None = 0,
    exact_max_nodes: int = EXACT_MAX_NODES,
    eigen_solver: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """NCut eigenpairs of the NCut graph on ``F``: exact, or Nystrom for large N.

    Args:
        F: ``(N, D)`` or ``(h, w, D)`` node features.
        n_components: eigenpairs wanted (the trivial one included).
        metric: ``dot`` (DeepCut Eq. 6) or ``cosine``.
        n_sample: landmarks (see :class:`NCutKernel`).
        seed: seeds the landmarks and the eigensolver's start block.
        exact_max_nodes: the largest N solved exactly when ``n_sample`` is None.
        eigen_solver: the spectral solver's eigensolver for the exact path.

    Returns:
        ``(eigenvalues (m,), eigenvectors (N, m), info)`` in the convention of
        :func:`deepcut.solvers.spectral.spectral_embedding`; ``info["method"]`` is ``exact`` or
        ``nystrom`` (with ``n_sample``).

    Example:
        >>> F = torch.cat([torch.randn(30, 8) + 3, torch.randn(30, 8) - 3])
        >>> lam, V, info = ncut_eigenvectors(F, 3, metric="cosine")
        >>> V.shape, info["method"]
        (torch.Size([60, 3]), 'exact')
    """
    kernel = NCutKernel(F, metric=metric, n_sample=n_sample, seed=seed,
                        exact_max_nodes=exact_max_nodes)
    lam, V = kernel.eigenpairs(n_components, eigen_solver=eigen_solver)
    return lam, V, {"method": kernel.method, "n_sample": int(kernel.landmarks.numel())}
