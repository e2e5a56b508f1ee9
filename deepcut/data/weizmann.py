"""Weizmann Segmentation Evaluation Database (Alpert et al., CVPR 2007): SED1 and SED2."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from deepcut.data.base import Sample, SegmentationDataset, read_id_list
from deepcut.data.masks import load_binary_mask, load_label_map

__all__ = ["WeizmannSED", "WeizmannSED1", "WeizmannSED2"]

_ANN = re.compile(r"^(?P<id>.+)_ann(?P<k>\d+)\.png$")


class WeizmannSED(SegmentationDataset):
    """Weizmann SED with per-annotator label maps and a consensus foreground mask.

    Layout (``root`` holds ``1obj/`` and ``2obj/``, or is one of them), as converted in
    ``$DATA/weizmann_sed`` from the colour-coded originals::

        <n>obj/images/<id>.png                RGB image
        <n>obj/annotations/<id>_ann<k>.png    annotator k: 0 bg, 1 object (2obj: 1/2 two objects,
                                              red/blue not consistent across annotators)
        <n>obj/masks/<id>.png                 consensus 0/255: > half of the annotators
        <n>obj/list.txt                       ids (optional; else every image)

    ``Sample.mask`` ``(H, W)`` uint8 {0, 1} is the consensus (recomputed from the annotations
    with the same strict-majority rule when ``masks/`` is absent); ``Sample.annotations`` the
    ``(H, W)`` uint8 annotator maps ordered by annotator number, listed in
    ``Sample.extra["annotators"]``. The original per-image folders (``src_color``/``human_seg``)
    are not read: convert them first.

    Args:
        root: see above.
        n_objects: 1 (SED1, "1obj") or 2 (SED2, "2obj").
    """

    name = "weizmann_sed"
    layout = "<root>/{1obj,2obj}/images/<id>.png with annotations/<id>_ann<k>.png and masks/<id>.png"

    def __init__(self, root: str | Path, n_objects: int = 1) -> None:
        super().__init__(root)
        if n_objects not in (1, 2):
            raise ValueError(f"n_objects must be 1 or 2. Got {n_objects!r} instead.")
        self.n_objects = n_objects
        sub = self.root / f"{n_objects}obj"
        self.base = sub if sub.is_dir() else self.root
        if not (self.base / "images").is_dir():
            self._fail(f"no {n_objects}obj/images/ or images/ folder in {self.root}")
        self.image_dir = self.base / "images"
        self.ann_dir = self.base / "annotations"
        if not self.ann_dir.is_dir():
            self._fail(f"missing folder {self.ann_dir}")
        self.mask_dir = self.base / "masks" if (self.base / "masks").is_dir() else None
        self._annotators: dict[str, list[tuple[int, Path]]] = {}
        for p in self.ann_dir.glob("*_ann*.png"):
            if m := _ANN.match(p.name):
                self._annotators.setdefault(m["id"], []).append((int(m["k"]), p))
        listed = self.base / "list.txt"
        self._ids = read_id_list(listed) if listed.is_file() else sorted(
            p.stem for p in self.image_dir.glob("*.png")
        )
        self._check_not_empty()

    def _load(self, item_id: str) -> Sample:
        found = sorted(self._annotators.get(item_id, []))
        if not found:
            self._fail(f"item {item_id!r} has no {self.ann_dir}/{item_id}_ann<k>.png")
        annotations = [load_label_map(p) for _, p in found]
        if self.mask_dir is not None:
            mask = load_binary_mask(self.mask_dir / f"{item_id}.png")
        else:
            votes = np.sum([a > 0 for a in annotations], axis=0)
            mask = (2 * votes > len(annotations)).astype(np.uint8)  # strictly more than half
        return Sample(
            id=item_id,
            image_path=self.image_dir / f"{item_id}.png",
            mask=mask,
            annotations=annotations,
            extra={"annotators": [k for k, _ in found]},
        )


class WeizmannSED1(WeizmannSED):
    """Weizmann SED1: 100 images with one object, 3 annotators. See :class:`WeizmannSED`."""

    name = "weizmann_sed1"

    def __init__(self, root: str | Path) -> None:
        super().__init__(root, n_objects=1)


class WeizmannSED2(WeizmannSED):
    """Weizmann SED2: 100 images with two objects, 1-3 annotators. See :class:`WeizmannSED`."""

    name = "weizmann_sed2"

    def __init__(self, root: str | Path) -> None:
        super().__init__(root, n_objects=2)
