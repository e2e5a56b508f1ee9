"""Sharded prediction: every rank writes the outputs of its own images, as ``infer.py`` does.

Lightning gives each predict rank a disjoint share of the images (its
``UnrepeatedDistributedSamplerWrapper``: no padding duplicates), output names are unique over the
whole image list (the datamodule assigns them before sharding, with ``infer.py``'s naming rule),
and every file is written atomically (temporary file, then ``os.replace``). So ranks never write
the same file and an interrupted run leaves no partial file; a rerun skips finished images.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import BasePredictionWriter

__all__ = ["SegmentationWriter"]

_logger = logging.getLogger(__name__)


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

    def _out(self, trainer) -> Path:
        return Path(self.output_dir) if self.output_dir else \
            Path(trainer.default_root_dir) / "predictions"

    def write_on_batch_end(self, trainer, pl_module, prediction: list[dict[str, Any]],
                           batch_indices, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        from deepcut.errors import DeepCutError, name_file
        from deepcut.io.images import load_image
        from deepcut.io.outputs import outputs_exist, result_warnings, write_outputs

        out = self._out(trainer)
        for i, rec in enumerate(prediction):
            stem = rec["stem"]
            if not self.overwrite and outputs_exist(out, stem, image=rec["path"]):
                self.skipped += 1
                continue
            pred = rec["prediction"]
            try:
                image = load_image(rec["path"])
                extra = {"checkpoint": pred.meta["checkpoint"]} if "checkpoint" in pred.meta \
                    else None
                paths = write_outputs(pred, image, out, stem, extra_record=extra)
            except DeepCutError as e:
                _logger.warning("skipped: %s", name_file(rec["path"], str(e)))
                continue
            self.written += 1
            for w in result_warnings(pred):  # a degenerate result: one line naming the file
                _logger.warning("%s: %s", rec["path"], w)
            # Keep only a small summary in the trainer's list of predictions, not the label maps.
            prediction[i] = {"stem": stem, "path": rec["path"], "n_clusters": pred.n_clusters,
                             "ncut": pred.ncut, "outputs": {k: str(p) for k, p in paths.items()},
                             "rank": trainer.global_rank}

    def on_predict_end(self, trainer, pl_module) -> None:
        print(f"rank {trainer.global_rank}: {self.written} images written, {self.skipped} "
              f"skipped (outputs exist) -> {self._out(trainer)}", flush=True)
