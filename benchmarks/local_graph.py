#!/usr/bin/env python
"""Build time and stored entries of the local (Shi-Malik) graph vs the dense and kNN graphs.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/local_graph.py             # grids 32^2, 64^2, 128^2
    OMP_NUM_THREADS=1 python benchmarks/local_graph.py --sides 128 --radius 3 5 8
    OMP_NUM_THREADS=1 python benchmarks/local_graph.py --images $DATA/bsds500_test/images --limit 30
    OMP_NUM_THREADS=1 python benchmarks/local_graph.py --images DIR --size 1024 --radius 5 9 --contour 1

With ``--images``: per-stage seconds per image of the weight-free pipeline at 224 px (classic
features, graph, 6-way spectral solve), the local graph beside the dense one, side by side in one
process; ``features (1 scale)`` is the classic backbone without context windows (the pre-context
feature cost).

Random features (D = 38, the classic backbone's width) on square grids; a 128 x 128 grid is a
1024 px image at stride 8 (16k nodes). For each graph: stored entries (nnz; N^2 for dense), the
bytes of W (values + int64 indices for sparse), and the median build time of 3 runs on one
thread. The dense graph is skipped above 8192 nodes (N^2 floats: 1 GiB at 16k nodes).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's deepcut
from deepcut.graphs import knn_graph, local_graph, ncut_graph


def _bytes(W: torch.Tensor) -> int:
    if W.is_sparse:
        return W.values().numel() * W.values().element_size() + W.indices().numel() * 8
    return W.numel() * W.element_size()


def _time(fn, reps: int = 3) -> tuple[float, torch.Tensor]:
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def per_image(folder: str, limit: int, k: int = 6, size: int = 224,
              radii: tuple[float, ...] = (5.0,), contour: float | None = None) -> None:
    from PIL import Image

    from deepcut.backbones.classic import ClassicBackbone
    from deepcut.graphs.local import image_edges
    from deepcut.solvers import create_solver

    files = sorted(p for p in Path(folder).iterdir()
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
    bb, bb1 = ClassicBackbone(size=size), ClassicBackbone(size=size, colour_scales=(1,),
                                                              texture_scales=(1,))
    t: dict[str, list[float]] = {}

    def clock(name, fn, *args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        t.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    for f in files:
        img = Image.open(f).convert("RGB")
        clock("features (1 scale)", bb1, img)
        pf = clock("features", bb, img)
        F = pf.flat
        graphs = []
        for r in radii:
            graphs.append((f"local r={r:g}", clock(f"graph local r={r:g}", local_graph, F,
                                                   grid=pf.grid, radius=r)))
            if contour is not None:
                x = bb.preprocess(img)
                E = clock("edge map (image_edges)", image_edges, x, pf.grid, bb.patch_size,
                          bb.stride)
                graphs.append((f"local r={r:g} + contour", clock(
                    f"graph local r={r:g} + contour (map excluded)", local_graph, F,
                    grid=pf.grid, radius=r, contour=contour, edges=E)))
        if pf.grid[0] * pf.grid[1] <= 4096:
            graphs.append(("dense", clock("graph dense ncut", ncut_graph, F)))
        for name, g in graphs:
            clock(f"spectral K={k} on {name}",
                  create_solver("spectral", n_clusters=k, random_state=0).fit, g, F)
    print(f"{len(files)} images from {folder}, {size} px, one thread")
    print("| stage | s / image (mean) |")
    print("|---|---|")
    for name, v in t.items():
        print(f"| {name} | {statistics.mean(v):.4f} |")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sides", type=int, nargs="+", default=[32, 64, 128], help="grid sides")
    p.add_argument("--radius", type=float, nargs="+", default=[3.0, 5.0], help="local radii")
    p.add_argument("--dim", type=int, default=38, help="feature dimension")
    p.add_argument("--images", help="folder of images: per-stage times instead (see above)")
    p.add_argument("--limit", type=int, default=30, help="images of --images to time")
    p.add_argument("--size", type=int, default=224, help="input short side with --images (px)")
    p.add_argument("--contour", type=float, help="with --images: also time the graph with the "
                                                 "intervening-contour cue of this sigma_IC")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.images:
        per_image(args.images, args.limit, size=args.size, radii=tuple(args.radius),
                  contour=args.contour)
        return
    print("| grid | N | graph | nnz | nnz / N | MiB | build s |")
    print("|---|---|---|---|---|---|---|")
    for side in args.sides:
        N = side * side
        F = torch.randn(N, args.dim, generator=torch.Generator().manual_seed(0))
        rows = [(f"local r={r:g}", lambda r=r, F=F, s=side: local_graph(F, grid=(s, s), radius=r).W)
                for r in args.radius]
        rows.append(("knn k=32", lambda F=F: knn_graph(F, k=32).W))
        if N <= 8192:
            rows.append(("dense ncut", lambda F=F: ncut_graph(F).W))
        for name, fn in rows:
            t, W = _time(fn)
            nnz = W.values().numel() if W.is_sparse else W.numel()
            print(f"| {side}x{side} | {N} | {name} | {nnz} | {nnz / N:.1f} | "
                  f"{_bytes(W) / 2**20:.1f} | {t:.3f} |")


if __name__ == "__main__":
    main()
