"""One seed drives every random choice (torch, numpy, Python)."""
from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["numpy_rng", "seed_everything", "torch_generator"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def torch_generator(seed: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` seeded with ``seed`` (0 when None, so runs stay repeatable)."""
    g = torch.Generator(device=device)
    g.manual_seed(0 if seed is None else int(seed))
    return g


def numpy_rng(seed: int | None) -> np.random.Generator:
    """A fresh ``np.random.Generator``; ``None`` gives seed 0 for repeatability."""
    return np.random.default_rng(0 if seed is None else int(seed))
