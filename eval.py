#!/usr/bin/env python
"""Evaluate a method on a benchmark: ``python eval.py --dataset sod --root DIR --task segment
--solver gnn --backbone classic`` (or ``--config configs/eval_sod.yaml``; see ``--help``)."""
import sys

from deepcut.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
