"""``python eval.py --dataset NAME --root DIR [method options]``: score a method on a benchmark.

Runs the method over the dataset with a progress bar and writes, into ``--out``, the predictions
(``predictions/<id>.png`` + ``.json``), ``per_image.csv``, ``summary.json`` and ``summary.md``
(dataset, split, item count, scoring resolution, the method's full config and the scores); see
:mod:`deepcut.evaluate` for the protocols. An interrupted run resumes: finished items are read
back, not recomputed. A bad image is reported on one line, skipped and counted. ``--config YAML``
takes the same keys as the flags (``dataset``, ``root``, ``limit``, ... and every
``SegmenterConfig`` value); flags override it. ``--out`` is created and test-written before any
work. Images above ``$DEEPCUT_MAX_PIXELS`` (default 200 MP) are refused from their header.

Exit status: 0 every item scored; 1 some items failed (each reported on one line naming it);
2 a fatal error (bad option or config, dataset layout, ``--out`` not writable, a full disk,
missing weights); 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepcut.cli.common import add_version, drop_none, fail, load_yaml, one_line, quiet_warnings

__all__ = ["EVAL_KEYS", "build_parser", "main"]

#: Keys of ``--config`` files (and flags) that belong to the evaluation, not to the method.
EVAL_KEYS = ("dataset", "root", "split", "dataset_options", "out", "limit", "eval_size",
             "annotators", "match", "overwrite", "wandb", "wandb_project")
_METHOD_GROUPS = ("backbone", "solver", "task")
#: infer.py method flags eval.py does not take (it writes no explorer page): argparse refuses them.
_INFER_ONLY = ("html",)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``prog`` defaults to how the program was started (``eval.py``,
    ``deepcut-eval``). Built without importing torch, so ``--help`` is instant."""
    from deepcut.cli import infer
    from deepcut.cli._choices import ANNOTATOR_RULES, DATASETS, MATCH_RULES

    p = argparse.ArgumentParser(
        prog=prog,
        description="Evaluate an unsupervised segmentation method on a benchmark dataset: "
                    "predictions, per-image scores (CSV) and a summary table (Markdown, JSON).",
    )
    add_version(p)
    g = p.add_argument_group("dataset")
    g.add_argument("--dataset", choices=DATASETS,
                   help="benchmark loader (its layout is in deepcut.data); required here or "
                        "in --config")
    g.add_argument("--root", help="dataset folder (never downloaded); required here or in "
                                  "--config")
    g.add_argument("--split", help="split for loaders that have them (voc07/voc12: an "
                                   "ImageSets list; bsds500: test|val|train; cub: test|train)")
    g.add_argument("--dataset-option", dest="dataset_options", action="append",
                   metavar="KEY=VALUE",
                   help="extra loader option, repeatable, e.g. task=segmentation for VOC's "
                        "masked images only")
    g.add_argument("--limit", type=int, help="evaluate only the first N items (quick runs)")

    g = p.add_argument_group("scoring")
    g.add_argument("--eval-size", help="resolution scores are computed at: 'original' (the "
                                       "ground truth's grid) or HxW, e.g. 128x128 as DiffCut "
                                       "(default: original)")
    g.add_argument("--annotators", choices=ANNOTATOR_RULES,
                   help="multi-annotator datasets (BSDS500, Weizmann): average each image's "
                        "scores over annotators, or keep the best (default: mean)")
    g.add_argument("--match", choices=MATCH_RULES,
                   help="multi-region tasks: one-to-one Hungarian matching, or many-to-one "
                        "majority (default: hungarian)")

    g = p.add_argument_group("output")
    g.add_argument("--out", help="output folder; rerun with the same one to resume "
                                 "(default: out/eval/<dataset>_<task>_<solver>)")
    g.add_argument("--config", help="YAML of evaluation keys and SegmenterConfig values; "
                                    "flags override it")
    g.add_argument("--overwrite", action="store_true", default=None,
                   help="recompute every prediction (default: reuse finished ones)")
    g.add_argument("--quiet", action="store_true", help="no progress bar and no table print")
    g.add_argument("--wandb", action="store_true", default=None,
                   help="log the summary and per-image tables to Weights & Biases "
                        "(WANDB_MODE=offline works)")
    g.add_argument("--wandb-project", help="W&B project (default: deepcut-eval)")

    # The method flags are infer.py's own actions, so the two CLIs cannot drift apart.
    src = infer.build_parser()
    for group in src._action_groups:
        if group.title in _METHOD_GROUPS:
            dst = p.add_argument_group(f"method: {group.title}")
            for action in group._group_actions:
                if action.dest not in _INFER_ONLY:
                    dst._add_action(action)
    return p


