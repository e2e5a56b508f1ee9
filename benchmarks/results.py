#!/usr/bin/env python
"""The measured results table: every registered solver on the shared benchmarks (classic backbone).

Usage::

    python benchmarks/results.py --data-root $DATA                     # writes docs/RESULTS.md
    python benchmarks/results.py --data-root DIR --size 224 --jobs 2 --solvers gnn,spectral
    python benchmarks/results.py --data-root DIR --backbone dino_vits8 --weights W.pth --size 280

For each benchmark x solver it runs ``python eval.py ...`` as a subprocess (the exact command is
recorded and printed, so every row can be reproduced by pasting it), times it, reads the run's
``summary.json`` and writes one table per benchmark into ``docs/RESULTS.md`` between the
``<!-- measured:<backbone>:begin -->`` / ``...:end -->`` markers (the rest of the file, the papers'
tables, is left alone; the markers are per backbone). The doc is written only when every
benchmark ran (no ``--only``, none skipped), without ``--limit`` and with no failed run, so a
partial or broken run never replaces the measured rows; otherwise it is left unchanged and the
reason printed (``--force-doc`` writes it anyway). Each run's predictions and tables stay under
``--out``.

Benchmarks (``--data-root`` holds one folder per dataset, see docs/DATA.md):

* ``sod``: fg/bg segmentation, IoU / accuracy / max F-beta (200 images);
* ``weizmann_sed/1obj`` and ``2obj``: fg/bg vs the consensus mask, plus IoU against each
  annotator averaged (67 + 67 images);
* ``bsds500_test``: multi-region (task ``clusters`` with K = 6, see :func:`region_task`), NMI /
  ARI / Hungarian mIoU / purity against each of the 4-8 annotators, averaged (134 images);
* ``bsds500_test`` again with task ``kless`` (K found per image, at most 10: the CC loss for the
  GNN, the eigengap for the others): the same scores plus the K found;
* ``bsds500_test`` again with task ``parts`` (``--parts 4``: the foreground cut into 4 parts,
  so 5 regions with the background): the same scores, K = the regions found (5 when no part
  is lost);
* ``voc2012_subset``: CorLoc from the predicted boxes (67 images) and fg/bg IoU where a class mask
  exists (62 images, void ignored).

By default every prediction is recomputed (``--overwrite``), so the run times are real; pass
``--resume`` to reuse finished predictions of an earlier run. ``results.json`` also holds each
run's means over the tuning and evaluation halves of its dataset (``halves``; the seeded split of
``benchmarks/split.py``: choose settings on ``tune``, report ``eval``).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SOLVERS = ("gnn", "spectral", "falcon")

#: name, loader, folder under --data-root, task ("regions" = the multi-region task), metrics
BENCHMARKS: list[dict[str, Any]] = [
    {"name": "SOD", "dataset": "sod", "folder": "sod", "task": "segment",
     "metrics": ["iou", "accuracy", "max_f"]},
    {"name": "Weizmann SED 1obj", "dataset": "weizmann_sed1", "folder": "weizmann_sed",
     "task": "segment", "metrics": ["iou", "accuracy", "max_f", "iou_annotators"]},
    {"name": "Weizmann SED 2obj", "dataset": "weizmann_sed2", "folder": "weizmann_sed",
     "task": "segment", "metrics": ["iou", "accuracy", "max_f", "iou_annotators"]},
    {"name": "BSDS500 test", "dataset": "bsds500", "folder": "bsds500_test", "task": "regions",
     "metrics": ["nmi", "ari", "miou", "purity", "n_clusters"]},
    {"name": "BSDS500 test, k-less", "dataset": "bsds500", "folder": "bsds500_test",
     "task": "kless", "flags": ["--k-max", "10"],
     "metrics": ["nmi", "ari", "miou", "purity", "n_clusters"]},
    {"name": "BSDS500 test, parts", "dataset": "bsds500", "folder": "bsds500_test",
     "task": "parts", "flags": ["--parts", "4"],
     "metrics": ["nmi", "ari", "miou", "purity", "n_clusters"]},
    {"name": "VOC 2012 subset", "dataset": "voc12", "folder": "voc2012_subset",
     "task": "segment", "metrics": ["corloc", "iou", "accuracy", "max_f"]},
]
_PERCENT = {"iou", "accuracy", "max_f", "iou_annotators", "corloc", "nmi", "ari", "miou",
            "purity"}
_HEAD = {"iou": "IoU", "accuracy": "Acc", "max_f": "maxF", "iou_annotators": "IoU ann.",
         "corloc": "CorLoc", "nmi": "NMI", "ari": "ARI", "miou": "mIoU", "purity": "purity",
         "n_clusters": "K"}


def _tasks() -> list[str]:
    from deepcut.tasks import list_tasks

    try:  # the `clusters` task is registered by the checkpoint module (train.py's inference)
        import deepcut.checkpoint  # noqa: F401
    except ImportError:
        pass
    return list_tasks()


def region_task() -> tuple[str, list[str]] | None:
    """The multi-region task and its flags for BSDS500, or None when none is registered.

    ``clusters`` with K = 6 (plain K-way clustering, the same for every solver) is preferred;
    then ``kless`` (K found by correlation clustering, at most 6), ``parts`` (fg/bg plus 4
    parts) and a one-level ``hierarchy`` with K = 6.
    """
    tasks = _tasks()
    for task, flags in (("clusters", ["--k", "6"]), ("kless", ["--k-max", "6"]),
                        ("parts", ["--parts", "4"]), ("hierarchy", ["--levels", "6"])):
        if task in tasks:
            return task, flags
    return None


def _shown(path: Path | str) -> str:
    """``path`` as the commands show it: relative to the repository (their working directory)
    when inside it, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def build_runs(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str]]:
    from deepcut.solvers import list_solvers

    registered = list_solvers()
    wanted = [s for s in args.solvers.split(",") if s]
    notes = [f"solver {s!r} is not registered here; its rows were not run"
             for s in wanted if s not in registered]
    solvers = [s for s in wanted if s in registered]
    regions = region_task()
    only = set(args.only.split(",")) if args.only else None
    runs = []
    for bench in BENCHMARKS:
        if only and bench["dataset"] not in only:
            continue
        task, task_flags = bench["task"], list(bench.get("flags", []))
        if task not in ("regions", "segment") and task not in _tasks():
            notes.append(f"{bench['name']}: task {task!r} is not registered here; not run")
            continue
        if task == "regions":
            if regions is None:
                notes.append(f"{bench['name']}: no multi-region task (kless, parts, hierarchy) "
                             "is registered here; not run")
                continue
            task, task_flags = regions
        for solver in solvers:
            tag = args.backbone + (f"_{args.graph}" if args.graph else "") + \
                (f"_{args.preset}" if args.preset else "")
            out = _shown(Path(args.out) / f"{bench['dataset']}_{task}_{solver}_{tag}")
            argv = ["eval.py", "--dataset", bench["dataset"],
                    "--root", _shown(Path(args.data_root) / bench["folder"]), "--task", task,
                    *task_flags, "--solver", solver, "--backbone", args.backbone,
                    "--size", str(args.size), "--out", str(out), "--quiet"]
            if args.weights:
                argv += ["--weights", args.weights]
            if args.graph:
                argv += ["--graph", args.graph]
            if args.preset:
                argv += ["--preset", args.preset]
            if args.limit:
                argv += ["--limit", str(args.limit)]
            if not args.resume:
                argv.append("--overwrite")
            runs.append({"bench": bench, "task": task, "solver": solver, "argv": argv,
                         "out": REPO / out})
    return runs, notes


