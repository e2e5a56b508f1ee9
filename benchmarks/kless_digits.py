"""k-less clustering: is K found? Planted partitions and scikit-learn's digits (issue 10, Table 5).

Two data sets, each sample one node of the graph:

* **planted**: 3 to 6 groups of ``--planted-n`` (25) points in 16-D around orthogonal means of
  norm ``--sep`` (4; Gaussian noise of unit variance per coordinate, so the noise norm ~ 4 equals
  the separation), ``--seeds`` (20) seeds per K;
* **digits**: for 3, 4 and 5 classes, ``--draws`` (20) seeded draws, each a random subset of the
  10 digit classes with ``--per-class`` (100) random images per class (DeepCut section 7: 500
  images of 5 Fashion-Product classes). A sample is the image's 64 pixel values.

Methods (``k_max=10``, features centred on the draw's mean, cosine similarity; the library's
defaults then project them on the principal components holding 70% of the variance and
cluster once per whitening power 0, 1/2, 1, K the most frequent:
:func:`deepcut.cluster.pca_whiten`, :func:`deepcut.cluster.consensus_k`; the "previous
default" rows, the threshold graph's, the eigengap rule's and the paper's skip that step):

* CC (DeepCut): :class:`deepcut.cluster.KLessClustering`, GNN + correlation-clustering loss;
  once as the paper defines it (``graph="threshold", shift="max"``: ``W = S - max(S)/alpha``,
  alpha 3, no neighbour mean, 100 steps from the seeded init, the argmax); with the library's
  defaults at each ``--resolution`` (default 0.9): the modularity matrix of the NCut graph,
  ``W = A - gamma d d^T / m`` (:func:`deepcut.cluster.modularity_graph`: CC maximises the
  modularity), each sample replaced by the mean of its 5 most similar samples
  (:func:`deepcut.cluster.neighbour_mean`), the head warm-started from the spectral rule's
  partition (below) and trained 20 steps, its labels rounded to a local optimum of the discrete
  CC objective (:func:`deepcut.solvers.cc_rounding.cc_round`), the rounded warm partition one
  more candidate; the previous default (no PCA, resolution 1, neighbour mean of 10, 100 steps
  from the seeded init); and on the threshold graph at each ``--alpha`` (default 10):
  ``t = mu + (mean S_ii - mu)/alpha`` (:func:`deepcut.graphs.affinity.cc_threshold`; no PCA, no
  warm start). ``--ablation`` adds the modularity graph without the rounding / without the
  neighbour mean / one whitening power, and the release before's defaults (alpha 6, no
  neighbour mean, argmax);
* spectral: :class:`deepcut.cluster.EigengapClustering` (neighbour mean of 5, NCut graph,
  k-means on the first K eigenvectors of the normalised Laplacian), K in [2, 10] by the
  modularity of each K's labels (the default) and by the largest eigengap (the paper's spectral
  baseline, the previous default); ``--ablation`` adds both without the neighbour mean;
* connected components of the CC graph's positive edges (the paper's other baseline).

Reported per data set and true K: the share of draws where **K found = true K**, the mean K found,
purity (the paper's metric, which rewards over-segmentation: it is 1 for singletons) and ARI.
A last column repeats the K-found share on the *separable* draws only: those where scikit-learn's
``SpectralClustering(n_clusters=true K, affinity="nearest_neighbors")``, told K, reaches ARI >= 0.9
(on raw digit pixels some class sets, e.g. 1/3/9, are not K distinct groups at all; no K-free
method can be asked to find a K that the data does not show).

The ``s/draw`` column is the mean wall time of one fit (one torch thread).

``--tune-prep``: the K-found share of both rules over the preparation (no PCA; PCA fraction
0.7-1.0 at whitening power 1/2; powers 0 and 1 at 0.7; the consensus over 0, 1/2, 1) on the
tuning draws (``--tune-draws``, 40 for the defaults), how ``pca``/``whiten`` were chosen.

``--tune``: print the same K-found share for CC over a grid of resolutions (``--tune-threshold``:
and of alphas) and neighbour-mean sizes, and for both spectral K rules over the neighbour-mean
sizes, on draws and seeds disjoint from the evaluation ones (digits seeds 10000+, planted seeds
5000+); that is how the defaults were chosen. The evaluation draws are never used to choose
anything.

    PYTHONPATH=. python benchmarks/kless_digits.py [--draws 20] [--seeds 20] [--tune]
        [--tune-prep --tune-draws 40] [--ablation]

Runs on the CPU with one torch thread (at most 500 nodes per graph).
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import SpectralClustering
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score

from deepcut.cluster import EigengapClustering, KLessClustering
from deepcut.graphs import cc_graph
from deepcut.metrics.clustering import purity
from deepcut.solvers.base import DegenerateResultWarning

#: DeepCut Table 5 (Fashion Product Images, purity %, mean +- std over 10 experiments).
PAPER = {
    "connected components": {3: "33.3 +- 0", 4: "25.0 +- 0", 5: "20.0 +- 0"},
    "eigengap spectral": {3: "85.5 +- 14.1", 4: "77.9 +- 6.6", 5: "82.8 +- 6.9"},
    "cc": {3: "98.3 +- 0.9", 4: "97.1 +- 1.7", 5: "99.27 +- 0.6"},
}
DIGIT_CLASSES = (3, 4, 5)
PLANTED_K = (3, 4, 5, 6)
TUNE_GRID = (6.0, 8.0, 10.0, 12.0, 15.0)
TUNE_RESOLUTION = (1.0, 1.1, 1.2, 1.3)
TUNE_SMOOTH = (0, 5, 10)
TUNE_PCA = (0.7, 0.8, 0.9, 1.0)
TUNE_SEED_OFFSET = {"digits": 10_000, "planted": 5_000}


def draw(X: np.ndarray, y: np.ndarray, n_classes: int, per_class: int, seed: int
         ) -> tuple[np.ndarray, np.ndarray]:
    """One seeded digits draw: ``n_classes`` random digits, ``per_class`` random images each."""
    rng = np.random.default_rng(seed)
    classes = rng.choice(10, n_classes, replace=False)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                          for c in classes])
    idx = rng.permutation(idx)
    return X[idx].astype(np.float32), y[idx]


def planted(k: int, n_per: int = 25, dim: int = 16, sep: float = 4.0, seed: int = 0
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(k * n_per, dim)`` points around ``k`` orthogonal means of norm ``sep``; their labels."""
    g = torch.Generator().manual_seed(seed)
    means = torch.linalg.qr(torch.randn(dim, dim, generator=g))[0][:k] * sep
    y = torch.arange(k).repeat_interleave(n_per)
    perm = torch.randperm(len(y), generator=g)
    return (means[y] + torch.randn(len(y), dim, generator=g))[perm].numpy(), y[perm].numpy()


