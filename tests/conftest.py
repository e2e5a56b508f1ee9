"""Shared fixtures: offline hub, small planted feature grids, tiny images."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="module")
def one_thread():
    """Tiny graphs: torch's intra-op threads only add overhead (20-50x on a busy 2-core box)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def planted_grid(h: int, w: int, regions: np.ndarray, dim: int = 32, noise: float = 1.0,
                 sep: float = 4.0, seed: int = 0) -> torch.Tensor:
    """``(h, w, dim)`` features: one Gaussian group per region id of ``regions: (h, w)``."""
    g = torch.Generator().manual_seed(seed)
    k = int(regions.max()) + 1
    means = torch.randn(k, dim, generator=g) * sep
    lab = torch.as_tensor(regions).reshape(-1).long()
    F = means[lab] + noise * torch.randn(h * w, dim, generator=g)
    return F.reshape(h, w, dim)


@pytest.fixture
def three_regions() -> np.ndarray:
    """A 12 x 16 grid: border background (0), a central object (1) and a right-hand block (2)."""
    r = np.zeros((12, 16), dtype=np.int64)
    r[3:9, 3:9] = 1
    r[2:10, 11:15] = 2
    return r


def make_image(path, size=(96, 64), mode="RGB", seed=0):
    """Write a synthetic image: a bright square object on a dark textured background."""
    rng = np.random.default_rng(seed)
    w, h = size
    a = (rng.random((h, w, 3)) * 40).astype(np.uint8)
    a[h // 4: 3 * h // 4, w // 3: 2 * w // 3] = (220, 40, 40)
    im = Image.fromarray(a, "RGB")
    if mode != "RGB":
        im = im.convert(mode)
    im.save(path)
    return path


def make_image_dir(folder, n: int = 4, size=(64, 48)) -> Path:
    """A new folder of ``n`` :func:`make_image` images ``im0.png`` ... (seeds 0..n-1)."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    for i in range(n):
        make_image(folder / f"im{i}.png", size=size, seed=i)
    return folder


@pytest.fixture
def image_dir(tmp_path) -> Path:
    """``tmp_path/images``: four 64 x 48 synthetic images (train.py, W&B and folder runs)."""
    return make_image_dir(tmp_path / "images")


@pytest.fixture
def image_file(tmp_path):
    return make_image(tmp_path / "img.png")


def two_tone(h: int = 64, w: int = 96, edge: int = 37, seed: int = 0) -> np.ndarray:
    """``(h, w, 3)`` uint8: dark left of column ``edge``, bright right, mild noise."""
    rng = np.random.default_rng(seed)
    img = np.where(np.arange(w)[None, :, None] < edge, 40.0, 200.0) * np.ones((h, w, 3))
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def digits_draw(n_classes: int, seed: int, per_class: int = 100, shuffle: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
    """A seeded draw of scikit-learn's digits (bundled, no download), as
    ``benchmarks/kless_digits.py`` draws them: ``n_classes`` random digits, ``per_class`` random
    images each, shuffled unless ``shuffle=False``. ``(X: (n, 64) float32, y: (n,))``."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    classes = rng.choice(10, n_classes, replace=False)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                          for c in classes])
    if shuffle:
        idx = rng.permutation(idx)
    return X[idx].astype(np.float32), y[idx]
