"""``python cluster.py INPUT... [--out labels.csv]``: k-less clustering of images or a feature matrix.

INPUT is either one ``.npy`` file holding an ``(n_samples, n_features)`` matrix, or image files
and/or folders of images (each image becomes one sample: the backbone's CLS token when it has one,
else its mean patch feature). The number of clusters is found from the data: by DeepCut's
correlation-clustering GNN (``--method cc``, default) or by the eigengap spectral baseline
(``--method eigengap``; DeepCut Table 5).

Writes, atomically: ``--out`` (CSV with header ``item,label``; ``item`` is the file name or the
row index) and a JSON beside it (``--out`` with the suffix ``.json``: ``labels.csv`` ->
``labels.json``; method, K found, the K of each whitening power ``view_k`` and of the CC warm
start ``warm_k``, degenerate-result ``warnings``, parameters, inputs). Prints
``K=<n>`` on stdout. The folder of ``--out`` is checked writable before any work. A bad image is
reported on one line that names it, and skipped.

Exit status: 0 every input clustered; 1 some images failed (each reported); 2 a fatal error (bad
option, unreadable matrix, fewer than 2 readable images, ``--out`` not writable, missing
weights).
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from deepcut.cli.common import (
    PREPROCESSING_KEYS,
    DefaultsOnce,
    add_preprocessing_options,
    add_version,
    drop_none,
    fail,
    one_line,
    quiet_warnings,
)

__all__ = ["build_parser", "main"]


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``prog`` defaults to how the program was started (``cluster.py``,
    ``deepcut-cluster``). Built without importing torch, so ``--help`` is instant."""
    from deepcut.cli._choices import BACKBONE_METAVAR, backbone_choice

    p = argparse.ArgumentParser(
        prog=prog,
        description="k-less clustering (the number of clusters is found from the data) of a set "
                    "of images or of a feature matrix.",
        formatter_class=DefaultsOnce,
    )
    p.add_argument("inputs", nargs="+", help="one .npy matrix (n_samples, n_features), or image "
                                             "files and/or folders of images")
    p.add_argument("--out", default="clusters.csv", help="labels CSV (a JSON summary is written "
                                                         "beside it)")
    p.add_argument("--quiet", action="store_true", help="print only the K line")
    add_version(p)
    p.add_argument("--max-pixels", type=int,
                   help="refuse images with more pixels, read from the file header "
                        "(default: $DEEPCUT_MAX_PIXELS, else 200000000)")

    g = p.add_argument_group("clustering")
    g.add_argument("--method", choices=["cc", "eigengap"], default="cc",
                   help="cc = DeepCut's GNN with the correlation-clustering loss; eigengap = the "
                        "spectral baseline")
    g.add_argument("--k-max", type=int, default=10, help="upper bound on the number of clusters")
    g.add_argument("--graph", choices=["modularity", "threshold"],
                   help="cc: signed graph; modularity = the modularity matrix of the similarity "
                        "graph (CC maximises the modularity), threshold = similarity minus a "
                        "threshold set by --alpha/--shift, as the paper (default: modularity, "
                        "or threshold when --alpha or --shift is given)")
    g.add_argument("--resolution", type=float,
                   help="cc, modularity graph: resolution > 0; higher gives more clusters "
                        "(default: 0.9; below 1 samples that all look alike give one cluster)")
    g.add_argument("--k-rule", choices=["modularity", "eigengap"],
                   help="eigengap: how K is chosen, the K whose labels have the highest "
                        "modularity, or the largest eigengap as the paper (default: modularity)")
    g.add_argument("--alpha", type=float, help="cc, threshold graph: k-sensitivity >= 1; lower "
                                               "gives more clusters (default: 10.0)")
    g.add_argument("--shift", choices=["mean", "max"],
                   help="cc: graph threshold t = mu + (s - mu) / alpha with mu the mean pair "
                        "similarity and s the mean self-similarity (mean), or the paper's "
                        "t = max S / alpha (max, used with --alpha 3); default: mean")
    g.add_argument("--no-center", dest="center", action="store_false",
                   help="use the features as given (no PCA either); by default the mean "
                        "sample is subtracted first (raw non-negative features otherwise all "
                        "look alike: K = 1)")
    g.add_argument("--pca", type=float,
                   help="project the centred samples on the principal components that explain "
                        "this fraction (0 < F <= 1) of the variance (default: 0.7, chosen on "
                        "image features such as 64-pixel digits)")
    g.add_argument("--no-pca", dest="pca", action="store_const", const="off",
                   help="no PCA: the centred samples as given; for low-dimensional features, "
                        "where 70%% of the variance may leave out the direction that separates "
                        "two groups (K found too small)")
    g.add_argument("--whiten", type=float, nargs="+", metavar="P",
                   help="with --pca: divide each component by its standard deviation to the "
                        "power P (0 = plain projection, 1 = PCA whitening); several powers = "
                        "one clustering each, the most frequent K wins, ties to the smallest "
                        "(default: 0 0.5 1)")
    g.add_argument("--smooth", type=int,
                   help="replace each sample by the mean of its N most similar samples before "
                        "the graph; 0 = off, as the paper (default: 5)")
    g.add_argument("--no-warm-start", dest="warm_start", action="store_const", const="off",
                   help="cc: train the GNN from its seeded init alone, as the paper; by default "
                        "it starts from the eigengap method's partition of the same samples")
    g.add_argument("--no-rounding", dest="rounding", action="store_false", default=None,
                   help="cc: keep the GNN's argmax (the paper); by default it is rounded to a "
                        "local optimum of the discrete CC objective")
    g.add_argument("--metric", choices=["cosine", "dot"],
                   help="sample similarity; dot reproduces the paper (default: cosine)")
    g.add_argument("--steps", type=int, help="cc: GNN optimiser steps; raise it if the loss has "
                                             "not settled (default: 20 after the warm start, "
                                             "else 100)")
    g.add_argument("--lr", type=float, help="cc: GNN learning rate (default: 1e-2)")
    g.add_argument("--n-init", type=int, help="restarts, the best kept (default: cc 1, "
                                              "eigengap 4 k-means runs)")
    g.add_argument("--seed", type=int, help="seed of every random choice (default: 0)")

    g = p.add_argument_group("features (image inputs)")
    g.add_argument("--backbone", type=backbone_choice, metavar=BACKBONE_METAVAR, default="auto",
                   help="feature extractor; 'auto' = DINO ViT-S/8 if its weights can be had, "
                        "else the weight-free 'classic'")
    g.add_argument("--weights", help="local backbone checkpoint")
    g.add_argument("--size", type=int, default=224, help="short side of the network input in px")
    g.add_argument("--device", default="cpu", help="cpu or cuda")
    add_preprocessing_options(g)  # DeepCut's preprocessing (--preset paper's) on demand
    g.add_argument("--features", choices=["auto", "cls", "mean"], default="auto",
                   help="per-image feature: the CLS token, or the mean patch feature "
                        "(auto: CLS when the backbone has one)")
    return p


