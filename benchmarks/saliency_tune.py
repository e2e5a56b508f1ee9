#!/usr/bin/env python
"""Tune the ``saliency`` object rule of the classic path on one half of SOD / Weizmann 1obj.

Features and the K-way cuts of each image are computed once and cached (``--cache``); object
rules are then scored on the cache in seconds. Only the images of ``--part`` (default ``tune``,
:mod:`benchmarks.split`) are read, so choices made with this script never see the eval half.

Usage::

    python benchmarks/saliency_tune.py --data-root DATA --solver spectral --cache /tmp/sal
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's deepcut
from split import subset  # noqa: E402

SETS = {"sod": ("sod", "sod"), "w1": ("weizmann_sed1", "weizmann_sed")}


def load_cache(data_root: str, solver: str, ks: list[int], part: str, cache: Path,
               sets=("sod", "w1")) -> dict[str, list[dict]]:
    """Per set, per image: features ``F (h*w, D)``, grid, K-way labels for each K, gt mask."""
    from deepcut.config import SegmenterConfig
    from deepcut.data import get_dataset
    from deepcut.io import load_image
    from deepcut.pipeline import Segmenter
    from deepcut.graphs.local import contour_edges
    from deepcut.tasks.base import solve

    out: dict[str, list[dict]] = {}
    for s in sets:
        name, folder = SETS[s]
        ds = subset(get_dataset(name, str(Path(data_root) / folder)), part)
        cfg = SegmenterConfig(backbone="classic", size=224, solver=solver, task="segment")
        seg = Segmenter(cfg)
        items = []
        for i in range(len(ds)):
            sample = ds[i]
            key = hashlib.sha1(f"{s}:{sample.id}:{solver}".encode()).hexdigest()[:16]
            f = cache / f"{key}.npz"
            if f.exists():
                z = dict(np.load(f, allow_pickle=True))
            else:
                image = load_image(sample.image_path)
                pf = seg.features(image)
                h, w = pf.grid
                z = {"F": pf.flat.numpy(), "grid": np.array([h, w]),
                     "input_size": np.array(pf.input_size), "image_size": np.array(pf.image_size),
                     "ps": np.array([pf.patch_size, pf.stride]),
                     "edges": pf.extra["edges"].numpy() if "edges" in pf.extra else np.zeros(0),
                     "rgb": np.asarray(image.convert("RGB").resize((w, h), 2)),
                     "gt": np.asarray(sample.mask)}
                with contour_edges(pf.extra.get("edges")):
                    for k in ks:
                        torch.manual_seed(0)
                        sol, _ = solve(pf.flat, cfg, k, grid=(h, w))
                        z[f"L{k}"] = sol.labels_.numpy().reshape(h, w)
                np.savez(f, **z)
            z["id"] = sample.id
            items.append(z)
        out[s] = items
    return out


def score(items: list[dict], rule) -> float:
    """Mean per-image fg/bg IoU (%) of ``rule(z) -> (h, w) bool`` upsampled like eval.py."""
    from deepcut.metrics.foreground import foreground_iou
    from deepcut.refine.interface import refine_labels

    ious = []
    for z in items:
        fg = np.asarray(rule(z)).astype(np.uint8)
        ps, st = (int(v) for v in z["ps"])
        pix = refine_labels("nearest", tuple(int(v) for v in z["image_size"]), fg,
                            tuple(int(v) for v in z["input_size"]), ps, st)
        ious.append(foreground_iou(pix > 0, z["gt"], 255))
    return 100 * float(np.mean(ious))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--solver", default="spectral")
    p.add_argument("--k", type=int, nargs="+", default=[2, 3, 4, 5, 6, 8])
    p.add_argument("--part", default="tune")
    p.add_argument("--cache", default="saliency_cache")
    p.add_argument("--exec", default="", help="python run after loading (tuning experiments)")
    a = p.parse_args()
    torch.set_num_threads(1)
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    data = load_cache(a.data_root, a.solver, a.k, a.part, cache)
    print(f"loaded {[len(v) for v in data.values()]} in {time.time() - t0:.0f}s", flush=True)
    if a.exec:
        exec(Path(a.exec).read_text(), {"data": data, "score": score, "np": np, "torch": torch})


if __name__ == "__main__":
    main()