def run_one(run: dict[str, Any], threads: int | None) -> dict[str, Any]:
    """Run ``python <run["argv"]>`` from the repository (offline, ``OMP_NUM_THREADS=threads``)
    and add to ``run``: ``command`` (as printed), ``seconds``, ``returncode`` and the run's
    ``summary`` (``<run["out"]>/summary.json``) or its last stderr line as ``error``. Shared
    with ``benchmarks/paper_tables.py``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    prefix = ""
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
        prefix = f"OMP_NUM_THREADS={threads} "
    run["command"] = prefix + "python " + shlex.join(run["argv"])
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *run["argv"]], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    run["seconds"] = time.perf_counter() - t0
    run["returncode"] = proc.returncode
    summary = Path(run["out"]) / "summary.json"
    if proc.returncode in (0, 1) and summary.is_file():
        run["summary"] = json.loads(summary.read_text())
    else:
        run["error"] = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    print(f"[{run['seconds']:6.1f} s] {run['command']}"
          + (f"\n    FAILED: {run['error']}" if "error" in run else ""), file=sys.stderr)
    return run


def _cell(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}" if key in _PERCENT else f"{value:.2f}"


def render(runs: list[dict[str, Any]], notes: list[str], meta: dict[str, Any]) -> str:
    lines = [
        (f"Measured {meta['date']} on {meta['machine']} (git {meta['git']}), "
         f"`python benchmarks/results.py {meta['argv']}`: **{meta['total_seconds'] / 60:.1f} min "
         f"in total** ({meta['n_runs']} runs, {meta['jobs']} at a time)."),
        (f"Backbone `{meta['backbone']}` (weights: {meta['weights']}), graph "
         f"{meta.get('graph') or 'the default'}, preset {meta.get('preset') or 'default'}, "
         "input short side "
         f"{meta['size']} px, default stride, seed 0. Scores in percent, at the original "
         "ground-truth resolution; multi-annotator datasets: mean over annotators. `s/img` is "
         "the mean prediction time per image, `run` the wall time of the whole command "
         f"(imports included). Load average at start: {meta['load']} (other work shared "
         "the cores when it exceeds their count)."),
        "",
    ]
    for bench in BENCHMARKS:
        rows = [r for r in runs if r["bench"] is bench]
        if not rows:
            continue
        keys = bench["metrics"]
        task = rows[0]["task"]
        lines += [f"#### {bench['name']} (`{bench['dataset']}`, task `{task}`)", "",
                  "| solver | " + " | ".join(_HEAD[k] for k in keys)
                  + " | scored / items | s/img | run | command |",
                  "|---|" + "---|" * len(keys) + "---|---|---|---|"]
        for r in rows:
            if "summary" not in r:
                lines.append(f"| {r['solver']} | " + " | ".join("-" for _ in keys)
                             + f" | failed | - | {r['seconds']:.0f} s | `{r['command']}` "
                             f"({r['error']}) |")
                continue
            s = r["summary"]
            m = s["metrics"]
            cells = " | ".join(_cell(k, m.get(k)) for k in keys)
            lines.append(f"| {r['solver']} | {cells} | {s['n_scored']} / {s['n_items']} | "
                         f"{m.get('seconds_per_image', float('nan')):.2f} | "
                         f"{r['seconds']:.0f} s | `{r['command']}` |")
        lines.append("")
    if notes:
        lines += ["Not run:", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def update_doc(doc: Path, table: str, backbone: str) -> None:
    """Replace the block between this backbone's markers (append a section if absent)."""
    begin, end = f"<!-- measured:{backbone}:begin -->", f"<!-- measured:{backbone}:end -->"
    text = doc.read_text() if doc.is_file() else ""
    block = f"{begin}\n{table}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + f"\n\n## Measured: backbone `{backbone}`\n\n" + block + "\n"
    tmp = doc.with_suffix(".md.part")
    tmp.write_text(text)
    os.replace(tmp, doc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", required=True, help="folder holding sod/, weizmann_sed/, "
                                                      "bsds500_test/, voc2012_subset/")
    p.add_argument("--out", default=str(REPO / "out" / "results"),
                   help="where each run's predictions and tables go")
    p.add_argument("--size", type=int, default=224, help="backbone input short side (px)")
    p.add_argument("--backbone", default="classic", help="backbone of every run (the DINO rows: "
                                                         "dino_vits8 with --weights)")
    p.add_argument("--weights", help="local backbone checkpoint, passed to every run")
    p.add_argument("--graph", help="graph kind of every run (ncut, cc, falcon, local; default: "
                                   "each solver's own for the backbone); its tables get their "
                                   "own markers, measured:<backbone>-<graph>")
    p.add_argument("--preset", choices=["default", "paper"],
                   help="settings preset of every run (eval.py --preset; e.g. paper: DeepCut's "
                        "exact GNN and preprocessing); a preset run gets its own markers, "
                        "measured:<backbone>-<preset>")
    p.add_argument("--solvers", default=",".join(SOLVERS), help="comma-separated solvers; "
                   "those not registered are listed as not run")
    p.add_argument("--only", help="comma-separated dataset names to run (default: all)")
    p.add_argument("--limit", type=int, help="first N items per dataset (quick check; the "
                                             "table then says so in every command)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (default: one per core "
                                                       "of this 2-core machine)")
    p.add_argument("--threads", type=int, default=1,
                   help="OMP_NUM_THREADS of each run; 0 = torch's default. Keep 1 on a small "
                        "shared machine: with 2 threads per run a busy 2-core machine ran the "
                        "GNN 10-20x slower (OpenMP threads waiting for a busy core)")
    p.add_argument("--resume", action="store_true", help="reuse finished predictions")
    p.add_argument("--doc", default=str(REPO / "docs" / "RESULTS.md"),
                   help="Markdown file to update ('' to only print)")
    p.add_argument("--force-doc", action="store_true",
                   help="update --doc even after failed runs, --only, skipped benchmarks or "
                        "--limit (by default the doc is then left unchanged)")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "offline")
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    runs, notes = build_runs(args)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    t0 = time.perf_counter()
    threads = args.threads or None
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = list(pool.map(lambda r: run_one(r, threads), runs))
    total = time.perf_counter() - t0
    from split import split_means  # benchmarks/split.py: the seeded tuning / evaluation halves

    for r in runs:  # per-half means in results.json (settings are tuned on the "tune" half)
        per_image = Path(r["out"]) / "per_image.csv"
        if "summary" in r and per_image.is_file():
            with open(per_image, newline="") as f:
                columns = next(csv.reader(f), [])
            # dataset-level scores (max_f) have no per-image column: average the others only
            r["halves"] = split_means(per_image, [k for k in r["bench"]["metrics"]
                                                  if k in columns])
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                         text=True, check=False).stdout.strip() or "unknown"
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}, "
                       f"Python {platform.python_version()})",
            "git": git, "argv": shlex.join(argv if argv is not None else sys.argv[1:]),
            "total_seconds": total, "n_runs": len(runs), "jobs": max(1, args.jobs),
            "size": args.size, "load": load, "backbone": args.backbone,
            "weights": args.weights or "none", "graph": args.graph, "preset": args.preset}
    table = render(runs, notes, meta)
    # The table is read on other machines: the data folder is written as $DATA, not this
    # machine's path (absolute, or relative as _shown gives it).
    root = Path(args.data_root)
    for shown in {_shown(root), str(root.resolve()), str(args.data_root).rstrip("/")}:
        table = table.replace(shown, "$DATA")
    print(table)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(
        {"meta": meta, "notes": notes,
         "runs": [{k: (str(v) if isinstance(v, Path) else v) for k, v in r.items()
                   if k != "bench"} | {"dataset": r["bench"]["dataset"]} for r in runs]},
        indent=2))
    if args.doc:
        failed = sum("error" in r for r in runs)
        ran = {r["bench"]["name"] for r in runs}
        missing = [b["name"] for b in BENCHMARKS if b["name"] not in ran]
        why = "; ".join(
            ([f"{failed} of {len(runs)} runs failed"] if failed else [])
            + ([f"{len(missing)} of {len(BENCHMARKS)} benchmarks not run"] if missing else [])
            + ([f"--limit {args.limit}"] if args.limit else []))
        if why and not args.force_doc:
            print(f"{args.doc} left unchanged ({why}); pass --force-doc to write it anyway",
                  file=sys.stderr)
        else:
            update_doc(Path(args.doc), table,
                       args.backbone + (f"-{args.graph}" if args.graph else "") +
                       (f"-{args.preset}" if args.preset else ""))
    return 1 if any("error" in r for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
