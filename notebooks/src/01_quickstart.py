# %% [markdown]
# # Quickstart: segment an image
#
# One call segments an image: patch features from a backbone become a patch graph, a graph-cut
# solver splits it, and the task turns the clusters into pixel labels (here: object vs
# background and the object's box). This notebook uses the weight-free `classic` backbone so it
# runs anywhere in well under two minutes on a CPU; the last section shows what changes with
# DINO weights.
#
# Regenerate every notebook (with outputs) from the repository root:
# `python scripts/make_notebooks.py`.

# %%
import json
import shutil
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a bare kernel

import matplotlib.pyplot as plt
import numpy as np
from matplotlib_inline.backend_inline import set_matplotlib_formats
from nbtools import sh  # notebooks/nbtools.py: shared helpers
from PIL import Image

from deepcut import Segmenter
from deepcut.viz import overlay

set_matplotlib_formats("jpeg")  # figures saved as JPEG: small notebooks
ROOT = Path("..")  # the notebooks run from notebooks/
WORK = Path("_work") / "quickstart"  # scratch outputs (git-ignored), made afresh
shutil.rmtree(WORK, ignore_errors=True)
image = Image.open(ROOT / "examples" / "chelsea.png").convert("RGB")
print("image size (W, H):", image.size)

# %% [markdown]
# ## Segment
# `Segmenter(...)` takes the same options as `infer.py` (they are `SegmenterConfig` fields);
# calling it on a PIL image or a path returns a `Prediction`.

# %%
seg = Segmenter(backbone="classic", solver="gnn", n_clusters=2, seed=0)
pred = seg(image)
print("labels", pred.labels.shape, pred.labels.dtype, "ids", np.unique(pred.labels).tolist())
print("box (x0, y0, x1, y1):", pred.box)
print("K =", pred.n_clusters, " NCut =", round(pred.ncut, 4))
print("timings (s):", {k: round(v, 3) for k, v in pred.timings.items()})

# %% [markdown]
# The overlay colours the object (label 1), draws segment borders in yellow and the object's
# box in red (`deepcut.viz.overlay`, the same picture `infer.py` writes as `<stem>_overlay.png`).

# %%
plt.figure(figsize=(5, 3.4))
plt.imshow(overlay(image, pred.labels, box=pred.box))
plt.axis("off");

# %% [markdown]
# `pred.record()` is the JSON that `infer.py` writes next to each label map: image, backbone and
# weights id, seed, K, NCut, box, timings per stage, the task's extras and the full config.

# %%
rec = pred.record()
for key, value in rec.items():
    if key != "config":
        print(f"{key}: {json.dumps(value)}")
print("config keys:", sorted(rec["config"]))

# %% [markdown]
# ## Three solvers side by side
# `gnn` is DeepCut (a small GCN trained on this image with the NCut loss), `spectral` the
# classic NCut eigenvector baseline and `falcon` a Falcon-style fractional alternating cut. Every
# solver reports the same yardstick: the discrete NCut of its labelling (lower is a better cut).

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
for ax, solver in zip(axes, ["gnn", "spectral", "falcon"]):
    t0 = time.perf_counter()
    p = Segmenter(backbone="classic", solver=solver, seed=0)(image)
    dt = time.perf_counter() - t0
    ax.imshow(overlay(image, p.labels, box=p.box))
    ax.set_title(f"{solver}: NCut {p.ncut:.3f}, {dt:.2f} s")
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# ## The same from the command line
# `infer.py` writes the label map, the overlay and the JSON per image (atomically; a folder run
# resumes where it stopped). `sh` runs a command line as a shell would and fails the notebook if
# the command fails (a `!` line would not).

# %%
sh(f"python ../infer.py ../examples/chelsea.png --backbone classic --out {WORK}")
sorted(p.name for p in WORK.iterdir())

# %% [markdown]
# ## With DINO weights
# The default backbone `auto` uses DINO ViT-S/8 when its weights can be had (timm's cache, a
# download, or a local file) and otherwise falls back to `classic` with one warning. With
# weights, only the backbone argument changes; everything above stays the same:
#
# ```python
# seg = Segmenter(backbone="dino_vits8", weights="dino_deitsmall8_pretrain.pth", seed=0)
# pred = seg("../examples/chelsea.png")
# ```
#
# DINO keys give object-level features, so the masks follow object boundaries far better than
# the colour/texture statistics of `classic`; the backbone step then takes about a second per
# image on a CPU instead of a few milliseconds.
