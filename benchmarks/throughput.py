"""Folder throughput of ``infer.py DIR``: images/s end to end, sequential vs pipelined.

Every run is a fresh process: for the classic backbone the CLI's ``main`` with ``infer.py``'s
arguments; for the random-init DINO ViT-S/8, which no CLI flag can build offline, the backbone is
built with ``create_backbone("dino_vits8", pretrained=False)`` and the CLI's own ``run`` called.
The child prints a marker as ``run`` (the folder loop) is entered, and the parent timestamps it
and the one line per image the CLI prints, so one run gives:

* ``img/s incl.``: images / wall time of the whole process (start-up included);
* ``start-up``: seconds from process start to the marker (imports, config, backbone build for
  the ViT);
* ``img/s excl.``: images / (time of the last image line - the marker);
* ``first image``: seconds from process start to the first image line (time to first image);
* ``CPU s / img``: CPU seconds (user + system) of the whole process tree (decode workers
  included) after the marker, per image. On a machine whose cores are taken by other work,
  wall-clock rates say little (a run gets what the others leave); this is what an image costs.

Configurations, interleaved (one run of each per repeat, in reversed order every second repeat,
medians reported, so machine load hits all alike): ``--baseline DIR`` (optional: another
checkout of deepcut, e.g. the last release, run with its own defaults), ``sequential``
(``--workers 0``, the CLI's default on the CPU), and the pipelined run (one worker, batches of
4: the default on a GPU) at the given worker and batch counts (``--grid``; with
2+ workers each worker also segments, so every core runs a solve). In a
pipelined batch of B > 1 images the GNN heads are trained together
(:meth:`deepcut.Segmenter.predict_features_batch`), which the ``GNN heads`` column says. A second table times the overlay encodings (PNG zlib level 6,
Pillow's default, vs 1; JPEG; WebP) on the same images, and ``infer.py --help`` is timed.

    python benchmarks/throughput.py DIR [--limit 20] [--repeat 2] [--threads 1]
        [--backbones classic,vits8] [--grid 1x4,2x4,2x2] [--baseline OTHER_CHECKOUT]

DIR is a folder of images (20+, e.g. ``$DATA/bsds500_test/images``).
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


MARKER = "@@run-start"


def _announce_run(infer) -> None:
    """Print :data:`MARKER` when ``infer.run`` is entered (any checkout: the name is old)."""
    real = infer.run

    def run(*args, **kwargs):
        cpu = os.times()
        print(f"{MARKER} {cpu.user + cpu.system:.4f}", flush=True)
        return real(*args, **kwargs)

    infer.run = run


def _child_cli(argv: list[str]) -> int:
    """``--child-cli ARGS``: ``infer.py ARGS`` with the run-start marker."""
    from deepcut.cli import infer

    _announce_run(infer)
    return infer.main(argv, prog="infer.py")


def _child(argv: list[str]) -> int:
    """``--child``: segment a folder with a random-init DINO ViT-S/8 through the CLI's ``run``."""
    p = argparse.ArgumentParser()
    p.add_argument("folder")
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=280)
    p.add_argument("--workers", type=int)
    p.add_argument("--batch-size", type=int)
    a = p.parse_args(argv)
    import inspect

    from deepcut._threads import apply_step_threads, prefer_passive_waits

    prefer_passive_waits()
    from deepcut.backbones import create_backbone
    from deepcut.cli import infer
    from deepcut.config import SegmenterConfig
    from deepcut.io.images import list_images
    from deepcut.pipeline import Segmenter

    cfg = apply_step_threads(SegmenterConfig(backbone="dino_vits8", size=a.size).validate())
    seg = Segmenter(cfg, backbone=create_backbone("dino_vits8", pretrained=False, size=a.size))
    kw = {}
    params = inspect.signature(infer.run).parameters
    if a.workers is not None and "workers" in params:  # an older checkout has no such option
        kw.update(workers=a.workers, batch_size=a.batch_size)
    _announce_run(infer)
    return infer.run(cfg, list_images(a.folder), Path(a.out), segmenter=seg, **kw)


