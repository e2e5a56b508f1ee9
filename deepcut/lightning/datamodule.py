"""The LightningDataModule of dataset-level training: images -> cached backbone features.

Images come from a plain folder (``root``) or from a registered evaluation dataset
(``dataset`` + ``root``, see :func:`deepcut.data.get_dataset`). Following Lightning's
``datamodule.rst``, ``__init__`` only stores its arguments, ``prepare_data`` (one process per
node) runs the frozen backbone once per image and fills the on-disk :class:`FeatureCache`, and
``setup`` (every process) lists the images and splits them. Every later epoch, and every DDP
rank, reads features from the cache: the ViT is never run twice on an image.

A batch is a list of per-image dicts (feature grids differ in size); the module turns it into a
padded batch of graphs.

Example:
    >>> dm = DeepCutDataModule(root="examples", backbone="classic", size=64)   # doctest: +SKIP
    >>> dm.prepare_data(); dm.setup("fit"); len(dm.train_set)                  # doctest: +SKIP
"""
from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from deepcut.backbones.base import Backbone, PatchFeatures
from deepcut.errors import ConfigError, DeepCutError
from deepcut.lightning.feature_cache import FeatureCache, default_cache_dir

__all__ = ["DeepCutDataModule", "FeatureDataset", "ImageItem", "collate_items", "to_patch_features"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneFactory:
    """A picklable recipe for the backbone (DataLoader workers rebuild it only on a cache miss)."""

    name: str
    weights: str | None
    size: int
    stride: int | None
    device: str
    options: tuple[tuple[str, Any], ...]
    seed: int

    def __call__(self) -> Backbone:
        from deepcut.backbones import resolve_backbone

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)  # random-init test ViTs: the same weights on every rank
            return resolve_backbone(self.name, weights=self.weights, size=self.size,
                                    stride=self.stride, device=self.device, **dict(self.options))


@dataclass(frozen=True)
class ImageItem:
    """One image: its file and its output name (unique within the run, as ``infer.py`` names)."""

    path: Path
    stem: str


