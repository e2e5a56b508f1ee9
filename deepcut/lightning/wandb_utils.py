"""Weights & Biases helpers that do not need Lightning: per-image logging for ``infer.py`` and
reading an offline run back from its files.

wandb is imported only when one of these is used. An offline run (``mode="offline"``) needs no
network; its folder ``<dir>/wandb/offline-run-<time>-<id>/`` holds ``run-<id>.wandb`` (every
logged record, in LevelDB log format) and ``files/media/images/*.png``; ``wandb sync <folder>``
uploads it. wandb 0.31 writes no ``files/wandb-summary.json`` offline, so
:func:`read_offline_run` decodes the ``.wandb`` records instead.

Example:
    >>> log = InferWandbLogger(project="deepcut", mode="offline", dir="runs")   # doctest: +SKIP
    >>> log(pred, image, "img")                                                 # doctest: +SKIP
    >>> log.finish()                                                            # doctest: +SKIP
"""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

__all__ = ["InferWandbLogger", "find_offline_runs", "read_offline_run", "wait_until_written"]

# LevelDB log format (what wandb's .wandb files use): 32 KiB blocks, records split into chunks
# with a 7-byte header (crc32c u32, length u16, type u8); the file starts with a 7-byte wandb
# header (":W&B", magic u16, version u8).
_BLOCK = 32768
_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a wandb run file")
    out: list[bytes] = []
    buf = b""
    pos = _HEADER
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + _HEADER])
        pos += _HEADER
        if kind == 0 and length == 0:  # zero padding up to the block end
            pos += left - _HEADER
            continue
        chunk = data[pos:pos + length]
        pos += length
        if kind == _FULL:
            out.append(chunk)
        elif kind == _FIRST:
            buf = chunk
        elif kind == _MIDDLE:
            buf += chunk
        elif kind == _LAST:
            out.append(buf + chunk)
            buf = b""
    return out


def _items(items) -> dict[str, Any]:
    """Record items as a dict; nested keys (media, dict values) become nested dicts."""
    d: dict[str, Any] = {}
    for it in items:
        try:
            value = json.loads(it.value_json)
        except ValueError:
            value = it.value_json
        path = [it.key] if it.key else list(it.nested_key)
        node = d
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = value
    return d


def find_offline_runs(save_dir: str | Path) -> list[Path]:
    """Offline run folders under ``save_dir`` (``save_dir/wandb/offline-run-*``), oldest first."""
    root = Path(save_dir)
    found = sorted(root.glob("wandb/offline-run-*")) + sorted(root.glob("offline-run-*"))
    return [p for p in found if p.is_dir()]


def read_offline_run(run_dir: str | Path) -> dict[str, Any]:
    """What an offline W&B run holds, read back from its files.

    Returns:
        ``history`` (list of logged rows), ``summary`` (last value per key), ``config``,
        ``keys`` (every logged key), ``images`` (paths of the logged image files), ``files``
        (paths the run saved, relative to ``files/``) and ``complete`` (the run's exit record
        is written: it was finished).
    """
    from wandb.proto import wandb_internal_pb2 as pb

    run_dir = Path(run_dir)
    run_files = sorted(run_dir.glob("run-*.wandb"))
    if not run_files:
        raise FileNotFoundError(f"{run_dir}: no run-*.wandb file (not a wandb run folder)")
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    config: dict[str, Any] = {}
    saved: list[str] = []
    complete = False
    for raw in _records(run_files[0]):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            history.append(_items(rec.history.item))
        elif kind == "summary":
            summary.update(_items(rec.summary.update))
        elif kind == "run":
            config.update(_items(rec.run.config.update))
        elif kind == "config":
            config.update(_items(rec.config.update))
        elif kind == "files":
            saved.extend(f.path for f in rec.files.files)
        elif kind == "exit":
            complete = True
    keys = sorted({k for row in history for k in row} | set(summary))
    images = sorted(str(p) for p in (run_dir / "files" / "media" / "images").rglob("*")
                    if p.is_file())
    return {"history": history, "summary": summary, "config": config, "keys": keys,
            "images": images, "files": saved, "complete": complete}


def wait_until_written(run_dir: str | Path, timeout: float = 30.0) -> bool:
    """Wait until an offline run's file holds its exit record (True), or ``timeout`` seconds.

    ``run.finish()`` returns when the wandb service has the data; the service writes the file
    a moment later, so a ``wandb sync`` (or a reader) right after ``finish`` could see a
    partial run.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            if read_offline_run(run_dir)["complete"]:
                return True
        except (FileNotFoundError, ValueError):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


class InferWandbLogger:
    """Per-image W&B logging for ``infer.py``: one run, one step per segmented image.

    Each image logs its NCut, K, timings per stage and (for the first ``max_images``) an overlay;
    :meth:`finish` adds a table of all images and prints how to upload an offline run.

    Args:
        project, entity, name, tags: as ``wandb.init``.
        mode: ``offline`` (no network; ``wandb sync`` later), ``online`` or ``disabled``.
        dir: folder for the ``wandb/`` run directories.
        config: run config (the segmentation settings).
        max_images: overlays logged at most (a large folder would otherwise upload every image).

    Raises:
        ConfigError: wandb is not installed.
    """

    def __init__(self, project: str = "deepcut", *, entity: str | None = None,
                 name: str | None = None, tags: list[str] | None = None, mode: str = "offline",
                 dir: str | Path | None = None, config: dict[str, Any] | None = None,
                 max_images: int = 64) -> None:
        try:
            import wandb
        except ModuleNotFoundError:
            from deepcut.errors import ConfigError

            raise ConfigError("--wandb needs wandb: pip install wandb") from None
        self._wandb = wandb
        if dir is not None:
            Path(dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, entity=entity, name=name, tags=tags or None,
                              mode=mode, dir=str(dir) if dir is not None else None,
                              config=config or {}, job_type="infer")
        self.max_images = max_images
        self.rows: list[list[Any]] = []
        self.n = 0

    def __call__(self, pred, image, stem: str) -> None:
        """The ``logger(pred, image, stem)`` hook of :func:`deepcut.cli.infer.run`."""
        from deepcut.viz.overlay import overlay

        t = {f"timings/{k}": float(v) for k, v in pred.timings.items()}
        total = sum(float(v) for v in pred.timings.values())
        row = {"image/ncut": float(pred.ncut), "image/n_clusters": int(pred.n_clusters),
               "image/seconds": total, **t}
        if self.n < self.max_images:
            bg = 0 if pred.label_names.get(0) == "background" else None
            row["image/overlay"] = self._wandb.Image(
                overlay(image, getattr(pred, "overlay_labels", pred.labels), box=pred.box,
                        background=bg), caption=stem)
        self.run.log(row, step=self.n)
        self.rows.append([stem, int(pred.n_clusters), float(pred.ncut), total])
        self.n += 1

    def finish(self, file=None) -> str | None:
        """Log the per-image table, finish the run; returns an offline run's folder."""
        from deepcut.lightning.loggers import finish_wandb

        if self.rows:
            table = self._wandb.Table(columns=["image", "n_clusters", "ncut", "seconds"],
                                      data=self.rows)
            self.run.log({"images": table}, step=self.n)
        return finish_wandb(self.run, file=file or sys.stderr)