def _timed_run(cmd: list[str], cwd: Path, env: dict) -> dict:
    """Run ``cmd``; the times of its run-start marker and per-image stdout lines; wall time."""
    import resource

    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stamps, start, cpu_start = [], float("nan"), float("nan")
    for line in proc.stdout:  # one line per written image: "<name>: K=.. NCut=.. -> ..."
        if line.startswith(MARKER):
            start = time.perf_counter() - t0
            cpu_start = float(line.split()[1])
        elif " K=" in line and " -> " in line:
            stamps.append(time.perf_counter() - t0)
    err = proc.stderr.read()
    rc = proc.wait()
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child and its reaped workers
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if rc != 0 or not stamps:
        raise SystemExit(f"run failed (exit {rc}): {' '.join(cmd)}\n{err[-2000:]}")
    n = len(stamps)
    return {"n": n, "wall": wall, "first": stamps[0], "start": start, "incl": n / wall,
            "excl": n / (stamps[-1] - start), "cpu": (cpu - cpu_start) / n}


def _command(backbone: str, checkout: Path, folder: Path, out: Path, size: int,
             workers: int | None, batch: int | None, auto: bool = False) -> list[str]:
    opt = [] if workers is None else ["--workers", str(workers), "--batch-size", str(batch)]
    if backbone == "classic":  # auto: no --backbone, the CLI's default 'auto' (classic offline)
        flag = [] if auto else ["--backbone", "classic"]
        return [sys.executable, str(Path(__file__).resolve()), "--child-cli", str(folder),
                "--out", str(out), *flag, *opt]
    return [sys.executable, str(Path(__file__).resolve()), "--child", str(folder), "--out",
            str(out), "--size", str(size), *opt]


def _encode_table(folder: Path, limit: int, repeat: int) -> list[str]:
    """Milliseconds and kB per overlay encoding (classic segmentation of the first images)."""
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from deepcut.io.images import list_images, load_image
    from deepcut.pipeline import Segmenter
    from deepcut.viz.overlay import overlay

    seg = Segmenter(backbone="classic", seed=0)
    encodings = {"PNG level 6 (Pillow default)": ("PNG", {"compress_level": 6}),
                 "PNG level 1 (new default)": ("PNG", {"compress_level": 1}),
                 "JPEG q90 (--overlay-format jpg)": ("JPEG", {"quality": 90}),
                 "WebP q90 m0 (--overlay-format webp)": ("WEBP", {"quality": 90, "method": 0})}
    ms: dict[str, list[float]] = {k: [] for k in encodings}
    kb: dict[str, list[float]] = {k: [] for k in encodings}
    label_ms: list[float] = []
    for path in list_images(folder)[:limit]:
        image = load_image(path)
        pred = seg(image)
        ov = overlay(image, pred.labels, box=pred.box, background=0)
        lab = Image.fromarray(pred.labels)
        for _ in range(repeat):
            for name, (fmt, params) in encodings.items():  # interleaved
                buf = io.BytesIO()
                t0 = time.perf_counter()
                ov.save(buf, format=fmt, **params)
                ms[name].append(1000 * (time.perf_counter() - t0))
                kb[name].append(buf.tell() / 1024)
            buf = io.BytesIO()
            t0 = time.perf_counter()
            lab.save(buf, format="PNG")
            label_ms.append(1000 * (time.perf_counter() - t0))
    base_ms = statistics.median(ms["PNG level 6 (Pillow default)"])
    base_kb = statistics.median(kb["PNG level 6 (Pillow default)"])
    rows = ["| overlay encoding | ms / image (median) | speed-up | kB / image (median) | size |",
            "|---|---|---|---|---|"]
    for name in encodings:
        m, k = statistics.median(ms[name]), statistics.median(kb[name])
        rows.append(f"| {name} | {m:.1f} | {base_ms / m:.1f}x | {k:.0f} | {k / base_kb - 1:+.1%} |")
    rows.append(f"| label map PNG (unchanged, lossless) | {statistics.median(label_ms):.1f} | | | |")
    return rows


STAGES = ("load", "backbone", "graph", "solve", "upsample", "write")


def _stage_times(out: Path) -> dict[str, float]:
    """Median seconds per image of each stage, from the ``timings`` of the run's JSON records
    (wall clock in whichever process computed the image)."""
    import json

    per: dict[str, list[float]] = {k: [] for k in STAGES}
    for f in out.glob("*.json"):
        t = json.loads(f.read_text()).get("timings", {})
        for k in STAGES:
            if k in t:
                per[k].append(float(t[k]))
    return {k: statistics.median(v) for k, v in per.items() if v}


