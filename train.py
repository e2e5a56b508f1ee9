#!/usr/bin/env python
"""Train one DeepCut GNN head over a dataset: ``python train.py fit --config configs/segment_folder.yaml``.

Subcommands: fit, validate, test, predict (``--help`` on each); see configs/*.yaml. Then segment
with the checkpoint: ``python infer.py IMAGES --checkpoint CKPT``.
"""
import warnings

from deepcut.lightning.cli import DeepCutCLI, DeepCutSaveConfigCallback
from deepcut.lightning.datamodule import DeepCutDataModule
from deepcut.lightning.module import DeepCutModule


def cli_main(args=None, run=True):
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")  # Lightning-internal deprecation
    return DeepCutCLI(DeepCutModule, DeepCutDataModule, seed_everything_default=0,
                      save_config_callback=DeepCutSaveConfigCallback,
                      save_config_kwargs={"overwrite": True}, args=args, run=run)


if __name__ == "__main__":
    cli_main()
