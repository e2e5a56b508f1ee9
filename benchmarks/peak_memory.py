"""Peak memory and wall time of one ``infer.py`` run on a big photo, per stage (issue 14).

Writes a synthetic JPEG of each size (a gradient with a red block; megapixels from ``--mp``), then
in a fresh process per size: load, segment (classic backbone, default size 280), write the label
map, build the overlay, write it. The peak resident memory (``ru_maxrss``) is read after each
stage, so the table shows where the memory goes; ``--code DIR`` measures another checkout's
deepcut (e.g. the main branch) side by side.

    python benchmarks/peak_memory.py [--mp 10 40] [--code DIR ...]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

STAGES = r"""
import json, resource, sys, time
def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
from deepcut.io import load_image
from deepcut.io.writers import save_image, save_label_map
from deepcut.pipeline import Segmenter
from deepcut.viz.overlay import overlay
row = {"imports": peak()}
t0 = time.perf_counter()
im = load_image(sys.argv[1]); row["load"] = peak()
pred = Segmenter(backbone="classic")(im); row["segment"] = peak()
save_label_map(pred.labels, sys.argv[2] + "/l.png"); row["labels"] = peak()
ov = overlay(im, pred.labels, box=pred.box, background=0); row["overlay"] = peak()
save_image(ov, sys.argv[2] + "/o.png"); row["write overlay"] = peak()
row["wall_s"] = time.perf_counter() - t0
print(json.dumps(row))
"""


def make_jpeg(path: Path, mp: float) -> tuple[int, int]:
    import numpy as np
    from PIL import Image

    h = int((mp * 1e6 * 3 / 4) ** 0.5)
    w = int(h * 4 / 3)
    y, x = np.mgrid[0:h, 0:w]
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = x * 255 // w
    a[..., 1] = y * 255 // h
    a[h // 4: 3 * h // 4, w // 3: 2 * w // 3] = (220, 40, 40)
    Image.fromarray(a).save(path, quality=85)
    return w, h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mp", type=float, nargs="+", default=[10.0, 40.0])
    ap.add_argument("--code", nargs="+", default=[str(Path(__file__).resolve().parents[1])],
                    help="checkouts whose deepcut is measured (default: this one)")
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    print("| code | image | imports | load | segment | labels | overlay | write overlay | "
          "wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for mp in args.mp:
            path = Path(tmp) / f"big{mp:g}.jpg"
            # In a child: ru_maxrss survives fork + exec, so this process stays small.
            res = subprocess.run([sys.executable, __file__, "--make", str(path), str(mp)],
                                 env=env, capture_output=True, text=True, check=True)
            w, h = json.loads(res.stdout)
            for code in args.code:
                res = subprocess.run([sys.executable, "-c", STAGES, str(path), tmp], cwd=tmp,
                                     env={**env, "PYTHONPATH": code}, capture_output=True,
                                     text=True, check=True)
                row = json.loads(res.stdout.strip().splitlines()[-1])
                gb = " | ".join(f"{row[k]:.2f} GB" for k in
                                ("imports", "load", "segment", "labels", "overlay",
                                 "write overlay"))
                print(f"| {Path(code).name} | {w}x{h} ({w * h / 1e6:.0f} MP) | {gb} | "
                      f"{row['wall_s']:.1f} |", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--make":
        print(json.dumps(make_jpeg(Path(sys.argv[2]), float(sys.argv[3]))))
    else:
        main()
