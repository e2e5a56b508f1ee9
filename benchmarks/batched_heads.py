"""Images/s of the per-image GNN solve: B heads trained together against one image at a time.

    python benchmarks/batched_heads.py [--images 16] [--batch 4,8,16] [--threads 1,2]
                                       [--dim 384] [--repeat 3] [--device cpu]

Features are planted (a Gaussian group per region, ``--dim`` channels: 384 as ViT-S/8 keys) on
patch grids of a 280 px input at stride 8 with varied aspect ratios (35 x 35 to 35 x 46, N =
1225..1610 nodes), so padding costs what it costs in a real folder; no data or weights needed.
Graphs (dense NCut, dot product) are built once beforehand: only the solve (``GNNSolver.fit``
per image against ``GNNSolver.fit_many`` over chunks of B, default settings: 30 steps, rounding)
is timed. Settings are interleaved within each repeat and the median is reported; the table
also says whether every batched label map equals the one-at-a-time one.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings


def _features(n_images: int, dim: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n_images):
        h, w = 35, 35 + (i * 7) % 12  # 35 x 35 .. 35 x 46 patch grids
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        obj = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) < (min(h, w) / 3) ** 2  # a central disc
        means = torch.randn(2, dim, generator=g)
        F = means[obj.reshape(-1).long()] + 1.5 * torch.randn(h * w, dim, generator=g)
        out.append(F)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16, help="images per run (default 16)")
    ap.add_argument("--batch", default="4,8,16", help="comma-separated batch sizes B")
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    ap.add_argument("--dim", type=int, default=384, help="feature channels (default 384)")
    ap.add_argument("--steps", type=int, default=None, help="GNN steps (default: solver's)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved repeats (default 3)")
    ap.add_argument("--device", default="cpu", help="torch device (default cpu)")
    args = ap.parse_args()

    import torch

    from deepcut.graphs import build_graph
    from deepcut.solvers import GNNSolver

    warnings.simplefilter("ignore")
    dev = args.device
    feats = [F.to(dev) for F in _features(args.images, args.dim)]
    graphs = [build_graph(F, "ncut") for F in feats]
    batches = [int(b) for b in args.batch.split(",")]
    params = {"device": dev} if args.steps is None else {"device": dev, "steps": args.steps}

    def sync():
        if dev.startswith("cuda"):
            torch.cuda.synchronize()

    def one_at_a_time():
        return [GNNSolver(2, **params).fit(g, F).labels_ for g, F in zip(graphs, feats)]

    def batched(B):
        def run():
            out = []
            for i in range(0, len(graphs), B):
                out += [m.labels_ for m in GNNSolver(2, **params)
                        .fit_many(graphs[i:i + B], feats[i:i + B])]
            return out
        return run

    print(f"cores={os.cpu_count()} loadavg={os.getloadavg()[0]:.1f} images={args.images} "
          f"N=1225..1610 D={args.dim} K=2 device={dev} torch={torch.__version__}")
    print("| threads | mode | B | images/s | x one-at-a-time | labels equal |")
    print("|---|---|---|---|---|---|")
    for t in [int(x) for x in args.threads.split(",")]:
        torch.set_num_threads(t)
        modes = {"one at a time": one_at_a_time, **{f"batched {B}": batched(B) for B in batches}}
        ref = one_at_a_time()  # warm-up and the reference labels
        same = {}
        for name, fn in modes.items():
            same[name] = all(torch.equal(a, b) for a, b in zip(ref, fn()))  # warm-up too
        times: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(args.repeat):
            for name, fn in modes.items():
                sync()
                t0 = time.perf_counter()
                fn()
                sync()
                times[name].append(time.perf_counter() - t0)
        base = args.images / statistics.median(times["one at a time"])
        for name in modes:
            ips = args.images / statistics.median(times[name])
            B = name.split()[-1] if name.startswith("batched") else "1"
            print(f"| {t} | {name.split(' ')[0] if B != '1' else name} | {B} | {ips:.2f} | "
                  f"{ips / base:.2f} | {'yes' if same[name] else 'NO'} |")


if __name__ == "__main__":
    main()
