"""One seed drives every random choice (torch, numpy, Python)."""
from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["numpy_rng", "seed_everything", "seeded", "torch_generator"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@contextmanager
def seeded(seed: int | None, device: str | torch.device = "cpu") -> Iterator[None]:
    """Run the block with torch's global generator for ``device`` seeded with ``seed`` (0 when
    None), restoring its state afterwards: ``fork_rng`` plus ``manual_seed``, for one device.

    ``torch.manual_seed`` also queues a lazy seeding of every CUDA device, and while CUDA is
    not initialised each call records a stack trace for it: 2-3 ms, a tenth of a checkpoint's
    solve. A CPU block touches only the CPU generator; a CUDA block also forks and seeds its
    own device. Same seed, same numbers as ``manual_seed``.
    """
    s = 0 if seed is None else int(seed)
    dev = torch.device(device)
    cuda = [dev] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda, device_type="cuda"):
        torch.default_generator.manual_seed(s)
        if cuda:
            with torch.cuda.device(dev):
                torch.cuda.manual_seed(s)
        yield


def torch_generator(seed: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` seeded with ``seed`` (0 when None, so runs stay repeatable)."""
    g = torch.Generator(device=device)
    g.manual_seed(0 if seed is None else int(seed))
    return g


def numpy_rng(seed: int | None) -> np.random.Generator:
    """A fresh ``np.random.Generator``; ``None`` gives seed 0 for repeatability."""
    return np.random.default_rng(0 if seed is None else int(seed))
