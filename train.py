#!/usr/bin/env python
"""Train one DeepCut GNN head over a dataset: ``python train.py fit --config configs/segment_folder.yaml``.

Subcommands: fit, validate, test, predict (``--help`` on each); see configs/*.yaml. Then segment
with the checkpoint: ``python infer.py IMAGES --checkpoint CKPT``. Same as ``deepcut-train``.
"""
import sys

from deepcut.cli.train import cli_main, main

__all__ = ["cli_main", "main"]

if __name__ == "__main__":
    sys.exit(main())
