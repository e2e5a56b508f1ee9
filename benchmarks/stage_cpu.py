"""CPU seconds per image of each stage of ``infer.py``'s default classic path, one thread.

Load-robust (CPU time, not wall time: on a shared machine a stage's wall time is what others
leave it): a cProfile of ``--workers 0`` over the first images of a folder, with
``time.process_time`` as the clock, summed per stage function and divided by the images.

    OMP_NUM_THREADS=1 python benchmarks/stage_cpu.py DIR [--limit 12] [--backbone classic]
        [--checkout OTHER_CHECKOUT]

Rows: decode (``load_image``), the backbone's features (``extract``) and edge map
(``feature_extra``, the local graph's contour cue), graph, solve (GNN fit incl. its spectral
warm start), the segment task's saliency map (classic's background rule), write (label map,
overlay, JSON), and the rest of the per-image loop; the one-off imports that happen inside the
first image (scikit-learn for k-means) are counted separately.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STAGES = {  # row -> (file suffix, function name) of the stage's entry point
    "decode + resize input": [("deepcut/io/images.py", "load_image"),
                              ("deepcut/backbones/classic.py", "preprocess")],
    "backbone features": [("deepcut/backbones/classic.py", "extract")],
    "edge map (contour cue)": [("deepcut/backbones/classic.py", "feature_extra")],
    "graph": [("deepcut/tasks/base.py", "make_graph")],
    "solve": [("deepcut/tasks/base.py", "solve")],
    "background rule (saliency map)": [("deepcut/tasks/saliency.py", "saliency_map")],
    "write outputs": [("deepcut/io/outputs.py", "write_outputs")],
    "per-image loop (all)": [("deepcut/cli/infer.py", "run")],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--limit", type=int, default=12)
    p.add_argument("--backbone", default="classic")
    p.add_argument("--checkout", type=Path, default=ROOT,
                   help="the deepcut checkout to profile, e.g. an older commit's worktree "
                        "(default: this one)")
    a = p.parse_args(argv)
    sys.path.insert(0, str(a.checkout.resolve()))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    from deepcut.cli import infer
    from deepcut.io.images import list_images

    files = list_images(a.folder)[:a.limit]
    src = Path(tempfile.mkdtemp(prefix="deepcut-stages-"))
    for f in files:
        (src / f.name).symlink_to(f.resolve())
    # Imports paid once (scikit-learn inside the first k-means) are timed apart, up front.
    t0 = time.process_time()
    import sklearn.cluster  # noqa: F401
    one_off = time.process_time() - t0
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    seq = ["--workers", "0"] if "--workers" in infer.build_parser().format_help() else []
    rc = infer.main([str(src), "--out", str(src / "out"), "--backbone", a.backbone, *seq,
                     "--quiet"])
    prof.disable()
    if rc != 0:
        raise SystemExit(f"infer.py failed with exit status {rc}")
    st = pstats.Stats(prof).stats
    n = len(files)
    cum: dict[str, float] = {}
    for (fname, _line, func), (_cc, _nc, _tt, ct, _callers) in st.items():
        for row, keys in STAGES.items():
            if any(fname.endswith(sfx) and func == fn for sfx, fn in keys):
                cum[row] = cum.get(row, 0.0) + ct
    loop = cum.pop("per-image loop (all)", float("nan"))
    print(f"{a.checkout.resolve().name}: {n} images of {a.folder.name}, backbone {a.backbone}, "
          f"1 thread, load average "
          f"{os.getloadavg()[0]:.1f}; CPU s per image (process_time under cProfile)\n")
    print("| stage | CPU s / image | share of the loop |\n|---|---|---|")
    for row in STAGES:
        if row in cum:
            print(f"| {row} | {cum[row] / n:.3f} | {cum[row] / loop:.0%} |")
    rest = loop - sum(cum.values())
    print(f"| other (locks, bookkeeping, reporting) | {rest / n:.3f} | {rest / loop:.0%} |")
    print(f"| **per-image loop** | **{loop / n:.3f}** | 100% |")
    print(f"\nOne-off import of scikit-learn's k-means (first image): {one_off:.2f} CPU s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