def components(F: np.ndarray, alpha: float) -> np.ndarray:
    """Connected components of the positive edges of the paper's CC graph (Table 5 baseline)."""
    F = F - F.mean(0)
    W = cc_graph(torch.from_numpy(F), alpha=alpha, metric="cosine", shift="max").W.numpy()
    return connected_components(W > 0, directed=False)[1]


def cc(F: np.ndarray, alpha: float | None, shift: str, seed: int, args, **kw) -> np.ndarray:
    """KLessClustering; ``alpha=None``: the modularity graph, else the threshold graph."""
    with warnings.catch_warnings():  # k_max hits are counted in the table, not printed
        warnings.simplefilter("ignore", DegenerateResultWarning)
        kw = {**({} if args.smooth is None else {"smooth": args.smooth}), **kw}
        if alpha is not None:
            kw.update(graph="threshold", alpha=alpha, shift=shift)
        if args.n_init is not None:
            kw.setdefault("n_init", args.n_init)
        kw = {**({} if args.steps is None else {"steps": args.steps}), **kw}
        return KLessClustering(10, lr=args.lr, seed=seed, **kw).fit_predict(F)


def eig(F: np.ndarray, seed: int, args, **kw) -> np.ndarray:
    kw = {**({} if args.smooth is None else {"smooth": args.smooth}), **kw}
    return EigengapClustering(10, seed=seed, **kw).fit_predict(F)


