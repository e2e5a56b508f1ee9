"""Sharded prediction: every rank writes the outputs of its own images, as ``infer.py`` does.

Lightning gives each predict rank a disjoint share of the images (its
``UnrepeatedDistributedSamplerWrapper``: no padding duplicates), output names are unique over the
whole image list (the datamodule assigns them before sharding, with ``infer.py``'s naming rule),
and every file is written atomically (temporary file, then ``os.replace``). So ranks never write
the same file and an interrupted run leaves no partial file. A rerun drops finished images from
each batch before the head runs (nothing is recomputed), and an output name that holds another
image's result is reported and left alone, as ``infer.py`` does; so is an image whose outputs
cannot be written, unless no later one could be (a full or read-only disk stops the run).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import BasePredictionWriter

__all__ = ["SegmentationWriter"]


def _say(kind: str, message: str) -> None:
    """One line on stderr, as infer.py and the datamodule report each image."""
    from tqdm import tqdm

    from deepcut.cli.common import one_line

    tqdm.write(f"{kind}: {one_line(message, escape=True)}", file=sys.stderr)


class SegmentationWriter(BasePredictionWriter):
    """Writes ``<stem>.png`` (labels), ``<stem>_overlay.png`` and ``<stem>.json`` per image.

    Args:
        output_dir: output folder (None = ``<trainer.default_root_dir>/predictions``).
        overwrite: recompute images whose outputs exist (default: skip them).
    """

    def __init__(self, output_dir: str | None = None, overwrite: bool = False) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.overwrite = overwrite
        self.written = 0
        self.skipped = 0
        #: images of this rank that were reported and not written (name clash, write error)
        self.failed: list[str] = []

    def _out(self, trainer) -> Path:
        return Path(self.output_dir) if self.output_dir else \
            Path(trainer.default_root_dir) / "predictions"

    def _skip(self, path: str, message: str) -> None:
        self.failed.append(str(path))
        _say("skipped", message)

    def on_predict_batch_start(self, trainer, pl_module, batch: list[dict[str, Any]],
                               batch_idx: int, dataloader_idx: int = 0) -> None:
        """Drop from ``batch`` (in place: the list ``predict_step`` receives) the images whose
        outputs exist, and those whose output name holds another image's result (reported)."""
        if self.overwrite:
            return
        from deepcut.io.outputs import outputs_exist, recorded_image, same_image

        out = self._out(trainer)
        keep = []
        for item in batch:
            stem, path = item["stem"], item["path"]
            if outputs_exist(out, stem, image=path):
                self.skipped += 1
                continue
            owner = recorded_image(out, stem)
            if owner is not None and not same_image(owner, path):
                self._skip(path, f"{path}: its output name {out / stem}.json already holds the "
                                 f"result of another image ({owner}); pass --writer.overwrite "
                                 "true to replace it, or choose another --writer.output_dir")
                continue
            keep.append(item)
        batch[:] = keep

    def write_on_batch_end(self, trainer, pl_module, prediction: list[dict[str, Any]],
                           batch_indices, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        from deepcut.errors import DeepCutError, name_file
        from deepcut.io.folders import FATAL_WRITE_ERRNOS, output_error
        from deepcut.io.images import load_image
        from deepcut.io.outputs import result_warnings, write_outputs

        out = self._out(trainer)
        for i, rec in enumerate(prediction):
            stem = rec["stem"]
            pred = rec["prediction"]
            try:
                image = load_image(rec["path"])
                extra = {"checkpoint": pred.meta["checkpoint"]} if "checkpoint" in pred.meta \
                    else None
                paths = write_outputs(pred, image, out, stem, extra_record=extra)
            except DeepCutError as e:
                self._skip(rec["path"], name_file(rec["path"], str(e)))
                continue
            except OSError as e:
                if e.errno in FATAL_WRITE_ERRNOS:  # no later image can be written either
                    raise output_error(e, out) from None
                self._skip(rec["path"], f"{rec['path']}: cannot write its outputs "
                                        f"{out / stem}.*: {e.strerror or e}")
                continue
            self.written += 1
            for w in result_warnings(pred):  # a degenerate result: one line naming the file
                _say("warning", f"{rec['path']}: {w}")
            # Keep only a small summary in the trainer's list of predictions, not the label maps.
            prediction[i] = {"stem": stem, "path": rec["path"], "n_clusters": pred.n_clusters,
                             "ncut": pred.ncut, "outputs": {k: str(p) for k, p in paths.items()},
                             "rank": trainer.global_rank}

    def on_predict_end(self, trainer, pl_module) -> None:
        failed = f", {len(self.failed)} failed" if self.failed else ""
        print(f"rank {trainer.global_rank}: {self.written} images written, {self.skipped} "
              f"skipped (outputs exist){failed} -> {self._out(trainer)}", flush=True)
