#!/usr/bin/env python
"""Reproduce DeepCut's tables (Aflalo et al., Tables 1, 2, 3 and 5) on the datasets you have.

Usage::

    python benchmarks/paper_tables.py --weights dino_deitsmall8_pretrain_full_checkpoint.pth \\
        --data-root $DATA                      # the paper's setting, every dataset found
    python benchmarks/paper_tables.py --data-root $DATA     # smoke run: the classic backbone
    python benchmarks/paper_tables.py --data-root $DATA --weights W --only ecssd --limit 50

For each dataset found under ``--data-root`` (folder names in :data:`DATASETS`; the loaders'
layouts are in ``deepcut.data`` and ``docs/REPRODUCING.md``) it runs the paper's protocol with
the NCut loss (Eq. 9) and the correlation-clustering loss (Eq. 10), prints our number beside the
paper's and the exact command of each row, and lists the datasets it did not find as skipped,
with where to get them.

Protocol (DeepCut section 4 and its reference code):

* features: DINO ViT-S/8 keys of the last block, DeepCut's preprocessing
  (:data:`deepcut.backbones.paper.PAPER_PREPROCESSING`: 280 x 280 LANCZOS squash, DINO's
  position-embedding interpolation, interleaved channels, the *student* of a full checkpoint);
* graph and solver (:data:`PAPER_SOLVER`): raw dot-product affinity, GNN trained per image for
  10 AdamW steps at lr 1e-3 from the same seeded init; NCut: K = 2; CC: K = 10 as an upper
  bound, k-sensitivity alpha = 3; background = DeepCut's corner vote; no bilateral solver
  (the paper's numbers are raw model outputs, DeepCut issue #5);
* Table 1, object localisation: CorLoc (box of the largest foreground component, IoU >= 0.5
  with any ground-truth box) on VOC07 / VOC12 ``trainval`` and COCO20k;
* Table 2, single-object segmentation: mean per-image IoU on CUB (test), DUTS-TE, ECSSD;
* Table 3, part segmentation: CUB test, two stages (fg/bg, then 4 foreground parts with 100
  steps), NMI / ARI of the part label under the visible keypoints, pooled (NCut only, as the
  paper);
* Table 5, k-less clustering (CC only, as the paper): Fashion Product Images, 100 images per
  class from 3, 4 or 5 of {Topwear, Shoes, Bags, Eyewear, Belts}, 10 draws each, CLS tokens of
  DINO ViT-B/16 clustered by :class:`deepcut.cluster.KLessClustering` (dot product, alpha 3,
  K <= 10), purity mean +- std. Needs ViT-B/16 weights: ``--weights-b16 FILE``.

Datasets the loaders support that DeepCut did not report (DUT-OMRON, SOD, Weizmann SED) are run
with the same protocol under "other datasets", without a paper number.

Without ``--weights`` this is a smoke run of every code path with the weight-free ``classic``
backbone (same resize and solver settings; its numbers are not DINO's). Each row's predictions
and tables stay under ``--out`` (``eval.py``'s output folder); ``--resume`` reuses them.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import _shown, run_one  # one eval.py runner for both tables

#: DeepCut's graph/solver settings, spelled out as eval.py flags, per loss.
PAPER_SOLVER: dict[str, list[str]] = {
    "ncut": ["--solver", "gnn", "--loss", "ncut", "--k", "2", "--steps", "10", "--lr", "1e-3",
             "--metric", "dot", "--background-rule", "corners", "--refine", "nearest",
             "--seed", "0"],
    "cc": ["--solver", "gnn", "--loss", "cc", "--k", "10", "--alpha", "3", "--steps", "10",
           "--lr", "1e-3", "--metric", "dot", "--background-rule", "corners", "--refine",
           "nearest", "--seed", "0"],
}

_GET = {
    "voc07": "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/ (VOCtrainval_06-Nov-2007.tar)",
    "voc12": "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ (VOCtrainval_11-May-2012.tar)",
    "coco20k": "https://cocodataset.org/#download (2014 Train images, 2014 Train/Val "
               "annotations) + coco_20k_filenames.txt from github.com/valeoai/LOST "
               "(datasets/coco_20k_filenames.txt)",
    "cub": "https://www.vision.caltech.edu/datasets/cub_200_2011/ (CUB_200_2011.tgz and "
           "segmentations.tgz)",
    "duts_te": "http://saliencydetection.net/duts/ (DUTS-TE.zip)",
    "ecssd": "https://www.cse.cuhk.edu.hk/leojia/projects/hsaliency/dataset.html (images.zip, "
             "ground_truth_mask.zip)",
    "dut_omron": "http://saliencydetection.net/dut-omron/ (DUT-OMRON-image.zip, "
                 "DUT-OMRON-gt-pixelwise.zip.zip)",
    "sod": "https://elderlab.yorku.ca/resources/ (SOD masks) + BSDS300 images "
           "(https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/)",
    "weizmann_sed": "https://www.wisdom.weizmann.ac.il/~vision/Seg_Evaluation_DB/ "
                    "(rearranged into images/ annotations/ masks/: docs/DATA.md)",
    "fashion": "https://www.kaggle.com/datasets/paramaggarwal/fashion-product-images-small "
               "(styles.csv and images/)",
}

#: One row group per dataset: loader name, folder names tried under --data-root, table,
#: task (+ flags), metrics shown, the paper's numbers per loss (None = not in the paper).
DATASETS: list[dict[str, Any]] = [
    {"table": "1", "name": "VOC07 trainval", "dataset": "voc07",
     "folders": ["VOC2007", "VOCdevkit/VOC2007", "voc2007", "voc07"],
     "task": "segment", "options": ["--split", "trainval"], "metrics": ["corloc"],
     "paper": {"ncut": {"corloc": 69.8}, "cc": {"corloc": 68.8}}},
    {"table": "1", "name": "VOC12 trainval", "dataset": "voc12",
     "folders": ["VOC2012", "VOCdevkit/VOC2012", "voc2012", "voc12", "voc2012_subset"],
     "task": "segment", "options": ["--split", "trainval"], "metrics": ["corloc", "iou"],
     "paper": {"ncut": {"corloc": 72.2}, "cc": {"corloc": 67.9}}},
    {"table": "1", "name": "COCO20k", "dataset": "coco20k",
     "folders": ["COCO", "coco", "coco20k", "COCO20k"],
     "task": "segment", "options": [], "metrics": ["corloc"],
     "paper": {"ncut": {"corloc": 61.6}, "cc": {"corloc": 57.6}}},
    {"table": "2", "name": "CUB test", "dataset": "cub",
     "folders": ["CUB_200_2011", "cub", "CUB"],
     "task": "segment", "options": ["--split", "test"], "metrics": ["iou"],
     "paper": {"ncut": {"iou": 78.2}, "cc": {"iou": 77.7}}},
    {"table": "2", "name": "DUTS-TE", "dataset": "duts_te",
     "folders": ["DUTS-TE", "duts_te", "DUTS"],
     "task": "segment", "options": [], "metrics": ["iou"],
     "paper": {"ncut": {"iou": 59.5}, "cc": {"iou": 56.0}}},
    {"table": "2", "name": "ECSSD", "dataset": "ecssd",
     "folders": ["ECSSD", "ecssd"],
     "task": "segment", "options": [], "metrics": ["iou"],
     "paper": {"ncut": {"iou": 74.6}, "cc": {"iou": 73.4}}},
    {"table": "3", "name": "CUB test, 4 parts", "dataset": "cub",
     "folders": ["CUB_200_2011", "cub", "CUB"],
     "task": "parts", "options": ["--split", "test", "--parts", "4", "--parts-steps", "100"],
     "metrics": ["part_nmi", "part_ari"],
     "paper": {"ncut": {"part_nmi": 43.9, "part_ari": 20.2}}},
    {"table": "other", "name": "DUT-OMRON", "dataset": "dut_omron",
     "folders": ["DUT-OMRON", "dut_omron"],
     "task": "segment", "options": [], "metrics": ["iou"], "paper": {"ncut": {}, "cc": {}}},
    {"table": "other", "name": "SOD", "dataset": "sod", "folders": ["SOD", "sod"],
     "task": "segment", "options": [], "metrics": ["iou", "max_f"],
     "paper": {"ncut": {}, "cc": {}}},
    {"table": "other", "name": "Weizmann SED 1obj", "dataset": "weizmann_sed1",
     "folders": ["weizmann_sed", "WeizmannSED"], "get": "weizmann_sed",
     "task": "segment", "options": [], "metrics": ["iou"], "paper": {"ncut": {}, "cc": {}}},
    {"table": "other", "name": "Weizmann SED 2obj", "dataset": "weizmann_sed2",
     "folders": ["weizmann_sed", "WeizmannSED"], "get": "weizmann_sed",
     "task": "segment", "options": [], "metrics": ["iou"], "paper": {"ncut": {}, "cc": {}}},
]

#: Table 5: purity (%) mean and std over 10 draws, per number of classes.
FASHION_CLASSES = ("Topwear", "Shoes", "Bags", "Eyewear", "Belts")
FASHION_PAPER = {3: (98.3, 0.9), 4: (97.1, 1.7), 5: (99.27, 0.6)}
FASHION_FOLDERS = ["fashion-product-images-small", "fashion_product_images", "fashion"]

TABLE_TITLES = {
    "1": "Table 1: object localisation, CorLoc (%)",
    "2": "Table 2: single-object segmentation, mIoU (%)",
    "3": "Table 3: semantic part segmentation, CUB (NMI / ARI, %)",
    "5": "Table 5: k-less clustering, Fashion Product Images (purity %, mean +- std)",
    "other": "Other datasets the loaders support (same protocol; not in the paper)",
}
_HEAD = {"corloc": "CorLoc", "iou": "IoU", "max_f": "maxF", "part_nmi": "NMI", "part_ari": "ARI"}


def _with_data_var(command: str, data_root: str) -> str:
    """The command as the tables show it: the data root written ``$DATA`` (set above them)."""
    root = _shown(data_root)
    return command.replace(f"{root}/", "$DATA/").replace(f" {root} ", " $DATA ")


def _loads(dataset: str, root: Path, **opts: Any) -> bool:
    from deepcut.data import DatasetLayoutError, get_dataset

    try:
        get_dataset(dataset, root, **opts)
    except (DatasetLayoutError, ValueError, OSError):
        return False
    return True


def find_root(spec: dict[str, Any], data_root: Path) -> tuple[Path, list[str]] | None:
    """The first folder of ``spec["folders"]`` its loader accepts, and the loader options.

    A VOC folder without ``ImageSets/Main/trainval.txt`` (e.g. a flat subset with its own
    ``list.txt``) is used with the loader's default list, and the row's command says so.
    """
    options = list(spec["options"])
    split = options[options.index("--split") + 1] if "--split" in options else None
    for folder in spec["folders"]:
        root = data_root / folder
        if not root.is_dir():
            continue
        if _loads(spec["dataset"], root, **({"split": split} if split else {})):
            return root, options
        if split and spec["dataset"].startswith("voc") and _loads(spec["dataset"], root):
            i = options.index("--split")
            return root, options[:i] + options[i + 2:]
    return None


def backbone_flags(args: argparse.Namespace) -> list[str]:
    """The paper's features (DINO) or, without weights, the classic smoke-run backbone."""
    from deepcut.backbones.paper import PAPER_PREPROCESSING as P

    common = ["--size", str(P["size"]), "--stride", str(P["stride"]), "--resize", P["resize"],
              "--resample", P["resample"]]
    if not args.weights:
        return ["--backbone", "classic", *common]
    return ["--backbone", P["backbone"], "--weights", args.weights, *common,
            "--pos-embed", P["pos_embed"], "--channel-layout", P["channel_layout"],
            "--dino-head", args.dino_head or P["dino_head"]]


