"""A self-contained HTML page to explore a segmentation hierarchy (no server, works offline).

:func:`explorer_html` embeds the image (JPEG) and one label map per level (zlib-compressed
``uint8``/``uint16`` bytes, base64) in a single HTML file with ~150 lines of JavaScript. In the
page a click on a pixel selects the segment under it at **every** level: each level's panel dims
everything else and outlines the segment, a list shows the nested chain from coarse to fine (each
segment's share of the image and how much of it lies inside the coarser selection), and a button
per level downloads the selected region as a mask PNG (white = region, image size). Levels are
shown side by side, or one at a time chosen with a level slider ("one level at a time").

:func:`hierarchy_levels` computes the levels with the public pipeline: ``solver="spectral"`` is
the ``hierarchy`` task (NCut eigenvectors once for the largest K, optionally nested);
``gnn``/``falcon`` solve each level on its own with the ``clusters`` task (same features).
``deepcut-explore IMAGE`` and ``infer.py --task hierarchy --html`` write the page.

Page contract (used by the browser test): each level's highlight canvas ``#hl-<K>`` is
transparent inside the selected segment, ``rgba(255, 215, 0, 255)`` on its inner border and has
alpha :data:`DIM_ALPHA` everywhere else; ``window.explorer`` offers ``ready`` (a promise),
``select(x, y)``, ``selection`` and ``maskDataURL(K)``. The page needs a browser with
``DecompressionStream`` (Chrome 80+, Firefox 113+, Safari 16.4+) and says so otherwise.
"""
from __future__ import annotations

import base64
import html
import io
import json
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepcut.viz.palette import label_palette

__all__ = ["DIM_ALPHA", "encode_labels", "explorer_html", "hierarchy_levels", "write_explorer"]

#: Alpha of the dimming outside the selected segment on each highlight canvas.
DIM_ALPHA = 170


def encode_labels(labels: np.ndarray) -> dict[str, Any]:
    """``(H, W)`` non-negative int labels -> ``{dtype, data}``: zlib (RFC 1950) bytes, base64.

    ``uint8`` when every id is below 256, else little-endian ``uint16`` (ids below 65536).
    """
    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.size == 0:
        raise ValueError(f"labels must be a non-empty (H, W) array. Got shape {lab.shape}.")
    if lab.min() < 0 or lab.max() >= 2**16:
        raise ValueError("label ids must lie in [0, 65535].")
    dtype = "uint8" if lab.max() < 256 else "uint16"
    raw = np.ascontiguousarray(lab.astype("<u2" if dtype == "uint16" else np.uint8)).tobytes()
    return {"dtype": dtype, "data": base64.b64encode(zlib.compress(raw, 9)).decode("ascii")}


