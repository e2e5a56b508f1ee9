"""Helpers the notebooks share (they import it from this folder, their working directory).

``sh`` runs a command line as a shell would and prints its output; ``show`` draws a row of
titled images; ``blob_image`` makes a synthetic image with a known object mask.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["blob_image", "sh", "show"]


def sh(command: str) -> None:
    """Run a command line from this folder like a shell would ("python" = this kernel's
    Python), print its output (paths shown relative to here), raise if it fails."""
    print("$", " ".join(command.split()))
    args = shlex.split(command)
    if args[0] == "python":
        args[0] = sys.executable
    r = subprocess.run(args, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    print(r.stdout.replace(str(Path.cwd().resolve()) + "/", "").strip())
    if r.returncode:
        raise RuntimeError(f"exit status {r.returncode}")


def show(images, titles, height: float = 3.0) -> None:
    """A row of images with titles."""
    widths = [im.width / im.height for im in images]
    height = min(height, 13 / sum(widths))  # at most 13 inches wide
    fig, axes = plt.subplots(1, len(images), figsize=(height * sum(widths), height + 0.3),
                             gridspec_kw={"width_ratios": widths})
    for ax, im, t in zip(np.atleast_1d(axes), images, titles):
        ax.imshow(im)
        ax.set_title(t)
        ax.axis("off")
    fig.tight_layout()


def blob_image(rng: np.random.Generator, h: int = 96, w: int = 128
               ) -> tuple[np.ndarray, np.ndarray]:
    """(h, w, 3) uint8 image and (h, w) bool mask: an ellipse on a textured background."""
    yy, xx = np.mgrid[:h, :w]
    bg = rng.uniform(60, 200, 3) + 25 * np.sin(xx / rng.uniform(3, 8))[..., None]
    cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.35, 0.65) * w
    ry, rx = rng.uniform(0.18, 0.3) * h, rng.uniform(0.18, 0.3) * w
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
    fg = (bg.mean(axis=(0, 1)) + rng.choice([-1, 1], 3) * rng.uniform(70, 110, 3)) % 256
    img = np.where(mask[..., None], fg, bg) + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), mask
