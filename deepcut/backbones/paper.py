"""DeepCut's feature extraction, value for value: the preprocessing half of ``--preset paper``.

What the DeepCut paper (Aflalo et al., section 4) and its reference code (SAMPL-Weizmann/DeepCut,
``extractor.py`` from dino-vit-features) do, and where our defaults differ, with why:

=============== ===================== =================== =========================================
option          our default           DeepCut (paper)     why our default differs
=============== ===================== =================== =========================================
resize          ``aspect``            ``square``          squashing distorts shapes and wastes
                                                          tokens on elongated images; the grid
                                                          follows the image instead
resample        model's (bicubic)     ``lanczos``         timm's data config for DINO; the filter
                                                          alone moves keys by 1.7-2.7%
pos_embed       ``timm``              ``dino``            timm resamples to the exact grid with
                                                          antialiasing; DINO samples by
                                                          ``(n + 0.1) / sqrt(N)``, no antialias
channel_layout  ``head_major``        ``interleaved``     head-major is the qkv projection's own
                                                          order; graphs are identical, only a
                                                          GNN's first layer sees the permutation
dino_head       ``teacher``           ``student``         the teacher is the network DINO
                                                          evaluates and releases; the paper says
                                                          "student" and its code loads
                                                          ``state_dict['student']``
=============== ===================== =================== =========================================

``dino_head`` matters only for a DINO *full training* checkpoint
(``dino_deitsmall8_pretrain_full_checkpoint.pth``, the file the reference downloads); the
backbone-only file ``dino_deitsmall8_pretrain.pth`` and timm's hub weights are the teacher.

Example:
    >>> from deepcut.config import SegmenterConfig
    >>> cfg = SegmenterConfig(**PAPER_PREPROCESSING)
    >>> cfg.resize, cfg.pos_embed, cfg.channel_layout, cfg.dino_head
    ('square', 'dino', 'interleaved', 'student')
"""

from __future__ import annotations

from typing import Any

__all__ = ["PAPER_PREPROCESSING"]

#: SegmenterConfig overrides that reproduce DeepCut's features exactly (merged into the
#: ``paper`` preset): DINO ViT-S/8, keys of the last block, 280 x 280 LANCZOS, stride 8.
PAPER_PREPROCESSING: dict[str, Any] = {
    "backbone": "dino_vits8",
    "size": 280,
    "stride": 8,
    "resize": "square",
    "resample": "lanczos",
    "pos_embed": "dino",
    "channel_layout": "interleaved",
    "dino_head": "student",
}