def run_methods(F: np.ndarray, seed: int, args) -> dict[str, tuple[np.ndarray, float]]:
    """``{method: (labels, seconds)}`` for one draw."""
    runs = {"cc, paper graph (max/alpha), alpha=3":
            lambda: cc(F, 3.0, "max", seed, args, smooth=0, rounding=False, pca=None,
                       warm_start=None, steps=100)}
    for r in args.resolution:
        runs[f"cc, modularity graph, spectral warm start, resolution={r:g}"] = (
            lambda r=r: cc(F, None, "", seed, args, resolution=r))
    runs["cc, modularity graph, no warm start (previous default)"] = (
        lambda: cc(F, None, "", seed, args, warm_start=None, resolution=1.0, pca=None,
                   smooth=10, steps=100))
    for a in args.alpha:
        runs[f"cc, threshold graph, alpha={a:g}"] = (
            lambda a=a: cc(F, a, "mean", seed, args, pca=None, warm_start=None, smooth=10,
                           steps=100))
    if args.ablation:  # without the neighbour mean / the CC rounding; the last release's defaults
        runs["cc, modularity graph, no rounding"] = (
            lambda: cc(F, None, "", seed, args, rounding=False))
        runs["cc, modularity graph, raw"] = lambda: cc(F, None, "", seed, args, smooth=0)
        for w in (0.0, 0.5, 1.0):
            runs[f"cc, modularity graph, PCA whiten={w:g} only"] = (
                lambda w=w: cc(F, None, "", seed, args, pca=0.7, whiten=w))
        runs["cc, alpha=6, raw, no rounding (release before)"] = lambda: cc(
            F, 6.0, "mean", seed, args, smooth=0, rounding=False, pca=None, warm_start=None,
            steps=100)
    runs["eigengap spectral, K by modularity"] = lambda: eig(F, seed, args)
    runs["eigengap spectral, K by modularity, no PCA (previous default)"] = (
        lambda: eig(F, seed, args, pca=None))
    runs["eigengap spectral, K by eigengap"] = lambda: eig(F, seed, args, k_rule="eigengap",
                                                            pca=None)
    if args.ablation:
        runs["eigengap spectral, K by modularity, raw"] = lambda: eig(F, seed, args, smooth=0)
        for w in (0.0, 0.5, 1.0):
            runs[f"eigengap spectral, K by modularity, PCA whiten={w:g} only"] = (
                lambda w=w: eig(F, seed, args, whiten=w))
        runs["eigengap spectral, K by eigengap, raw (release before)"] = lambda: eig(
            F, seed, args, k_rule="eigengap", smooth=0, pca=None)
    runs["connected components"] = lambda: components(F, 3.0)
    out = {}
    for name, fn in runs.items():
        t = time.perf_counter()
        z = fn()
        out[name] = (z, time.perf_counter() - t)
    return out


def scores(pred: np.ndarray, y: np.ndarray, separable: bool = True, seconds: float = 0.0
           ) -> tuple[float, int, float, float, bool, float]:
    k = int(np.unique(pred).size)
    return (float(k == np.unique(y).size), k, 100 * purity(pred, y, ignore_index=None),
            adjusted_rand_score(y, pred), separable, seconds)


