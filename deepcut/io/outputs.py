"""The per-image output set: label map PNG, overlay PNG and JSON record, written atomically.

A task may add files: when its :class:`~deepcut.tasks.TaskOutput` has a method
``extra_outputs(image) -> {suffix: (H, W) label array | PIL image}``, each entry is written as
``<stem><suffix>.png`` (arrays as label maps, images as they are), e.g. the hierarchy task's
``<stem>_k10.png`` ... and ``<stem>_summary.png``. They are written before the JSON, which still
comes last and marks the image as complete for a resumed run.

Output names are unique per input (:func:`output_stems`): two inputs never share a name, whatever
their folders, extensions or letter case, so no image's outputs are skipped or overwritten because
of another's. A resumed run trusts existing outputs only when their JSON records the same image
(:func:`recorded_image`); outputs of another image under the name are a collision, not a skip.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from deepcut.io.writers import save_image, save_json, save_label_map
from deepcut.viz.overlay import overlay

__all__ = ["OVERLAY_FORMATS", "OVERLAY_PNG_LEVEL", "output_paths", "output_stems", "outputs_exist",
           "recorded_image", "result_warnings", "same_image", "warnings_said_per_file",
           "write_outputs"]

#: Longest output stem in bytes: leaves room for suffixes such as ``_overlay.png`` and the
#: temporary ``.<name>.<pid>-<random>.part`` within the usual 255-byte file-name limit.
MAX_STEM_BYTES = 200
#: zlib level of the overlay PNG. Level 1 encoded 3.7x faster than Pillow's default (6) for a
#: 2.4% larger file (10 BSDS images, benchmarks/throughput.py): the overlay is for looking at,
#: and its encoding was a third of a classic run. The label map keeps Pillow's
#: default level: its bytes are what evaluation reads and are unchanged by this.
OVERLAY_PNG_LEVEL = 1
#: Overlay file formats and their encoder settings: png is lossless; jpg and webp are smaller and
#: faster to encode, lossy (fine for a picture to look at, never for the label map).
OVERLAY_FORMATS: dict[str, dict] = {"png": {"compress_level": OVERLAY_PNG_LEVEL},
                                    "jpg": {"quality": 90}, "webp": {"quality": 90, "method": 0}}
#: Suffixes the writers append to a stem (the overlay; the hierarchy task's ``_k<K>`` levels and
#: ``_summary`` grid): a stem that equals another plus one of them collides.
_RESERVED_SUFFIX = re.compile(r"(?:_overlay|_summary|_k\d+)$")


def _hash8(path: Path) -> str:
    return hashlib.sha1(str(path.absolute()).encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _fit(stem: str, path: Path) -> str:
    """``stem`` cut to :data:`MAX_STEM_BYTES` (with a hash of the path, to stay unique)."""
    raw = stem.encode("utf-8", "surrogateescape")
    if len(raw) <= MAX_STEM_BYTES:
        return stem
    cut = raw[: MAX_STEM_BYTES - 9].decode("utf-8", "ignore")
    return f"{cut}-{_hash8(path)}"


def _candidate(path: Path, level: int) -> str:
    """Output name of ``path`` at disambiguation ``level``.

    0: the stem; 1: ``stem_ext``; 2..P+1: the last 1..P parent folder names joined by ``__``
    before it; P+2: ``stem_ext-<8 hex of the absolute path>``.
    """
    stem = path.stem or path.name
    ext = path.suffix.lstrip(".").lower()
    if level == 0:
        return _fit(stem, path)
    named = f"{stem}_{ext}" if ext else stem
    parents = [p for p in path.absolute().parent.parts if p not in ("/", "\\")]
    if level - 1 <= len(parents) and level >= 2:
        return _fit("__".join([*parents[len(parents) - (level - 1):], named]), path)
    if level == 1:
        return _fit(named, path)
    return _fit(f"{named}-{_hash8(path)}", path)


def _extends_another(name: str, names: Counter) -> bool:
    """Whether ``name`` is another name plus a reserved suffix (its files would be that one's)."""
    m = _RESERVED_SUFFIX.search(name)
    return m is not None and names[name[:m.start()]] > 0


def output_stems(files: Sequence[str | Path]) -> list[str]:
    """One unique output name per input file (inputs are distinct files).

    The name is the file's stem; where stems clash (``a/img.jpg`` and ``b/img.jpg``, ``img.JPG``
    and ``img.jpg``, ``img.png`` and ``img.jpg``; compared case-insensitively, since the output
    folder may be on a case-insensitive disk; also ``x_overlay.jpg``, ``x_summary.jpg`` or
    ``x_k10.jpg`` against the overlay or the hierarchy outputs of ``x.jpg``) the clashing ones
    get, in turn, their extension (``img_jpg``), their parent folder
    names (``a__img_jpg``) and finally a hash of their absolute path, until every name is unique.
    Deterministic: the same inputs give the same names, so a rerun resumes.
    """
    paths = [Path(f) for f in files]
    levels = [0] * len(paths)
    max_level = [len(p.absolute().parent.parts) + 2 for p in paths]
    while True:
        names = [_candidate(p, lv) for p, lv in zip(paths, levels)]
        keys = Counter(n.casefold() for n in names)
        clash = [i for i, n in enumerate(names)
                 if keys[n.casefold()] > 1 or _extends_another(n.casefold(), keys)]
        if not clash:
            return names
        bumped = False
        for i in clash:
            if levels[i] < max_level[i]:
                levels[i] += 1
                bumped = True
        if not bumped:  # only identical paths remain: that is the caller's bug
            raise ValueError(f"output_stems: the same file is listed twice ({paths[clash[0]]})")


def recorded_image(out_dir: str | Path, stem: str) -> str | None:
    """The ``image`` recorded in ``<stem>.json`` (None: no readable JSON, or no such key)."""
    try:
        rec = json.loads((Path(out_dir) / f"{stem}.json").read_text())
    except (OSError, ValueError):
        return None
    image = rec.get("image") if isinstance(rec, dict) else None
    return str(image) if image is not None else None


def same_image(recorded: str | Path, path: str | Path) -> bool:
    """Whether a recorded image path means the file ``path``.

    The same file when both exist (symlinks, ``./`` and absolute spellings agree); when the
    recorded path no longer resolves from here (a run started elsewhere), the same file name.
    """
    recorded, path = Path(recorded), Path(path)
    try:
        if recorded.exists() and path.exists():
            return os.path.samefile(recorded, path)
    except OSError:
        pass
    return recorded.name == path.name


def output_paths(out_dir: str | Path, stem: str, overlay_format: str = "png") -> dict[str, Path]:
    """``labels`` (``<stem>.png``), ``overlay`` (``<stem>_overlay.<overlay_format>``), ``json``."""
    out_dir = Path(out_dir)
    return {"labels": out_dir / f"{stem}.png",
            "overlay": out_dir / f"{stem}_overlay.{overlay_format}",
            "json": out_dir / f"{stem}.json"}


def outputs_exist(out_dir: str | Path, stem: str, image: str | Path | None = None,
                  overlay_format: str = "png") -> bool:
    """True when every output of ``stem`` is complete (the JSON is written last) and, when
    ``image`` is given, its JSON records that very image."""
    if not all(p.exists() for p in output_paths(out_dir, stem, overlay_format).values()):
        return False
    if image is None:
        return True
    rec = recorded_image(out_dir, stem)
    return rec is not None and same_image(rec, image)


def write_outputs(pred, image: Image.Image, out_dir: str | Path, stem: str,
                  extra_record: dict | None = None, overlay_format: str = "png"
                  ) -> dict[str, Path]:
    """Write the label map, the overlay and the JSON (last, so it marks completion).

    ``overlay_format``: one of :data:`OVERLAY_FORMATS` (png: zlib level
    :data:`OVERLAY_PNG_LEVEL`); the label map is always a lossless PNG.

    If any write fails, the files of ``stem`` already written by this call are removed again:
    no incomplete set is left under final names.
    """
    t0 = time.perf_counter()
    if overlay_format not in OVERLAY_FORMATS:
        raise ValueError(f"overlay_format must be one of {sorted(OVERLAY_FORMATS)}. "
                         f"Got {overlay_format!r}.")
    paths = output_paths(out_dir, stem, overlay_format)
    written: list[Path] = []
    try:
        save_label_map(pred.labels, paths["labels"])
        written.append(paths["labels"])
        bg = 0 if 0 in pred.label_names and pred.label_names[0] == "background" else None
        save_image(overlay(image, getattr(pred, "overlay_labels", pred.labels), box=pred.box,
                           background=bg), paths["overlay"], **OVERLAY_FORMATS[overlay_format])
        written.append(paths["overlay"])
        paths.update(_write_task_files(pred, image, Path(out_dir), stem, written))
        rec = pred.record()
        rec["timings"]["write"] = round(time.perf_counter() - t0, 6)
        rec["outputs"] = {k: p.name for k, p in paths.items() if k != "json"}
        rec["outputs"]["json"] = paths["json"].name
        if extra_record:
            rec.update(extra_record)
        save_json(rec, paths["json"])
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return paths


def _write_task_files(pred, image: Image.Image, out_dir: Path, stem: str,
                      written: list[Path] | None = None) -> dict[str, Path]:
    """Write the task's ``extra_outputs`` (if any); returns ``{suffix without "_": path}``."""
    make = getattr(getattr(pred, "task_output", None), "extra_outputs", None)
    if make is None:
        return {}
    done: dict[str, Path] = {}
    for suffix, obj in make(image).items():
        path = out_dir / f"{stem}{suffix}.png"
        if isinstance(obj, Image.Image):
            save_image(obj, path)
        else:
            save_label_map(np.asarray(obj), path)
        done[suffix.lstrip("_")] = path
        if written is not None:
            written.append(path)
    return done


def result_warnings(pred) -> list[str]:
    """The warnings a result carries (solver summary ``warnings`` and the record's own)."""
    found: list[str] = []
    try:
        rec = pred.record()
    except Exception:  # noqa: BLE001 - a record that cannot be built has no warnings to show
        rec = {}
    for src in (rec, rec.get("solver") if isinstance(rec.get("solver"), dict) else {},
                pred.meta.get("solver") or {}):
        for w in (src.get("warnings") or []):
            if str(w) not in found:
                found.append(str(w))
    return found


@contextmanager
def warnings_said_per_file():
    """Inside, a solver's :class:`~deepcut.solvers.DegenerateResultWarning` is not shown: the
    command line says each of :func:`result_warnings` once, on a line naming the file (without
    this, every degenerate result was printed twice, once without the file)."""
    from deepcut.solvers.base import DegenerateResultWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateResultWarning)
        yield