def _estimator(args: argparse.Namespace):
    from deepcut.cluster import EigengapClustering, KLessClustering

    common = drop_none({"metric": args.metric, "n_init": args.n_init, "seed": args.seed,
                        "center": args.center, "smooth": args.smooth, "pca": args.pca,
                        "whiten": None if args.whiten is None else (
                            args.whiten[0] if len(args.whiten) == 1 else tuple(args.whiten))})
    if common.get("pca") == "off":
        common["pca"] = None
    if args.method == "cc":
        if args.graph == "modularity" and (args.alpha or args.shift):
            raise ValueError("--alpha and --shift set the threshold graph; use --graph threshold "
                             "or drop them")
        graph = args.graph or ("threshold" if args.alpha or args.shift else None)
        return KLessClustering(args.k_max, **common, **drop_none(
            {"graph": graph, "resolution": args.resolution, "alpha": args.alpha,
             "shift": args.shift, "steps": args.steps, "lr": args.lr, "rounding": args.rounding}),
            **({"warm_start": None} if args.warm_start == "off" else {}))
    return EigengapClustering(args.k_max, **common, **drop_none({"k_rule": args.k_rule}))


def _image_features(args: argparse.Namespace) -> tuple[list[str], object, list[str]]:
    """``(names, X (n, D) tensor, failed)`` from image files/folders."""
    from collections import Counter

    import torch

    from deepcut.backbones import resolve_backbone
    from deepcut.cli.infer import _collect
    from deepcut.errors import DeepCutError, name_file
    from deepcut.io.images import load_image

    files = _collect(args.inputs)
    from deepcut.cluster import check_k_max

    check_k_max(len(files), args.k_max, f"--method {args.method}")  # before any feature work
    bb = resolve_backbone(args.backbone, weights=args.weights, size=args.size, device=args.device,
                          **{k: getattr(args, k) for k in PREPROCESSING_KEYS})
    if bb.name == "classic":
        print("warning: the 'classic' backbone standardises every image's statistics, so its "
              "pooled features hardly tell images apart; use a ViT backbone (--backbone "
              "dino_vits16 --weights FILE) for image-level clustering", file=sys.stderr)
    names, rows, failed, kept = [], [], [], []
    for f in files:
        try:
            # Image-level features need no more than the network input: a huge JPEG is decoded
            # at 1/2 .. 1/8 scale (Pillow's draft), never below the input size.
            image = load_image(f, max_pixels=args.max_pixels, draft_size=(args.size, args.size))
            if min(image.size) < bb.patch_size:
                raise DeepCutError(f"image is {image.width}x{image.height} px, smaller than one "
                                   f"{bb.patch_size} px patch of backbone {bb.name!r}")
            pf = bb(image)
        except DeepCutError as e:
            failed.append(str(f))
            print(f"skipped: {one_line(name_file(f, str(e)), escape=True)}", file=sys.stderr)
            continue
        except Exception as e:  # noqa: BLE001 - report the file and go on
            failed.append(str(f))
            print(f"skipped: {one_line(f'{f}: unexpected {type(e).__name__}: {e}', escape=True)}",
                  file=sys.stderr)
            continue
        use_cls = args.features == "cls" or (args.features == "auto" and pf.cls is not None)
        if use_cls and pf.cls is None:
            raise DeepCutError(f"backbone {bb.name!r} has no CLS token; use --features mean")
        rows.append(pf.cls if use_cls else pf.flat.mean(0))
        names.append(f.name)
        kept.append(f)
    if len(rows) < 2:
        raise DeepCutError(f"need at least 2 readable images to cluster; got {len(rows)}")
    count = Counter(names)  # a file name met twice (two folders) is written as its path
    names = [n if count[n] == 1 else str(f) for n, f in zip(names, kept)]
    return names, torch.stack(rows), failed


