"""Patch labels to pixel labels (upsampling, partition centres, PAMR, bilateral solver)."""
from deepcut.refine.bilateral import bilateral_labels, bilateral_solve
from deepcut.refine.centres import assign_by_centres, partition_centres
from deepcut.refine.pamr import pamr, pamr_labels
from deepcut.refine.upsample import patch_index, upsample_labels

__all__ = [
    "assign_by_centres",
    "bilateral_labels",
    "bilateral_solve",
    "pamr",
    "pamr_labels",
    "partition_centres",
    "patch_index",
    "upsample_labels",
]
