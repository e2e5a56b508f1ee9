# %% [markdown]
# # Hierarchy, parts and k-less segmentation
#
# Three ways to get more than object vs background, all with the weight-free `classic` backbone
# (CPU, well under two minutes; with DINO weights pass `"dino_vits8"` and a `weights=` file, see
# the quickstart):
#
# 1. a **hierarchy**: one set of NCut eigenvectors, segments at several K (ncut-pytorch's
#    tutorial API: `set_images`, `summary`, `preview`), optionally **nested**;
# 2. **parts**: the object first, then its parts (DeepCut's two-stage parts);
# 3. **k-less**: correlation clustering finds K by itself.

# %%
import shutil
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a bare kernel

import itertools

import numpy as np
from matplotlib_inline.backend_inline import set_matplotlib_formats
from nbtools import sh, show  # notebooks/nbtools.py: shared helpers
from PIL import Image

from deepcut import Segmenter
from deepcut.tasks.hierarchy import HierarchyPredictor
from deepcut.viz import overlay

set_matplotlib_formats("jpeg")  # figures saved as JPEG: small notebooks
ROOT = Path("..")  # the notebooks run from notebooks/
WORK = Path("_work") / "hierarchy"  # scratch outputs (git-ignored), made afresh
shutil.rmtree(WORK, ignore_errors=True)
image = Image.open(ROOT / "examples" / "chelsea.png").convert("RGB")

# %% [markdown]
# ## A hierarchy of segments
# `set_images` runs the backbone once per image and computes the NCut eigenvectors once, for the
# largest K; every level is cut from them. `summary()` shows the image and one coloured map per
# level (segment borders in black).

# %%
hp = HierarchyPredictor("classic", n_segments=(5, 10, 20, 40), seed=0)
hp.set_images([image])
show([hp.summary(max_side=300)], ["image, then K = 5, 10, 20, 40"], height=2.6)

# %% [markdown]
# By default each level is its own k-means on the eigenvectors, so a fine segment may straddle
# two coarse ones. `nested=True` discretises only the finest level and merges its segments
# greedily (each merge lowers the NCut the most), so every fine segment lies inside exactly one
# coarse segment.

# %%
nested = HierarchyPredictor("classic", n_segments=(5, 10, 20, 40), nested=True, seed=0)
nested.set_images([image])
show([nested.summary(max_side=300)], ["nested: image, then K = 5, 10, 20, 40"], height=2.6)

# %% [markdown]
# `preview((x, y))` gives the segment under a pixel at every level: a boolean mask per K. In
# nested mode the masks only shrink as K grows; the check below counts, per level, the pixels
# that leave the coarser mask.

# %%
point = (200, 120)  # x, y: the cat's left eye
masks = nested.preview(point)
show([overlay(image, m.astype(np.uint8), alpha=0.6) for m in masks.values()],
     [f"K={k}: {m.mean():.1%} of the image" for k, m in masks.items()])
ks = list(masks)
print({f"K={b} outside K={a}": int((masks[b] & ~masks[a]).sum())
       for a, b in itertools.pairwise(ks)})

# %% [markdown]
# ## The interactive explorer
# `deepcut-explore IMAGE --levels 5,10,20,40` (or `infer.py IMAGE --task hierarchy --html`)
# writes one self-contained HTML file: click a pixel and its segment is highlighted at every
# level, the nested chain is listed from coarse to fine, and each level's region can be
# downloaded as a mask PNG. It works offline, without a server. Below it runs as
# `python -m deepcut.cli.explore`, the same command as the installed `deepcut-explore`.
#
# ![the explorer after a click on the cat's eye](../docs/images/explorer.png)

# %%
sh(f"python -m deepcut.cli.explore ../examples/chelsea.png --levels 5,10,20,40 --nested "
   f"--backbone classic --out {WORK}/chelsea_explorer.html")
print(f"{(WORK / 'chelsea_explorer.html').stat().st_size / 1024:.0f} KiB, open it in a browser")

# %% [markdown]
# ## Parts
# The `parts` task first separates the object from the background, then cuts the object's
# patches into `parts` parts (and, with `split_background`, the background into regions).
# Label 0 stays background.

# %%
parts = {solver: Segmenter(backbone="classic", task="parts", solver=solver,
                           task_params={"parts": 4}, seed=0)(image)
         for solver in ("gnn", "spectral")}
for solver, pr in parts.items():
    print(f"{solver}: labels {pr.label_names}; parts found: {pr.extra['parts_found']}")
show([overlay(image, pr.labels) for pr in parts.values()],
     [f"{s}: {pr.extra['parts_found']} of 4 parts found" for s, pr in parts.items()])

# %% [markdown]
# `extra["parts_found"]` says how many of the requested parts are non-empty: when the GNN's part
# split collapses (as it can on the weak `classic` features), the JSON and this number say so.

# %% [markdown]
# ## k-less: K found by correlation clustering
# With `k_rule="cc"` the `kless` task trains the GNN with the correlation-clustering loss on the
# signed graph (DeepCut's k-less, the GNN's default on ViT features): K is only an upper bound
# (`k_max`); `alpha` sets how readily it splits (lower, more clusters).
# The CC graph repels pairs less similar than `mu + (s - mu) / alpha` (`mu`: the mean
# similarity of two patches, `s`: of a patch with itself), so `alpha` means the same on every
# image and feature scale. On the `classic` features of this image `alpha=3` still fills the
# `k_max=10` bound (the result says so in a warning and in its JSON, `warnings`), and larger
# values give fewer regions.

# %%
found = {}
for alpha in (3.0, 12.0, 25.0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each result keeps its warnings: printed below
        kl = Segmenter(backbone="classic", task="kless", alpha=alpha,
                       task_params={"k_max": 10, "k_rule": "cc"}, seed=0)(image)
    found[alpha] = kl
    print(f"alpha={alpha}: K found = {kl.n_clusters} (k_max 10), NCut = {kl.ncut:.3f}")
    for w in kl.meta["solver"]["warnings"]:
        print("  warning:", w)
show([overlay(image, kl.labels, background=None) for kl in found.values()],
     [f"alpha={a}: K={kl.n_clusters}" for a, kl in found.items()])

# %% [markdown]
# The other rule, `k_rule="eigengap"`, takes K from the largest eigengap of the graph's
# normalised Laplacian and then cuts K segments (the GNN with its NCut loss). It is the default
# on the `classic` backbone's local graph, where the CC graph (a dense graph of feature
# similarities, without positions or contours) asks for more segments than `k_max`; on BSDS it
# scores far higher there (README).

# %%
kl = Segmenter(backbone="classic", task="kless", task_params={"k_max": 10}, seed=0)(image)
print(f"default rule here: {kl.extra['k_rule']}, K found = {kl.n_clusters} (k_max 10)")
show([overlay(image, kl.labels, background=None)], [f"{kl.extra['k_rule']}: K={kl.n_clusters}"])