STARTUP_STEPS = {
    "python (nothing imported)": "pass",
    "import torch": "import torch",
    "import torch, torch._dynamo": "import torch, torch._dynamo",
    "import torch + one AdamW step (torch.optim imports torch._dynamo itself)":
        "import torch; m = torch.nn.Linear(2, 2); o = torch.optim.AdamW(m.parameters()); "
        "m(torch.ones(1, 2)).sum().backward(); o.step()",
    "import torch_geometric (imports torch._dynamo)": "import torch_geometric",
    "import torch, sklearn.cluster (the GNN's k-means starts; SciPy)": "import torch, sklearn.cluster",
    "import torch_geometric, sklearn.cluster": "import torch_geometric, sklearn.cluster",
    "deepcut CLI up to its folder loop (classic)":
        "from deepcut.cli import infer; from deepcut.pipeline import Segmenter; "
        "infer._config_from_args(infer.build_parser().parse_args(['x', '--backbone', "
        "'classic'])); Segmenter(backbone='classic').backbone",
    "the same with the collector paused as the CLI does (gc_paused)":
        "from deepcut.cli import infer; from deepcut.pipeline import Segmenter\n"
        "with infer.gc_paused():\n"
        "    infer._config_from_args(infer.build_parser().parse_args(['x', '--backbone', "
        "'classic']))\nSegmenter(backbone='classic').backbone",
    "deepcut CLI up to its folder loop (default 'auto', offline: classic)":
        "import warnings; warnings.simplefilter('ignore'); from deepcut.cli import infer; "
        "from deepcut.pipeline import Segmenter; "
        "Segmenter(infer._config_from_args(infer.build_parser().parse_args(['x']))).backbone",
    "import torch, timm (what 'auto' paid offline before)": "import torch, timm",
}


def _startup_table(env: dict, repeat: int) -> list[str]:
    """Wall seconds of fresh processes importing what the CLI's start-up imports."""
    times: dict[str, list[float]] = {k: [] for k in STARTUP_STEPS}
    for _ in range(repeat):
        for name, code in STARTUP_STEPS.items():  # interleaved
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - t0)
    full = statistics.median(times["deepcut CLI up to its folder loop (classic)"])
    rows = ["| start-up step (fresh process) | s (median) | share of the CLI's |", "|---|---|---|"]
    for name in STARTUP_STEPS:
        m = statistics.median(times[name])
        rows.append(f"| {name} | {m:.2f} | {m / full:.0%} |")
    return rows