def _has_preset() -> bool:
    """Whether eval.py takes ``--preset paper`` (then it leads every command)."""
    from deepcut.cli import evaluate

    return any("--preset" in a.option_strings for a in evaluate.build_parser()._actions)


def build_runs(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    data_root = Path(args.data_root)
    only = set(args.only.split(",")) if args.only else None
    losses = [x for x in args.losses.split(",") if x]
    preset = ["--preset", "paper"] if _has_preset() else []
    runs, skipped = [], []
    for spec in DATASETS:
        if only and spec["dataset"] not in only:
            continue
        found = find_root(spec, data_root)
        if found is None:
            skipped.append({"table": spec["table"], "name": spec["name"],
                            "folders": spec["folders"],
                            "get": _GET[spec.get("get", spec["dataset"])]})
            continue
        root, options = found
        for loss in losses:
            if loss not in spec["paper"]:
                continue
            tag = f"{spec['dataset']}_{spec['task']}_{loss}_{'dino' if args.weights else 'classic'}"
            out = Path(args.out) / tag
            argv = ["eval.py", *preset, "--dataset", spec["dataset"], "--root", _shown(root),
                    "--task", spec["task"], *options, *PAPER_SOLVER[loss],
                    *backbone_flags(args), "--device", args.device, "--out", _shown(out),
                    "--quiet"]
            if args.limit:
                argv += ["--limit", str(args.limit)]
            if not args.resume:
                argv.append("--overwrite")
            name = spec["name"]
            if "--split" in spec["options"] and "--split" not in options:
                name += f" ({root.name}: its own image list, not the split)"
            runs.append({"spec": spec, "name": name, "loss": loss, "argv": argv, "out": out,
                         "root": root})
    return runs, skipped


# --------------------------------------------------------------------------------------------
# Table 5: k-less clustering of Fashion Product Images (image level, no eval.py equivalent)


def fashion_items(root: Path) -> dict[str, list[Path]]:
    """Image paths per Table-5 class (``subCategory`` of Kaggle's ``styles.csv``)."""
    import csv

    by_class: dict[str, list[Path]] = {c: [] for c in FASHION_CLASSES}
    with open(root / "styles.csv", newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            cls, item = row.get("subCategory"), row.get("id")
            path = root / "images" / f"{item}.jpg"
            if cls in by_class and path.is_file():
                by_class[cls].append(path)
    return by_class


def run_fashion(args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    """DeepCut's Table 5: purity of k-less CC clustering over 10 draws per number of classes."""
    import numpy as np
    import torch

    from deepcut.backbones import create_backbone
    from deepcut.cluster import KLessClustering
    from deepcut.io import load_image
    from deepcut.metrics.clustering import purity

    weights = args.weights_b16
    bb = (create_backbone("dino_vitb16", weights=weights, device=args.device) if weights
          else create_backbone("classic"))
    by_class = fashion_items(root)
    per_class = 100 if not args.limit else max(2, args.limit // 5)
    rows, cache = [], {}
    t0 = time.perf_counter()
    for n_classes in (3, 4, 5):
        scores, ks = [], []
        for draw in range(10):
            rng = np.random.default_rng(draw)
            classes = rng.permutation(FASHION_CLASSES)[:n_classes]
            paths, truth = [], []
            for c_id, c in enumerate(classes):
                pool = by_class[c]
                pick = rng.choice(len(pool), size=min(per_class, len(pool)), replace=False)
                paths += [pool[i] for i in pick]
                truth += [c_id] * len(pick)
            feats = []
            for p in paths:
                if p not in cache:
                    pf = bb(load_image(p))
                    cache[p] = pf.cls if pf.cls is not None else pf.flat.mean(0)
                feats.append(cache[p])
            X = torch.stack(feats).numpy()
            k_max = min(10, len(X) - 1)  # the paper's 10; fewer only in a --limit smoke run
            # the paper's estimator: Eq. 7's max/alpha threshold on raw dot products, no
            # neighbour mean, 100 steps from the seeded init, the GNN's argmax as is
            est = KLessClustering(k_max=k_max, graph="threshold", alpha=3.0, metric="dot",
                                  shift="max", center=False, smooth=0, rounding=False,
                                  warm_start=None, steps=100, seed=draw).fit(X)
            scores.append(100 * purity(np.asarray(est.labels_), np.asarray(truth),
                                       ignore_index=None))
            ks.append(est.n_clusters_)
        rows.append({"n_classes": n_classes, "mean": float(np.mean(scores)),
                     "std": float(np.std(scores)), "k_found": ks,
                     "n_images": len(paths)})
    cmd = ["python", "benchmarks/paper_tables.py", "--data-root", _shown(args.data_root),
           "--only", "fashion", "--device", args.device]
    if weights:
        cmd += ["--weights-b16", weights]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    for r in rows:
        r["command"] = shlex.join(cmd)
        r["seconds"] = time.perf_counter() - t0
        r["backbone"] = bb.name
    return rows


# --------------------------------------------------------------------------------------------
# Rendering


def _ours(run: dict[str, Any], key: str) -> str:
    if "summary" not in run:
        return "failed"
    value = run["summary"]["metrics"].get(key)
    return "n/a" if value is None else f"{100 * value:.1f}"


def render(runs, skipped, fashion, meta) -> str:
    backbone = ("DINO ViT-S/8 `" + meta["weights"] + "`, DeepCut preprocessing"
                if meta["weights"] else "**classic** (smoke run: no DINO weights given; "
                "these numbers are not comparable with the paper's)")
    resumed = (" (--resume: finished predictions reused, s/img from when they were made)"
               if meta["resumed"] else "")
    lines = [f"`DATA={meta['data_root']}` in the commands below.", "",
             (f"DeepCut tables, measured {meta['date']} (git {meta['git']}), backbone: "
              f"{backbone}. {meta['total_seconds'] / 60:.1f} min in total{resumed}. Ours "
              "beside the paper's (Aflalo et al. 2023); `items` = images scored / in the dataset "
              "(or --limit)."), ""]
    for table in ("1", "2", "3", "other"):
        rows = [r for r in runs if r["spec"]["table"] == table]
        if not rows:
            continue
        keys = []
        for r in rows:
            keys += [k for k in r["spec"]["metrics"] if k not in keys]
        lines += [f"### {TABLE_TITLES[table]}", "",
                  "| dataset | loss | " + " | ".join(f"{_HEAD[k]} ours | {_HEAD[k]} paper"
                                                       for k in keys)
                  + " | items | s/img | command |",
                  "|---|---|" + "---|---|" * len(keys) + "---|---|---|"]
        for r in rows:
            paper = r["spec"]["paper"].get(r["loss"], {})
            cells = " | ".join(
                (f"{_ours(r, k)} | {paper[k]:.1f}" if k in paper else f"{_ours(r, k)} | -")
                if k in r["spec"]["metrics"] else "- | -" for k in keys)
            s = r.get("summary")
            items = f"{s['n_scored']} / {s['n_items']}" if s else "-"
            spi = s["metrics"].get("seconds_per_image") if s else None
            spi = f"{spi:.2f}" if spi is not None else "-"
            err = f" FAILED: {r['error']}" if "error" in r else ""
            cmd = _with_data_var(r["command"], meta["data_root"])
            lines.append(f"| {r['name']} | {r['loss']} | {cells} | {items} | {spi} | "
                         f"`{cmd}`{err} |")
        lines.append("")
    if fashion:
        lines += [f"### {TABLE_TITLES['5']}", "",
                  ("| classes | loss | purity ours | purity paper | K found (10 draws) | "
                   "images | command |"), "|---|---|---|---|---|---|---|"]
        for r in fashion:
            pm, ps = FASHION_PAPER[r["n_classes"]]
            lines.append(f"| {r['n_classes']} | cc | {r['mean']:.1f} +- {r['std']:.1f} | "
                         f"{pm} +- {ps} | {','.join(map(str, r['k_found']))} | "
                         f"{r['n_images']} | `{_with_data_var(r['command'], meta['data_root'])}` |")
        lines.append("")
    if skipped:
        lines += ["### Skipped (not found under --data-root)", "",
                  "| table | dataset | folder tried under --data-root | where to get it |",
                  "|---|---|---|---|"]
        for s in skipped:
            lines.append(f"| {s['table']} | {s['name']} | {', '.join(s['folders'])} | "
                         f"{s['get']} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Folders looked for under --data-root: "
                                + "; ".join(f"{d['name']}: {', '.join(d['folders'])}"
                                            for d in DATASETS)
                                + f"; Fashion: {', '.join(FASHION_FOLDERS)}.")
    p.add_argument("--data-root", required=True, help="folder holding the datasets")
    p.add_argument("--weights", help="DINO ViT-S/8 checkpoint: the full training checkpoint "
                                     "(dino_deitsmall8_pretrain_full_checkpoint.pth, the "
                                     "paper's student) or the backbone file; none = classic "
                                     "smoke run")
    p.add_argument("--dino-head", choices=["teacher", "student"],
                   help="network of a full checkpoint (default: student, the paper's)")
    p.add_argument("--weights-b16", help="DINO ViT-B/16 checkpoint for Table 5 (none = the "
                                         "classic backbone's mean features, a smoke run)")
    p.add_argument("--losses", default="ncut,cc", help="comma-separated GNN losses to run")
    p.add_argument("--only", help="comma-separated dataset names (voc07, voc12, coco20k, cub, "
                                  "duts_te, ecssd, dut_omron, sod, weizmann_sed1, "
                                  "weizmann_sed2, fashion)")
    p.add_argument("--limit", type=int, help="first N items per dataset (quick check; every "
                                             "command then says so)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS per run; 0 = "
                                                          "torch's default")
    p.add_argument("--out", default=str(REPO / "out" / "paper_tables"),
                   help="where each run's predictions and tables go")
    p.add_argument("--resume", action="store_true", help="reuse finished predictions")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "offline")
    sys.path.insert(0, str(REPO))
    if not Path(args.data_root).is_dir():
        print(f"error: --data-root {args.data_root} is not a folder", file=sys.stderr)
        return 2
    for flag, path in (("--weights", args.weights), ("--weights-b16", args.weights_b16)):
        if path and not Path(path).is_file():
            print(f"error: {flag} {path}: no such file", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    runs, skipped = build_runs(args)
    runs = [run_one(r, args.threads or None) for r in runs]
    fashion: list[dict[str, Any]] = []
    if not args.only or "fashion" in args.only.split(","):
        root = next((Path(args.data_root) / f for f in FASHION_FOLDERS
                     if (Path(args.data_root) / f / "styles.csv").is_file()), None)
        if root is None:
            skipped.append({"table": "5", "name": "Fashion Product Images",
                            "folders": FASHION_FOLDERS, "get": _GET["fashion"]})
        else:
            if args.threads:  # as the eval.py runs: this process clusters in torch itself
                import torch

                torch.set_num_threads(args.threads)
            fashion = run_fashion(args, root)
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                         text=True, check=False).stdout.strip() or "unknown"
    meta = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "git": git,
            "data_root": _shown(args.data_root), "resumed": args.resume,
            "weights": Path(args.weights).name if args.weights else None,
            "total_seconds": time.perf_counter() - t0}
    table = render(runs, skipped, fashion, meta)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "paper_tables.md").write_text(table + "\n")
    (out / "paper_tables.json").write_text(json.dumps(
        {"meta": meta, "skipped": skipped, "fashion": fashion,
         "runs": [{"dataset": r["spec"]["dataset"], "table": r["spec"]["table"],
                   "loss": r["loss"], "command": r["command"], "seconds": r["seconds"],
                   "metrics": r.get("summary", {}).get("metrics"), "error": r.get("error"),
                   "paper": r["spec"]["paper"].get(r["loss"])} for r in runs]}, indent=2))
    return 1 if any("error" in r for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
