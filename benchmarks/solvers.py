"""Solver benchmark: time and NCut of gnn, spectral, falcon and ncut-pytorch on the same features.

For every (data, N, K): the same patch features ``F`` feed every method, and every labelling is
scored with :func:`deepcut.losses.discrete_ncut` on ONE common graph, the NCut graph of DeepCut
Eq. 6 on cosine similarities (``build_graph(F, "ncut", metric="cosine")``: dense up to 6000
nodes, a symmetric 32-NN sparse graph above). gnn, spectral and falcon solve on that graph;
ncut-pytorch builds its own RBF affinity from ``F`` (its time includes that). Times are the
solver's own (graph building is reported separately; deepcut's yardstick computation is
excluded), medians over images and repeats; NCut is the median over images.

Data: real images (``--data-root``, centre-cropped to a square, ``classic`` backbone at patch 8 /
stride 8 so that an image of ``8 s`` pixels gives an ``s x s`` grid) and planted features (K
Gaussian groups in 32 dimensions, overlapping: separation 1.5 noise units).

ncut-pytorch is installed into the running interpreter's environment when missing (a benchmark
tool, never a deepcut dependency); if that fails its columns read "n/a".

Run (about 8 min on one thread of a 2-core CPU)::

    HF_HUB_OFFLINE=1 python benchmarks/solvers.py --data-root $DATA/sod/images
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Self

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepcut.graphs import build_graph
from deepcut.losses import discrete_ncut
from deepcut.solvers import FalconCut, GNNSolver, SpectralNCut

METHODS = ("gnn", "spectral", "falcon", "ncut-pytorch")


# --------------------------------------------------------------------------------------------
# measurement helpers
# --------------------------------------------------------------------------------------------
class PeakRSS:
    """Sample the process RSS every 2 ms while the block runs (``peak_mib``).

    With ``above_entry`` the peak is counted above the level at entry, taken after a garbage
    collection and ``malloc_trim`` (freed heap pages go back to the OS, so that one stage's
    growth shows and not the last stage's leftovers; ``benchmarks/scale.py``).
    """

    def __init__(self, above_entry: bool = False) -> None:
        self.above_entry = above_entry
        self.peak_mib = 0.0
        self._base = 0.0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page / 2**20 - self._base

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, self._rss())
            time.sleep(0.002)

    def __enter__(self) -> Self:
        if self.above_entry:
            import ctypes
            import gc

            gc.collect()
            try:
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            except OSError:
                pass
            self._base = self._rss()
        self.peak_mib = self._rss()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        self.peak_mib = max(self.peak_mib, self._rss())


def ensure_ncut_pytorch(install: bool):
    """Import ncut_pytorch, pip-installing it first when missing; None if unavailable."""
    try:
        return importlib.import_module("ncut_pytorch")
    except ImportError:
        if not install:
            print("note: ncut-pytorch is not installed (--no-install): its columns read n/a",
                  file=sys.stderr)
            return None
    try:
        print("installing ncut-pytorch (benchmark only) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "ncut-pytorch"],
                       check=True, timeout=900)
        importlib.invalidate_caches()
        return importlib.import_module("ncut_pytorch")
    except Exception as err:  # noqa: BLE001 - any failure only disables one column
        print(f"note: could not install ncut-pytorch ({err}); its columns read n/a",
              file=sys.stderr)
        return None


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def real_features(paths: list[Path], side: int) -> list[torch.Tensor]:
    from PIL import Image

    from deepcut.backbones import create_backbone

    bb = create_backbone("classic", size=8 * side)
    out = []
    for p in paths:
        im = Image.open(p).convert("RGB")
        s = min(im.size)
        x0, y0 = (im.width - s) // 2, (im.height - s) // 2
        F = bb(im.crop((x0, y0, x0 + s, y0 + s))).features
        assert F.shape[:2] == (side, side), F.shape
        out.append(F.reshape(side * side, -1))
    return out


def planted_features(side: int, K: int, n: int, dim: int = 32, sep: float = 1.5
                     ) -> list[torch.Tensor]:
    out = []
    for seed in range(n):
        g = torch.Generator().manual_seed(1000 * K + seed)
        y = torch.randint(K, (side * side,), generator=g)
        C = torch.randn(K, dim, generator=g) * sep
        out.append(C[y] + torch.randn(side * side, dim, generator=g))
    return out


# --------------------------------------------------------------------------------------------
# one method on one input
# --------------------------------------------------------------------------------------------
def run_method(name: str, F: torch.Tensor, G, K: int, ncut_mod, gnn_steps: int | None):
    """Returns (seconds, labels, peak RSS MiB)."""
    with PeakRSS() as mem:
        if name == "ncut-pytorch":
            torch.manual_seed(0)
            np.random.seed(0)
            t0 = time.perf_counter()
            eig = ncut_mod.Ncut(n_eig=K, device="cpu").fit_transform(F)
            labels = ncut_mod.kway_ncut(eig).argmax(1)
            sec = time.perf_counter() - t0
        else:
            if name == "gnn":
                steps = gnn_steps if gnn_steps is not None else (10 if K == 2 else 100)
                est = GNNSolver(K, steps=steps)  # DeepCut: 10 steps fg/bg, 100 for parts
            elif name == "spectral":
                est = SpectralNCut(K)
            else:
                est = FalconCut(K)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(G, F)
            sec = sum(v for k, v in est.timings_.items() if k != "ncut")
            labels = est.labels_
    return sec, labels, mem.peak_mib


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", type=Path, default=None,
                    help="folder of images (e.g. $DATA/sod/images); omit for planted "
                         "features only")
    ap.add_argument("--n-images", type=int, default=2, help="images (and planted draws) per cell")
    ap.add_argument("--sides", type=int, nargs="+", default=[35, 55, 69, 128],
                    help="grid sides s (N = s^2): 35, 55, 69, 128 give 1225, 3025, 4761, 16384")
    ap.add_argument("--ks", type=int, nargs="+", default=[2, 8, 27], help="numbers of clusters")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per input (median)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch/BLAS threads (0: library default). Use 1 on a shared, loaded "
                         "machine: multi-threaded BLAS stalls when other jobs hold the cores")
    ap.add_argument("--gnn-steps", type=int, default=None,
                    help="GNN steps (default: 10 for K=2, 100 otherwise, as DeepCut)")
    ap.add_argument("--no-install", action="store_true", help="do not pip-install ncut-pytorch")
    ap.add_argument("--no-planted", action="store_true", help="skip the planted-feature rows")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.threads)
        except ImportError:
            pass
    ncut_mod = ensure_ncut_pytorch(not args.no_install) if "ncut-pytorch" in args.methods else None
    methods = [m for m in args.methods if m != "ncut-pytorch" or ncut_mod is not None]

    datasets = []
    if args.data_root is not None:
        exts = {".jpg", ".jpeg", ".png", ".bmp"}
        paths = sorted(p for p in args.data_root.iterdir() if p.suffix.lower() in exts)
        if not paths:
            print(f"no images in {args.data_root}", file=sys.stderr)
            return 1
        datasets.append(("real", paths[: args.n_images]))
    if not args.no_planted:
        datasets.append(("planted", None))

    # one untimed fit per method first: imports and one-off set-up would land in the first
    # timing (spectral, the first method, took 2.27 s at N = 256 with --repeats 1)
    F_warm = planted_features(8, 2, 1)[0]
    G_warm = build_graph(F_warm, "ncut", metric="cosine")
    for m in methods:
        run_method(m, F_warm, G_warm, 2, ncut_mod, args.gnn_steps)

    rows = []
    for data, paths in datasets:
        for side in args.sides:
            N = side * side
            feats_real = real_features(paths, side) if data == "real" else None
            for K in args.ks:
                feats = feats_real if data == "real" else planted_features(side, K, args.n_images)
                cell = {m: {"t": [], "ncut": [], "mem": [], "k": []} for m in methods}
                t_graph = []
                for F in feats:
                    t0 = time.perf_counter()
                    G = build_graph(F, "ncut", metric="cosine")
                    t_graph.append(time.perf_counter() - t0)
                    for m in methods:
                        reps = 1 if (m == "gnn" and N > 5000 and K > 2) else args.repeats
                        for _ in range(reps):
                            sec, labels, mem = run_method(m, F, G, K, ncut_mod, args.gnn_steps)
                            cell[m]["t"].append(sec)
                            cell[m]["mem"].append(mem)
                        cell[m]["ncut"].append(discrete_ncut(labels, G.W, G.degree))
                        cell[m]["k"].append(int(torch.unique(labels).numel()))
                    print(f"  {data} N={N} K={K}: " + ", ".join(
                        f"{m} {statistics.median(cell[m]['t']):.3f}s" for m in methods),
                        file=sys.stderr, flush=True)
                wins = (sum(f <= s + 1e-9 for f, s in zip(cell["falcon"]["ncut"],
                                                          cell["spectral"]["ncut"]))
                        if "falcon" in cell and "spectral" in cell else None)
                rows.append((data, N, K, statistics.median(t_graph), "sparse" if G.is_sparse
                             else "dense", {m: (statistics.median(c["t"]),
                                                statistics.median(c["ncut"]), max(c["mem"]),
                                                min(c["k"])) for m, c in cell.items()},
                             (wins, len(feats))))

    # ---------------------------------------------------------------------------------------
    threads = torch.get_num_threads()
    load = os.getloadavg()
    print()
    print(f"NCut = discrete K-way NCut (deepcut.losses.discrete_ncut) of each method's labels on "
          f"ONE common graph: DeepCut Eq. 6 on cosine similarities (dense for N <= 6000, "
          f"symmetric 32-NN sparse above). Times: median seconds of the solver alone "
          f"(ncut-pytorch includes its own affinity); medians over {args.n_images} inputs x "
          f"{args.repeats} repeats. peak = max process RSS sampled during the method (MiB). "
          f"torch threads={threads}, load average {load[0]:.1f} on {os.cpu_count()} cores. "
          f"gnn steps: {args.gnn_steps or '10 (K=2) / 100 (K>2)'}; falcon: hard, multilevel "
          f"init, 8 restarts on a dense graph, 1 on a sparse one; spectral: kway, auto eigensolver. (K'=k): a method left only k non-empty clusters "
          f"(its NCut then counts k, not K, terms).")
    head = ["data", "N", "K", "graph", "graph s"]
    for m in methods:
        head += [f"{m} s", f"{m} NCut"]
    head += ["falcon/spectral speed-up", "falcon NCut <= spectral (inputs)", "peak MiB (" + "/".join(
        m[0] for m in methods) + ")"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for data, N, K, tg, kind, res, (wins, n_in) in rows:
        line = [data, str(N), str(K), kind, f"{tg:.3f}"]
        for m in methods:
            t, nc, _, k_used = res[m]
            # fewer non-empty clusters than K make the NCut smaller: flag them
            line += [f"{t:.3f}", f"{nc:.4f}" + (f" (K'={k_used})" if k_used < K else "")]
        if "falcon" in res and "spectral" in res:
            line += [f"{res['spectral'][0] / max(res['falcon'][0], 1e-9):.2f}x",
                     f"{wins} / {n_in}"]
        else:
            line += ["n/a", "n/a"]
        line.append("/".join(f"{res[m][2]:.0f}" for m in methods))
        print("| " + " | ".join(line) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
