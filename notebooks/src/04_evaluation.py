# %% [markdown]
# # Evaluation: a small benchmark run
#
# `eval.py` runs a method over a dataset and writes the predictions, one row of scores per image
# (`per_image.csv`) and a summary (`summary.md`, `summary.json`) that states the dataset, the
# item count, the scoring resolution and the full config. Here the dataset is made by the
# notebook: 10 synthetic images with their ground-truth masks, in the layout of the SOD loader
# (`images/<id>.jpg`, `masks/<id>.png` with 0/255, `list.txt`). For a real benchmark point
# `--root` at your copy, e.g. `--dataset ecssd --root $DATA/ECSSD`.
#
# The method is DeepCut's GNN on the weight-free `classic` backbone, compared with spectral NCut;
# with DINO weights add `--backbone dino_vits8 --weights FILE` (scores then rise on real photos,
# at about a second per image on a CPU).

# %%
import csv
import shutil
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a bare kernel

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown
from matplotlib_inline.backend_inline import set_matplotlib_formats
from nbtools import blob_image, sh  # notebooks/nbtools.py: shared helpers
from PIL import Image

set_matplotlib_formats("jpeg")  # figures saved as JPEG: small notebooks
WORK = Path("_work") / "evaluation"  # scratch outputs (git-ignored), made afresh
shutil.rmtree(WORK, ignore_errors=True)
DATA = WORK / "toy_sod"
rng = np.random.default_rng(1)
(DATA / "images").mkdir(parents=True)
(DATA / "masks").mkdir()
ids = [f"toy_{i:02d}" for i in range(10)]
for i in ids:
    img, mask = blob_image(rng)
    Image.fromarray(img).save(DATA / "images" / f"{i}.jpg", quality=95)
    Image.fromarray(mask.astype(np.uint8) * 255).save(DATA / "masks" / f"{i}.png")
(DATA / "list.txt").write_text("\n".join(ids) + "\n")
sorted(p.name for p in DATA.iterdir())

# %% [markdown]
# ## Run the evaluation
# One command per method; rerunning the same command resumes (finished items are read back).

# %%
for solver in ("gnn", "spectral"):
    sh(f"python ../eval.py --dataset sod --root {DATA} --task segment --solver {solver} "
       f"--backbone classic --size 96 --out {WORK}/{solver} --quiet")
    print(solver, "->", sorted(p.name for p in (WORK / solver).iterdir()))

# %% [markdown]
# ## The summary table
# `summary.md` as written (the GNN run):

# %%
Markdown((WORK / "gnn" / "summary.md").read_text())

# %% [markdown]
# ## Per-image scores
# `per_image.csv` has one row per image; the plot compares the two methods image by image.

# %%
def per_image(solver):
    with open(WORK / solver / "per_image.csv") as f:
        return list(csv.DictReader(f))


rows = {s: per_image(s) for s in ("gnn", "spectral")}
print("columns:", list(rows["gnn"][0]))
metric = "iou" if "iou" in rows["gnn"][0] else next(c for c in rows["gnn"][0]
                                                 if c not in ("id", "status"))
x = np.arange(len(ids))
fig, ax = plt.subplots(figsize=(9, 3))
for j, (solver, rs) in enumerate(rows.items()):
    vals = [float(r[metric]) for r in rs]
    ax.bar(x + 0.4 * j - 0.2, vals, width=0.4, label=f"{solver} (mean {np.mean(vals):.3f})")
ax.set_xticks(x, [r["id"] for r in rows["gnn"]], rotation=45, fontsize=8)
ax.set(ylabel=metric, ylim=(0, 1), title=f"per-image {metric} on the toy set")
ax.legend(loc="lower right")
fig.tight_layout()

# %% [markdown]
# The worst image of the GNN run, with its prediction next to the ground truth:

# %%
worst = min(rows["gnn"], key=lambda r: float(r[metric]))["id"]
pred = np.asarray(Image.open(WORK / "gnn" / "predictions" / f"{worst}.png"))
fig, axes = plt.subplots(1, 3, figsize=(9, 2.4))
for ax, im, t in zip(axes, [Image.open(DATA / "images" / f"{worst}.jpg"),
                            Image.open(DATA / "masks" / f"{worst}.png"), pred > 0],
                     ["image", "ground truth", (f"gnn prediction ({metric} "
                      f"{float(next(r for r in rows['gnn'] if r['id'] == worst)[metric]):.2f})")]):
    ax.imshow(im, cmap="gray")
    ax.set_title(t, fontsize=9)
    ax.axis("off")