def collate_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep a batch as a list: feature grids of different images have different sizes."""
    return list(items)


def to_patch_features(item: dict[str, Any]) -> PatchFeatures:
    """Rebuild the :class:`PatchFeatures` of one batch item."""
    m = item["meta"]
    return PatchFeatures(features=item["features"], cls=None, input_size=tuple(m["input_size"]),
                         image_size=tuple(m["image_size"]), patch_size=int(m["patch_size"]),
                         stride=int(m["stride"]), backbone=m["backbone"],
                         weights_id=m["weights_id"], extra=dict(item.get("extra") or {}))


class FeatureDataset(Dataset):
    """Backbone features of a list of images, read from (or written to) a :class:`FeatureCache`.

    ``dataset[i]`` is a dict: ``features`` ``(h, w, D)`` float32, ``meta`` (sizes, patch size,
    stride, backbone, weights id), ``extra`` (the backbone's extras, e.g. the classic edge map
    of the local graph's contour cue), ``path``, ``stem`` and ``index``.
    """

    def __init__(self, items: list[ImageItem], cache: FeatureCache) -> None:
        self.items = items
        self.cache = cache

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        it = self.items[index]
        pf = self.cache.features(it.path)
        return {
            "features": pf.features,
            "meta": {"input_size": list(pf.input_size), "image_size": list(pf.image_size),
                     "patch_size": pf.patch_size, "stride": pf.stride, "backbone": pf.backbone,
                     "weights_id": pf.weights_id},
            "extra": dict(pf.extra),
            "path": str(it.path),
            "stem": it.stem,
            "index": index,
        }


class DeepCutDataModule(L.LightningDataModule):
    """Images of a folder or of a named dataset, as cached backbone features.

    Args:
        root: folder of images (``dataset`` unset), or the root of the named dataset.
        dataset: a registered dataset name (``ecssd``, ``duts_te``, ``cub``, ...; see
            :data:`deepcut.data.DATASETS`); None means ``root`` is a plain image folder.
        dataset_options: extra arguments for the dataset loader (``split``, ``list_file``, ...).
        predict_root: folder of images for ``predict``; None predicts every image of ``root``.
        backbone: feature extractor (``classic``, ``dino_vits8``, ``timm:<vit>``, ``auto``).
        weights: local backbone checkpoint (timm or original DINO layout).
        size: short side of the network input in px (DeepCut: 280).
        stride: patch stride (None = the patch size).
        resize, resample, pos_embed, channel_layout, dino_head: the backbone's preprocessing
            (None = its own default; DeepCut's values:
            :data:`deepcut.backbones.paper.PAPER_PREPROCESSING`), as ``infer.py --resize ...``.
        backbone_options: extra backbone-factory arguments, e.g. ``{pretrained: false, depth: 2}``
            for a tiny random-init test ViT (seeded with ``seed``, so every DDP rank builds the
            same one).
        device: where the backbone runs while filling the cache (``cpu``, ``cuda``).
        batch_size: images (graphs) per optimiser step.
        num_workers: DataLoader worker processes (the cache makes 0 a sensible default).
        cache_dir: feature cache folder (None = ``$DEEPCUT_CACHE`` or ``~/.cache/deepcut/features``).
        val_fraction: share of the images held out for validation (seeded split); 0 validates
            on the training images themselves (the objective is unsupervised).
        max_images: use only the first N images (sorted), e.g. for a quick run.
        seed: seed of the train/val split and of random-init backbones.
    """

    def __init__(
        self,
        root: str | None = None,
        dataset: str | None = None,
        dataset_options: dict[str, Any] | None = None,
        predict_root: str | None = None,
        backbone: str = "classic",
        weights: str | None = None,
        size: int = 280,
        stride: int | None = None,
        resize: Literal["aspect", "square"] | None = None,
        resample: Literal["bicubic", "bilinear", "lanczos", "nearest"] | None = None,
        pos_embed: Literal["timm", "dino"] | None = None,
        channel_layout: Literal["head_major", "interleaved"] | None = None,
        dino_head: Literal["teacher", "student"] | None = None,
        backbone_options: dict[str, Any] | None = None,
        device: str = "cpu",
        batch_size: int = 8,
        num_workers: int = 0,
        cache_dir: str | None = None,
        val_fraction: float = 0.0,
        max_images: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.root = root
        self.dataset = dataset
        self.dataset_options = dict(dataset_options or {})
        self.predict_root = predict_root
        self.backbone_name = backbone
        self.weights = weights
        self.size = size
        self.stride = stride
        preprocessing = {"resize": resize, "resample": resample, "pos_embed": pos_embed,
                         "channel_layout": channel_layout, "dino_head": dino_head}
        # one dict of factory arguments: the named options win over backbone_options' copies
        self.backbone_options = {**dict(backbone_options or {}),
                                 **{k: v for k, v in preprocessing.items() if v is not None}}
        self.device = device
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.cache_dir = cache_dir
        self.val_fraction = val_fraction
        self.max_images = max_images
        self.seed = seed
        self._backbone: Backbone | None = None
        self._cache: FeatureCache | None = None
        self.train_set: FeatureDataset | None = None
        self.val_set: FeatureDataset | None = None
        self.predict_set: FeatureDataset | None = None
        #: Images ``prepare_data`` could not read (each reported on one line naming it).
        self.skipped: list[str] = []

    # -- the backbone and its cache -----------------------------------------------------------
    @property
    def backbone_factory(self) -> BackboneFactory:
        return BackboneFactory(self.backbone_name, self.weights, self.size, self.stride,
                               self.device, tuple(sorted(self.backbone_options.items())),
                               self.seed)

    @property
    def backbone(self) -> Backbone:
        """The frozen feature extractor, built on first use (seeded: random inits agree)."""
        if self._backbone is None:
            self._backbone = self.backbone_factory()
        return self._backbone

    @property
    def feature_dim(self) -> int:
        """D of the backbone features (linked to ``model.in_dim`` by ``train.py``)."""
        return int(self.backbone.feature_dim)

    @property
    def cache(self) -> FeatureCache:
        if self._cache is None:
            root = Path(self.cache_dir) if self.cache_dir else default_cache_dir()
            self._cache = FeatureCache(root, self.backbone)
        return self._cache

    def backbone_info(self) -> dict[str, Any]:
        """Provenance of the features, recorded in checkpoints (what inference must rebuild)."""
        bb = self.backbone
        return {"name": bb.name, "weights_id": bb.weights_id, "weights": self.weights,
                "size": self.size, "stride": bb.stride, "patch_size": bb.patch_size,
                "feature_dim": bb.feature_dim, "options": dict(self.backbone_options),
                "preprocessing": dict(getattr(bb, "preprocessing", {}))}

    # -- listing ----------------------------------------------------------------------------
    def _list(self, root: str | None, dataset: str | None) -> list[ImageItem]:
        from deepcut.io.images import list_images
        from deepcut.io.outputs import output_stems

        if root is None:
            raise ConfigError("DeepCutDataModule needs root: a folder of images, or the root of "
                              "the dataset named by `dataset` (e.g. --data.root DIR).")
        if dataset is not None:
            from deepcut.data import get_dataset

            ds = get_dataset(dataset, root, **self.dataset_options)
            items = [ImageItem(Path(s.image_path), str(s.id).replace("/", "__")) for s in ds]
        else:
            folder = Path(root).expanduser()
            if not folder.is_dir():
                raise ConfigError(f"data root {folder} is not a folder of images.")
            files = list_images(folder)
            items = [ImageItem(f, s) for f, s in zip(files, output_stems(files))]
        if self.max_images is not None:
            items = items[: self.max_images]
        if not items:
            raise ConfigError(f"no images found under {root}.")
        return items

    def _all_items(self) -> list[ImageItem]:
        return self._list(self.root, self.dataset)

    def _predict_items(self) -> list[ImageItem]:
        if self.predict_root is not None:
            return self._list(self.predict_root, None)
        return self._all_items()

    # -- Lightning hooks ----------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Fill the feature cache (one process per node): the only place the backbone runs."""
        from tqdm import tqdm

        from deepcut.cli.common import one_line
        from deepcut.errors import name_file

        items: dict[Path, ImageItem] = {}
        if self.root is not None or self.predict_root is None:
            items.update({it.path: it for it in self._all_items()})
        if self.predict_root is not None:
            items.update({it.path: it for it in self._predict_items()})
        cache = self.cache
        todo = [p for p in items if not cache.contains(p)]
        self.skipped = []
        for path in tqdm(todo, desc="backbone features", unit="img", disable=len(todo) < 2):
            try:
                cache.features(path)
            except DeepCutError as e:
                self.skipped.append(str(path))
                tqdm.write(f"skipped: {one_line(name_file(path, str(e)), escape=True)}",
                           file=sys.stderr)
            except OSError as e:
                from deepcut.io.folders import FATAL_WRITE_ERRNOS, output_error

                if e.errno in FATAL_WRITE_ERRNOS:  # the cache folder, not the image
                    raise output_error(e, cache.folder) from None
                self.skipped.append(str(path))
                tqdm.write(f"skipped: {one_line(f'{path}: {e.strerror or e}', escape=True)}",
                           file=sys.stderr)
            except Exception as e:  # noqa: BLE001 - one bad image must not end the run
                self.skipped.append(str(path))
                msg = f"{path}: unexpected {type(e).__name__}: {e}"
                tqdm.write(f"skipped: {one_line(msg, escape=True)}", file=sys.stderr)

    def _dataset(self, items: list[ImageItem]) -> FeatureDataset:
        # In-process loading shares this module's cache (and its counters); worker processes get
        # a cache that would rebuild the backbone from its recipe only on a miss.
        cache = self.cache if self.num_workers == 0 else FeatureCache(
            self.cache.cache_dir, self.backbone_factory, spec=self.cache.spec)
        return FeatureDataset(items, cache)

    def _usable(self, items: list[ImageItem]) -> list[ImageItem]:
        """Items whose features exist (unreadable images were reported by ``prepare_data``)."""
        ok = [it for it in items if self.cache.contains(it.path)]
        if not ok:
            raise DeepCutError(f"none of the {len(items)} images could be read (each is reported "
                               "above), or prepare_data was not run; nothing to train on.")
        return ok

    def setup(self, stage: str | None = None) -> None:
        """List and split the images (every process); the split is seeded, so ranks agree."""
        if stage in ("fit", "validate", "test", None):
            items = self._usable(self._all_items())
            n_val = 0
            if self.val_fraction > 0 and len(items) > 1:
                n_val = min(len(items) - 1, max(1, math.floor(len(items) * self.val_fraction)))
            if n_val:
                perm = torch.randperm(len(items), generator=torch.Generator().manual_seed(
                    self.seed)).tolist()
                val = sorted(perm[:n_val])
                train = sorted(perm[n_val:])
                self.train_set = self._dataset([items[i] for i in train])
                self.val_set = self._dataset([items[i] for i in val])
            else:
                self.train_set = self._dataset(items)
                self.val_set = self.train_set
        if stage in ("predict", None):
            self.predict_set = self._dataset(self._usable(self._predict_items()))

    def _loader(self, ds: FeatureDataset | None, shuffle: bool) -> DataLoader:
        if ds is None:
            raise DeepCutError("DeepCutDataModule.setup() has not been run for this stage.")
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, collate_fn=collate_items,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_set, shuffle=False)
