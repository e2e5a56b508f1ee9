"""Per-stage timings of the per-image pipeline on the CPU (issue 2's speed table).

Stages: backbone (ViT forward with the keys hook), graph (Eq. 6), solve (GNN: precompute
A_hat X, 10 AdamW steps, eval-mode assignment, NCut yardstick), upsample+write (patch to pixel
labels by ``--refine``: nearest upsampling by default, partition centres, PAMR or the bilateral solver; then label PNG +
overlay + JSON, atomic). The ViT is DINO ViT-S/8 with
random weights (this machine cannot download DINO; the cost is the same), drawn after
``torch.manual_seed(--seed)`` (default 0) so that runs are reproducible.

    python benchmarks/speed.py [--image examples/chelsea.png] [--repeats 7] [--threads 2]
                               [--refine nearest|centres|pamr|bilateral] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from PIL import Image

from deepcut.backbones import create_backbone
from deepcut.config import SegmenterConfig
from deepcut.graphs import build_graph
from deepcut.io import load_image
from deepcut.io.outputs import write_outputs
from deepcut.pipeline import Segmenter
from deepcut.solvers import GNNSolver

REPO = Path(__file__).resolve().parents[1]


def _median_ms(xs):
    return 1000 * statistics.median(xs)


def bench(image: Image.Image, size: int, stride: int, repeats: int, out: str,
          refine: str = "nearest", seed: int = 0) -> dict:
    torch.manual_seed(seed)  # the random-init ViT's weights
    bb = create_backbone("dino_vits8", pretrained=False, size=size, stride=stride)
    # a square crop so that "280 px" means the 35 x 35 (stride 8) / 69 x 69 (stride 4) grid
    side = min(image.size)
    img = image.crop((0, 0, side, side))
    seg = Segmenter(SegmenterConfig(backbone="dino_vits8", size=size, stride=stride,
                                    refine=refine), backbone=bb)
    t = {"backbone": [], "graph": [], "solve": [], "upsample+write": []}
    for r in range(repeats + 1):  # the first run warms up and is not counted
        t0 = time.perf_counter()
        pf = bb(img)
        t1 = time.perf_counter()
        g = build_graph(pf.flat, "ncut")
        t2 = time.perf_counter()
        s = GNNSolver(2, steps=10, seed=0).fit(g, pf.flat)
        t3 = time.perf_counter()
        pred = seg.predict_features(pf, image=img)  # graph+solve again; only upsample taken
        t4 = time.perf_counter()
        write_outputs(pred, img, out, f"r{r}")
        t5 = time.perf_counter()
        if r:
            t["backbone"].append(t1 - t0)
            t["graph"].append(t2 - t1)
            t["solve"].append(t3 - t2)
            t["upsample+write"].append(pred.timings["upsample"] + (t5 - t4))
    h, w = pf.grid
    med = {k: _median_ms(v) for k, v in t.items()}
    return {"size": size, "stride": stride, "grid": f"{h}x{w}", "N": h * w, **med,
            "graph+solve": med["graph"] + med["solve"], "ncut": s.ncut_}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image", default=str(REPO / "examples" / "chelsea.png"),
                    help="image to segment (default: the repository's examples/chelsea.png)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--refine", default="nearest", choices=["nearest", "centres", "pamr", "bilateral"],
                    help="patch to pixel labels in the upsample+write column")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random-init ViT (default 0)")
    args = ap.parse_args()
    if not Path(args.image).is_file():
        print(f"error: --image {args.image}: no such file", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    image = load_image(args.image)
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for size in (224, 280):
            for stride in (8, 4):
                rows.append(bench(image, size, stride, args.repeats, out, args.refine, args.seed))
    print(f"CPU, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats} runs, ViT-S/8 (random init), K=2, 10 GNN steps, "
          f"refine={args.refine}; ms")
    cols = ["size", "stride", "grid", "N", "backbone", "graph", "solve", "graph+solve",
            "upsample+write", "solve/backbone"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        vals = [r["size"], r["stride"], r["grid"], r["N"]] + [
            f"{r[k]:.1f}" for k in ("backbone", "graph", "solve", "graph+solve",
                                     "upsample+write")] + [f"{r['solve'] / r['backbone']:.1%}"]
        print("| " + " | ".join(str(v) for v in vals) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
