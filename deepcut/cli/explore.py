"""``deepcut-explore IMAGE [--levels 5,10,20,40] [--solver spectral] [--out page.html]``.

Writes one self-contained HTML file (image and label maps embedded, no server, works offline):
click a pixel and its segment is highlighted at every level (side by side, or one level at a time
with a slider), the nested chain from coarse to fine is listed, and the selected region of any level can be downloaded as a mask PNG
(:mod:`deepcut.viz.explorer`). ``infer.py IMG --task hierarchy --html`` writes the same page next
to its other outputs.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from deepcut.cli.common import (
    PREPROCESSING_KEYS,
    add_preprocessing_options,
    add_version,
    drop_none,
    fail,
    one_line,
    quiet_warnings,
)

__all__ = ["build_parser", "main"]


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``prog`` defaults to ``deepcut-explore``. Built without importing torch, so
    ``--help`` is instant."""
    from deepcut.cli._choices import BACKBONE_METAVAR, SOLVERS, backbone_choice

    p = argparse.ArgumentParser(
        prog=prog or "deepcut-explore",
        description="Write an interactive, offline HTML page of an image's segmentation "
                    "hierarchy: click a pixel to see its segment at every level, export it as a "
                    "mask PNG.")
    p.add_argument("image", help="the image file")
    p.add_argument("--levels", default="5,10,20,40",
                   help="comma-separated K per level (default: 5,10,20,40)")
    p.add_argument("--solver", choices=SOLVERS, default="spectral",
                   help="spectral: one NCut eigendecomposition for all levels (the hierarchy "
                        "task); gnn/falcon: one independent solve per level (slower) "
                        "(default: spectral)")
    p.add_argument("--nested", action="store_true",
                   help="spectral only: coarser levels merge the finest one's segments, so every "
                        "segment lies inside its coarser one")
    p.add_argument("--out", help="the HTML file (default: <image stem>_explorer.html here)")
    p.add_argument("--max-side", type=int, default=1024,
                   help="larger images are shown and exported shrunk to this side (default: 1024)")
    add_version(p)
    g = p.add_argument_group("backbone and solver (as in infer.py)")
    g.add_argument("--backbone", type=backbone_choice, metavar=BACKBONE_METAVAR,
                   help="feature extractor (default: auto = DINO ViT-S/8 if its weights can be "
                        "had, else classic with a warning)")
    g.add_argument("--weights", help="local backbone checkpoint")
    g.add_argument("--size", type=int, help="short side of the network input in px (default: 280)")
    g.add_argument("--stride", type=int, help="patch stride (default: the patch size)")
    g.add_argument("--steps", type=int,
                   help="gnn: cut-loss optimiser steps per level (default: the GNN's own, at "
                        "most 2 cut-loss steps after at most 10 warm-start steps, stopping "
                        "when the loss settles)")
    g.add_argument("--seed", type=int, help="seed of every random choice (default: 0)")
    g.add_argument("--device", help="cpu or cuda (default: cpu)")
    add_preprocessing_options(g)
    return p


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from deepcut._threads import prefer_passive_waits

    prefer_passive_waits()  # before torch loads
    quiet_warnings()
    args = build_parser(prog).parse_args(argv)
    from deepcut.errors import DeepCutError
    from deepcut.io.images import load_image
    from deepcut.tasks.hierarchy import parse_levels
    from deepcut.viz.explorer import hierarchy_levels, write_explorer

    path = Path(args.image)
    out = Path(args.out) if args.out else Path(f"{path.stem}_explorer.html")
    try:
        if args.nested and args.solver != "spectral":
            raise DeepCutError("--nested needs --solver spectral (other solvers cut each level "
                               "on its own)")
        if args.max_side is not None and args.max_side < 16:
            raise DeepCutError(f"--max-side must be >= 16. Got {args.max_side} instead.")
        levels = parse_levels(args.levels)
        image = load_image(path)
        config = drop_none({k: getattr(args, k) for k in
                            ("backbone", "weights", "size", "stride", "steps", "seed", "device",
                             *PREPROCESSING_KEYS)})
        maps, record = hierarchy_levels(image, levels, solver=args.solver, nested=args.nested,
                                        **config)
        write_explorer(out, image, maps, title=path.stem, info=record, max_side=args.max_side)
    except DeepCutError as e:
        return fail(one_line(str(e)))
    print(f"{path.name}: levels {levels} -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
