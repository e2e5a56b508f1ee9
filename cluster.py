#!/usr/bin/env python
"""k-less clustering: ``python cluster.py features.npy --out labels.csv`` (see ``--help``)."""
import sys

from deepcut.cli.cluster import main

if __name__ == "__main__":
    sys.exit(main())
