#!/usr/bin/env python
"""Tune the ``saliency`` object rule of the classic path on one half of SOD / Weizmann 1obj.

Features and the K-way cuts of each image are computed once and cached (``--cache``); object
rules are then scored on the cache in seconds. Only the images of ``--part`` (default ``tune``,
:mod:`benchmarks.split`) are read, so choices made with this script never see the eval half.

Usage::

    python benchmarks/saliency_tune.py --data-root DATA --solver spectral --cache /tmp/sal

prints one table row per variant: IoU (%) on SOD and Weizmann 1obj of that half, for the
cluster-level rule of the first version, the Otsu mask of the saliency map alone (per edge clip of
:func:`deepcut.tasks.saliency.saliency_map`), and the default rule (:func:`deepcut.tasks.
foreground.salient_mask`) per K and per weight ``a`` of the cluster mean.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))  # this checkout's deepcut
from split import subset

SETS = {"sod": ("sod", "sod"), "w1": ("weizmann_sed1", "weizmann_sed")}


def load_cache(data_root: str, solver: str, ks: list[int], part: str, cache: Path,
               sets=("sod", "w1")) -> dict[str, list[dict]]:
    """Per set, per image: features ``F (h*w, D)``, grid, K-way labels for each K, gt mask.

    The datasets are opened (and their layout checked) before ``cache`` is created."""
    from deepcut.config import SegmenterConfig
    from deepcut.data import get_dataset
    from deepcut.graphs.local import contour_edges
    from deepcut.io import load_image
    from deepcut.pipeline import Segmenter
    from deepcut.tasks.base import solve

    datasets = {s: subset(get_dataset(SETS[s][0], str(Path(data_root) / SETS[s][1])), part)
                for s in sets}
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[dict]] = {}
    for s, ds in datasets.items():
        cfg = SegmenterConfig(backbone="classic", size=224, solver=solver, task="segment")
        seg = Segmenter(cfg)
        items = []
        for i in range(len(ds)):
            sample = ds[i]
            key = hashlib.sha1(f"{s}:{sample.id}:{solver}".encode()).hexdigest()[:16]
            f = cache / f"{key}.npz"
            z = dict(np.load(f)) if f.exists() else {}
            if not all(f"L{k}" in z for k in ks):  # not cached, or not at every K asked
                image = load_image(sample.image_path)
                pf = seg.features(image)
                h, w = pf.grid
                z = {"F": pf.flat.numpy(), "grid": np.array([h, w]),
                     "input_size": np.array(pf.input_size), "image_size": np.array(pf.image_size),
                     "ps": np.array([pf.patch_size, pf.stride]),
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


def variants(data: dict[str, list[dict]], ks: list[int]) -> list[tuple[str, float, float]]:
    """``(variant, SOD IoU, Weizmann IoU)`` rows (module docstring)."""
    from deepcut.tasks.foreground import salient_clusters, salient_mask
    from deepcut.tasks.saliency import otsu_threshold, saliency_map

    rows = []

    def add(name: str, rule) -> None:
        rows.append((name, score(data["sod"], rule), score(data["w1"], rule)))
        print(f"| {name} | {rows[-1][1]:.1f} | {rows[-1][2]:.1f} |", flush=True)

    if 5 in ks:
        add("cluster-level rule (first version), K 5",
            lambda z: salient_clusters(z["L5"], torch.from_numpy(z["F"]), 5)[z["L5"]])
    for clip in (1.0, 0.5, 0.0):  # the default (0) last: its maps stay for the rows below
        t0, n = time.perf_counter(), 0
        for items in data.values():
            for z in items:
                z["S"] = saliency_map(torch.from_numpy(z["F"]), tuple(int(v) for v in z["grid"]),
                                      clip_scale=clip)["saliency"]
                n += 1
        sec = (time.perf_counter() - t0) / max(n, 1)
        add(f"saliency map alone, Otsu, clip x {clip:g} ({sec:.3f} s/img)",
            lambda z: z["S"] >= otsu_threshold((z["S"] - z["S"].min()) / np.ptp(z["S"])) *
            np.ptp(z["S"]) + z["S"].min())
    for k in ks:
        for a in (0.3, 0.5, 0.7, 1.0):
            add(f"default rule, K {k}, a {a:g}",
                lambda z, k=k, a=a: salient_mask(z[f"L{k}"], z["S"], k, a)[0])
    return rows


def timing(data_root: str, solver: str, part: str, limit: int) -> None:
    """Seconds per image of each stage of the classic segment task (first ``limit`` SOD images
    of ``part``, one thread), side by side in one process: features, the 5-way cut, the first
    version's cluster-level rule, the saliency map, the default rule on it."""
    from deepcut.config import SegmenterConfig
    from deepcut.data import get_dataset
    from deepcut.graphs.local import contour_edges
    from deepcut.io import load_image
    from deepcut.pipeline import Segmenter
    from deepcut.tasks.base import solve
    from deepcut.tasks.foreground import salient_clusters, salient_mask
    from deepcut.tasks.saliency import saliency_map

    ds = subset(get_dataset("sod", str(Path(data_root) / "sod")), part)
    seg = Segmenter(SegmenterConfig(backbone="classic", size=224, solver=solver, task="segment"))
    t = {k: 0.0 for k in ("features", "cut K 5", "cluster-level rule", "saliency map",
                          "default rule (mix + Otsu)")}
    n = min(limit, len(ds))
    for i in range(n):
        image = load_image(ds[i].image_path)
        t0 = time.perf_counter()
        pf = seg.features(image)
        t1 = time.perf_counter()
        with contour_edges(pf.extra.get("edges")):
            sol, _ = solve(pf.flat, seg.config, 5, grid=pf.grid)
        labels = sol.labels_.numpy().reshape(pf.grid)
        t2 = time.perf_counter()
        salient_clusters(labels, pf.flat, 5)
        t3 = time.perf_counter()
        sal = saliency_map(pf.flat, pf.grid)["saliency"]
        t4 = time.perf_counter()
        salient_mask(labels, sal, 5)
        t5 = time.perf_counter()
        for key, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            t[key] += dt
    print(f"| stage ({solver}, {n} SOD images of the {part} half, grid {pf.grid}) | s / image |")
    print("|---|---|")
    for key, v in t.items():
        print(f"| {key} | {v / n:.4f} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True, help="folder holding sod/ and weizmann_sed/")
    p.add_argument("--solver", default="spectral")
    p.add_argument("--k", type=int, nargs="+", default=[4, 5, 6], help="cuts to score")
    p.add_argument("--part", default="tune", help="tune, eval or all (default: tune)")
    p.add_argument("--cache", type=Path, default=REPO / "out" / "saliency_cache",
                   help="folder of cached features/cuts (default: out/saliency_cache in the repo)")
    p.add_argument("--timing", type=int, default=0, metavar="N",
                   help="only time the stages on the first N SOD images of --part")
    a = p.parse_args()
    from deepcut.data import DatasetLayoutError

    torch.set_num_threads(1)
    t0 = time.time()
    try:
        if a.timing:
            timing(a.data_root, a.solver, a.part, a.timing)
            return 0
        data = load_cache(a.data_root, a.solver, a.k, a.part, a.cache)
    except DatasetLayoutError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{a.solver}, {a.part} half: {len(data['sod'])} SOD, {len(data['w1'])} Weizmann 1obj "
          f"images ({time.time() - t0:.0f} s to load)\n")
    print("| variant | SOD IoU | Weizmann 1obj IoU |\n|---|---|---|")
    variants(data, a.k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
