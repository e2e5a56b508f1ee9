"""Scale benchmark: time and peak memory per stage (features, graph, solve) from 1k to 262k nodes.

For each grid side ``s`` (N = s^2 patches: the ``classic`` backbone, patch 8 / stride 8, on an
image resized to ``8 s`` pixels, centre-cropped square) and each graph path:

* ``dense``: DeepCut's dense NCut graph (Eq. 6), every solver on it (only up to ``--dense-max``);
* ``landmarks``: the large-image path (:mod:`deepcut.graphs.landmarks`, ``--landmarks`` seeded
  landmarks; the solve column includes extending the labels to every node);
* ``knn``: the previous large-image path, an exact symmetric 32-NN graph (``O(N^2)`` to build;
  only up to ``--knn-max``);
* ``ncut-pytorch``: its Nystrom NCut (``Ncut(n_eig=K).fit_transform`` + ``kway_ncut``) when the
  package is importable (optional; its columns read n/a otherwise); graph and solve are one stage.

and each solver (``spectral``, ``falcon``, ``gnn``), K = 2, one torch thread: the seconds of each
stage (median of ``--repeats``; wall, and for graph + solve also the CPU seconds of the one
compute thread, which other processes' load changes least), the peak resident memory each stage
added (MiB, sampled every 2 ms after handing freed heap pages back with ``malloc_trim``, in a
first call that is not timed), and the discrete NCut of the labelling on the exact dense NCut graph (``metric`` dot) where
that fits (N <= ``--dense-max``). Above 4096 nodes only the landmark path is repeated (the
others take minutes). Then the exponent b of ``time ~ N^b`` (graph + solve, least
squares in log-log over N >= 4096) per path and solver.

    DATA=/path/to/data
    OMP_NUM_THREADS=1 python benchmarks/scale.py --data-root $DATA/sod/images --sides 32 64 128 256 512

Without ``--data-root`` a synthetic image (smooth random blobs) is used.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from solvers import PeakRSS  # benchmarks/solvers.py: the one RSS sampler

from deepcut.graphs import (
    LandmarkGraph,
    build_graph,
    fit_on_landmarks,
    knn_graph,
    landmark_graph,
)
from deepcut.losses import discrete_ncut
from deepcut.solvers import FalconCut, GNNSolver, SpectralNCut

SOLVERS = {"spectral": lambda K: SpectralNCut(K), "falcon": lambda K: FalconCut(K),
           "gnn": lambda K: GNNSolver(K)}


def load_image(root: Path | None):
    from PIL import Image

    if root is None:  # smooth random blobs: a few regions with soft borders
        g = torch.Generator().manual_seed(0)
        x = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=g), size=(512, 512),
                                            mode="bicubic", align_corners=False)
        arr = (x.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        return Image.fromarray(arr)
    exts = {".jpg", ".jpeg", ".png", ".bmp"}
    paths = sorted(p for p in root.iterdir() if p.suffix.lower() in exts)
    if not paths:
        raise SystemExit(f"{root}: no images")
    im = Image.open(paths[0]).convert("RGB")
    s = min(im.size)
    x0, y0 = (im.width - s) // 2, (im.height - s) // 2
    return im.crop((x0, y0, x0 + s, y0 + s))


def features(im, side: int) -> torch.Tensor:
    from deepcut.backbones import create_backbone

    F = create_backbone("classic", size=8 * side)(im).features
    assert F.shape[:2] == (side, side), F.shape
    return F


def measure(fn, repeats: int):
    """(result, median wall seconds, median CPU seconds of this thread, peak MiB).

    The peak memory comes from a first call under :class:`PeakRSS`; with ``repeats > 1`` that
    call is not timed (its sampling thread and page faults would count) and ``repeats`` calls
    without the sampler are. The CPU column (``time.thread_time``: this thread only, one torch
    thread) is what a busy machine changes least: other processes' load stretches wall time.
    """
    with PeakRSS(above_entry=True) as mem:
        t0, c0 = time.perf_counter(), time.thread_time()
        out = fn()
        secs, cpus = [time.perf_counter() - t0], [time.thread_time() - c0]
    if repeats > 1:
        secs, cpus = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.thread_time()
            out = fn()
            secs.append(time.perf_counter() - t0)
            cpus.append(time.thread_time() - c0)
    return out, statistics.median(secs), statistics.median(cpus), mem.peak_mib


def ncut_pytorch_labels(F: torch.Tensor, K: int):
    import ncut_pytorch

    torch.manual_seed(0)
    np.random.seed(0)
    eig = ncut_pytorch.Ncut(n_eig=K, device="cpu").fit_transform(F)
    return ncut_pytorch.kway_ncut(eig).argmax(1)


def build(path: str, X: torch.Tensor, landmarks: int):
    """The graph of ``path`` (dense, knn or landmarks) on ``X: (N, D)``."""
    if path == "dense":
        return build_graph(X, "ncut", metric="dot", dense_max_nodes=X.shape[0])
    if path == "knn":
        return knn_graph(X, k=32, kind="ncut", metric="dot")
    return landmark_graph(X, "ncut", n_landmarks=landmarks)


def fit(sname: str, K: int, g, X: torch.Tensor):
    est = SOLVERS[sname](K)
    if isinstance(g, LandmarkGraph):
        return fit_on_landmarks(est, g, X)
    return est.fit(g, X)


def run_side(side: int, im, args, K: int, have_ncp: bool, rows: list, fits: dict) -> None:
    """Measure every path and solver at N = side^2; append table rows and (N, seconds) points."""
    N = side * side
    F, t_feat, _, m_feat = measure(partial(features, im, side), 1)
    X = F.reshape(N, -1)
    dense = build("dense", X, 0) if N <= args.dense_max else None

    def score(z):
        if dense is None:
            return None
        return discrete_ncut(z, dense.W, dense.degree, assume_nonnegative=True)

    for path in args.paths:
        if path == "dense" and N > args.dense_max or path == "knn" and N > args.knn_max:
            continue
        # the O(N^2) paths and ncut-pytorch once above 4096 nodes (minutes); the landmark path
        # (the default, well under a second) takes the median of every repeat at every N
        reps = args.repeats if N <= 4096 or path == "landmarks" else 1
        if path == "ncut-pytorch":
            if have_ncp and N <= args.ncut_pytorch_max:
                z, t, c, mem = measure(partial(ncut_pytorch_labels, X, K), reps)
                rows.append((N, path, path, t_feat, m_feat, None, None, t, mem, score(z), c))
                fits.setdefault((path, path), []).append((N, t))
            continue
        g, t_graph, c_graph, m_graph = measure(partial(build, path, X, args.landmarks), reps)
        for sname in args.solvers:
            est, t_solve, c_solve, m_solve = measure(partial(fit, sname, K, g, X), reps)
            rows.append((N, path, sname, t_feat, m_feat, t_graph, m_graph, t_solve, m_solve,
                         score(est.labels_), c_graph + c_solve))
            fits.setdefault((path, sname), []).append((N, t_graph + t_solve))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", type=Path, default=None,
                    help="folder of images (the first one is used); omit for a synthetic image")
    ap.add_argument("--sides", type=int, nargs="+", default=[32, 64, 128, 256],
                    help="grid sides s (N = s^2): 32 64 128 256 512 give 1k to 262k nodes")
    ap.add_argument("--paths", nargs="+", default=["dense", "landmarks", "knn", "ncut-pytorch"],
                    choices=["dense", "landmarks", "knn", "ncut-pytorch"])
    ap.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=list(SOLVERS))
    ap.add_argument("--landmarks", type=int, default=512, help="landmarks of the large path")
    ap.add_argument("--dense-max", type=int, default=16384,
                    help="largest N for the dense path and the dense-graph NCut")
    ap.add_argument("--knn-max", type=int, default=16384, help="largest N for the kNN path")
    ap.add_argument("--ncut-pytorch-max", type=int, default=65536,
                    help="largest N for ncut-pytorch")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per cell (median)")
    ap.add_argument("--k", type=int, default=2, help="clusters")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    have_ncp = True
    try:
        import ncut_pytorch  # noqa: F401
    except ImportError:
        have_ncp = False
        print("note: ncut-pytorch is not importable: its rows are skipped", file=sys.stderr)
    warnings.simplefilter("ignore")
    K = args.k
    im = load_image(args.data_root)
    Fw = features(im, 16).reshape(256, -1)  # warm-up: imports and first-call costs untimed
    for sname in args.solvers:
        SOLVERS[sname](K).fit(build_graph(Fw, "ncut"), Fw)
    rows, fits = [], {}
    load = [os.getloadavg()[0]]
    for side in args.sides:
        run_side(side, im, args, K, have_ncp, rows, fits)
        print(f"done N={side * side}", file=sys.stderr, flush=True)

    def f(x, spec):
        return "n/a" if x is None else format(x, spec)

    print(f"K = {K}, one thread, classic backbone (patch 8, stride 8), landmarks = "
          f"{args.landmarks}, data: {args.data_root or 'synthetic'}\n")
    print(f"load average (1 min) {load[0]:.1f} -> {os.getloadavg()[0]:.1f} during the runs\n")
    print("| N | path | solver | features s | graph s | solve s | graph+solve s | "
          "graph+solve CPU s | features MiB | graph MiB | solve MiB | NCut (dense graph) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for N, path, s, tf, mf, tg, mg, ts, ms, nc, cpu in rows:
        tot = ts + (tg or 0.0)
        print(f"| {N} | {path} | {s} | {tf:.3f} | {f(tg, '.3f')} | {ts:.3f} | {tot:.3f} | "
              f"{cpu:.3f} | {mf:.0f} | {f(mg, '.0f')} | {ms:.0f} | {f(nc, '.4f')} |")
    print("\nFitted exponent b of graph+solve time ~ N^b (least squares in log-log, N >= 4096):\n")
    print("| path | solver | b | N range |")
    print("|---|---|---|---|")
    for (path, s), pts in fits.items():
        pts = [(n, t) for n, t in pts if n >= 4096]
        if len(pts) < 2:
            continue
        x = np.log([n for n, _ in pts])
        y = np.log([max(t, 1e-6) for _, t in pts])
        b = float(np.polyfit(x, y, 1)[0])
        print(f"| {path} | {s} | {b:.2f} | {pts[0][0]}-{pts[-1][0]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
