"""Dataset-level training in PyTorch Lightning (``train.py``).

* :class:`DeepCutModule` -- the GNN head, the graph builder and the loss (no backbone weights).
* :class:`DeepCutDataModule` -- images of a folder or a named dataset, as cached features.
* :class:`FeatureCache` -- backbone features on disk, keyed by backbone, weights, size, stride.
* :class:`SegmentationWriter` -- sharded ``predict`` writing ``infer.py``'s outputs per rank.
* :class:`DeepCutCLI` -- the LightningCLI of ``train.py`` (links, loggers, W&B, config saving).

Names are imported lazily: ``deepcut.lightning.wandb_utils`` (used by ``infer.py --wandb``) does
not load Lightning.
"""
from __future__ import annotations

import importlib

__all__ = ["DeepCutCLI", "DeepCutDataModule", "DeepCutModule", "FeatureCache",
           "SegmentationWriter", "WandbOptions"]

_LAZY = {
    "DeepCutCLI": "deepcut.lightning.cli",
    "DeepCutDataModule": "deepcut.lightning.datamodule",
    "DeepCutModule": "deepcut.lightning.module",
    "FeatureCache": "deepcut.lightning.feature_cache",
    "SegmentationWriter": "deepcut.lightning.writer",
    "WandbOptions": "deepcut.lightning.loggers",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deepcut.lightning' has no attribute {name!r}")
