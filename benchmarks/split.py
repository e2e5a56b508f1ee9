#!/usr/bin/env python
"""A fixed held-out protocol: each dataset's images split into a tuning half and an evaluation half.

Usage::

    python benchmarks/split.py OUT_DIR [OUT_DIR ...]          # per-half means of eval.py runs
    python benchmarks/split.py OUT_DIR --metrics nmi ari

An image belongs to the *tuning* half when the SHA-256 of ``"<salt>:<image id>"`` is even, else
to the *evaluation* half (salt ``deepcut-heldout-0``). The rule depends on the id alone: the same
image is in the same half on every machine and in every run, and no ordering or file listing is
involved. Settings are chosen on the tuning half only; the evaluation half is scored once, and
both halves and the full set are reported (``eval.py`` scores every image; this script splits its
``per_image.csv``). :func:`subset` gives a loader restricted to one half, for tuning scripts that
should not even predict the other.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import math
import sys
from pathlib import Path
from typing import Any

SALT = "deepcut-heldout-0"
PARTS = ("tune", "eval", "all")
#: per-image columns that are not fractions (printed as they are, not in percent)
_PLAIN = {"seconds", "n_clusters", "n_regions", "ncut", "n_annotators"}

__all__ = ["PARTS", "SALT", "half_of", "in_part", "split_means", "subset"]


def half_of(item_id: str, salt: str = SALT) -> str:
    """``"tune"`` or ``"eval"``: the half the image ``item_id`` belongs to."""
    digest = hashlib.sha256(f"{salt}:{item_id}".encode()).digest()
    return "tune" if digest[-1] % 2 == 0 else "eval"


def in_part(item_id: str, part: str, salt: str = SALT) -> bool:
    """Whether ``item_id`` is in ``part`` (``tune``, ``eval`` or ``all``)."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}. Got {part!r}.")
    return part == "all" or half_of(item_id, salt) == part


class _Subset:
    """The items of a :mod:`deepcut.data` loader in one half (same interface: ``ids``, len, [])."""

    def __init__(self, dataset: Any, part: str, salt: str = SALT) -> None:
        ids = list(getattr(dataset, "ids", None) or [dataset[i].id for i in range(len(dataset))])
        self._dataset = dataset
        self._index = [i for i, item in enumerate(ids) if in_part(str(item), part, salt)]
        self.ids = [ids[i] for i in self._index]
        self.name = getattr(dataset, "name", type(dataset).__name__)
        self.root = getattr(dataset, "root", "")

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> Any:
        return self._dataset[self._index[i]]

    def __getattr__(self, key: str) -> Any:  # anything else the evaluator asks of the loader
        return getattr(self._dataset, key)


def subset(dataset: Any, part: str, salt: str = SALT) -> Any:
    """``dataset`` restricted to the images of ``part`` (``all`` returns it unchanged)."""
    return dataset if part == "all" else _Subset(dataset, part, salt)


def split_means(per_image_csv: Path, metrics: list[str] | None = None,
                salt: str = SALT) -> dict[str, dict[str, Any]]:
    """Mean of each metric over the ``ok`` rows of an ``eval.py`` ``per_image.csv``, per part:
    ``{part: {"n": count, metric: mean}}``."""
    with open(per_image_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("status", "ok") == "ok"]
    if metrics is None:
        metrics = [k for k in (rows[0] if rows else {}) if k not in ("id", "status", "box")]
    out: dict[str, dict[str, Any]] = {}
    for part in PARTS:
        sel = [r for r in rows if in_part(r["id"], part, salt)]
        means: dict[str, Any] = {"n": len(sel)}
        for k in metrics:
            vals = [float(r[k]) for r in sel if r.get(k) not in (None, "")]
            vals = [v for v in vals if not math.isnan(v)]
            means[k] = sum(vals) / len(vals) if vals else float("nan")
        out[part] = means
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="eval.py output folders (each has per_image.csv)")
    p.add_argument("--metrics", nargs="*", help="columns to average (default: every numeric one)")
    p.add_argument("--salt", default=SALT, help="salt of the split rule (default: %(default)s)")
    args = p.parse_args(argv)
    results = []
    for run in args.runs:
        csv_path = Path(run) / "per_image.csv"
        if not csv_path.is_file():
            print(f"error: {csv_path}: no per_image.csv (not an eval.py output folder)",
                  file=sys.stderr)
            return 2
        results.append((Path(run).name, split_means(csv_path, args.metrics, args.salt)))
    # the columns averaged: --metrics, else every per-image column of the runs (in order)
    keys = args.metrics or list(dict.fromkeys(k for _, res in results for k in res["all"]
                                              if k != "n"))
    print("| run | part | n | " + " | ".join(keys) + " |")
    print("|---|---|---|" + "---|" * len(keys))
    for name, res in results:
        for part in PARTS:
            m = res[part]
            cells = " | ".join("" if k not in m else f"{m[k]:.3f}" if k in _PLAIN
                               else f"{100 * m[k]:.1f}" for k in keys)
            print(f"| {name} | {part} | {m['n']} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
