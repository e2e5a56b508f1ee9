"""The names the command lines offer, kept free of torch so that ``--help`` is instant.

Each tuple mirrors a registry (``tests/test_entry_points.py`` checks that they agree): building
the parser from the registries themselves would import torch, timm and torch-geometric (5-20 s on
a busy machine) just to print the help.
"""
from __future__ import annotations

import argparse
import difflib

__all__ = [
    "ANNOTATOR_RULES",
    "BACKBONES",
    "BACKBONE_METAVAR",
    "DATASETS",
    "MATCH_RULES",
    "SOLVERS",
    "TASKS",
    "backbone_choice",
]

#: :func:`deepcut.backbones.list_backbones`
BACKBONES = ("classic", "dino_vitb16", "dino_vitb8", "dino_vits16", "dino_vits8",
             "dinov2_vitb14", "dinov2_vits14")
#: :func:`deepcut.solvers.list_solvers`
SOLVERS = ("falcon", "gnn", "spectral")
#: :func:`deepcut.tasks.list_tasks` (with ``deepcut.checkpoint`` imported)
TASKS = ("clusters", "hierarchy", "kless", "parts", "segment")
#: ``sorted(deepcut.data.DATASETS)``
DATASETS = ("bsds500", "coco20k", "cub", "dut_omron", "duts_te", "ecssd", "sod", "voc07",
            "voc12", "weizmann_sed1", "weizmann_sed2")
#: :data:`deepcut.evaluate.ANNOTATOR_RULES`, :data:`deepcut.evaluate.MATCH_RULES`
ANNOTATOR_RULES = ("mean", "best")
MATCH_RULES = ("hungarian", "majority")

BACKBONE_METAVAR = "{auto," + ",".join(BACKBONES) + ",timm:NAME}"


def backbone_choice(value: str) -> str:
    """argparse ``type`` of ``--backbone``: ``auto``, a registered name or ``timm:<timm ViT>``.

    A ``timm:`` name is checked against timm's model list (timm is imported only then).
    """
    if value == "auto" or value in BACKBONES:
        return value
    if value.startswith("timm:"):
        from deepcut.backbones._registry import _timm_spec

        try:
            _timm_spec(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value
    close = difflib.get_close_matches(value, ("auto", *BACKBONES), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise argparse.ArgumentTypeError(
        f"unknown backbone {value!r}.{hint} Choose from auto, {', '.join(BACKBONES)}, or "
        "timm:<timm ViT name> (e.g. timm:vit_small_patch16_224.dino)")