def _parse_options(items: Sequence[str] | None) -> dict[str, Any]:
    import yaml

    from deepcut.errors import ConfigError

    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--dataset-option needs KEY=VALUE. Got {item!r} instead.")
        options[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return options


def _settings(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """Merge ``--config`` and flags into (evaluation settings, SegmenterConfig)."""
    from deepcut.cli.infer import config_from_settings
    from deepcut.errors import ConfigError

    base: dict[str, Any] = load_yaml(args.config) if args.config else {}
    settings = {k: base.pop(k) for k in EVAL_KEYS if k in base}
    options = dict(settings.pop("dataset_options", None) or {})
    options.update(_parse_options(args.dataset_options))
    settings.update(drop_none({k: getattr(args, k) for k in EVAL_KEYS if k != "dataset_options"}))
    settings["dataset_options"] = options
    for key in ("dataset", "root"):
        if not settings.get(key):
            raise ConfigError(f"--{key} is required (or set '{key}:' in --config)")
    return settings, config_from_settings(args, base, also_valid=EVAL_KEYS)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from deepcut._threads import prefer_passive_waits

    prefer_passive_waits()  # before torch loads
    quiet_warnings()
    args = build_parser(prog).parse_args(argv)
    import logging

    from deepcut.data import get_dataset
    from deepcut.errors import DeepCutError
    from deepcut.evaluate import check_settings, evaluate, log_to_wandb, summary_markdown
    from deepcut.io.folders import check_out_dir, clean_stale_parts, output_error

    if not args.quiet:
        logging.getLogger("deepcut.evaluate").setLevel(logging.INFO)
    out = Path(".")
    try:
        settings, cfg = _settings(args)
        options = dict(settings["dataset_options"])
        if settings.get("split") is not None:
            options["split"] = settings["split"]
        try:
            dataset = get_dataset(settings["dataset"], settings["root"], **options)
        except TypeError as e:  # an option this loader does not take
            return fail(f"dataset {settings['dataset']!r} does not accept these options "
                        f"{sorted(options)}: {e}")
        check_settings(settings.get("annotators", "mean"), settings.get("match", "hungarian"),
                       settings.get("limit"), settings.get("eval_size"))  # before folders
        out = Path(settings.get("out") or
                   Path("out") / "eval" / f"{dataset.name}_{cfg.task}_{cfg.solver}")
        check_out_dir(out)  # before any work: exit 2 naming the folder
        check_out_dir(out / "predictions")
        clean_stale_parts(out / "predictions")
        clean_stale_parts(out)
        result = evaluate(dataset, cfg, cfg.task, out, size=settings.get("eval_size"),
                          annotators=settings.get("annotators", "mean"),
                          match=settings.get("match", "hungarian"), limit=settings.get("limit"),
                          overwrite=bool(settings.get("overwrite")), progress=not args.quiet)
        if settings.get("wandb"):
            folder = log_to_wandb(result, project=settings.get("wandb_project") or "deepcut-eval")
            if not args.quiet:
                print(f"W&B run logged in {folder}", file=sys.stderr)
    except (DeepCutError, ValueError) as e:
        return fail(one_line(str(e)))
    except OSError as e:  # a write of the tables (a read error is reported per item)
        return fail(one_line(str(output_error(e, out))))
    except KeyboardInterrupt:
        print("\ninterrupted: finished items are saved; rerun the same command to resume",
              file=sys.stderr)
        return 130
    if not args.quiet:
        print(summary_markdown(result.summary))
        print(f"tables: {out / 'summary.md'}, {out / 'summary.json'}, {out / 'per_image.csv'}",
              file=sys.stderr)
    return 1 if result.summary["n_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