def _load_matrix(path: Path):
    import numpy as np

    from deepcut.errors import DeepCutError

    if not path.is_file():
        raise DeepCutError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DeepCutError(f"{path}: empty file (0 bytes), not a .npy matrix")
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise DeepCutError(f"{path}: not a readable .npy matrix (no NumPy header; save it "
                               "with numpy.save)")
    try:
        X = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise DeepCutError(f"{path}: refused: it holds pickled Python objects, and loading "
                               "them could run code; save a numeric array instead") from None
        raise DeepCutError(f"{path}: not a readable .npy matrix ({str(e).splitlines()[0]})") \
            from None
    except (OSError, EOFError) as e:
        raise DeepCutError(f"{path}: not a readable .npy matrix "
                           f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        raise DeepCutError(f"{path}: expected a 2-D (n_samples, n_features) matrix; "
                           f"got shape {getattr(X, 'shape', '?')}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise DeepCutError(f"{path}: expected a real-valued matrix; got dtype {X.dtype}")
    if not np.isfinite(X).all():
        raise DeepCutError(f"{path}: the matrix holds NaN or infinite values "
                           f"({int((~np.isfinite(X)).sum())} entries)")
    return [str(i) for i in range(X.shape[0])], X


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from deepcut._threads import prefer_passive_waits

    prefer_passive_waits()  # before torch loads
    quiet_warnings()
    args = build_parser(prog).parse_args(argv)
    from deepcut.errors import DeepCutError
    from deepcut.io.folders import check_out_file, clean_stale_parts, output_error
    from deepcut.io.writers import atomic_path, save_json
    from deepcut.solvers.base import DegenerateResultWarning

    failed: list[str] = []
    try:
        if args.max_pixels is not None and args.max_pixels < 1:
            return fail(f"--max-pixels must be >= 1. Got {args.max_pixels}.")
        out = check_out_file(args.out)  # before any work: exit 2 naming the folder
        clean_stale_parts(out.parent)
        npy = len(args.inputs) == 1 and args.inputs[0].lower().endswith(".npy")
        if npy:
            names, X = _load_matrix(Path(args.inputs[0]))
        else:
            names, X, failed = _image_features(args)
        est = _estimator(args)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", DegenerateResultWarning)
            labels = est.fit_predict(X)
    except (DeepCutError, ValueError) as e:
        return fail(str(e))
    degenerate = []
    for w in said:  # one line each (quiet_warnings), and the same words in the JSON
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if issubclass(w.category, DegenerateResultWarning):
            degenerate.append(str(w.message))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["item", "label"])
    w.writerows(zip(names, labels.tolist()))
    try:
        with atomic_path(out) as tmp:
            tmp.write_text(buf.getvalue())
        save_json({"method": args.method, "k_found": est.n_clusters_, "k_max": args.k_max,
                   "view_k": est.view_k_, "warm_k": getattr(est, "warm_k_", None),
                   "warnings": degenerate, "n_samples": len(names),
                   "params": est.get_params(), "inputs": args.inputs,
                   "failed": failed, "labels_csv": out.name}, out.with_suffix(".json"))
    except OSError as e:
        return fail(str(output_error(e, out.parent)))
    print(f"K={est.n_clusters_}")
    if not args.quiet:
        print(f"{len(names)} samples, method={args.method} -> {out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
