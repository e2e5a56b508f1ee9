#!/usr/bin/env python
"""Regenerate every picture and notebook of the docs: ``python scripts/make_docs.py``.

Runs ``scripts/make_figures.py`` (docs/images/, used by README.md, docs/RESULTS.md and the
hierarchy notebook) and then ``scripts/make_notebooks.py`` (notebooks/*.ipynb with outputs).
Rerun it after changing the library so the docs show the current behaviour. About 4 minutes on
two CPU cores.
"""
from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args(argv)
    status = 0
    for script in ("make_figures.py", "make_notebooks.py"):
        module = runpy.run_path(str(HERE / script))  # defines main(), does not run it
        status = status or module["main"]([])
    return status


if __name__ == "__main__":
    sys.exit(main())
