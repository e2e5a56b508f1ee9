"""Patch labels to pixel labels, one interface for every method (:mod:`deepcut.refine.interface`):
nearest upsampling, partition centres, PAMR, the bilateral solver and DREAM (RGB or RGB + depth).
"""
from deepcut.refine.bilateral import bilateral_labels, bilateral_solve
from deepcut.refine.centres import assign_by_centres, partition_centres
from deepcut.refine.dream import dream, dream_labels
from deepcut.refine.interface import (
    REFINERS,
    centres_labels,
    nearest_labels,
    refine_labels,
)
from deepcut.refine.pamr import pamr, pamr_labels
from deepcut.refine.upsample import patch_index, upsample_labels

__all__ = [
    "REFINERS",
    "assign_by_centres",
    "bilateral_labels",
    "bilateral_solve",
    "centres_labels",
    "dream",
    "dream_labels",
    "nearest_labels",
    "pamr",
    "pamr_labels",
    "partition_centres",
    "patch_index",
    "refine_labels",
    "upsample_labels",
]
