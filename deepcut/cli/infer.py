"""``python infer.py IMAGE|DIR ... [--out OUT]``: segment images, write labels, overlays and JSON.

Per image three files are written atomically into ``--out``: ``<stem>.png`` (label map, pixel value
= label id, 0 = background), ``<stem>_overlay.png`` (or ``.jpg`` / ``.webp``) and ``<stem>.json``
(config, seed, backbone and weights id, K, NCut value, box, timings per stage). Existing complete
outputs are skipped, so an interrupted folder run resumes where it stopped. Output names are unique
per input: where two inputs share a stem (``a/img.jpg`` and ``b/img.jpg``, ``img.JPG`` and
``img.jpg``) they get their extension and then their folder names (``img_png``, ``a__img_jpg``);
outputs recorded for another image are never taken as done. ``--out`` is created and test-written
before any work. Two processes on one ``--out`` split the images (an advisory lock per image). A
bad file is reported on one line that names it and the run goes on; a degenerate result (e.g. one
cluster) is reported on one ``warning:`` line and in its JSON.

A folder is pipelined with ``--workers N`` >= 1 (the default on a GPU, 0 on the CPU; see
:mod:`deepcut.io.pipelined`): one worker process reads
and resizes ahead while this process segments, two or more (on the CPU) each read and segment
batches of images (every core runs a solve); the backbone runs on batches of one input size, a
background thread writes; the outputs are byte for byte those of ``--workers 0`` (one image at a
time). The overlay format
is ``--overlay-format`` (png by default, at a fast zlib level); the label map is always PNG.

Exit status: 0 every image segmented (or already done); 1 some input failed (each was reported);
2 a fatal error before or during the run (bad option or config, ``--out`` not writable, a full
disk, missing weights); 130 interrupted (Ctrl-C, or SIGTERM during a pipelined run).

``--checkpoint CKPT`` (from ``train.py fit``) segments with the trained dataset-level head: no
per-image training (or ``--finetune-steps N`` from the checkpoint), the same outputs, and the JSON
records the checkpoint. ``--wandb`` logs every image (NCut, K, timings, overlay) to one
Weights & Biases run (``--wandb-mode offline`` needs no network; ``wandb sync`` uploads later).
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepcut.cli.common import (
    PREPROCESSING_KEYS,
    add_preprocessing_options,
    add_version,
    drop_none,
    fail,
    gc_paused,
    load_yaml,
    one_line,
    quiet_warnings,
)

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_CPU_WORKERS", "DEFAULT_WORKERS", "build_parser",
           "default_workers", "main"]

#: Worker processes of the pipelined folder run (``--workers``) on a GPU: one decodes ahead of
#: the main thread, whose backbone runs on batches. Two or more (on the CPU) each decode and
#: segment batches of images, one thread each, so that every core runs a solve. On the shared
#: 2-core test machine (20 BSDS images, classic, load 2.5-4.5): one worker gave 1.79-2.02 img/s
#: excluding start-up, two compute workers 1.36-1.71; remeasured with the 5-step GNN at load
#: 1.2-2.0, two gave 0.92x the images/s of one. Two pay off only where a core is free.
DEFAULT_WORKERS = 1
#: ``--workers`` on the CPU: 0, one image at a time. The decode worker and the writer thread find
#: no free core there: on the 2-core test machine the sequential run was at or above the
#: pipelined default (one worker, batches of 4) in 7 of 8 interleaved runs over three rounds of
#: ``benchmarks/throughput.py``, the last at load 0.4-0.9: 1.22 vs 1.08 img/s with start-up,
#: 2.44 vs 2.32 without, 0.53 vs 0.58 CPU s per image, first image at 7.6 vs 8.9 s.
DEFAULT_CPU_WORKERS = 0


def default_workers(device: str) -> int:
    """``--workers`` when not given: :data:`DEFAULT_WORKERS` on a GPU, else
    :data:`DEFAULT_CPU_WORKERS`."""
    return DEFAULT_WORKERS if str(device).startswith("cuda") else DEFAULT_CPU_WORKERS
#: Images of one input size per backbone forward in the pipelined run (``--batch-size``); their
#: GNN heads are trained together (GNNSolver.fit_many, the same labels as one at a time). On the
#: 2-core test machine, 20 BSDS images, classic: 4 gave 1.18x the images/s of 1 (excluding
#: start-up; 0.71 vs 0.86 CPU s per image), where the backbone batch alone was no faster.
DEFAULT_BATCH_SIZE = 4


def _contour_value(text: str) -> float | str:
    """``--contour``: a positive number, or ``off``."""
    if text.strip().lower() == "off":
        return "off"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0 or 'off', got {text!r}")
    return value


def config_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys given as flags (``--contour off`` -> ``contour: None``, the cue off)."""
    flags = drop_none({k: getattr(args, k) for k in CONFIG_KEYS})
    if flags.get("contour") == "off":
        flags["contour"] = None
    return flags


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``prog`` defaults to how the program was started (``infer.py``,
    ``deepcut-infer``). Built without importing torch, so ``--help`` is instant."""
    from deepcut.cli._choices import BACKBONE_METAVAR, SOLVERS, TASKS, backbone_choice

    p = argparse.ArgumentParser(
        prog=prog,
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
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes of the pipelined folder run, which a background "
                        "thread writes while the next images are segmented: 1 reads and "
                        "resizes images ahead of this process; 2 or more (on the CPU) each "
                        "read and segment batches of images, every core running a solve; 0 = "
                        "one image at a time, every stage in turn, in this process "
                        f"(default: {DEFAULT_WORKERS} on a GPU, {DEFAULT_CPU_WORKERS} on the CPU, "
                        "where the worker found no free core in our measurements)")
    p.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="pipelined run: images of one input size per backbone forward, "
                        "their GNN heads trained together; more fills a GPU "
                        f"(default: {DEFAULT_BATCH_SIZE})")
    p.add_argument("--overlay-format", choices=["png", "jpg", "webp"], default="png",
                   help="file format of <stem>_overlay: png (lossless, fast zlib level), or "
                        "the smaller, lossy jpg / webp; the label map is always a lossless "
                        "PNG (default: png)")
    add_version(p)
    p.add_argument("--max-pixels", type=int,
                   help="refuse images with more pixels, read from the file header before "
                        "decoding (default: $DEEPCUT_MAX_PIXELS, else 200000000)")

    g = p.add_argument_group("backbone")
    g.add_argument("--backbone", type=backbone_choice, metavar=BACKBONE_METAVAR,
                   help="feature extractor; 'auto' = DINO ViT-S/8 if its weights can be had, "
                        "else the weight-free 'classic' (with a warning); timm:NAME = any timm "
                        "ViT, e.g. timm:vit_small_patch16_224.dino (default: auto)")
    g.add_argument("--weights", help="local backbone checkpoint (timm or original DINO layout; "
                                     "from a full DINO checkpoint, --dino-head picks the network)")
    g.add_argument("--size", type=int, help="short side of the network input in px; larger "
                                            "gives more nodes and finer masks (default: 280)")
    g.add_argument("--stride", type=int, help="patch stride; below the patch size gives "
                                              "overlapping patches and 4x the nodes at half "
                                              "(default: the patch size)")
    g.add_argument("--device", help="cpu or cuda (default: cpu)")
    g.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                   help="ViT forward: bf16 autocast is faster, keys within cosine 0.999 of fp32 "
                        "(default: auto = bf16 on cuda, fp32 on cpu)")
    add_preprocessing_options(g)  # --dino-head --resize --resample --pos-embed --channel-layout

    g = p.add_argument_group("solver")
    g.add_argument("--solver", choices=SOLVERS,
                   help="graph-cut solver (default: gnn); falcon reaches the lowest NCut (on a "
                        "dense graph it refines 8 seeded restarts; a --config file's "
                        "solver_params: {n_restarts: 1} for one run)")
    g.add_argument("--k", "--n-clusters", dest="n_clusters", type=int,
                   help="number of clusters K (default: the task's; segment: 2, or 5 with "
                        "the saliency background rule, the classic backbone's)")
    g.add_argument("--loss", choices=["ncut", "soft_ncut", "cc"],
                   help="GNN loss: ncut = DeepCut Eq. 9, cc = correlation clustering "
                        "(K becomes an upper bound), soft_ncut = the K-way NCut relaxation "
                        "(default: soft_ncut; paper preset: ncut)")
    g.add_argument("--steps", type=int, help="GNN optimiser steps per image; raise it if masks "
                                             "look noisy (default: at most 2 cut-loss steps "
                                             "after at most 10 warm-start steps, 30 without a warm "
                                             "start, stopping when the loss settles; paper "
                                             "preset: 10)")
    g.add_argument("--lr", type=float, help="GNN learning rate (default: 0.03; paper: 1e-3)")
    g.add_argument("--preset", choices=["default", "paper"],
                   help="default: the GNN warm-started from one Falcon run's partition on a dense "
                        "graph, spectral's on a sparse one (at most 10 steps), trained on the soft "
                        "K-way NCut (2 steps) and rounded to a "
                        "local NCut optimum, never worse than its warm start; paper: "
                        "DeepCut's exact settings (Eq. 9 loss, 10 steps, lr 1e-3), for "
                        "reproducing its tables. Flags you give override the preset")
    g.add_argument("--seed", type=int, help="seed of every random choice (default: 0)")
    g.add_argument("--graph", choices=["ncut", "cc", "falcon", "local"],
                   help="graph kind; local = Shi-Malik graph of patches within --radius "
                        "(default: the solver's own; local for the classic backbone on the "
                        "clusters and kless tasks; hierarchy always cuts ncut)")
    g.add_argument("--radius", type=float, help="local graph radius in patches (default: 9)")
    g.add_argument("--contour", type=_contour_value, metavar="SIGMA|off",
                   help="local graph: strength sigma_IC of the intervening-contour cue (edges "
                        "crossing an image contour are weakened), relative to the image's "
                        "90th-percentile edge strength; off = no cue (default: 1; the classic "
                        "backbone only)")
    g.add_argument("--metric", choices=["dot", "cosine"],
                   help="feature similarity; dot reproduces DeepCut (default: dot)")
    g.add_argument("--alpha", type=float, help="CC k-sensitivity >= 1: lower gives more "
                                               "clusters (default: 3)")
    g.add_argument("--beta", type=float, help="Falcon affinity power (default: 4.5)")
    g.add_argument("--lam", type=float, help="Falcon diagonal regulariser (default: 0)")
    g.add_argument("--knn", type=int, help="use a sparse kNN graph with this many neighbours "
                                           "(default: none: dense graph, landmarks on large "
                                           "images)")
    g.add_argument("--landmarks", type=int,
                   help="large images (above dense_max_nodes patches): solve on this many "
                        "seeded landmarks and extend the labels to every patch (default: 512)")

    g = p.add_argument_group("task")
    g.add_argument("--task", choices=TASKS, help="what to produce (default: segment)")
    g.add_argument("--background-rule", choices=["border", "corners", "saliency"],
                   help="background = cluster owning most border patches, DeepCut's corner "
                        "vote, or saliency (5-way cut read by a saliency map of the patches "
                        "least connected to the image border) (default: saliency for classic, "
                        "else border)")
    g.add_argument("--refine", choices=["nearest", "centres", "pamr", "bilateral", "dream"],
                   help="patch to pixel labels: nearest upsampling, partition centres, or "
                        "nearest labels refined along the image by PAMR, by the fast "
                        "bilateral solver or by Falcon's DREAM (RGB, or RGB + depth with "
                        "--depth); applies to every task and every hierarchy level "
                        "(default: nearest)")
    g.add_argument("--depth", metavar="DIR",
                   help="with --refine dream: folder of depth maps, one per image with the "
                        "image's file stem (8/16-bit PNG, TIFF or .npy, any scale, the image's "
                        "size), e.g. from Depth Pro or Depth Anything; none is bundled. A "
                        "missing or mis-sized map skips that image (default: RGB only)")
    _add_task_options(g)

    g = p.add_argument_group("dataset-level head (from train.py)")
    g.add_argument("--checkpoint", help="a train.py checkpoint (.ckpt): segment with its trained "
                                        "head, no per-image training; backbone, K, loss and graph "
                                        "come from it")
    g.add_argument("--finetune-steps", type=int,
                   help="with --checkpoint: optimiser steps per image starting from the trained "
                        "head; a few adapt it to each image (default: 0, pure inference: one "
                        "forward pass, then the NCut rounding)")

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
    g.add_argument("--k-rule", choices=["cc", "eigengap"],
                   help="kless task: how K is found: cc = the GNN's correlation-clustering "
                        "loss (DeepCut), eigengap = the graph's eigengap, then the solver cuts "
                        "K segments (default: cc for the GNN on ViT features, with --preset "
                        "paper, --loss cc or --alpha; eigengap otherwise, e.g. on the classic "
                        "backbone's local graph)")
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
    g.add_argument("--html", action="store_true",
                   help="hierarchy task: also write <stem>_explorer.html, an offline page where "
                        "a click shows a pixel's segment at every level (as deepcut-explore)")


TASK_OPTION_KEYS = {"parts": "parts", "split_background": "split_background",
                    "parts_steps": "parts_steps", "background_steps": "background_steps",
                    "k_max": "k_max", "k_rule": "k_rule", "levels": "levels",
                    "n_sample": "n_sample", "nested": "nested"}


def alpha_means_cc(args: argparse.Namespace, cfg):
    """``cfg`` with the kless task parameter ``k_rule: cc`` when ``--alpha`` (the CC graph's
    k-sensitivity) is given to the GNN's kless task without a rule: alpha means the CC loss,
    which the task would not use on the classic backbone's local graph by default
    (``deepcut.tasks.kless.default_k_rule``)."""
    if (cfg.task != "kless" or cfg.solver != "gnn" or getattr(args, "alpha", None) is None
            or cfg.task_params.get("k_rule")):
        return cfg
    from dataclasses import replace

    return replace(cfg, task_params={**cfg.task_params, "k_rule": "cc"})
CONFIG_KEYS = ("backbone", "weights", "size", "stride", "device", "solver", "n_clusters", "loss",
               "steps", "lr", "seed", "graph", "metric", "alpha", "beta", "lam", "knn", "task",
               "background_rule", "refine", "radius", "contour", "depth")
# Preprocessing options (deepcut.backbones.paper lists DeepCut's values).
CONFIG_KEYS += PREPROCESSING_KEYS
CONFIG_KEYS += ("preset",)
CONFIG_KEYS += ("landmarks", "precision")


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
    flags = config_flags(args)
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
    base: dict[str, Any] = load_yaml(args.config) if args.config else {}
    return config_from_settings(args, base)


def config_from_settings(args: argparse.Namespace, base: dict[str, Any],
                         also_valid: Sequence[str] = ()):
    """The validated :class:`~deepcut.config.SegmenterConfig` of ``base`` (the ``--config``
    file's keys, less those the command takes itself: ``also_valid``) under the flags. An error
    caused by a value or key of the file alone names the file."""
    from dataclasses import fields

    from deepcut._threads import apply_step_threads
    from deepcut.config import SegmenterConfig
    from deepcut.errors import ConfigError
    from deepcut.tasks.hierarchy import check_hierarchy_solver

    flags = config_flags(args)
    file_tp = dict(base.pop("task_params", {}) or {})
    flag_tp = drop_none({v: getattr(args, k) for k, v in TASK_OPTION_KEYS.items()})
    from_file = (set(base) - set(flags)) | (set(file_tp) - set(flag_tp))
    unknown: list[str] = []
    try:
        known = {f.name for f in fields(SegmenterConfig)}
        unknown = sorted(set(base) - known)
        if unknown:
            raise ConfigError(f"unknown key(s) {unknown}; valid keys: "
                              f"{sorted(known | set(also_valid))}")
        check_hierarchy_solver({**base, **flags})  # an explicit --solver gnn/falcon: refused
        cfg = SegmenterConfig.from_dict({**base, **flags, "task_params": {**file_tp, **flag_tp}})
        cfg = alpha_means_cc(args, cfg)
        return apply_step_threads(cfg.validate())  # one thread for the GNN steps (measured)
    except ConfigError as e:
        msg = str(e)
        if args.config and (unknown or any(f"'{k}'" in msg or msg.startswith(f"{k}:")
                                           for k in from_file)):
            raise ConfigError(f"config file {args.config}: {msg}") from None
        raise


def _collect(inputs: Sequence[str]) -> list[Path]:
    """Image files of ``inputs`` (files and folders), each file once."""
    from deepcut.errors import DeepCutError
    from deepcut.io.images import list_images

    files: list[Path] = []
    seen: set[str] = set()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            try:
                found = list_images(p)
            except OSError as e:
                raise DeepCutError(f"{p}: cannot list folder ({e.strerror or e})") from None
            if not found:
                subs = any(c.is_dir() for c in p.iterdir())
                raise DeepCutError(f"{p}: folder holds no image files" +
                                   (" (its subfolders are not searched: pass them as inputs)"
                                    if subs else ""))
        else:
            found = [p]  # a missing or bad file is reported per image, not fatal
        for f in found:
            try:
                key = str(f.resolve())
            except (OSError, RuntimeError):  # a symlink loop: reported when it is read
                key = str(f.absolute())
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files


def _check_depth_stems(files: list[Path]) -> None:
    """Depth maps are found by the image's file stem: two inputs sharing one would share a map."""
    from collections import defaultdict

    from deepcut.errors import DeepCutError

    by_stem: dict[str, list[Path]] = defaultdict(list)
    for f in files:
        by_stem[f.stem].append(f)
    shared = [paths for paths in by_stem.values() if len(paths) > 1]
    if shared:
        a, b = shared[0][:2]
        raise DeepCutError(f"--depth finds each image's depth map by file stem, and {a} and {b} "
                           f"share the stem {a.stem!r} ({len(shared)} such stem(s)); run them "
                           "separately or rename one")


def _stems(files: list[Path]) -> list[str]:
    """Unique output names (see :func:`deepcut.io.outputs.output_stems`)."""
    from deepcut.io.outputs import output_stems

    return output_stems(files)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from deepcut._threads import prefer_passive_waits

    prefer_passive_waits()  # before torch loads
    quiet_warnings()
    args = build_parser(prog).parse_args(argv)
    from deepcut.errors import DeepCutError
    from deepcut.io.folders import check_out_dir

    try:
        with gc_paused():  # the imports of torch, PyG, SciPy (see gc_paused)
            cfg, seg = _segmenter_from_args(args)
        if args.max_pixels is not None and args.max_pixels < 1:
            return fail(f"--max-pixels must be >= 1. Got {args.max_pixels}.")
        if args.html and cfg.task != "hierarchy":
            raise DeepCutError("--html needs --task hierarchy")
        files = _collect(args.inputs)  # no input: refused before an output folder is made
        if cfg.depth is not None:
            _check_depth_stems(files)
        out = check_out_dir(args.out)  # before any work: exit 2 naming the folder
        logger = _wandb_logger(args, cfg, seg)
    except DeepCutError as e:
        return fail(one_line(str(e)))
    # What start-up made (modules, ~600k objects) is frozen for the run: collections skip it
    # (GC over a 20-image run: 1.24-1.52 -> 0.42-0.58 CPU s), and so do the forked decode
    # workers' (the gc docs' advice before a fork); unfrozen on the way out. A caller that
    # froze objects of its own (main() called from Python) keeps them frozen: no freeze here.
    froze = gc.get_freeze_count() == 0
    if froze:
        gc.freeze()
    try:
        return run(cfg, files, out, overwrite=args.overwrite, quiet=args.quiet,
                   logger=logger, segmenter=seg, max_pixels=args.max_pixels,
                   html=args.html, workers=args.workers, batch_size=args.batch_size,
                   overlay_format=args.overlay_format)
    except KeyboardInterrupt:
        print("\ninterrupted: finished images are saved; rerun the same command to resume",
              file=sys.stderr)
        return 130
    finally:
        if froze:
            gc.unfreeze()
        if logger is not None:
            logger.finish()


def run(cfg, files: list[Path], out: Path, overwrite: bool = False, quiet: bool = False,
        logger=None, segmenter=None, max_pixels: int | None = None, html: bool = False,
        workers: int | None = None, batch_size: int | None = None,
        overlay_format: str = "png") -> int:
    """Segment ``files`` into ``out``; returns the exit status (see the module docstring).

    ``logger(pred, image, stem)`` is called after each written image; ``segmenter`` replaces
    ``Segmenter(cfg)`` (e.g. a :class:`~deepcut.checkpoint.CheckpointSegmenter`); ``html`` also
    writes the hierarchy explorer page ``<stem>_explorer.html`` (:mod:`deepcut.viz.explorer`).
    ``workers``: decode processes of the pipelined run (None: :func:`default_workers`, 1 on a
    GPU and 0 on the CPU; 0 = the sequential run, one image at a time); ``batch_size``: images of one input size per backbone
    forward (and GNN heads trained together) in the pipelined run (:data:`DEFAULT_BATCH_SIZE` when None); ``overlay_format``:
    png, jpg or webp (:data:`deepcut.io.outputs.OVERLAY_FORMATS`).
    """
    import threading

    from tqdm import tqdm

    from deepcut.errors import DeepCutError, name_file
    from deepcut.io.depth import depth_for
    from deepcut.io.folders import (
        FATAL_WRITE_ERRNOS,
        ImageLock,
        check_out_dir,
        clean_stale_parts,
        image_lock,
        output_error,
    )
    from deepcut.io.images import load_image
    from deepcut.io.outputs import (
        outputs_exist,
        recorded_image,
        result_warnings,
        same_image,
        warnings_said_per_file,
        write_outputs,
    )
    from deepcut.pipeline import Segmenter

    workers = default_workers(cfg.device) if workers is None else int(workers)
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
    say = threading.Lock()  # one line at a time from the main and the writer thread

    def report(kind: str, message: str) -> None:
        with say:
            tqdm.write(f"{kind}: {one_line(message, escape=True)}", file=sys.stderr)

    try:
        if workers < 0:
            raise DeepCutError(f"--workers must be >= 0 (0 = one image at a time). Got {workers}.")
        if batch_size < 1:
            raise DeepCutError(f"--batch-size must be >= 1. Got {batch_size}.")
        if cfg.depth is not None:
            _check_depth_stems(files)
        out = check_out_dir(out)
        seg = segmenter if segmenter is not None else Segmenter(cfg)
        _ = seg.backbone  # resolve once, up front: missing weights is fatal, not per image
    except DeepCutError as e:
        return fail(one_line(str(e)))
    clean_stale_parts(out)  # temporary files of writers killed mid-write
    n_done = n_skip = n_busy = 0
    failed: list[str] = []
    stems = _stems(files)
    t_run = time.perf_counter()

    def done_already(path: Path, stem: str) -> bool:
        return outputs_exist(out, stem, image=path, overlay_format=overlay_format) and \
            (not html or (out / f"{stem}_explorer.html").exists())

    def collision(path: Path, stem: str) -> bool:
        """Outputs of another image under this name: reported, counted as failed."""
        owner = recorded_image(out, stem)
        if owner is not None and not same_image(owner, path):
            failed.append(str(path))
            report("skipped", f"{path}: its output name {out / stem}.json already "
                              f"holds the result of another image ({owner}); pass "
                              "--overwrite to replace it, or choose another --out")
            return True
        return False

    def finish(path: Path, stem: str, pred, image, seconds: float) -> bool:
        """Write one image's outputs and report it; False if it failed (reported).

        Raises:
            OutputError: a write error no later image can escape (full disk, read-only).
        """
        nonlocal n_done
        extra = {"checkpoint": pred.meta["checkpoint"]} if "checkpoint" in pred.meta else None
        t0 = time.perf_counter()
        try:
            if html:  # before the JSON, which marks the image as complete
                from deepcut.viz.explorer import write_explorer

                level_maps = getattr(pred.task_output, "level_labels", None) or {}
                page = write_explorer(
                    out / f"{stem}_explorer.html", image, level_maps, title=stem,
                    info={"method": f"spectral hierarchy ({pred.extra.get('method')})",
                          "nested": bool(pred.extra.get("nested")),
                          "backbone": pred.meta["backbone"]})
                extra = {**(extra or {}), "explorer": page.name}
            paths = write_outputs(pred, image, out, stem, extra_record=extra,
                                  overlay_format=overlay_format)
        except OSError as e:
            if e.errno in FATAL_WRITE_ERRNOS:  # no later image can be written either
                raise output_error(e, out) from None
            failed.append(str(path))
            report("skipped", f"{path}: cannot write its outputs {out / stem}.*: "
                              f"{e.strerror or e}")
            return False
        except Exception as e:  # noqa: BLE001 - e.g. label ids a PNG cannot hold
            failed.append(str(path))
            report("skipped", name_file(path, f"cannot write its outputs: {e}"))
            return False
        n_done += 1
        for w in result_warnings(pred):
            report("warning", name_file(path, w))
        if logger is not None:
            logger(pred, image, stem)
        if not quiet:
            box = "" if pred.box is None else f" box={tuple(pred.box)}"
            if pred.extra.get("overlay_level") is not None:  # hierarchy: K is the finest level's
                box += f" (finest level; the overlay shows K={pred.extra['overlay_level']})"
            seconds += time.perf_counter() - t0
            with say:
                tqdm.write(one_line(f"{path.name}: K={pred.n_clusters} NCut={pred.ncut:.4f}{box} "
                                    f"-> {paths['labels']} ({seconds:.2f} s)", escape=True))
        return True

    bar = tqdm(total=len(files), disable=quiet or len(files) < 2, unit="img", file=sys.stderr,
               dynamic_ncols=True)
    try:
        if workers == 0 or len(files) < 2:
            for path, stem in zip(files, stems):
                with image_lock(out, stem) as mine:
                    if not mine:  # another process on this --out is segmenting it right now
                        n_busy += 1
                        bar.update(1)
                        continue
                    if not overwrite:
                        if done_already(path, stem):
                            n_skip += 1
                            bar.update(1)
                            continue
                        if collision(path, stem):
                            bar.update(1)
                            continue
                    t0 = time.perf_counter()
                    try:
                        image = load_image(path, max_pixels=max_pixels)
                        depth = depth_for(seg.config.depth, path, image.size)
                        with warnings_said_per_file():  # said below, naming the file
                            pred = seg(image) if depth is None else seg(image, depth=depth)
                    except DeepCutError as e:
                        failed.append(str(path))
                        report("skipped", name_file(path, str(e)))
                        bar.update(1)
                        continue
                    except Exception as e:  # noqa: BLE001 - report the file and go on
                        failed.append(str(path))
                        report("skipped", f"{path}: unexpected {type(e).__name__}: {e}")
                        bar.update(1)
                        continue
                    pred.meta["image"] = str(path)
                    try:
                        finish(path, stem, pred, image, time.perf_counter() - t0)
                    except DeepCutError as e:
                        print(f"done: {n_done} segmented before the error", file=sys.stderr)
                        return fail(one_line(str(e)))
                bar.update(1)
        else:
            counts = _run_pipelined(
                seg, list(zip(files, stems)), out, workers=workers, batch_size=batch_size,
                overwrite=overwrite, max_pixels=max_pixels, bar=bar, report=report,
                done_already=done_already, collision=collision, finish=finish,
                failed=failed, lock_factory=ImageLock)
            if isinstance(counts, str):  # a fatal write error
                print(f"done: {n_done} segmented before the error", file=sys.stderr)
                return fail(counts)
            n_skip, n_busy = counts
    finally:
        bar.close()
    if not quiet:
        busy = f", {n_busy} in progress in another process" if n_busy else ""
        seconds = time.perf_counter() - t_run
        rate = f" in {seconds:.1f} s ({n_done / seconds:.2f} img/s)" if n_done > 1 else ""
        print(f"done: {n_done} segmented, {n_skip} skipped (outputs exist){busy}, "
              f"{len(failed)} failed -> {out}{rate}", file=sys.stderr)
    return 1 if failed else 0


def _sigterm_as_interrupt():
    """Make SIGTERM (``kill``, a batch scheduler's stop) end the run like Ctrl-C: the queued
    outputs are written, the decode worker processes shut down, exit status 130. Returns the
    function that restores the previous handler (nothing to do outside the main thread)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _run_pipelined(seg, items: list[tuple[Path, str]], out: Path, *, workers: int,
                   batch_size: int, overwrite: bool, max_pixels: int | None, bar, report,
                   done_already, collision, finish, failed: list[str], lock_factory):
    """The pipelined folder run (:mod:`deepcut.io.pipelined`): returns ``(n_skip, n_busy)``, or
    the one-line message of a fatal write error.

    One worker decodes ahead while the main thread computes; two or more workers on the CPU
    each decode and compute batches of images (every core runs a solve) while the main thread
    hands the images out and writes. The same guarantees as the sequential run: finished images
    are skipped before they are decoded; each image is locked
    (:class:`~deepcut.io.folders.ImageLock`) before it is computed (one worker: when its decoded
    pixels reach the main thread; compute workers: when it is handed out) until the writer
    thread has written it, and is checked again under the lock (another process may have
    finished it meanwhile).
    """
    from deepcut.errors import DeepCutError
    from deepcut.io.pipelined import (
        BackgroundWriter,
        ComputeDataset,
        DecodeDataset,
        SizeBatcher,
        batch_sizes,
        compute_batch,
        compute_loader,
        decode_loader,
    )

    n = {"skip": 0, "busy": 0}
    todo: list[tuple[Path, str]] = []
    for path, stem in items:  # finished ones are not even decoded
        if not overwrite and done_already(path, stem):
            n["skip"] += 1
            bar.update(1)
        else:
            todo.append((path, stem))
    if not todo:
        return n["skip"], n["busy"]
    bb = seg.backbone
    ds = DecodeDataset([p for p, _ in todo], bb.preprocess, bb.patch_size, bb.name,
                       depth_folder=seg.config.depth, max_pixels=max_pixels)
    held: list = []  # every lock taken (release() is idempotent)

    def take(path: Path, stem: str):
        """The image's lock, or None (another process holds it, it is done, or its name is
        taken by another image's outputs: counted and reported)."""
        lock = lock_factory(out, stem)
        held.append(lock)  # released by its writer job, or at the latest on the way out
        if not lock.acquire():  # another process on this --out is segmenting it now
            n["busy"] += 1
            bar.update(1)
            return None
        if not overwrite:
            if done_already(path, stem):  # finished meanwhile by another process
                lock.release()
                n["skip"] += 1
                bar.update(1)
                return None
            if collision(path, stem):
                lock.release()
                bar.update(1)
                return None
        return lock

    def write_job(item, stem, lock, pred, seconds):
        def job(run: bool) -> None:
            try:
                if run:
                    finish(item.path, stem, pred, item.image, seconds)
            finally:
                lock.release()
                bar.update(1)
        return job

    def hand_over(c, stem: str, lock) -> None:
        """A computed image to the writer, or its error reported."""
        if c.error is not None:
            failed.append(str(c.item.path))
            report("skipped", c.error)
            lock.release()
            bar.update(1)
        else:
            writer.put(write_job(c.item, stem, lock, c.pred, c.seconds))

    compute_workers = workers >= 2 and not str(seg.config.device).startswith("cuda")
    locks: dict[int, object] = {}

    def handed_out():
        """Batches of indices into ``todo`` for the compute workers (sizes: ``batch_sizes``),
        each image locked first."""
        sizes = iter(batch_sizes(len(todo), batch_size, workers))
        size, group = next(sizes), []
        for i, (path, stem) in enumerate(todo):
            lock = take(path, stem)
            if lock is not None:
                locks[i] = lock
                group.append(i)
                if len(group) == size:
                    yield group
                    size, group = next(sizes, size), []
        if group:
            yield group

    # Both start (fork) their worker processes now: before the writer thread starts (CUDA
    # cannot be used in a forked process: a GPU run keeps the compute in this one).
    if compute_workers:  # no more workers than batches (a resumed run may have one image left)
        computed = compute_loader(ComputeDataset(ds, seg),
                                  min(workers, len(batch_sizes(len(todo), batch_size, workers))),
                                  handed_out())
    else:
        decoded = decode_loader(ds, workers)
    writer = BackgroundWriter(max_pending=2 * batch_size + 2)

    stop_on_sigterm = _sigterm_as_interrupt()  # so the worker processes are shut down too
    try:
        if compute_workers:
            while True:
                try:
                    c = next(computed)
                except StopIteration:
                    break
                except (RuntimeError, OSError, EOFError) as e:  # a worker died (killed, OOM)
                    writer.close()  # what was computed is written
                    return one_line(f"a compute worker process failed ({e}); finished images "
                                    "are saved: rerun the same command to resume")
                hand_over(c, todo[c.item.index][1], locks.pop(c.item.index))
        else:
            batcher = SizeBatcher(batch_size)

            def compute(batch) -> None:
                for c, (_, stem, lock) in zip(compute_batch(seg, [it for it, _, _ in batch]),
                                              batch):
                    hand_over(c, stem, lock)

            for item in decoded:
                stem = todo[item.index][1]
                lock = take(item.path, stem)
                if lock is None:
                    continue
                if item.error is not None:
                    failed.append(str(item.path))
                    report("skipped", item.error)
                    lock.release()
                    bar.update(1)
                    continue
                for batch in batcher.add(tuple(item.x.shape), (item, stem, lock)):
                    compute(batch)
            for batch in batcher.flush():
                compute(batch)
        writer.close()
    except DeepCutError as e:  # a fatal write error, raised by the writer thread
        try:
            writer.close()  # the queued jobs release their locks without writing
        except DeepCutError:
            pass
        return one_line(str(e))
    except KeyboardInterrupt:
        try:  # the images already computed are written (a few at most), then the run stops
            writer.close()
        finally:
            raise
    finally:  # images decoded or computed but not handed to the writer: free their names
        for lock in held:
            lock.release()
        stop_on_sigterm()
    return n["skip"], n["busy"]


if __name__ == "__main__":
    sys.exit(main())
