"""Per-image time against the torch thread count, on an idle or a loaded CPU.

    python benchmarks/threads.py [--load N] [--repeat 3] [--backbone classic|vit]

Segments ``examples/chelsea.png`` (280 px, 35 x 44 patch grid for stride 8, N = 1540 nodes)
with the default GNN solver (10 steps) under ``torch.set_num_threads(t)`` for each ``t`` and
prints the median backbone, solve and total seconds. ``--load N`` starts N busy processes (pure
Python loops, one core each) for the duration, to imitate a machine shared with other jobs; they
are stopped at the end. ``--backbone vit`` uses a random-init ViT-S/8 (the DINO architecture,
no download, weights drawn after ``torch.manual_seed(--seed)``, default 0) so the backbone's
share is realistic.

``--steps-only`` times just the GNN solve on fixed features and graph (what
``GNNSolver(step_threads=...)`` controls; torch's threads stay at their default for everything
else) for ``step_threads`` in ``--threads`` ("default" = None), with the default solver (30
steps, early stop) and the paper's (10 steps, lr 1e-3); run it under ``OMP_WAIT_POLICY=PASSIVE``
(what the command lines set) and without, idle and with ``--load``.
"""
from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def busy(n: int):
    """``n`` spinning processes (one core each) while the block runs; stopped after it."""
    procs = [mp.Process(target=_spin, daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        time.sleep(0.5 if procs else 0)
        yield
    finally:
        for p in procs:
            p.terminate()
            p.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--load", type=int, default=0, help="busy processes to start (default 0)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per setting (default 3)")
    ap.add_argument("--backbone", choices=["classic", "vit"], default="classic")
    ap.add_argument("--threads", default="1,2,4,default",
                    help="comma-separated thread counts; 'default' = torch's own")
    ap.add_argument("--steps-only", action="store_true",
                    help="time only the GNN solve, varying GNNSolver(step_threads=...)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the random-init ViT of --backbone vit (default 0)")
    args = ap.parse_args()
    if args.steps_only:
        return steps_only(args)

    import torch

    from deepcut import Segmenter
    from deepcut.backbones import create_backbone
    from deepcut.io.images import load_image

    default = torch.get_num_threads()
    image = load_image(REPO / "examples" / "chelsea.png")
    if args.backbone == "vit":
        torch.manual_seed(args.seed)  # reproducible random-init weights
        bb = create_backbone("timm:vit_small_patch8_224", pretrained=False, size=280)
    else:
        bb = create_backbone("classic", size=280)
    seg = Segmenter(backbone=bb, solver="gnn", seed=0)
    seg(image)  # warm-up: first-call allocations and lazy imports
    with busy(args.load):
        print(f"cores={os.cpu_count()} torch default threads={default} extra busy "
              f"processes={args.load} loadavg={os.getloadavg()[0]:.1f} backbone={args.backbone}")
        print("| threads | backbone s | solve s | total s |")
        print("|---|---|---|---|")
        for t in args.threads.split(","):
            n = default if t == "default" else int(t)
            torch.set_num_threads(n)
            rows = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                pred = seg(image)
                total = time.perf_counter() - t0
                rows.append((pred.timings["backbone"], pred.timings["graph"] +
                             pred.timings["solve"], total))
            med = [statistics.median(r[i] for r in rows) for i in range(3)]
            print(f"| {t} ({n}) | {med[0]:.3f} | {med[1]:.3f} | {med[2]:.3f} |")
    torch.set_num_threads(default)


def steps_only(args: argparse.Namespace) -> None:
    """Median seconds of ``GNNSolver.fit_predict`` per ``step_threads``, interleaved settings."""
    import torch

    from deepcut.backbones import create_backbone
    from deepcut.graphs import ncut_graph
    from deepcut.io.images import load_image
    from deepcut.solvers.gnn import GNNSolver

    pf = create_backbone("classic", size=280)(load_image(REPO / "examples" / "chelsea.png"))
    F = pf.features.reshape(-1, pf.features.shape[-1])
    graph = ncut_graph(F)
    settings = {"default (30 steps)": {}, "paper (10 steps)": dict(GNNSolver.PAPER)}
    choices = [None if t == "default" else int(t) for t in args.threads.split(",")]
    for kw in settings.values():  # warm-up
        GNNSolver(**kw).fit_predict(graph, F)
    with busy(args.load):
        print(f"cores={os.cpu_count()} torch threads={torch.get_num_threads()} N={F.shape[0]} "
              f"extra busy processes={args.load} loadavg={os.getloadavg()[0]:.1f} "
              f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
        times = {(s, c): [] for s in settings for c in choices}
        for _ in range(args.repeat):  # interleaved: every setting sees the same load
            for s, kw in settings.items():
                for c in choices:
                    t0 = time.perf_counter()
                    GNNSolver(**kw, step_threads=c).fit_predict(graph, F)
                    times[s, c].append(time.perf_counter() - t0)
        print("| solver | " + " | ".join(f"step_threads={c} s" for c in choices) + " |")
        print("|---|" + "---|" * len(choices))
        for s in settings:
            cells = " | ".join(f"{statistics.median(times[s, c]):.4f}" for c in choices)
            print(f"| {s} | {cells} |")


if __name__ == "__main__":
    main()
