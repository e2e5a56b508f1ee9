"""Refinement benchmark: each refinement's score change over nearest upsampling, and its time.

For every dataset and solver the backbone and the solver run ONCE per image; the same patch
labels then go through every refinement (:func:`deepcut.refine.refine_labels`), so the score
differences are due to the refinement alone. Scores are those of ``eval.py``
(:mod:`deepcut.evaluate`, original resolution, annotator mean): fg/bg IoU for SOD and Weizmann
1obj / 2obj (task ``segment``), NMI / ARI / Hungarian mIoU for BSDS500 test (task ``clusters``,
K = 6). Times are the refinement's own, milliseconds per image (median), one torch thread.

Data layout under ``--data-root``: ``sod/``, ``weizmann_sed/`` and ``bsds500_test/`` (the
``eval.py`` loaders' layouts). ``--limit N`` takes the first N images of each set (quick runs).

Run (about 20 min on one thread of a 2-core CPU; ``--limit 20`` about 3 min)::

    OMP_NUM_THREADS=1 python benchmarks/refine.py --data-root $DATA
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepcut.config import SegmenterConfig
from deepcut.data import get_dataset
from deepcut.evaluate import _Scorer, scoring_kind
from deepcut.io import load_image
from deepcut.pipeline import Segmenter
from deepcut.refine import refine_labels

REFINEMENTS = ("nearest", "centres", "pamr", "bilateral", "dream")
SOLVERS = ("gnn", "spectral", "falcon")
#: (name, loader, folder under --data-root, task, K, metrics reported)
DATASETS = (
    ("SOD", "sod", "sod", "segment", None, ("iou",)),
    ("Weizmann 1obj", "weizmann_sed1", "weizmann_sed", "segment", None, ("iou",)),
    ("Weizmann 2obj", "weizmann_sed2", "weizmann_sed", "segment", None, ("iou",)),
    ("BSDS K=6", "bsds500", "bsds500_test", "clusters", 6, ("nmi", "ari", "miou")),
)


def solve_all(dataset, cfg: SegmenterConfig, limit: int | None) -> list[dict[str, Any]]:
    """Backbone + solver once per image: patch labels, features, image and solve seconds."""
    seg = Segmenter(cfg)
    out = []
    for i in range(min(len(dataset), limit or len(dataset))):
        sample = dataset[i]
        image = load_image(sample.image_path)
        t0 = time.perf_counter()
        pf = seg.features(image)
        pred = seg.predict_features(pf, image=image)  # refine="nearest"
        out.append({"sample": sample, "image": image, "pf": pf, "pred": pred,
                    "seconds": time.perf_counter() - t0})
    return out


def score_methods(items: list[dict[str, Any]], task: str,
                  specs: dict[str, tuple[str, dict[str, Any]]]
                  ) -> dict[str, tuple[dict[str, float], float]]:
    """``{label: (metrics, median ms per image)}`` for refinements ``{label: (method, params)}``.

    The methods run interleaved, image by image, so a change of load on a shared machine hits
    them alike (the time ratios stay fair).
    """
    kind = scoring_kind(task)
    scorers = {lab: _Scorer(kind, None, "mean", "hungarian") for lab in specs}
    times: dict[str, list[float]] = {lab: [] for lab in specs}
    for it in items:
        pf, pred = it["pf"], it["pred"]
        for lab, (method, params) in specs.items():
            t0 = time.perf_counter()
            labels = refine_labels(method, it["image"], pred.patch_labels, pf.input_size,
                                   pf.patch_size, pf.stride,
                                   features=pf.features if method == "centres" else None,
                                   **params)
            times[lab].append(time.perf_counter() - t0)
            scorers[lab].add(it["sample"], labels, pred.record())
    return {lab: (scorers[lab].results(kind)[0], 1000 * statistics.median(times[lab]))
            for lab in specs}


def score_refinement(items: list[dict[str, Any]], task: str, method: str,
                     params: dict[str, Any] | None = None) -> tuple[dict[str, float], float]:
    """``(metrics, median ms per image)`` of one refinement over solved items."""
    return score_methods(items, task, {method: (method, params or {})})[method]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", required=True, help="folder holding sod/, weizmann_sed/, "
                                                       "bsds500_test/")
    ap.add_argument("--limit", type=int, help="first N images of each dataset")
    ap.add_argument("--solvers", default=",".join(SOLVERS))
    ap.add_argument("--refinements", default=",".join(REFINEMENTS))
    ap.add_argument("--size", type=int, default=224, help="network input short side")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    root = Path(args.data_root)
    solvers = [s for s in args.solvers.split(",") if s]
    methods = [m for m in args.refinements.split(",") if m]
    rows = []  # (dataset, solver, method, {metric: value}, ms)
    for name, loader, folder, task, k, keys in DATASETS:
        ds = get_dataset(loader, root / folder)
        for solver in solvers:
            cfg = SegmenterConfig(backbone="classic", size=args.size, task=task, solver=solver,
                                  n_clusters=k, seed=0)
            items = solve_all(ds, cfg, args.limit)
            scores = score_methods(items, task, {m: (m, {}) for m in methods})
            for method in methods:
                metrics, ms = scores[method]
                rows.append((name, solver, method, {key: 100 * metrics[key] for key in keys},
                             ms, len(items)))
                print(f"# {name} {solver} {method}: " + ", ".join(
                    f"{key}={100 * metrics[key]:.1f}" for key in keys) + f", {ms:.0f} ms",
                      file=sys.stderr, flush=True)
    print_tables(rows, methods)
    return 0


def print_tables(rows, methods) -> None:
    base = {(r[0], r[1]): r[3] for r in rows if r[2] == "nearest"}
    print("| dataset | solver | metric | " + " | ".join(methods) + " |")
    print("|---|---|---|" + "---|" * len(methods))
    by = {(r[0], r[1], r[2]): r for r in rows}
    for (name, solver) in dict.fromkeys((r[0], r[1]) for r in rows):
        for key in base[(name, solver)]:
            cells = []
            for m in methods:
                v = by[(name, solver, m)][3][key]
                cells.append(f"{v:.1f}" if m == "nearest" else
                             f"{v - base[(name, solver)][key]:+.1f}")
            print(f"| {name} | {solver} | {key} | " + " | ".join(cells) + " |")
    # mean gain over nearest and time, per method
    print()
    print("| refinement | mean gain over nearest (points, all rows) | ms / image (median of "
          "dataset medians) |")
    print("|---|---|---|")
    for m in methods:
        gains = [v - base[(r[0], r[1])][key] for r in rows if r[2] == m
                 for key, v in r[3].items()]
        ms = statistics.median(r[4] for r in rows if r[2] == m)
        print(f"| {m} | {np.mean(gains):+.2f} | {ms:.0f} |")
    n = {r[0]: r[5] for r in rows}
    print("\nimages per dataset: " + ", ".join(f"{k} {v}" for k, v in n.items()))


if __name__ == "__main__":
    sys.exit(main())
