"""Falcon's ablation (arXiv 2504.05613 v1, Table 2) on our data, one row per added component.

Rows, each adding to the one above (the solver is :class:`deepcut.solvers.FalconCut` on the
``falcon`` graph, ``W = W_norm^beta + lam * diag(d)``):

1. K-way NCut base: no power transform (``beta = 1``), hard alternating updates (one
   multilevel run, ``n_restarts=1``: Falcon has no restarts);
2. + power transform (``beta = 4.5``, the default);
3. + soft assignment (``mode = "soft"``, temperature 0.01);
4. + dynamic affinity regularisation (Falcon section 3.3; ``reweight_gamma = 0.5``, the value
   of a public third-party reimplementation, unverified);
5. + mask generation by partition centres (``refine = "centres"``);
6. + PAMR, 7. + DREAM (RGB): refinements of row 4's patch labels.

Scores as ``eval.py`` computes them (original resolution, annotator mean): NMI / ARI /
Hungarian mIoU on BSDS500 test with K = 6 (task ``clusters``) and fg/bg IoU on SOD (task
``segment``, K = 2). Seconds per image = backbone + graph + solve + refinement (mean), one
torch thread, ``classic`` backbone at 224 px. The Falcon paper's own numbers (diffusion
features, mIoU on six semantic benchmarks) are not comparable in absolute terms; the question
is the sign and size of each step.

Run (about 10 min on one thread of a 2-core CPU)::

    OMP_NUM_THREADS=1 python benchmarks/falcon_ablation.py --data-root $DATA
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refine import score_refinement, solve_all

from deepcut.config import SegmenterConfig
from deepcut.data import get_dataset

#: (row name, graph beta, solver_params, refinement)
ROWS = (
    # one multilevel run, as Falcon has: FalconCut's default restarts are not in its ablation
    ("K-way NCut base (beta 1, hard)", 1.0, {"n_restarts": 1}, "nearest"),
    ("+ power transform (beta 4.5)", 4.5, {"n_restarts": 1}, "nearest"),
    ("+ soft assignment", 4.5, {"mode": "soft"}, "nearest"),
    ("+ dynamic affinity regularisation", 4.5, {"mode": "soft", "reweight_gamma": 0.5},
     "nearest"),
    ("+ partition centres", 4.5, {"mode": "soft", "reweight_gamma": 0.5}, "centres"),
    ("+ PAMR", 4.5, {"mode": "soft", "reweight_gamma": 0.5}, "pamr"),
    ("+ DREAM (RGB)", 4.5, {"mode": "soft", "reweight_gamma": 0.5}, "dream"),
)
DATASETS = (("bsds", "bsds500", "bsds500_test", "clusters", 6, ("nmi", "ari", "miou")),
            ("sod", "sod", "sod", "segment", None, ("iou",)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", required=True, help="folder holding sod/ and bsds500_test/")
    ap.add_argument("--limit", type=int, help="first N images of each dataset")
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    root = Path(args.data_root)
    table: dict[str, dict[str, float]] = {name: {} for name, *_ in ROWS}
    for tag, loader, folder, task, k, keys in DATASETS:
        ds = get_dataset(loader, root / folder)
        solved = {}
        for name, beta, sp, method in ROWS:
            key = (beta, tuple(sorted(sp.items())))
            if key not in solved:
                cfg = SegmenterConfig(backbone="classic", size=args.size, task=task,
                                      solver="falcon", n_clusters=k, beta=beta,
                                      solver_params=dict(sp), seed=0)
                t0 = time.perf_counter()
                solved[key] = solve_all(ds, cfg, args.limit)
                print(f"# {tag}: solved beta={beta} {sp} in {time.perf_counter() - t0:.0f} s",
                      file=sys.stderr, flush=True)
            items = solved[key]
            metrics, ms = score_refinement(items, task, method)
            solve_s = statistics.mean(it["seconds"] for it in items)
            for m in keys:
                table[name][f"{tag}_{m}"] = 100 * metrics[m]
            # the refinement's median time on top of the mean solve time (nearest is included
            # in the solve time already)
            table[name][f"{tag}_s"] = solve_s + (ms / 1000 if method != "nearest" else 0.0)
            print(f"# {tag} {name}: " + ", ".join(f"{m}={100 * metrics[m]:.1f}" for m in keys),
                  file=sys.stderr, flush=True)
    n = {tag: min(len(get_dataset(ld, root / f)), args.limit or 10**9)
         for tag, ld, f, *_ in DATASETS}
    print("| setting | BSDS NMI | BSDS ARI | BSDS mIoU | BSDS s/img | SOD IoU | SOD s/img |")
    print("|---|---|---|---|---|---|---|")
    for name, *_ in ROWS:
        r = table[name]
        print(f"| {name} | {r['bsds_nmi']:.1f} | {r['bsds_ari']:.1f} | {r['bsds_miou']:.1f} | "
              f"{r['bsds_s']:.2f} | {r['sod_iou']:.1f} | {r['sod_s']:.2f} |")
    print(f"\nimages: BSDS500 test {n['bsds']}, SOD {n['sod']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
