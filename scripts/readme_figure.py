#!/usr/bin/env python
"""Make the README's example picture: the first README command on a machine without weights.

Usage::

    python scripts/readme_figure.py        # writes docs/images/chelsea_overlay_classic.png

Runs ``python infer.py examples/chelsea.png --out DIR`` exactly as the README's quick start does,
with ``HF_HUB_OFFLINE=1`` so that ``auto`` cannot find DINO weights and falls back to the
weight-free ``classic`` backbone (as on a fresh offline machine), then copies the overlay it wrote.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "docs" / "images" / "chelsea_overlay_classic.png"


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="deepcut-nohub-") as hf_home, \
            tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
               "HF_HOME": hf_home}  # an empty cache: no weights
        cmd = [sys.executable, "infer.py", "examples/chelsea.png", "--out", out]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        sys.stderr.write(proc.stderr)
        if proc.returncode != 0:
            return proc.returncode
        TARGET.parent.mkdir(parents=True, exist_ok=True)
        tmp = TARGET.with_suffix(".png.part")
        shutil.copyfile(Path(out) / "chelsea_overlay.png", tmp)
        os.replace(tmp, TARGET)
    print(f"wrote {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
