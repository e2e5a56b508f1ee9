"""The per-image output set: label map PNG, overlay PNG and JSON record, written atomically.

A task may add files: when its :class:`~deepcut.tasks.TaskOutput` has a method
``extra_outputs(image) -> {suffix: (H, W) label array | PIL image}``, each entry is written as
``<stem><suffix>.png`` (arrays as label maps, images as they are), e.g. the hierarchy task's
``<stem>_k10.png`` ... and ``<stem>_summary.png``. They are written before the JSON, which still
comes last and marks the image as complete for a resumed run.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from deepcut.io.writers import save_image, save_json, save_label_map
from deepcut.viz.overlay import overlay

__all__ = ["output_paths", "outputs_exist", "write_outputs"]


def output_paths(out_dir: str | Path, stem: str) -> dict[str, Path]:
    """``labels`` (``<stem>.png``), ``overlay`` (``<stem>_overlay.png``), ``json``."""
    out_dir = Path(out_dir)
    return {"labels": out_dir / f"{stem}.png", "overlay": out_dir / f"{stem}_overlay.png",
            "json": out_dir / f"{stem}.json"}


def outputs_exist(out_dir: str | Path, stem: str) -> bool:
    """True when every output of ``stem`` is complete (the JSON is written last)."""
    return all(p.exists() for p in output_paths(out_dir, stem).values())


def write_outputs(pred, image: Image.Image, out_dir: str | Path, stem: str,
                  extra_record: dict | None = None) -> dict[str, Path]:
    """Write the label map, the overlay and the JSON (last, so it marks completion)."""
    t0 = time.perf_counter()
    paths = output_paths(out_dir, stem)
    save_label_map(pred.labels, paths["labels"])
    bg = 0 if 0 in pred.label_names and pred.label_names[0] == "background" else None
    save_image(overlay(image, pred.labels, box=pred.box, background=bg), paths["overlay"])
    paths.update(_write_task_files(pred, image, Path(out_dir), stem))
    rec = pred.record()
    rec["timings"]["write"] = round(time.perf_counter() - t0, 6)
    rec["outputs"] = {k: p.name for k, p in paths.items() if k != "json"}
    rec["outputs"]["json"] = paths["json"].name
    if extra_record:
        rec.update(extra_record)
    save_json(rec, paths["json"])
    return paths


def _write_task_files(pred, image: Image.Image, out_dir: Path, stem: str) -> dict[str, Path]:
    """Write the task's ``extra_outputs`` (if any); returns ``{suffix without "_": path}``."""
    make = getattr(getattr(pred, "task_output", None), "extra_outputs", None)
    if make is None:
        return {}
    written: dict[str, Path] = {}
    for suffix, obj in make(image).items():
        path = out_dir / f"{stem}{suffix}.png"
        if isinstance(obj, Image.Image):
            save_image(obj, path)
        else:
            save_label_map(np.asarray(obj), path)
        written[suffix.lstrip("_")] = path
    return written