def separable(F: np.ndarray, y: np.ndarray, seed: int) -> bool:
    """Told the true K, does scikit-learn's kNN spectral clustering reach ARI >= 0.9?"""
    sc = SpectralClustering(np.unique(y).size, affinity="nearest_neighbors", n_neighbors=10,
                            random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "graph is not fully connected"
        return adjusted_rand_score(y, sc.fit_predict(F)) >= 0.9


def cases(kind: str, args, tune: bool = False):
    """``(true K, seed, F, y)`` for every evaluation (or tuning) draw of ``kind``."""
    off = TUNE_SEED_OFFSET[kind] if tune else 0
    if kind == "digits":
        X, y = load_digits(return_X_y=True)
        for nc in DIGIT_CLASSES:
            for d in range(args.tune_draws if tune else args.draws):
                s = off + 100 * nc + d
                yield (nc, s, *draw(X, y, nc, args.per_class, s))
    else:
        for k in PLANTED_K:
            for d in range(args.tune_draws if tune else args.seeds):
                s = off + 100 * k + d
                yield (k, s, *planted(k, args.planted_n, sep=args.sep, seed=s))


def tune_prep(args) -> None:
    """K-found share on the tuning draws over the feature preparation (PCA fraction x
    whitening power, and the consensus over powers), both rules (CC with ``n_init=2``),
    resolution 1, own smooth."""
    print(f"tuning the preparation: share of draws with K found = true K, {args.tune_draws} "
          "draws per true K, seeds disjoint from the evaluation")
    preps = [("no PCA", {"pca": None})]
    preps += [(f"pca={f:3.1f} whiten=0.5", {"pca": f, "whiten": 0.5}) for f in TUNE_PCA]
    preps += [(f"pca={f:3.1f} whiten={w:g}", {"pca": f, "whiten": w})
              for f in (0.7,) for w in (0.0, 1.0)]
    preps += [("pca=0.7 whiten=(0, 0.5, 1)", {"pca": 0.7, "whiten": (0.0, 0.5, 1.0)})]
    for kind in ("planted", "digits"):
        data = list(cases(kind, args, tune=True))
        for rule in ("spectral", "cc"):
            for name, kw in preps:
                hit: dict[int, list] = {}
                t = time.perf_counter()
                for k, s, F, y in data:
                    z = (eig(F, s, args, **kw) if rule == "spectral"
                         else cc(F, None, "", s, args, n_init=2, **kw))
                    hit.setdefault(k, []).append(scores(z, y))
                sec = (time.perf_counter() - t) / len(data)
                cols = "  ".join(f"K={k}: {np.mean([r[0] for r in v]):.2f}"
                                 for k, v in hit.items())
                allk = np.mean([r[0] for v in hit.values() for r in v])
                print(f"  {kind:8s} {rule:8s} {name:28s} all {allk:.2f}  {cols}  "
                      f"{sec:.2f} s/draw", flush=True)


def tune(args) -> None:
    print(f"tuning (CC with the library's rounding; eigengap): share of draws with K found = "
          f"true K, {args.tune_draws} draws per true K, seeds disjoint from the evaluation")
    for kind in ("planted", "digits"):
        data = list(cases(kind, args, tune=True))
        for sm in TUNE_SMOOTH:
            runs = {}
            for rule in ("modularity", "eigengap"):
                runs[f"spectral K by {rule:10s} smooth={sm:2d}"] = (
                    lambda F, s, sm=sm, rule=rule: EigengapClustering(
                        10, k_rule=rule, smooth=sm, seed=s).fit_predict(F))
            for r in TUNE_RESOLUTION:
                runs[f"cc modularity res={r:3.1f} smooth={sm:2d}"] = (
                    lambda F, s, r=r, sm=sm: cc(F, None, "", s, args, smooth=sm, resolution=r))
            for a in TUNE_GRID if args.tune_threshold else ():
                runs[f"cc threshold alpha={a:4.1f} smooth={sm:2d}"] = (
                    lambda F, s, a=a, sm=sm: cc(F, a, "mean", s, args, smooth=sm))
            for name, fn in runs.items():
                hit: dict[int, list] = {}
                for k, s, F, y in data:
                    hit.setdefault(k, []).append(scores(fn(F, s), y))
                cols = "  ".join(f"K={k}: {np.mean([r[0] for r in v]):.2f} "
                                 f"(K {np.mean([r[1] for r in v]):.1f})" for k, v in hit.items())
                allk = np.mean([r[0] for v in hit.values() for r in v])
                print(f"  {kind:8s} {name}  all {allk:.2f}  {cols}", flush=True)


def report(kind: str, res: dict, n: int) -> None:
    def ms(v, i, fmt):
        a = np.array([r[i] for r in v])
        return f"{a.mean():{fmt}} +- {a.std():{fmt}}"

    w = max(len(m) for m in res) + 1
    print(f"\n{kind}: {n} draws per true K (mean +- std over the draws)")
    print(f"| {'method':{w}} | true K | K found = true K | {'K found':>11} | {'purity %':>13} | "
          f"{'ARI':>11} | K = true K, separable draws | s/draw |"
          + (" Table 5 purity % |" if kind == "digits" else ""))
    print("|" + "---|" * (9 if kind == "digits" else 8))
    for name, per in res.items():
        for k, v in per.items():
            ref = (PAPER["cc" if name.startswith("cc") else name.split(",")[0]][k]
                   if kind == "digits" else None)
            sep = [r[0] for r in v if r[4]]
            sep_s = f"{100 * np.mean(sep):3.0f} % of {len(sep)}" if sep else "none"
            print(f"| {name:{w}} | {k} | {100 * np.mean([r[0] for r in v]):5.0f} % | "
                  f"{ms(v, 1, '4.1f'):>11} | {ms(v, 2, '5.1f'):>13} | {ms(v, 3, '.2f'):>11} | "
                  f"{sep_s} | {np.mean([r[5] for r in v]):.2f} |" + (f" {ref} |" if ref else ""))


def main() -> None:
    from deepcut.cluster import KLessClustering as _K

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draws", type=int, default=20, help="digits draws per class count")
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=20, help="planted seeds per K")
    ap.add_argument("--planted-n", type=int, default=25, help="planted points per group")
    ap.add_argument("--sep", type=float, default=4.0, help="planted mean separation")
    ap.add_argument("--alpha", type=float, nargs="+", default=[_K().alpha],
                    help="alphas of the threshold-graph CC rows (default: the library default)")
    ap.add_argument("--resolution", type=float, nargs="+", default=[_K().resolution],
                    help="resolutions of the modularity-graph CC rows (default: the library's)")
    ap.add_argument("--smooth", type=int, default=None,
                    help="neighbour-mean size of both estimators (default: each one's own)")
    ap.add_argument("--ablation", action="store_true",
                    help="add rows without the neighbour mean and without the CC rounding")
    ap.add_argument("--steps", type=int, default=None,
                    help="CC optimiser steps (default: the library's, 20 after a warm start)")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--n-init", type=int, default=None,
                    help="CC restarts (default: the library's)")
    ap.add_argument("--tune", action="store_true", help="print the alpha grid on tuning draws")
    ap.add_argument("--tune-draws", type=int, default=6)
    ap.add_argument("--tune-prep", action="store_true",
                    help="print the feature-preparation grid (PCA, whitening) on tuning draws")
    ap.add_argument("--tune-threshold", action="store_true",
                    help="--tune: add the threshold graph's alpha grid")
    ap.add_argument("--only", choices=["planted", "digits"], help="run one data set")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if args.tune:
        tune(args)
    if args.tune_prep:
        tune_prep(args)
    for kind in ("planted", "digits"):
        if args.only and kind != args.only:
            continue
        res: dict[str, dict[int, list]] = {}
        if (args.draws if kind == "digits" else args.seeds) < 1:
            continue
        for k, s, F, y in cases(kind, args):
            sep = separable(F, y, s)
            for name, (pred, sec) in run_methods(F, s, args).items():
                res.setdefault(name, {}).setdefault(k, []).append(scores(pred, y, sep, sec))
        report(kind, res, args.draws if kind == "digits" else args.seeds)
    print(f"\nGNN steps={args.steps}, lr={args.lr}, n_init={args.n_init or _K().n_init}, "
          f"k_max=10, cosine on "
          f"centred features; planted sep={args.sep}, {args.planted_n} points per group; digits "
          f"{args.per_class} images per class. Table 5 = DeepCut on Fashion Product Images "
          "(DINO ViT-B/16 CLS tokens, alpha=3): another data set, for orientation only. "
          f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
