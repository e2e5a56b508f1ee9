#!/usr/bin/env python
"""Segment images: ``python infer.py examples/chelsea.png --out outputs/`` (see ``--help``)."""
import sys

from deepcut.cli.infer import main

if __name__ == "__main__":
    sys.exit(main())