def _image_data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=92)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fit(image: Image.Image, levels: Mapping[int, np.ndarray], max_side: int | None
         ) -> tuple[Image.Image, dict[int, np.ndarray]]:
    """Shrink the image (bilinear) and label maps (nearest) so the longer side <= ``max_side``."""
    W, H = image.size
    if max_side is None or max(H, W) <= max_side:
        return image, {k: np.asarray(v) for k, v in levels.items()}
    s = max_side / max(H, W)
    h, w = max(1, round(H * s)), max(1, round(W * s))
    ri = (np.arange(h) * H // h)[:, None]
    ci = (np.arange(w) * W // w)[None, :]
    return (image.resize((w, h), Image.BILINEAR),
            {k: np.asarray(v)[ri, ci] for k, v in levels.items()})


def explorer_html(image: Image.Image, levels: Mapping[int, np.ndarray], *, title: str = "image",
                  info: Mapping[str, Any] | None = None, max_side: int | None = 1024) -> str:
    """The explorer page for ``image`` and its label maps ``{K: (H, W) int labels}``.

    Args:
        image: the RGB image the labels belong to (same size as every label map).
        levels: one label map per level; shown coarse to fine in increasing K.
        title: shown in the page title; also the stem of the exported mask files.
        info: key -> value pairs shown under the title (backbone, solver, nested ...).
        max_side: images larger than this are shown (and masks exported) shrunk to it.
    """
    if not levels:
        raise ValueError("levels must hold at least one label map.")
    W, H = image.size
    for k, lab in levels.items():
        if np.asarray(lab).shape != (H, W):
            raise ValueError(f"level {k}: label map shape {np.asarray(lab).shape} differs from "
                             f"the image's (H, W) = {(H, W)}.")
    shown, maps = _fit(image, levels, max_side)
    order = sorted(maps)
    data = {
        "title": title,
        "width": shown.width,
        "height": shown.height,
        "original_size": [W, H],
        "dimAlpha": DIM_ALPHA,
        # ids shift by one, as in the summary grid; one colour per id of any level
        "palette": label_palette(max(max(int(np.max(maps[k])) for k in order) + 2, 256))[1:]
        .tolist(),
        "levels": [{"k": int(k), "n": len(np.unique(maps[k])), **encode_labels(maps[k])}
                   for k in order],
        "info": {str(k): v for k, v in (info or {}).items()},
    }
    if (W, H) != shown.size:
        data["info"]["shown at"] = f"{shown.width}x{shown.height} (image {W}x{H})"
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (_TEMPLATE.replace("__TITLE__", html.escape(title))
            .replace("__IMAGE__", _image_data_url(shown))
            .replace("__DATA__", payload))


def write_explorer(path: str | Path, image: Image.Image, levels: Mapping[int, np.ndarray],
                   **kwargs: Any) -> Path:
    """Write :func:`explorer_html` to ``path`` atomically; returns the path."""
    from deepcut.io.writers import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = explorer_html(image, levels, **kwargs)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def hierarchy_levels(image: Image.Image, levels: Sequence[int], solver: str = "spectral",
                     nested: bool = False, **config: Any) -> tuple[dict[int, np.ndarray], dict]:
    """Label maps ``{K: (H, W)}`` of ``image`` at each level, and a record of how they were made.

    ``spectral`` runs the ``hierarchy`` task (one eigendecomposition, ``nested`` merges the finest
    level into the coarser ones); any other solver runs the ``clusters`` task once per level on the
    same backbone features. ``config``: further :class:`~deepcut.SegmenterConfig` values
    (``backbone``, ``weights``, ``size``, ``stride``, ``seed``, ``steps`` ...).
    """
    from deepcut.pipeline import Segmenter
    from deepcut.tasks.hierarchy import parse_levels

    ks = parse_levels(levels)
    if solver == "spectral":
        seg = Segmenter(task="hierarchy", task_params={"levels": ks, "nested": nested}, **config)
        pred = seg(image)
        maps = dict(pred.task_output.level_labels)
        record = {"method": f"spectral hierarchy ({pred.extra['method']})",
                  "nested": bool(nested), "backbone": pred.meta["backbone"],
                  "segments found": ", ".join(str(pred.extra["n_segments_found"][str(k)])
                                              for k in ks)}
        return maps, record
    import deepcut.checkpoint  # noqa: F401  (registers the "clusters" task)

    seg = Segmenter(task="clusters", solver=solver, n_clusters=ks[0], **config)
    pf = seg.features(image.convert("RGB"))
    maps, found = {}, {}
    for k in ks:
        s = Segmenter(seg.config, backbone=seg.backbone, n_clusters=k)
        pred = s.predict_features(pf, image=image)
        maps[k] = pred.labels.astype(np.int64)
        found[k] = pred.n_clusters
    return maps, {"method": f"{solver}, one solve per level", "nested": False,
                  "backbone": pf.backbone,
                  "segments found": ", ".join(str(found[k]) for k in ks)}


_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>deepcut explorer: __TITLE__</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:18px;margin:0 0 4px}
#info{color:#555;margin-bottom:8px}
#bar{display:flex;gap:16px;align-items:center;flex-wrap:wrap;margin:8px 0}
#grid{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:6px;border-radius:4px}
figcaption{display:flex;justify-content:space-between;gap:8px;margin-bottom:4px}
.stack{position:relative;cursor:crosshair;width:var(--w)}
.stack canvas{display:block;width:var(--w);height:auto;image-rendering:pixelated}
.stack canvas.hl{position:absolute;left:0;top:0}
.mark{position:absolute;width:9px;height:9px;margin:-6px 0 0 -6px;border:2px solid #e00;
 border-radius:50%;pointer-events:none;display:none;box-shadow:0 0 0 1px #fff}
#chain{margin:8px 0;padding-left:22px}
#chain li.nest{color:#555}
button{font:inherit}
</style></head>
<body>
<h1>deepcut explorer: __TITLE__</h1>
<div id="info"></div>
<div id="bar">
 <span>Click a pixel: its segment is selected at every level.</span>
 <label>panel width <input id="zoom" type="range" min="160" max="900" step="10"></label>
 <label><input id="tint" type="checkbox" checked> colour segments</label>
 <label><input id="one" type="checkbox"> one level at a time:</label>
 <input id="level" type="range" min="0" step="1" value="0" disabled>
 <span id="levelK"></span>
 <span id="pos">no selection</span>
</div>
<ol id="chain"></ol>
<div id="grid"></div>
<script type="application/json" id="deepcut-data">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("deepcut-data").textContent);
const W = D.width, H = D.height, N = W * H;
const img = new Image();
const L = {};            // K -> Uint8Array|Uint16Array of W*H labels, row-major
const sel = {x: null, y: null, ids: {}};
async function inflate(level) {
  const bin = Uint8Array.from(atob(level.data), c => c.charCodeAt(0));
  const stream = new Blob([bin]).stream().pipeThrough(new DecompressionStream("deflate"));
  const buf = await new Response(stream).arrayBuffer();
  return level.dtype === "uint16" ? new Uint16Array(buf) : new Uint8Array(buf);
}
function el(tag, props, parent) {
  const e = Object.assign(document.createElement(tag), props || {});
  if (parent) parent.appendChild(e);
  return e;
}
function drawBase(k) {
  const c = document.getElementById("base-" + k), ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0, W, H);
  const im = ctx.getImageData(0, 0, W, H), p = im.data, lab = L[k];
  const tint = document.getElementById("tint").checked ? 0.45 : 0;
  for (let i = 0; i < N; i++) {
    const x = i % W, l = lab[i];
    const edge = (x + 1 < W && lab[i + 1] !== l) || (i + W < N && lab[i + W] !== l);
    const col = D.palette[l];
    for (let ch = 0; ch < 3; ch++) {
      const v = (1 - tint) * p[4 * i + ch] + tint * col[ch];
      p[4 * i + ch] = edge ? (v + 255) / 2 : v;  // half-white borders: visible, not glaring
    }
  }
  ctx.putImageData(im, 0, 0);
}
function inside(k, id) {
  const lab = L[k], m = new Uint8Array(N);
  for (let i = 0; i < N; i++) m[i] = lab[i] === id ? 1 : 0;
  return m;
}
function drawHighlight(k) {
  const c = document.getElementById("hl-" + k), ctx = c.getContext("2d");
  const im = ctx.createImageData(W, H), p = im.data;
  if (sel.x === null) { ctx.putImageData(im, 0, 0); return; }
  const m = inside(k, sel.ids[k]);
  for (let i = 0; i < N; i++) {
    if (!m[i]) { p[4 * i + 3] = D.dimAlpha; continue; }
    const x = i % W;
    const border = (x > 0 && !m[i - 1]) || (x + 1 < W && !m[i + 1]) ||
                   (i >= W && !m[i - W]) || (i + W < N && !m[i + W]);
    if (border) { p[4 * i] = 255; p[4 * i + 1] = 215; p[4 * i + 2] = 0; p[4 * i + 3] = 255; }
  }
  ctx.putImageData(im, 0, 0);
}
function count(m) { let s = 0; for (let i = 0; i < N; i++) s += m[i]; return s; }
function showChain() {
  const ol = document.getElementById("chain");
  ol.textContent = "";
  if (sel.x === null) return;
  let prev = null, prevK = null;
  for (const lv of D.levels) {
    const m = inside(lv.k, sel.ids[lv.k]), n = count(m);
    let text = `K=${lv.k}: segment ${sel.ids[lv.k]}, ${(100 * n / N).toFixed(1)}% of the image`;
    if (prev) {
      let both = 0;
      for (let i = 0; i < N; i++) both += m[i] & prev[i];
      text += `, ${(100 * both / n).toFixed(1)}% inside the K=${prevK} segment`;
    }
    el("li", {textContent: text, className: prev ? "nest" : ""}, ol);
    prev = m; prevK = lv.k;
  }
}
function select(x, y) {
  x = Math.max(0, Math.min(W - 1, Math.floor(x)));
  y = Math.max(0, Math.min(H - 1, Math.floor(y)));
  sel.x = x; sel.y = y;
  for (const lv of D.levels) sel.ids[lv.k] = L[lv.k][y * W + x];
  document.getElementById("pos").textContent = `selected pixel x=${x}, y=${y}`;
  for (const lv of D.levels) {
    drawHighlight(lv.k);
    const mk = document.getElementById("mark-" + lv.k);
    mk.style.left = (100 * (x + 0.5) / W) + "%"; mk.style.top = (100 * (y + 0.5) / H) + "%";
    mk.style.display = "block";
    document.getElementById("export-" + lv.k).disabled = false;
  }
  showChain();
}
function maskCanvas(k) {
  const c = el("canvas", {width: W, height: H}), ctx = c.getContext("2d");
  const im = ctx.createImageData(W, H), p = im.data, m = inside(k, sel.ids[k]);
  for (let i = 0; i < N; i++) {
    const v = m[i] ? 255 : 0;
    p[4 * i] = p[4 * i + 1] = p[4 * i + 2] = v; p[4 * i + 3] = 255;
  }
  ctx.putImageData(im, 0, 0);
  return c;
}
function exportMask(k) {
  maskCanvas(k).toBlob(blob => {
    const a = el("a", {href: URL.createObjectURL(blob),
      download: `${D.title}_k${k}_x${sel.x}_y${sel.y}_mask.png`});
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }, "image/png");
}
function setWidth(px) {
  document.documentElement.style.setProperty("--w", px + "px");
}
async function main() {
  if (!("DecompressionStream" in window)) {
    throw new Error("this browser lacks DecompressionStream (Chrome 80+, Firefox 113+, " +
                    "Safari 16.4+ have it)");
  }
  document.getElementById("info").textContent =
    Object.entries(D.info).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
      .join(" · ");
  img.src = "__IMAGE__";
  await img.decode();
  for (const lv of D.levels) L[lv.k] = await inflate(lv);
  const grid = document.getElementById("grid");
  for (const lv of D.levels) {
    const f = el("figure", {id: "level-" + lv.k}, grid);
    const cap = el("figcaption", {}, f);
    el("span", {textContent: `K = ${lv.k} (${lv.n} segments)`}, cap);
    const b = el("button", {id: "export-" + lv.k, textContent: "export mask PNG", disabled: true},
                 cap);
    b.onclick = () => exportMask(lv.k);
    const st = el("div", {className: "stack"}, f);
    el("canvas", {id: "base-" + lv.k, width: W, height: H}, st);
    const hl = el("canvas", {id: "hl-" + lv.k, className: "hl", width: W, height: H}, st);
    el("div", {id: "mark-" + lv.k, className: "mark"}, st);
    hl.addEventListener("click", e => {
      const r = hl.getBoundingClientRect();
      select((e.clientX - r.left) * W / r.width, (e.clientY - r.top) * H / r.height);
    });
    drawBase(lv.k);
    drawHighlight(lv.k);
  }
  const zoom = document.getElementById("zoom");
  // side by side when the window allows it: panels share its width, 240..480 px each
  const fit = Math.floor((window.innerWidth - 40) / D.levels.length) - 26;
  zoom.value = Math.max(240, Math.min(480, fit));
  setWidth(zoom.value);
  zoom.oninput = () => setWidth(zoom.value);
  document.getElementById("tint").onchange = () => D.levels.forEach(lv => drawBase(lv.k));
  // level slider: show one level's panel at a time instead of all side by side
  const one = document.getElementById("one"), lvl = document.getElementById("level");
  lvl.max = D.levels.length - 1;
  const layout = () => {
    D.levels.forEach((lv, i) => {
      document.getElementById("level-" + lv.k).style.display =
        one.checked && i !== Number(lvl.value) ? "none" : "";
    });
    lvl.disabled = !one.checked;
    document.getElementById("levelK").textContent =
      one.checked ? `K = ${D.levels[Number(lvl.value)].k}` : "";
  };
  one.onchange = layout;
  lvl.oninput = layout;
  layout();
}
window.explorer = {
  ready: main(), select, selection: sel, levels: D.levels.map(lv => lv.k),
  maskDataURL: k => maskCanvas(k).toDataURL("image/png"),
};
window.explorer.ready.catch(e => {
  document.getElementById("pos").textContent = "cannot show the page: " + e.message;
});
</script>
</body></html>
"""
