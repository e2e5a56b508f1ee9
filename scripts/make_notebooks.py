#!/usr/bin/env python
"""Build and run the notebooks: ``python scripts/make_notebooks.py [NAME ...]``.

Each notebook's source is a percent-format script ``notebooks/src/<name>.py`` (``# %%`` starts a
code cell, ``# %% [markdown]`` a Markdown cell whose lines start with ``# ``; the format jupytext
reads; helpers they share are in ``notebooks/nbtools.py``, imported from the notebooks' working
directory). This command turns every source into ``notebooks/<name>.ipynb``, executes it top to
bottom with nbclient in ``notebooks/`` (the working directory the notebooks assume) and saves it
with its outputs, so it renders on a code host. Rerun it after any change to the library: the
notebooks then show the current behaviour. ``--check`` only builds and compares the code cells
with the saved notebooks (exit 1 if a saved notebook is stale); ``tests/test_notebooks.py``
executes the saved notebooks in CI.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
SRC_DIR = NB_DIR / "src"
TIMEOUT_S = 600  # per cell; each notebook is meant to run in under 2 minutes on a CPU


def sources() -> list[Path]:
    """The notebook sources, in order."""
    return sorted(SRC_DIR.glob("[0-9]*.py"))


def build(src: Path) -> nbformat.NotebookNode:
    """A notebook (no outputs) from a percent-format script."""
    cells, kind, lines = [], None, []

    def flush() -> None:
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(ln[2:] if ln.startswith("# ") else ln.lstrip("#")
                             for ln in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        elif kind == "code" and text:
            cells.append(nbformat.v4.new_code_cell(text))

    for line in src.read_text().splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:02d}"  # stable ids: a rerun changes only what the outputs change
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = TIMEOUT_S) -> nbformat.NotebookNode:
    """Run ``nb`` in ``notebooks/`` (offline for the hub and W&B); raises on a failing cell.

    The kernel and the commands it starts import this checkout's ``deepcut`` (``PYTHONPATH``),
    whatever copy the environment has installed.
    """
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(NB_DIR)}}).execute()
    return nb


def code_of(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help="only these notebooks (file stems); default: all")
    p.add_argument("--check", action="store_true",
                   help="do not execute: exit 1 if a saved notebook differs from its source")
    args = p.parse_args(argv)
    todo = [s for s in sources() if not args.names or s.stem in args.names]
    if not todo:
        print(f"error: no notebook source matches {args.names} in {SRC_DIR}", file=sys.stderr)
        return 2
    stale = 0
    for src in todo:
        out = NB_DIR / f"{src.stem}.ipynb"
        nb = build(src)
        if args.check:
            same = out.exists() and code_of(nbformat.read(out, as_version=4)) == code_of(nb)
            stale += not same
            print(f"{out.name}: {'up to date' if same else 'STALE: rerun make_notebooks.py'}")
            continue
        t0 = time.perf_counter()
        execute(nb)
        nbformat.write(nb, out)
        print(f"{out.relative_to(ROOT)}: {len(nb.cells)} cells, ran in "
              f"{time.perf_counter() - t0:.0f} s")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
