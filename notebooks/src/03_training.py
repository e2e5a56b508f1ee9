# %% [markdown]
# # Dataset-level training with Lightning
#
# Per-image DeepCut trains a small GNN head on every image. `train.py` instead trains **one**
# head over a folder of images (Lightning; features cached on disk on the first pass), saves
# checkpoints, and `infer.py --checkpoint` then segments new images with one forward pass each,
# with cluster ids that mean the same thing across images. The run is logged to Weights & Biases
# **offline** (no account, no network; `wandb sync` uploads it later).
#
# The folder here is made by the notebook itself: 12 synthetic images, a coloured ellipse on a
# textured background. With the `classic` backbone everything runs on a CPU in about a minute;
# with DINO weights add `--data.backbone dino_vits8 --data.weights FILE` (the backbone pass
# then takes about a second per image, once: later epochs read the feature cache).

# %%
import json
import os
import shutil
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a bare kernel
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib_inline.backend_inline import set_matplotlib_formats
from nbtools import blob_image, sh  # notebooks/nbtools.py: shared helpers
from PIL import Image

from deepcut.lightning.wandb_utils import find_offline_runs, read_offline_run
from deepcut.viz import overlay

set_matplotlib_formats("jpeg")  # figures saved as JPEG: small notebooks
ROOT = Path("..")  # the notebooks run from notebooks/
WORK = Path("_work") / "training"  # scratch outputs (git-ignored), made afresh
shutil.rmtree(WORK, ignore_errors=True)
DATA = WORK / "images"
rng = np.random.default_rng(0)
DATA.mkdir(parents=True)
for i in range(12):
    Image.fromarray(blob_image(rng)[0]).save(DATA / f"blob_{i:02d}.png")
fig, axes = plt.subplots(1, 6, figsize=(12, 1.6))
for ax, p in zip(axes, sorted(DATA.iterdir())):
    ax.imshow(Image.open(p))
    ax.set_title(p.stem, fontsize=9)
    ax.axis("off")

# %% [markdown]
# ## Train
# `configs/segment_folder.yaml` documents every option; the flags override it. `--logger wandb
# --wandb.mode offline` writes the W&B run into `--wandb.save_dir`.

# %%
sh(f"""python ../train.py fit --config ../configs/segment_folder.yaml --data.root {DATA}
    --data.backbone classic --data.size 96 --data.batch_size 4 --data.cache_dir {WORK}/cache
    --trainer.max_epochs 15 --trainer.log_every_n_steps 1 --trainer.enable_progress_bar false
    --trainer.enable_model_summary false --trainer.default_root_dir {WORK}/runs
    --model.log_images_every_n_steps 15
    --logger wandb --wandb.mode offline --wandb.save_dir {WORK}/wandb --wandb.name notebook""")

# %%
ckpts = sorted(WORK.glob("runs/**/*.ckpt")) + sorted(WORK.glob("wandb/**/*.ckpt"))
print("\n".join(str(p) for p in ckpts))
ckpt = next((p for p in ckpts if p.name == "last.ckpt"), ckpts[-1])

# %% [markdown]
# ## What the offline W&B run logged
# `read_offline_run` reads the run's own files back (no network): the config, every logged key,
# the history (one row per logged step) and the image files.

# %%
run_dir = find_offline_runs(WORK / "wandb")[0]
run = read_offline_run(run_dir)
print("run folder:", run_dir.name)
print("logged keys:", sorted(run["keys"]))
print("config: n_clusters =", run["config"].get("n_clusters"), ", loss =",
      run["config"].get("loss"), ", lr =", run["config"].get("lr"))
print("images logged:", len(run["images"]), " files saved:", sorted(run["files"])[:6])

# %%
steps = [r.get("trainer/global_step", r["_step"]) for r in run["history"] if "train/loss" in r]
loss = [r["train/loss"] for r in run["history"] if "train/loss" in r]
ncut = [r["train/ncut"] for r in run["history"] if "train/ncut" in r]
fig, ax = plt.subplots(1, 2, figsize=(9, 2.8))
ax[0].plot(steps, loss, ".-")
ax[0].set(title="train/loss", xlabel="step")
ax[1].plot(steps[:len(ncut)], ncut, ".-", color="C1")
ax[1].set(title="train/ncut (discrete, per batch)", xlabel="step")
fig.tight_layout()

# %%
logged = [p for p in run["images"] if p.endswith(".png")]
plt.figure(figsize=(8, 2.5))
plt.imshow(Image.open(logged[-1]))
plt.title("the last overlay image logged to W&B")
plt.axis("off");

# %% [markdown]
# ## Inference from the checkpoint
# No per-image training: one forward pass of the trained head per image (`--finetune-steps N`
# would adapt it to each image first). The JSON of each image records the checkpoint.

# %%
sh(f"python ../infer.py {DATA} --checkpoint {ckpt} --out {WORK}/pred --quiet")
rec = json.loads((WORK / "pred" / "blob_00.json").read_text())
print("checkpoint in the JSON:", {k: rec["checkpoint"][k] for k in list(rec["checkpoint"])[:3]})

# %%
fig, axes = plt.subplots(1, 6, figsize=(12, 1.8))
for ax, p in zip(axes, sorted(DATA.iterdir())):
    labels = np.asarray(Image.open(WORK / "pred" / p.name))
    r = json.loads((WORK / "pred" / f"{p.stem}.json").read_text())
    ax.imshow(overlay(Image.open(p).convert("RGB"), labels, box=r["box"]))
    ax.set_title(f"NCut {r['ncut']:.2f}", fontsize=9)
    ax.axis("off")
