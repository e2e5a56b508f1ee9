"""``python infer.py IMAGE|DIR ... [--out OUT]``: segment images, write labels, overlays and JSON.

Per image three files are written atomically into ``--out``: ``<stem>.png`` (label map, pixel
value = label id, 0 = background), ``<stem>_overlay.png`` and ``<stem>.json`` (config, seed,
backbone and weights id, K, NCut value, box, timings per stage). Existing complete outputs are
skipped, so an interrupted folder run resumes where it stopped. A bad file is reported on one line
and the run goes on; the exit status is 1 if any file failed, 2 on a fatal error.

``--checkpoint CKPT`` (from ``train.py fit``) segments with the trained dataset-level head: no
per-image training (or ``--finetune-steps N`` from the checkpoint), the same outputs, and the JSON
records the checkpoint. ``--wandb`` logs every image (NCut, K, timings, overlay) to one
Weights & Biases run (``--wandb-mode offline`` needs no network; ``wandb sync`` uploads later).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepcut.cli.common import drop_none, fail, load_yaml, quiet_warnings

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    import deepcut.checkpoint  # noqa: F401  (registers the "clusters" task)
    from deepcut.backbones import list_backbones
    from deepcut.solvers import list_solvers
    from deepcut.tasks import list_tasks

    p = argparse.ArgumentParser(
        prog="infer.py",
        description="Unsupervised segmentation of images with graph cuts on ViT patch features "
                    "(DeepCut GNN, spectral NCut or a Falcon-style cut).",
    )
    p.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    p.add_argument("--out", default="outputs",
                   help="output folder, created if needed (default: outputs)")
    p.add_argument("--config", help="YAML file of SegmenterConfig values; flags override it")
    p.add_argument("--overwrite", action="store_true",
                   help="recompute images whose outputs already exist (default: skip them)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-image lines")

    g = p.add_argument_group("backbone")
    g.add_argument("--backbone", choices=["auto", *list_backbones()],
                   help="feature extractor; 'auto' = DINO ViT-S/8 if its weights can be had, "
                        "else the weight-free 'classic' (with a warning). (default: auto)")
    g.add_argument("--weights", help="local backbone checkpoint (timm or original DINO layout, "
                                     "full DINO checkpoints use the teacher)")
    g.add_argument("--size", type=int, help="short side of the network input in px; larger "
                                            "gives more nodes and finer masks (default: 280)")
    g.add_argument("--stride", type=int, help="patch stride; below the patch size gives "
                                              "overlapping patches and 4x the nodes at half "
                                              "(default: the patch size)")
    g.add_argument("--device", help="cpu or cuda (default: cpu)")

    g = p.add_argument_group("solver")
    g.add_argument("--solver", choices=list_solvers(), help="graph-cut solver (default: gnn)")
    g.add_argument("--k", "--n-clusters", dest="n_clusters", type=int,
                   help="number of clusters K (default: the task's, 2 for segment)")
    g.add_argument("--loss", choices=["ncut", "soft_ncut", "cc"],
                   help="GNN loss: ncut = DeepCut Eq. 9, cc = correlation clustering "
                        "(K becomes an upper bound), soft_ncut = the K-way NCut relaxation "
                        "(default: soft_ncut; paper preset: ncut)")
    g.add_argument("--steps", type=int, help="GNN optimiser steps per image; raise it if masks "
                                             "look noisy (default: at most 30, stopping "
                                             "when the loss settles; paper preset: 10)")
    g.add_argument("--lr", type=float, help="GNN learning rate (default: 0.03; paper: 1e-3)")
    g.add_argument("--preset", choices=["default", "paper"],
                   help="default: the GNN trained to convergence (soft K-way NCut + balance "
                        "term, at most 30 steps, rounded to a local NCut optimum); paper: "
                        "DeepCut's exact settings (Eq. 9 loss, 10 steps, lr 1e-3), for "
                        "reproducing its tables. Flags you give override the preset")
    g.add_argument("--seed", type=int, help="seed of every random choice (default: 0)")
    g.add_argument("--graph", choices=["ncut", "cc", "falcon"],
                   help="graph kind (default: the solver's own)")
    g.add_argument("--metric", choices=["dot", "cosine"],
                   help="feature similarity; dot reproduces DeepCut (default: dot)")
    g.add_argument("--alpha", type=float, help="CC k-sensitivity >= 1: lower gives more "
                                               "clusters (default: 3)")
    g.add_argument("--beta", type=float, help="Falcon affinity power (default: 4.5)")
    g.add_argument("--lam", type=float, help="Falcon diagonal regulariser (default: 0)")
    g.add_argument("--knn", type=int, help="use a sparse kNN graph with this many neighbours "
                                           "(default: dense up to 6000 nodes, then 32)")

    g = p.add_argument_group("task")
    g.add_argument("--task", choices=list_tasks(), help="what to produce (default: segment)")
    g.add_argument("--background-rule", choices=["border", "corners"],
                   help="background = cluster owning most border patches, or DeepCut's corner "
                        "vote (default: border)")
    g.add_argument("--refine", choices=["nearest", "centres", "pamr", "bilateral"],
                   help="patch to pixel labels: nearest upsampling, partition centres, or "
                        "nearest labels refined along the image colours by PAMR or by the fast "
                        "bilateral solver (default: nearest)")
    _add_task_options(g)

    g = p.add_argument_group("dataset-level head (from train.py)")
    g.add_argument("--checkpoint", help="a train.py checkpoint (.ckpt): segment with its trained "
                                        "head, no per-image training; backbone, K, loss and graph "
                                        "come from it")
    g.add_argument("--finetune-steps", type=int,
                   help="with --checkpoint: optimiser steps per image starting from the trained "
                        "head; a few adapt it to each image (default: 0, pure inference)")

    g = p.add_argument_group("Weights & Biases")
    g.add_argument("--wandb", action="store_true",
                   help="log every image (NCut, K, timings, overlay) to one W&B run")
    g.add_argument("--wandb-project", default="deepcut", help="W&B project")
    g.add_argument("--wandb-entity", help="W&B team or user (default: your default entity)")
    g.add_argument("--wandb-name", help="run name (default: generated by W&B)")
    g.add_argument("--wandb-tags", help="comma-separated run tags")
    g.add_argument("--wandb-mode", choices=["offline", "online", "disabled"],
                   help="offline writes the run locally (no network; upload with wandb sync), "
                        "online streams it (default: $WANDB_MODE, else offline)")
    g.add_argument("--wandb-dir", help="folder of the wandb/ run directories (default: --out)")
    return p


def _add_task_options(g: argparse._ArgumentGroup) -> None:
    """Task-specific flags; they go to ``SegmenterConfig.task_params``."""
    g.add_argument("--parts", type=int, help="parts task: number of foreground parts "
                                             "(default: 4)")
    g.add_argument("--split-background", type=int,
                   help="parts task: also split the background into this many regions")
    g.add_argument("--k-max", type=int, help="kless task: upper bound on K (default: 10)")
    g.add_argument("--levels", help="hierarchy task: comma-separated K per level "
                                    "(default: 10,25,50,100)")
    g.add_argument("--parts-steps", type=int,
                   help="parts task: GNN steps of the part split (default: 100)")
    g.add_argument("--background-steps", type=int,
                   help="parts task: GNN steps of the background split (default: 10)")
    g.add_argument("--n-sample", type=int,
                   help="hierarchy task: Nystrom landmarks; fewer is faster on large images "
                        "(default: exact up to 5000 nodes, then 2048)")
    g.add_argument("--nested", action="store_true", default=None,
                   help="hierarchy task: every fine segment inside one coarse segment")


TASK_OPTION_KEYS = {"parts": "parts", "split_background": "split_background",
                    "parts_steps": "parts_steps", "background_steps": "background_steps",
                    "k_max": "k_max", "levels": "levels", "n_sample": "n_sample",
                    "nested": "nested"}
CONFIG_KEYS = ("backbone", "weights", "size", "stride", "device", "solver", "n_clusters", "loss",
               "steps", "lr", "seed", "graph", "metric", "alpha", "beta", "lam", "knn", "task",
               "background_rule", "refine")
CONFIG_KEYS += ("preset",)


def _segmenter_from_args(args: argparse.Namespace):
    """Config and segmenter: per-image (``Segmenter``) or from ``--checkpoint``."""
    from deepcut.errors import ConfigError

    if args.checkpoint is None:
        if args.finetune_steps is not None:
            raise ConfigError("--finetune-steps needs --checkpoint (per-image training uses "
                              "--steps).")
        cfg = _config_from_args(args)
        return cfg, None
    from deepcut.checkpoint import load_segmenter

    base: dict[str, Any] = load_yaml(args.config) if args.config else {}
    flags = drop_none({k: getattr(args, k) for k in CONFIG_KEYS})
    task_params = {**(base.pop("task_params", {}) or {}),
                   **drop_none({v: getattr(args, k) for k, v in TASK_OPTION_KEYS.items()})}
    seg = load_segmenter(args.checkpoint, finetune_steps=args.finetune_steps or 0,
                         **{**base, **flags, "task_params": task_params})
    return seg.config, seg


def _wandb_logger(args: argparse.Namespace, cfg, seg):
    if not args.wandb:
        return None
    from deepcut.lightning.wandb_utils import InferWandbLogger

    config = seg.config_record() if seg is not None else cfg.to_dict()
    if seg is not None:
        config["checkpoint"] = seg.checkpoint.ident
    mode = args.wandb_mode or os.environ.get("WANDB_MODE") or "offline"
    mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)
    tags = [t.strip() for t in args.wandb_tags.split(",") if t.strip()] if args.wandb_tags \
        else None
    return InferWandbLogger(project=args.wandb_project, entity=args.wandb_entity,
                            name=args.wandb_name, tags=tags, mode=mode,
                            dir=args.wandb_dir or args.out, config=config)


def _config_from_args(args: argparse.Namespace):
    from deepcut.config import SegmenterConfig

    base: dict[str, Any] = load_yaml(args.config) if args.config else {}
    flags = drop_none({k: getattr(args, k) for k in CONFIG_KEYS})
    task_params = dict(base.pop("task_params", {}) or {})
    task_params.update(drop_none({v: getattr(args, k) for k, v in TASK_OPTION_KEYS.items()}))
    cfg = SegmenterConfig.from_dict({**base, **flags, "task_params": task_params})
    return cfg.validate()


def _collect(inputs: Sequence[str]) -> list[Path]:
    from deepcut.errors import DeepCutError
    from deepcut.io.images import list_images

    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise DeepCutError(f"{p}: folder holds no image files")
            files.extend(found)
        else:
            files.append(p)  # a missing or bad file is reported per image, not fatal
    return files


def _stems(files: list[Path]) -> list[str]:
    """Output names: the file stem, or ``stem_ext`` where two inputs share a stem."""
    from collections import Counter

    count = Counter(f.stem for f in files)
    return [f.stem if count[f.stem] == 1 else f"{f.stem}_{f.suffix.lstrip('.').lower()}"
            for f in files]


def main(argv: Sequence[str] | None = None) -> int:
    quiet_warnings()
    args = build_parser().parse_args(argv)
    from deepcut.errors import DeepCutError

    try:
        cfg, seg = _segmenter_from_args(args)
        files = _collect(args.inputs)
        logger = _wandb_logger(args, cfg, seg)
    except DeepCutError as e:
        return fail(str(e))
    try:
        return run(cfg, files, Path(args.out), overwrite=args.overwrite, quiet=args.quiet,
                   logger=logger, segmenter=seg)
    finally:
        if logger is not None:
            logger.finish()


def run(cfg, files: list[Path], out: Path, overwrite: bool = False, quiet: bool = False,
        logger=None, segmenter=None) -> int:
    """Segment ``files`` into ``out``; returns the exit status.

    ``logger(pred, image, stem)`` is called after each written image; ``segmenter`` replaces
    ``Segmenter(cfg)`` (e.g. a :class:`~deepcut.checkpoint.CheckpointSegmenter`).
    """
    from tqdm import tqdm

    from deepcut.errors import DeepCutError
    from deepcut.io.images import load_image
    from deepcut.io.outputs import outputs_exist, write_outputs
    from deepcut.pipeline import Segmenter

    seg = segmenter if segmenter is not None else Segmenter(cfg)
    try:
        _ = seg.backbone  # resolve once, up front: missing weights is fatal, not per image
    except DeepCutError as e:
        return fail(str(e))
    n_done = n_skip = 0
    failed: list[str] = []
    stems = _stems(files)
    bar = tqdm(list(zip(files, stems)), disable=quiet or len(files) < 2, unit="img",
               file=sys.stderr)
    for path, stem in bar:
        if not overwrite and outputs_exist(out, stem):
            n_skip += 1
            continue
        t0 = time.perf_counter()
        try:
            image = load_image(path)
            pred = seg(image)
            pred.meta["image"] = str(path)
            extra = {"checkpoint": pred.meta["checkpoint"]} if "checkpoint" in pred.meta else None
            paths = write_outputs(pred, image, out, stem, extra_record=extra)
        except DeepCutError as e:
            failed.append(str(path))
            tqdm.write(f"skipped: {e}", file=sys.stderr)
            continue
        except Exception as e:  # noqa: BLE001 - a folder run reports the file and goes on
            failed.append(str(path))
            tqdm.write(f"skipped: {path}: unexpected {type(e).__name__}: {e}", file=sys.stderr)
            continue
        n_done += 1
        if logger is not None:
            logger(pred, image, stem)
        if not quiet:
            box = "" if pred.box is None else f" box={tuple(pred.box)}"
            tqdm.write(f"{path.name}: K={pred.n_clusters} NCut={pred.ncut:.4f}{box} -> "
                       f"{paths['labels']} ({time.perf_counter() - t0:.2f} s)")
    if not quiet:
        print(f"done: {n_done} segmented, {n_skip} skipped (outputs exist), {len(failed)} failed"
              f" -> {out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
