"""Many images' per-image GNN heads trained at once: the same labels as one image at a time.

DeepCut trains one small head per image (:class:`~deepcut.solvers.gnn.GNNSolver`). Alone, a head
is a chain of small products (``(N, D) @ (D, 64)`` and narrower) that fills neither a GPU nor
several CPU cores. :func:`fit_batched` trains the heads of ``B`` graphs together:

* **stacked parameters**: every tensor of the head gets a leading ``B`` axis, all copies of
  the one seeded shared initialisation; one AdamW steps them all (AdamW is elementwise, so each
  slice follows exactly the per-image update);
* **padded nodes**: ``A_hat X`` of each graph is padded to ``N_max`` rows and the head runs as
  batched products (``torch.baddbmm``) over ``(B, N_max, D)``; padded rows get no gradient
  because the loss reads only each image's first ``N_b`` rows;
* **the same loss code**: each image's loss is :meth:`GNNSolver._loss` on its own graph (dense or
  sparse, unpadded), so the objective cannot drift from the per-image solver; the total is the
  sum of the per-image losses, whose gradient in each slice is that image's gradient. When the
  graphs are dense and of one size (a folder batch of one input size), the same function runs
  once over the stacked graphs under ``torch.func.vmap`` (bit-identical values and gradients on
  the CPU, B times fewer kernel launches);
* **the same randomness**: image ``b``'s dropout mask is drawn from its own generator seeded as
  the per-image solve seeds the global one (:func:`~deepcut.nn.head.dropout_keep`), so the
  masks are bit-identical;
* **per-head early stopping**: a head whose loss has converged (``tol``) keeps the parameters it
  had at that step, as the per-image loop would have, while the others go on.

Labels equal one-image-at-a-time labels and losses agree to float rounding (the batched products
sum in another order): ``tests/test_batched.py``. Rounding (``polish``), the NCut yardstick and
the warnings run per image after training (they are not the hot loop).

Choice by measurement: ``torch.func.vmap`` over ``functional_call`` was the alternative; it
lowers the head's linear layers to the same batched products, but the head's custom ELU
(a one-multiply ``autograd.Function``) and its per-image dropout streams do not run under
``vmap``, so the batched products are written out (four lines) instead.
``benchmarks/batched_heads.py`` measures images/s, batched against one at a time.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import torch

from deepcut.graphs.graph import Graph
from deepcut.nn.head import ELU, dropout_keep, gcn_propagate
from deepcut.seeding import torch_generator
from deepcut.solvers.base import node_features

__all__ = ["batched_head_logits", "fit_batched"]

#: The head's parameters in the order of :class:`~deepcut.nn.head.GNNHead` (GCN, MLP).
_HEAD_KEYS = ("conv.lin.weight", "conv.bias", "mlp.1.weight", "mlp.1.bias", "mlp.4.weight",
              "mlp.4.bias")

_elu = ELU()


def batched_head_logits(params: dict[str, torch.Tensor], AX: torch.Tensor,
                        keep: torch.Tensor | None = None, p: float = 0.0,
                        embedding: bool = False):
    """Logits of ``B`` stacked heads, :meth:`GNNHead.forward` with a leading batch axis.

    Args:
        params: the head's ``state_dict`` entries (:data:`_HEAD_KEYS`), each stacked to
            ``(B, ...)``.
        AX: ``(B, N, D)`` propagated features ``A_hat X`` (padded rows are ignored by callers).
        keep: ``(B, N, H2)`` boolean dropout mask (train mode) or None (eval mode).
        p: dropout rate (kept elements are scaled by ``1 / (1 - p)``, as torch does).

        embedding: also return the node embeddings ``E: (B, N, H2)`` (the input of the last
            layer, as ``head.mlp[:-1]`` gives in eval mode).

    Returns:
        ``(B, N, K)`` logits, or ``(logits, E)`` with ``embedding``.
    """
    def lin(x, w, b):  # (B, N, I) @ (B, I, O) + (B, 1, O)
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    h = lin(AX, params["conv.lin.weight"], params["conv.bias"])  # (B, N, 64)
    h = lin(_elu(h), params["mlp.1.weight"], params["mlp.1.bias"])  # (B, N, 32)
    h = _elu(h)
    if keep is not None:
        h = h * keep.to(h.dtype) * (1.0 / (1.0 - p)) if p < 1 else h * 0
    logits = lin(h, params["mlp.4.weight"], params["mlp.4.bias"])  # (B, N, K)
    return (logits, h) if embedding else logits


def fit_batched(solver, graphs: Sequence[Graph], features: Sequence[torch.Tensor]) -> list:
    """Fit one :class:`~deepcut.solvers.gnn.GNNSolver` per graph, training the heads together.

    Args:
        solver: the configured (unfitted) solver; its parameters apply to every image.
        graphs: ``B`` graphs (dense or sparse; any sizes ``N_b``).
        features: ``B`` node features ``(N_b, D)`` (one ``D`` for all).

    Returns:
        ``B`` fitted solvers (clones of ``solver``) with the attributes of
        :meth:`GNNSolver.fit`: ``labels_``, ``assignment_``, ``ncut_``, ``raw_labels_``,
        ``raw_ncut_``, ``loss_history_``, ``n_iter_``, ``head_``, ``timings_`` (the shared
        training time split evenly) and ``batch_size_ = B``.

    Raises:
        ValueError: as :meth:`GNNSolver.fit` (per graph), or features of different widths.
    """
    from deepcut.solvers.gnn import _agreement, _num_threads

    if len(graphs) != len(features):
        raise ValueError(f"fit_batched: {len(graphs)} graphs but {len(features)} feature sets.")
    B = len(graphs)
    clones = [type(solver)(**solver.get_params()) for _ in range(B)]
    if B == 0:
        return clones
    warm = clones[0]._uses_warm_start()  # a fresh clone: no fit(warm_labels=) state
    if solver._cut_steps() == 0 and not warm:  # inference: no optimisation to batch
        return [c.fit(g, f) for c, g, f in zip(clones, graphs, features)]
    for c, g, f in zip(clones, graphs, features):
        c._validate(g, c.n_clusters)
        if f is None:
            raise ValueError("GNNSolver.fit needs node features (N, D): the GCN's input.")
        if solver.loss == "cc" and not g.signed:
            raise ValueError("loss='cc' needs the signed correlation-clustering graph "
                             f"(graph kind 'cc', Eq. 7); got kind {g.kind!r}.")
        c.timings_, c.loss_history_, c.n_warm_iter_ = {}, [], 0
    dev = torch.device(solver.device)
    graphs = [g.to(dev) for g in graphs]
    X = [node_features(g, f, "GNNSolver.fit_batched").float().to(dev)
         for g, f in zip(graphs, features)]
    dims = {x.shape[1] for x in X}
    if len(dims) != 1:
        raise ValueError(f"fit_batched: features of different widths {sorted(dims)}; "
                         "one head architecture needs one D.")
    D = dims.pop()
    sizes = [g.num_nodes for g in graphs]
    N = max(sizes)

    # Per image, as GNNSolver.fit: A_hat X once, the loss graph (CSR when sparse), degrees.
    AX = torch.zeros(B, N, D, device=dev)
    Wl, dl = [], []
    for b, (c, g, x) in enumerate(zip(clones, graphs, X)):
        with c._timer("precompute"):
            AX[b, :sizes[b]] = gcn_propagate(g, x)
            W = g.W if solver.loss == "cc" else g.positive().W
            if g.is_sparse:
                with warnings.catch_warnings():  # "CSR support is in beta": read-only use
                    warnings.simplefilter("ignore", UserWarning)
                    W = W.to_sparse_csr()
            Wl.append(W)
            dl.append(g.degree)

    # Graphs of one size (a folder batch of one input size) and dense: the loss runs once over
    # the stacked (B, N, N) graphs under torch.func.vmap (the same per-image function, B times
    # fewer kernel launches on a GPU); otherwise image by image on its own unpadded graph.
    stacked = len(set(sizes)) == 1 and not any(g.is_sparse for g in graphs) and B > 1
    if stacked:
        Wb, db = torch.stack(Wl), torch.stack(dl)  # (B, N, N), (B, N)

    n_warm = solver.warm_steps if warm else 0
    targets: list[torch.Tensor | None] = [None] * B

    def batch_losses(logits: torch.Tensor, ts: list[int], lens: list[int],
                     tgt: list[torch.Tensor | None]) -> torch.Tensor:
        """``(B,)`` per-image losses of ``logits: (B, N, K)``, image ``b`` at its step
        ``ts[b]`` (its first ``lens[b]`` rows; ``tgt``: the warm targets of those rows)."""
        if stacked and min(ts) >= n_warm and len(set(ts)) == 1:
            S = torch.softmax(logits, dim=-1)
            progress = (ts[0] - n_warm) / max(solver._cut_steps(), 1)
            return torch.func.vmap(
                lambda s, w, d: solver._loss(s, w, d, progress, not warm))(S, Wb, db)
        return torch.stack([solver._train_loss(logits[b, :lens[b]], Wl[b], dl[b], ts[b],
                                               tgt[b]) for b in range(B)])

    head = solver.make_head(D)
    init = head.state_dict()
    if set(init) != set(_HEAD_KEYS):
        raise RuntimeError(f"fit_batched knows the head {_HEAD_KEYS}, got {sorted(init)}.")
    params = {k: init[k].detach().unsqueeze(0).repeat(B, *[1] * init[k].dim()).requires_grad_()
              for k in _HEAD_KEYS}
    p_drop = float(head.mlp[3].p)
    H2 = params["mlp.4.weight"].shape[-1]
    gens = [torch_generator(solver.seed, dev) for _ in range(B)]  # = torch.manual_seed(seed)
    final: list[dict[str, torch.Tensor] | None] = [None] * B  # parameters of stopped heads
    steps = solver._cut_steps() + n_warm
    if warm:  # per image, as GNNSolver.fit: the seeded init's eval-mode scores name the ids
        with torch.no_grad():
            logits0 = batched_head_logits(params, AX)
        for b, (c, g) in enumerate(zip(clones, graphs)):
            with c._timer("warm_start"):
                targets[b] = c._warm_labels(g, logits0[b, :sizes[b]], X[b])
    t0 = time.perf_counter()
    with _num_threads(solver.step_threads if dev.type == "cpu" else None):
        # as GNNSolver.fit (AdamW is elementwise: each slice follows the per-image update)
        opt = torch.optim.AdamW(list(params.values()), lr=solver.lr,
                                weight_decay=solver.weight_decay,
                                fused=dev.type in ("cpu", "cuda"))
        # each image's own step, as GNNSolver.fit counts it: its cross-entropy phase may end
        # early (warm_fit), so images of one batch can be in different phases
        ts = [0] * B
        for _ in range(steps):
            # each image's own stream, in the per-image solve's order: its cross-entropy
            # mini-batch, then its dropout mask
            rows = [solver._batch_rows(n, dev, g) if t < n_warm else None
                    for n, g, t in zip(sizes, gens, ts)]
            if any(r is not None for r in rows):
                lens = [n if r is None else r.numel() for n, r in zip(sizes, rows)]
                A = torch.zeros(B, max(lens), D, device=dev)
                for b, r in enumerate(rows):
                    A[b, :lens[b]] = AX[b, :sizes[b]] if r is None else AX[b, r]
                tgt = [y if r is None else y[r] for y, r in zip(targets, rows)]
            else:
                lens, A, tgt = sizes, AX, targets
            if p_drop > 0:
                keep = torch.zeros(B, A.shape[1], H2, dtype=torch.bool, device=dev)
                for b in range(B):
                    keep[b, :lens[b]] = dropout_keep((lens[b], H2), p_drop, dev, gens[b])
            else:
                keep = None
            logits = batched_head_logits(params, A, keep, p_drop)
            losses = batch_losses(logits, ts, lens, tgt)  # (B,)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            # the images still in their cross-entropy phase: their warm_fit agreements, read
            # back with the losses in one device sync per step (not one per image)
            fitting = [b for b in range(B) if ts[b] < n_warm and solver.warm_fit < 1]
            agree = [_agreement(logits[b, :lens[b]], tgt[b]) for b in fitting]
            values = torch.cat([losses.detach(), *(a.reshape(1) for a in agree)]).cpu().tolist()
            agree_of = dict(zip(fitting, values[B:]))
            for b, c in enumerate(clones):
                t = ts[b]
                ts[b] = solver._step_after(t, n_warm, agree_of.get(b))
                if final[b] is not None:
                    continue
                c.loss_history_.append(values[b])
                c.n_warm_iter_ += t < n_warm
                if ts[b] >= steps or solver._converged(c.loss_history_, warm,
                                                       c.n_warm_iter_):
                    final[b] = {k: v[b].detach().clone() for k, v in params.items()}
            if all(f is not None for f in final):
                break
    t_train = time.perf_counter() - t0

    t0 = time.perf_counter()
    with torch.no_grad():
        last = {k: torch.stack([v[b].detach() if final[b] is None else final[b][k]
                                for b in range(B)]) for k, v in params.items()}
        logits, E_all = batched_head_logits(last, AX, embedding=True)  # eval mode: no dropout
        S_all = torch.softmax(logits, dim=-1)
    t_pred = time.perf_counter() - t0

    for b, (c, g) in enumerate(zip(clones, graphs)):
        c.timings_["train"] = t_train / B
        c.timings_["predict"] = t_pred / B
        h = solver.make_head(D)
        h.load_state_dict({k: v[b].detach().clone() for k, v in last.items()})
        c.head_ = h.eval()
        c.batch_size_ = B
        c._set_fitted(g, S_all[b, :sizes[b]], E_all[b, :sizes[b]],
                      c._rounding_partition(g, logits[b, :sizes[b]], X[b], targets[b]))
    return clones
