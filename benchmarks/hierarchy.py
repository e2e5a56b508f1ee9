"""Hierarchy timing: 4 levels on one 280 px image against a single level (issue 4).

The hierarchy computes the NCut eigenvectors once for max(K) and derives every level from them
(independent k-means per level, or ``--nested``: k-means at the finest level then NCut merging).
This compares, end to end from the decoded image (backbone, graph, eigenvectors, levels), one
predictor computing all levels with a fresh predictor per single level, i.e. what recomputing
every level from scratch would cost. Times are medians over ``--repeats`` runs.

    python benchmarks/hierarchy.py [IMAGE] [--levels 10,25,50,100] [--repeats 5] [--threads 1]

IMAGE defaults to a generated 280 x 280 image; a BSDS500 image works too, e.g.
``$DATA/bsds500_test/images/100039.jpg``. Images are centre-cropped to a square and
resized to 280 px, so the classic backbone (weight-free, patch 8, stride 8) gives the DeepCut
grid of 35 x 35 = 1225 nodes.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from PIL import Image
from threadpoolctl import threadpool_limits

from deepcut.backbones import create_backbone
from deepcut.io import load_image
from deepcut.tasks.hierarchy import HierarchyPredictor, parse_levels


def generated_image(size: int = 280, seed: int = 0) -> Image.Image:
    """Smooth colour blobs plus noise: many segments at every scale."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.zeros((size, size, 3))
    for _ in range(12):
        cy, cx, r = rng.random(3) * [1, 1, 0.3] + [0, 0, 0.05]
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2) < r ** 2
        img[mask] = rng.random(3) * 255
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def square_280(im: Image.Image) -> Image.Image:
    s = min(im.size)
    left, top = (im.width - s) // 2, (im.height - s) // 2
    return im.crop((left, top, left + s, top + s)).resize((280, 280), Image.BICUBIC)


def time_run(bb, image: Image.Image, levels: list[int], nested: bool, repeats: int
             ) -> tuple[float, dict]:
    """Median seconds of ``set_images`` (backbone + graph + eigen + every level)."""
    ts, parts = [], []
    for _ in range(repeats):
        p = HierarchyPredictor(bb, n_segments=levels, nested=nested, seed=0)
        t0 = time.perf_counter()
        p.set_images([image])
        ts.append(time.perf_counter() - t0)
        parts.append(p.estimators_[0].timings_)
    med = {k: statistics.median(d[k] for d in parts) for k in parts[0]}
    return statistics.median(ts), med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("image", nargs="?", help="image path (default: a generated image)")
    ap.add_argument("--levels", default="10,25,50,100")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch and BLAS/OpenMP threads (1: stable timings on a shared CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    levels = parse_levels(args.levels)
    image = square_280(load_image(args.image) if args.image else generated_image())
    bb = create_backbone("classic", size=280)
    grid = bb(image).grid
    print(f"image: {args.image or 'generated'} -> 280 x 280, classic backbone, grid {grid[0]} x "
          f"{grid[1]} = {grid[0] * grid[1]} nodes; threads={args.threads}; median of "
          f"{args.repeats}")
    with threadpool_limits(args.threads):
        time_run(bb, image, levels, False, 1)  # warm-up (imports, allocator)
        rows = []
        for nested in (False, True):
            mode = "nested" if nested else "independent"
            singles = {}
            for k in levels:
                singles[k] = time_run(bb, image, [k], nested, args.repeats)
                t, d = singles[k]
                rows.append((mode, f"single level K={k}", t, d))
            t_all, d_all = time_run(bb, image, levels, nested, args.repeats)
            rows.append((mode, f"{len(levels)} levels {levels} (one predictor)", t_all, d_all))
            rows.append((mode, f"{len(levels)} single runs, summed (recompute per level)",
                         sum(v[0] for v in singles.values()), None))
            t_max = singles[levels[-1]][0]
            rows.append((mode, f"ratio: {len(levels)} levels / single K={levels[-1]}",
                         t_all / t_max, "ratio"))
    print(f"\n{'mode':12} {'run':48} {'total s':>8} {'graph':>7} {'eigen':>7} {'levels':>7}")
    for mode, name, t, d in rows:
        if d == "ratio":
            print(f"{mode:12} {name:48} {t:8.2f}x   ({'< 2x: yes' if t < 2 else '< 2x: NO'})")
        elif d is None:
            print(f"{mode:12} {name:48} {t:8.3f}")
        else:
            print(f"{mode:12} {name:48} {t:8.3f} {d['graph']:7.3f} {d['eigen']:7.3f} "
                  f"{d['levels']:7.3f}")
    print("total = backbone + graph + eigen + levels; 'levels' = k-means per level (independent) "
          "or k-means at the finest + NCut merges (nested)")


if __name__ == "__main__":
    main()
