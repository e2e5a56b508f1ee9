"""The per-image output set: label map PNG, overlay PNG and JSON record, written atomically."""
from __future__ import annotations

import time
from pathlib import Path

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
    rec = pred.record()
    rec["timings"]["write"] = round(time.perf_counter() - t0, 6)
    rec["outputs"] = {k: p.name for k, p in paths.items()}
    if extra_record:
        rec.update(extra_record)
    save_json(rec, paths["json"])
    return paths
