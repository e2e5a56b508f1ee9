#!/usr/bin/env python
"""Make the pictures of README.md and docs/RESULTS.md: ``python scripts/make_figures.py``.

Writes into ``docs/images/`` (each picture's caption in the docs names this command):

* ``overlay.png``: the bundled example segmented (object vs background, box), one panel per
  solver (gnn, spectral, falcon) with its NCut;
* ``hierarchy.png``: the nested hierarchy summary (image, then one map per level);
* ``parts.png``: the object's parts (gnn, spectral) and the k-less clusters;
* ``explorer.png``: the ``deepcut-explore`` page after a click, screenshotted in headless
  chromium (skipped, with a message, when chromium or selenium is missing).

``--backbone`` / ``--weights`` choose the backbone (default ``classic``, weight-free, so the
pictures can be made anywhere; pass ``--backbone dino_vits8 --weights FILE`` for DINO's).
Deterministic for a given backbone and seed.
"""
from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's deepcut, whatever copy is installed

from deepcut import Segmenter
from deepcut.io.writers import save_image
from deepcut.tasks.hierarchy import HierarchyPredictor
from deepcut.viz import overlay

IMAGE = ROOT / "examples" / "chelsea.png"
LEVELS = (5, 10, 20, 40)
CLICK = (200, 120)  # x, y on the cat's left eye


def titled_row(panels: list[Image.Image], titles: list[str], gap: int = 6) -> Image.Image:
    """Panels side by side on white, each with a one-line title above it."""
    bar = 22
    try:
        font = ImageFont.load_default(size=15)  # Pillow >= 10.1 with FreeType
    except (TypeError, OSError):
        font = ImageFont.load_default()
    w = sum(p.width for p in panels) + gap * (len(panels) - 1)
    h = max(p.height for p in panels) + bar
    out = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(out)
    x = 0
    for p, t in zip(panels, titles):
        out.paste(p, (x, bar))
        draw.text((x + 2, 3), t, fill=(0, 0, 0), font=font)
        x += p.width + gap
    return out


def half(im: Image.Image) -> Image.Image:
    return im.resize((im.width * 2 // 3, im.height * 2 // 3), Image.BILINEAR)


def make_overlay(image: Image.Image, cfg: dict) -> Image.Image:
    panels, titles = [], []
    for solver in ("gnn", "spectral", "falcon"):
        p = Segmenter(solver=solver, **cfg)(image)
        panels.append(half(overlay(image, p.labels, box=p.box)))
        titles.append(f"{solver}: NCut {p.ncut:.3f}, K={p.n_clusters}")
    return titled_row(panels, titles)


def make_hierarchy(image: Image.Image, cfg: dict) -> Image.Image:
    hp = HierarchyPredictor(cfg["backbone"], n_segments=LEVELS, nested=True, seed=cfg["seed"],
                            weights=cfg.get("weights"))
    hp.set_images([image])
    grid = hp.summary(max_side=240)  # image, then one tile per level, 4 px apart
    n = len(LEVELS) + 1
    tile_w = (grid.width - 4 * (n - 1)) // n
    tiles = [grid.crop((i * (tile_w + 4), 0, i * (tile_w + 4) + tile_w, grid.height))
             for i in range(n)]
    return titled_row(tiles, ["image"] + [f"K = {k}" for k in LEVELS], gap=4)


def make_parts(image: Image.Image, cfg: dict) -> Image.Image:
    panels, titles = [], []
    for solver in ("gnn", "spectral"):
        pr = Segmenter(task="parts", solver=solver, task_params={"parts": 4}, **cfg)(image)
        panels.append(half(overlay(image, pr.labels)))
        titles.append(f"parts, {solver}: {pr.extra['parts_found']} of 4 parts found")
    kless = Segmenter(task="kless", task_params={"k_max": 10}, **cfg)(image)
    panels.append(half(overlay(image, kless.labels, background=None)))
    titles.append(f"kless, K by {kless.extra['k_rule']}: K={kless.n_clusters} found")
    return titled_row(panels, titles)


def make_explorer_shot(out: Path, cfg: dict) -> str:
    """Screenshot of the explorer after a click; returns a message."""
    chromium, driver_bin = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return "explorer.png skipped: selenium is not installed"
    if not (chromium and driver_bin):
        return "explorer.png skipped: no chromium/chromedriver (apt-get install chromium " \
               "chromium-driver)"
    from deepcut.cli.explore import main as explore

    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "chelsea_explorer.html"
        args = [str(IMAGE), "--levels", ",".join(map(str, LEVELS)), "--nested",
                "--backbone", cfg["backbone"], "--seed", str(cfg["seed"]), "--out", str(page)]
        if cfg.get("weights"):
            args += ["--weights", cfg["weights"]]
        if explore(args) != 0:
            raise SystemExit("deepcut-explore failed")
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--window-size=1320,800", "--hide-scrollbars"):
            opts.add_argument(a)
        driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
        try:
            driver.get(page.as_uri())
            driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "window.explorer.ready.then(() => done(null), e => done(String(e)));")
            driver.execute_script("window.explorer.select(arguments[0], arguments[1])", *CLICK)
            png = driver.get_screenshot_as_png()
            height = driver.execute_script(
                "return document.getElementById('grid').getBoundingClientRect().bottom")
        finally:
            driver.quit()
    shot = Image.open(io.BytesIO(png)).convert("RGB")
    save_image(shot.crop((0, 0, shot.width, min(shot.height, int(height) + 12))), out)
    return f"wrote {out}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "images"), help="output folder")
    p.add_argument("--backbone", default="classic", help="backbone (default: classic)")
    p.add_argument("--weights", help="backbone weights file (for dino_* backbones)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = {"backbone": args.backbone, "seed": args.seed}
    if args.weights:
        cfg["weights"] = args.weights
    image = Image.open(IMAGE).convert("RGB")
    for name, make in (("overlay", make_overlay), ("hierarchy", make_hierarchy),
                       ("parts", make_parts)):
        save_image(make(image, cfg), out / f"{name}.png")
        print(f"wrote {out / f'{name}.png'}")
    print(make_explorer_shot(out / "explorer.png", cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
