"""Evaluation dataset loaders (local folders only, never downloads).

Each loader is a small sized/indexable class whose docstring documents its on-disk layout;
``dataset[i]`` returns a :class:`Sample` (``id``, ``image_path``, ``image()`` and the ground
truth fields the dataset has). A root that is missing, empty or in another layout raises a
one-line :class:`DatasetLayoutError` (a ``FileNotFoundError``).

Example:
    >>> ds = get_dataset("sod", "/path/to/sod")  # doctest: +SKIP
    >>> s = ds[0]; s.image().size, s.mask.shape  # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from deepcut.data.base import DatasetLayoutError, Sample, SegmentationDataset
from deepcut.data.bsds import BSDS500, load_bsds_mat
from deepcut.data.coco import COCO20k
from deepcut.data.cub import CUB
from deepcut.data.masks import (
    DUTOMRON,
    DUTSTE,
    ECSSD,
    SOD,
    MaskFolderDataset,
    load_binary_mask,
    load_label_map,
)
from deepcut.data.voc import VOC07, VOC12, VOC_CLASSES, VOCDataset, parse_voc_xml
from deepcut.data.weizmann import WeizmannSED, WeizmannSED1, WeizmannSED2

__all__ = [
    "BSDS500",
    "CUB",
    "DATASETS",
    "DUTOMRON",
    "DUTSTE",
    "ECSSD",
    "SOD",
    "VOC07",
    "VOC12",
    "VOC_CLASSES",
    "COCO20k",
    "DatasetLayoutError",
    "MaskFolderDataset",
    "Sample",
    "SegmentationDataset",
    "VOCDataset",
    "WeizmannSED",
    "WeizmannSED1",
    "WeizmannSED2",
    "get_dataset",
    "load_binary_mask",
    "load_bsds_mat",
    "load_label_map",
    "parse_voc_xml",
]

#: Registry name -> loader class. Names follow the papers' dataset names, lower-case.
DATASETS: dict[str, type[SegmentationDataset]] = {
    "ecssd": ECSSD,
    "duts_te": DUTSTE,
    "dut_omron": DUTOMRON,
    "sod": SOD,
    "voc07": VOC07,
    "voc12": VOC12,
    "coco20k": COCO20k,
    "cub": CUB,
    "bsds500": BSDS500,
    "weizmann_sed1": WeizmannSED1,
    "weizmann_sed2": WeizmannSED2,
}


def get_dataset(name: str, root: str | Path, **kwargs: Any) -> SegmentationDataset:
    """Build a registered dataset loader.

    Args:
        name: a key of :data:`DATASETS` (case and ``-`` are forgiven: ``"DUTS-TE"`` works).
        root: the dataset root folder (see the loader's docstring for the layout).
        **kwargs: loader options (``split``, ``list_file``, folder names, ...).

    Returns:
        The loader instance.

    Raises:
        ValueError: unknown name (the message lists the choices).
        DatasetLayoutError: the root is missing, empty or not in the expected layout.
    """
    key = name.strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of: {', '.join(sorted(DATASETS))}.")
    return DATASETS[key](root, **kwargs)
