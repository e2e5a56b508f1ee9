"""On-disk cache of backbone features, so dataset-level training runs the ViT once per image.

Layout::

    <cache_dir>/<backbone>-<12 hex>/          one folder per feature extractor
        spec.json                             what the 12 hex digits hash (human-readable)
        <2 hex>/<20 hex>.pt                   one file per image

The folder key hashes the backbone name, its weights id (``hub:<tag>``, ``file:<name>@sha256:..``,
``none``; for random-init ViTs a hash of the parameters, because every random init differs), the
input size (short side and long-side cap), the stride and the preprocessing (resize, resample,
position embeddings, channel order): any change gives a new folder, so a
stale entry is never read. The image key hashes the file's absolute path, byte size and
modification time (``st_mtime_ns``), so an edited or replaced image is recomputed without reading
its bytes. Entries are written to a temporary file and moved into place with :func:`os.replace`:
an interrupted run, or two DDP ranks writing the same entry, never leaves a partial file.

Example:
    >>> from deepcut.backbones import create_backbone
    >>> cache = FeatureCache("/tmp/deepcut-cache", create_backbone("classic", size=64))
    >>> pf = cache.features("examples/chelsea.png")   # doctest: +SKIP
    >>> cache.stats                                    # doctest: +SKIP
    {'hits': 0, 'misses': 1, 'backbone_calls': 1}
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from deepcut.backbones.base import Backbone, PatchFeatures

__all__ = ["FeatureCache", "backbone_key", "default_cache_dir", "image_key"]

#: Bumped when the entry format changes, so old entries are never misread.
# 2: entries keep the backbone's ``extra`` (the classic edge map of the local graph's contour
# cue); format-1 folders are left alone and recomputed under a new key.
CACHE_FORMAT = 2


def default_cache_dir() -> Path:
    """``$DEEPCUT_CACHE`` or ``${XDG_CACHE_HOME:-~/.cache}/deepcut/features``."""
    if os.environ.get("DEEPCUT_CACHE"):
        return Path(os.environ["DEEPCUT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "deepcut" / "features"


def _param_fingerprint(backbone: Backbone) -> str:
    """sha256 of a backbone's parameters (only for random-init models, which differ per init)."""
    h = hashlib.sha256()
    for name, p in sorted(backbone.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def backbone_spec(backbone: Backbone) -> dict[str, Any]:
    """Everything that decides a backbone's features (the cache folder key)."""
    weights_id = str(getattr(backbone, "weights_id", "none"))
    if weights_id == "random-init":
        weights_id = f"random-init@{_param_fingerprint(backbone)}"
    return {
        "format": CACHE_FORMAT,
        "backbone": backbone.name,
        "weights_id": weights_id,
        "size": getattr(backbone, "size", None),
        "max_size": getattr(backbone, "max_size", None),
        "patch_size": backbone.patch_size,
        "stride": backbone.stride,
        "feature_dim": backbone.feature_dim,
        # resize, resample, position embeddings, channel order: other options, other features
        "preprocessing": dict(getattr(backbone, "preprocessing", {})),
    }


def backbone_key(spec: dict[str, Any]) -> str:
    """``<backbone>-<12 hex>``: a readable, collision-safe folder name for ``spec``."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in spec["backbone"])
    return f"{safe}-{digest}"


def image_key(path: str | Path) -> str:
    """20 hex digits from the absolute path, byte size and mtime of an image file."""
    p = Path(path).resolve()
    st = p.stat()
    return hashlib.sha256(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]


class FeatureCache:
    """Backbone features of image files, computed once and then read from disk.

    Args:
        cache_dir: root folder of the cache (created on first write).
        backbone: the feature extractor, or a zero-argument callable returning it (built only
            on the first cache miss, so a warm cache never loads the ViT).
        spec: the backbone's :func:`backbone_spec`; required when ``backbone`` is a callable.

    Attributes:
        stats: ``hits`` (entries read), ``misses`` and ``backbone_calls`` (images run through
            the backbone) in this process.
    """

    def __init__(self, cache_dir: str | Path, backbone: Backbone | Any,
                 spec: dict[str, Any] | None = None) -> None:
        self.cache_dir = Path(cache_dir).expanduser()
        self._backbone = backbone if isinstance(backbone, Backbone) else None
        self._factory = None if isinstance(backbone, Backbone) else backbone
        if spec is None:
            if self._backbone is None:
                raise ValueError("FeatureCache needs spec= when the backbone is built lazily.")
            spec = backbone_spec(self._backbone)
        self.spec = spec
        self.folder = self.cache_dir / backbone_key(spec)
        self.stats = {"hits": 0, "misses": 0, "backbone_calls": 0}

    @property
    def backbone(self) -> Backbone:
        if self._backbone is None:
            self._backbone = self._factory()
        return self._backbone

    def path_for(self, image_path: str | Path) -> Path:
        """Where the entry of ``image_path`` lives (it may not exist yet)."""
        key = image_key(image_path)
        return self.folder / key[:2] / f"{key}.pt"

    def contains(self, image_path: str | Path) -> bool:
        try:
            return self.path_for(image_path).is_file()
        except (OSError, RuntimeError):  # a missing file or a symlink loop: read and reported later
            return False

    def get(self, image_path: str | Path) -> PatchFeatures | None:
        """The cached features of ``image_path``, or None on a miss (or an unreadable entry)."""
        try:
            entry = self.path_for(image_path)
        except (OSError, RuntimeError):  # no such image (or a symlink loop): compute() says so
            return None
        if not entry.is_file():
            return None
        try:
            d = torch.load(entry, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - a corrupt entry is recomputed, not fatal
            return None
        self.stats["hits"] += 1
        return PatchFeatures(features=d["features"], cls=d["cls"],
                             input_size=tuple(d["input_size"]), image_size=tuple(d["image_size"]),
                             patch_size=int(d["patch_size"]), stride=int(d["stride"]),
                             backbone=d["backbone"], weights_id=d["weights_id"],
                             extra=dict(d.get("extra") or {}))

    def put(self, image_path: str | Path, pf: PatchFeatures) -> Path:
        """Write the entry of ``image_path`` atomically; returns its path."""
        from deepcut.io.writers import atomic_path

        entry = self.path_for(image_path)
        self._write_spec()
        d = {"features": pf.features.contiguous(), "cls": pf.cls,
             "input_size": tuple(pf.input_size), "image_size": tuple(pf.image_size),
             "patch_size": pf.patch_size, "stride": pf.stride, "backbone": pf.backbone,
             "weights_id": pf.weights_id,
             "extra": {k: v for k, v in pf.extra.items() if isinstance(v, torch.Tensor)}}
        with atomic_path(entry) as tmp:
            torch.save(d, tmp)
        return entry

    def features(self, image_path: str | Path) -> PatchFeatures:
        """Cached features, computing and storing them on a miss.

        Raises:
            ImageReadError: the image cannot be read, or is smaller than one patch.
        """
        pf = self.get(image_path)
        if pf is not None:
            return pf
        self.stats["misses"] += 1
        pf = self.compute(image_path)
        self.put(image_path, pf)
        return pf

    def compute(self, image_path: str | Path) -> PatchFeatures:
        """Run the backbone on one image file (no cache)."""
        from deepcut.errors import ImageReadError
        from deepcut.io.images import load_image

        image = load_image(image_path)
        bb = self.backbone
        if min(image.size) < bb.patch_size:
            raise ImageReadError(f"{image_path}: image is {image.width}x{image.height} px, "
                                 f"smaller than one {bb.patch_size} px patch")
        self.stats["backbone_calls"] += 1
        return bb(image)

    def _write_spec(self) -> None:
        spec_file = self.folder / "spec.json"
        if not spec_file.is_file():
            from deepcut.io.writers import save_json

            save_json(self.spec, spec_file)