def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return _child(argv[1:])
    if argv and argv[0] == "--child-cli":
        return _child_cli(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path, help="folder of images (20+)")
    p.add_argument("--limit", type=int, default=20, help="images taken from it (default: 20)")
    p.add_argument("--repeat", type=int, default=2, help="interleaved repeats (default: 2)")
    p.add_argument("--threads", type=int, default=1,
                   help="OMP_NUM_THREADS of every run (default: 1, so the second core is "
                        "what the pipeline can add)")
    p.add_argument("--backbones", default="classic,vits8",
                   help="classic and/or vits8 (random-init DINO ViT-S/8) (default: both)")
    p.add_argument("--size", type=int, default=280, help="ViT input short side (default: 280)")
    p.add_argument("--grid", default="1x4,2x4,2x2",
                   help="pipelined settings WORKERSxBATCH (default: 1x4,2x4,2x2)")
    p.add_argument("--baseline", type=Path,
                   help="another deepcut checkout (e.g. the previous release) run as it is")
    p.add_argument("--auto", action="store_true",
                   help="classic runs without --backbone: the CLI's default 'auto', which "
                        "offline (HF_HUB_OFFLINE, set here) falls back to classic; every "
                        "checkout pays its own check for DINO weights")
    p.add_argument("--reverse", action="store_true",
                   help="start with the reversed order (to pair with an earlier run)")
    p.add_argument("--startup-repeat", type=int, default=3,
                   help="interleaved repeats of the import-time table (default: 3; 0 = skip)")
    p.add_argument("--encode-limit", type=int, default=10,
                   help="images for the overlay encoding table (default: 10; 0 = skip)")
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from deepcut.io.images import list_images

    files = list_images(a.folder)[:a.limit]
    if len(files) < 2:
        raise SystemExit(f"{a.folder}: needs at least 2 images")
    tmp = Path(tempfile.mkdtemp(prefix="deepcut-throughput-"))
    src = tmp / "in"
    src.mkdir()
    for f in files:
        shutil.copy(f, src / f.name)
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "PYTHONUNBUFFERED": "1",
           "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}

    def env_for(checkout: Path) -> dict:
        return {**env, "PYTHONPATH": str(checkout)}

    configs: list[tuple[str, Path, int | None, int | None]] = []
    if a.baseline is not None:
        configs.append((f"baseline ({a.baseline.name})", a.baseline.resolve(), None, None))
    from deepcut.cli.infer import DEFAULT_BATCH_SIZE, DEFAULT_WORKERS

    configs.append(("sequential (--workers 0)", ROOT, 0, 1))  # the CPU default

    for wb in a.grid.split(","):
        w, b = (int(v) for v in wb.lower().split("x"))
        label = f"pipelined --workers {w} --batch-size {b}" + (
            " (compute in the workers)" if w >= 2 else "") + (
            " (the GPU default)" if (w, b) == (DEFAULT_WORKERS, DEFAULT_BATCH_SIZE) else "")
        configs.append((label, ROOT, w, b))

    help_s = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "infer.py"), "--help"], cwd=ROOT,
                       env=env_for(ROOT), stdout=subprocess.DEVNULL, check=True)
        help_s.append(time.perf_counter() - t0)

    results: dict[tuple[str, str], list[dict]] = {}
    load = [os.getloadavg()[0]]  # the machine's 1-minute load average, before and after
    for backbone in a.backbones.split(","):
        for r in range(a.repeat):
            # ABC CBA ...: a load that drifts during the runs favours no configuration.
            for label, checkout, w, b in (configs if (r + a.reverse) % 2 == 0
                                          else configs[::-1]):
                out = tmp / f"out-{backbone}-{r}-{len(results)}"
                cmd = _command(backbone, checkout, src, out, a.size, w, b, auto=a.auto)
                res = _timed_run(cmd, checkout, env_for(checkout))
                res["stages"] = _stage_times(out)
                results.setdefault((backbone, label), []).append(res)
                shutil.rmtree(out, ignore_errors=True)
                print(f"# {backbone} | {label} | repeat {r}: {res['n']} images, "
                      f"{res['wall']:.1f} s, {res['incl']:.2f} img/s incl., "
                      f"{res['excl']:.2f} excl., first {res['first']:.1f} s, "
                      f"start-up {res['start']:.1f} s, CPU {res['cpu']:.3f} s/img, "
                      f"load {os.getloadavg()[0]:.1f}", file=sys.stderr)

    load.append(os.getloadavg()[0])
    print(f"\n{len(files)} images from {a.folder.name}, OMP_NUM_THREADS={a.threads}, "
          f"{os.cpu_count()} CPUs, load average {load[0]:.1f} -> {load[1]:.1f}, "
          f"medians of {a.repeat} interleaved runs; "
          f"`infer.py --help`: {statistics.median(help_s):.2f} s (median of 3)\n")
    print("| backbone | run | img/s incl. start-up | img/s excl. | start-up s | first image s | "
          "CPU s / img | vs sequential (excl.) | vs baseline (incl.) | vs baseline (excl.) | "
          "GNN heads |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for backbone in a.backbones.split(","):
        med = {lab: {k: statistics.median(x[k] for x in results[(backbone, lab)])
                     for k in ("incl", "excl", "first", "start", "cpu")} for lab, *_ in configs}
        seq = med["sequential (--workers 0)"]
        base = med[configs[0][0]] if a.baseline is not None else None
        name = "classic" if backbone == "classic" else f"ViT-S/8 random-init, {a.size} px"
        for lab, checkout, _, batch in configs:
            m = med[lab]
            heads = f"batched ({batch} at once)" if batch and batch > 1 else "one at a time"
            if checkout != ROOT:
                heads = "(its own)"
            vs_base = (f"{m['incl'] / base['incl']:.2f}x | {m['excl'] / base['excl']:.2f}x"
                       if base else "- | -")
            print(f"| {name} | {lab} | {m['incl']:.2f} | {m['excl']:.2f} | {m['start']:.1f} | "
                  f"{m['first']:.1f} | {m['cpu']:.3f} | {m['excl'] / seq['excl']:.2f}x | {vs_base} | "
                  f"{heads} |")
    print("\nPer-image stage times (s, median over the images of all repeats; from the JSON "
          "`timings`, wall clock in the process that computed the image):\n")
    print("| backbone | run | " + " | ".join(STAGES) + " |")
    print("|---|---|" + "---|" * len(STAGES))
    for backbone in a.backbones.split(","):
        for lab, *_ in configs:
            st = [r["stages"] for r in results[(backbone, lab)]]
            cells = [f"{statistics.median(x[k] for x in st):.3f}" if all(k in x for x in st)
                     else "-" for k in STAGES]
            print(f"| {backbone} | {lab} | " + " | ".join(cells) + " |")
    if a.startup_repeat:
        print()
        print("\n".join(_startup_table(env_for(ROOT), a.startup_repeat)))
    if a.encode_limit:
        print()
        print("\n".join(_encode_table(src, a.encode_limit, max(1, a.repeat))))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
