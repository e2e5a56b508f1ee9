"""Patch labels to pixel labels (upsampling, assignment by partition centres)."""
from deepcut.refine.upsample import patch_index, upsample_labels

__all__ = ["patch_index", "upsample_labels"]
