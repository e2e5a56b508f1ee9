"""Dataset-level training (deepcut/lightning, train.py) and checkpoint inference (infer.py).

A tiny generated image set (6 images, 64 x 48 px) and the weight-free ``classic`` backbone (or a
2-block random-init ViT) keep every test to seconds. The DDP test runs ``train.py``'s CLI in a
subprocess: Lightning's ``ddp`` strategy starts the second rank by re-running that script.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

lightning = pytest.importorskip("lightning")

from conftest import make_image, make_image_dir
from lightning.pytorch import Callback, Trainer

from deepcut.io import read_label_map
from deepcut.lightning.datamodule import DeepCutDataModule
from deepcut.lightning.module import DeepCutModule

REPO = Path(__file__).resolve().parents[1]
N_IMAGES = 6


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> Path:
    return make_image_dir(tmp_path_factory.mktemp("run") / "images", N_IMAGES)


def _dm(image_dir, cache, **kw) -> DeepCutDataModule:
    kw = {"backbone": "classic", "size": 64, "batch_size": 3, "cache_dir": str(cache), **kw}
    return DeepCutDataModule(root=str(image_dir), **kw)


def _trainer(root, epochs=3, **kw) -> Trainer:
    kw = {"max_epochs": epochs, "accelerator": "cpu", "devices": 1, "logger": False,
          "enable_progress_bar": False, "enable_model_summary": False,
          "default_root_dir": str(root), "num_sanity_val_steps": 0, **kw}
    return Trainer(**kw)


class EpochLosses(Callback):
    def __init__(self):
        self.losses, self.keys = [], set()

    def on_train_epoch_end(self, trainer, pl_module):
        self.losses.append(float(trainer.callback_metrics["train/loss_epoch"]))
        self.keys |= set(trainer.logged_metrics)


def _model(dm, **kw) -> DeepCutModule:
    kw = {"lr": 0.01, "size": dm.size, "backbone": dm.backbone_name,
          "log_images_every_n_steps": 0, **kw}
    return DeepCutModule(in_dim=dm.feature_dim, **kw)


def test_three_epochs_make_the_loss_fall(image_dir, tmp_path):
    torch.manual_seed(0)
    dm = _dm(image_dir, tmp_path / "cache")
    rec = EpochLosses()
    _trainer(tmp_path, epochs=3, callbacks=[rec], log_every_n_steps=1).fit(_model(dm), dm)
    assert len(rec.losses) == 3
    assert rec.losses[-1] < rec.losses[0], rec.losses
    assert {"train/loss", "train/ncut", "train/k_used", "train/lr"} <= rec.keys


@pytest.mark.parametrize("backbone,options", [
    ("classic", None),
    ("timm:vit_tiny_patch16_224", {"pretrained": False, "depth": 2}),
])
def test_feature_cache_is_hit_after_the_first_pass(image_dir, tmp_path, backbone, options):
    calls = []

    def count(dm):
        fwd = dm.backbone.forward
        dm.backbone.forward = lambda image: (calls.append(1), fwd(image))[1]

    dm = _dm(image_dir, tmp_path / "cache", backbone=backbone, backbone_options=options)
    count(dm)
    _trainer(tmp_path, epochs=3).fit(_model(dm), dm)
    assert len(calls) == N_IMAGES  # each image once, in prepare_data: epochs 1-3 read the cache
    assert dm.cache.stats["backbone_calls"] == N_IMAGES
    assert dm.cache.stats["hits"] >= 3 * N_IMAGES  # three training passes (+ validation)
    assert (dm.cache.folder / "spec.json").is_file()

    calls.clear()  # a second run on the same cache never runs the backbone
    dm2 = _dm(image_dir, tmp_path / "cache", backbone=backbone, backbone_options=options)
    count(dm2)
    _trainer(tmp_path, epochs=1).fit(_model(dm2), dm2)
    assert calls == [] and dm2.cache.stats["backbone_calls"] == 0
    assert dm2.cache.folder == dm.cache.folder  # same key: same backbone, weights, size, stride


def test_cache_key_changes_with_size_and_stride(image_dir, tmp_path):
    folders = {_dm(image_dir, tmp_path, size=s, stride=st).cache.folder
               for s, st in [(64, None), (72, None), (64, 4)]}
    assert len(folders) == 3


def test_padded_batch_matches_per_graph_losses(image_dir, tmp_path):
    """One loss over a padded batch of graphs = the mean of the per-graph losses."""
    from deepcut.lightning.graph_batch import build_graph_batch

    sizes = [(64, 48), (80, 48), (48, 64)]  # different grids: padding is exercised
    for i, s in enumerate(sizes):
        make_image(tmp_path / f"v{i}.png", size=s, seed=i)
    dm = DeepCutDataModule(root=str(tmp_path), backbone="classic", size=48,
                           cache_dir=str(tmp_path / "c"))
    dm.prepare_data()
    dm.setup("fit")
    items = [dm.train_set[i] for i in range(len(sizes))]
    m = _model(dm).eval()
    gb = build_graph_batch(items, m.segmenter_config(device="cpu"))
    assert len(set(gb.n_nodes)) > 1 and gb.mask.sum().item() == sum(gb.n_nodes)
    batched = m._loss(m(gb.AX), gb)
    single = [m._loss(m(g.AX), g) for g in (build_graph_batch([it], m.segmenter_config(
        device="cpu")) for it in items)]
    assert torch.allclose(batched, torch.stack(single).mean(), atol=1e-5)

    # sparse kNN graphs cannot be padded: the loss is averaged graph by graph, and trains
    ms = _model(dm, knn=5)
    gs = build_graph_batch(items, ms.segmenter_config(device="cpu"))
    assert gs.W is None and all(W.is_sparse for W, _ in gs.graphs)
    loss = ms._loss(ms(gs.AX), gs)
    loss.backward()
    assert torch.isfinite(loss) and ms.head.conv.lin.weight.grad is not None


def test_local_graph_training_uses_the_cached_edge_map_as_inference_does(tmp_path):
    """The feature cache keeps the classic edge map, so a ``local`` training graph gets the
    contour cue exactly as inference builds it; the checkpoint records ``contour``, and a spec
    saved before the cue (no key) loads with the cue off."""
    from deepcut.checkpoint import HeadCheckpoint, checkpoint_config
    from deepcut.graphs.local import contour_edges
    from deepcut.lightning.graph_batch import build_graph_batch
    from deepcut.tasks.base import make_graph

    make_image(tmp_path / "a.png", size=(64, 64), seed=3)
    dm = DeepCutDataModule(root=str(tmp_path), backbone="classic", size=64,
                           cache_dir=str(tmp_path / "c"))
    dm.prepare_data()
    dm.setup("fit")
    first = dm.train_set[0]
    again = dm.train_set[0]  # read back from the cache
    assert dm.train_set.cache.stats["hits"] >= 1
    E = again["extra"]["edges"]
    h, w, D = again["features"].shape
    assert torch.equal(E, first["extra"]["edges"]) and E.shape == (3 * h, 3 * w)  # 3 cells/patch

    m = _model(dm, graph="local", loss="soft_ncut")
    cfg = m.segmenter_config(device="cpu")
    assert (cfg.graph, cfg.radius, cfg.contour) == ("local", 9.0, 1.0)
    gb = build_graph_batch([again], cfg)
    X = again["features"].reshape(h * w, D).float()
    with contour_edges(E):
        want = make_graph(X, cfg, grid=(h, w)).positive().W.to_dense()
    plain = make_graph(X, cfg, grid=(h, w)).positive().W.to_dense()
    got = gb.graphs[0][0].to_dense()
    assert torch.allclose(got, want) and not torch.allclose(got, plain)

    spec = m.inference_spec()
    assert spec["config"]["contour"] == 1.0 and spec["config"]["radius"] == 9.0
    head = {k: v for k, v in m.head.state_dict().items()}
    old = {**spec, "config": {k: v for k, v in spec["config"].items() if k != "contour"}}
    assert checkpoint_config(HeadCheckpoint(spec=old,
                                            head_state=head)).contour is None
    assert checkpoint_config(HeadCheckpoint(spec=spec,
                                            head_state=head)).contour == 1.0


def _fit_checkpoint(image_dir, tmp_path, **model_kw):
    from lightning.pytorch.callbacks import ModelCheckpoint

    dm = _dm(image_dir, tmp_path / "cache")
    model = _model(dm, **model_kw)
    ck = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="last")
    trainer = _trainer(tmp_path, epochs=3, callbacks=[ck])
    trainer.fit(model, dm)
    return dm, model, trainer, Path(ck.best_model_path)


def test_checkpoint_reloads_to_identical_predictions(image_dir, tmp_path, capsys):
    from deepcut.checkpoint import load_checkpoint
    from deepcut.cli.infer import main

    dm, model, trainer, ckpt = _fit_checkpoint(image_dir, tmp_path)
    spec = load_checkpoint(ckpt).spec
    assert spec["backbone"]["name"] == "classic" and spec["head"]["in_dim"] == dm.feature_dim
    assert spec["config"]["size"] == 64 and spec["config"]["loss"] == "ncut"

    in_memory = trainer.predict(model, dm)  # the trained module, before any reload
    reloaded = DeepCutModule.load_from_checkpoint(ckpt)
    from_file = _trainer(tmp_path, epochs=1).predict(reloaded, dm)
    a = {r["stem"]: r["prediction"] for batch in in_memory for r in batch}
    b = {r["stem"]: r["prediction"] for batch in from_file for r in batch}
    assert sorted(a) == [f"im{i}" for i in range(N_IMAGES)] and sorted(a) == sorted(b)
    for stem, pa in a.items():
        assert np.array_equal(pa.labels, b[stem].labels)
        assert torch.equal(pa.task_output.assignment, b[stem].task_output.assignment)

    # infer.py needs nothing but the checkpoint: same labels, no per-image training
    out = tmp_path / "out"
    assert main([str(image_dir), "--checkpoint", str(ckpt), "--out", str(out), "--quiet"]) == 0
    for stem, pred in a.items():
        assert np.array_equal(read_label_map(out / f"{stem}.png"), pred.labels)
        rec = json.loads((out / f"{stem}.json").read_text())
        assert rec["checkpoint"]["id"].startswith("last.ckpt@sha256:")
        assert rec["checkpoint"]["finetune_steps"] == 0 and rec["solver"]["n_iter"] == 0
        assert rec["config"]["solver_params"]["init_state"].startswith("checkpoint:last.ckpt")
        assert set(rec) >= {"labels", "box", "ncut", "timings"} - {"labels"}

    # --finetune-steps: a few per-image steps from the checkpoint
    out2 = tmp_path / "out_ft"
    assert main([str(image_dir / "im0.png"), "--checkpoint", str(ckpt), "--out", str(out2),
                 "--quiet", "--finetune-steps", "3"]) == 0
    rec = json.loads((out2 / "im0.json").read_text())
    assert rec["checkpoint"]["finetune_steps"] == 3 and rec["solver"]["n_iter"] == 3


def test_checkpoint_cluster_ids_are_shared_across_images(image_dir, tmp_path):
    """With one trained head, cluster k is the same concept in every image (no renumbering)."""
    from deepcut.cli.infer import main

    _, _, _, ckpt = _fit_checkpoint(image_dir, tmp_path, n_clusters=3, task="clusters")
    out = tmp_path / "out"
    assert main([str(image_dir), "--checkpoint", str(ckpt), "--out", str(out), "--quiet"]) == 0
    recs = [json.loads((out / f"im{i}.json").read_text()) for i in range(N_IMAGES)]
    assert all(r["task"] == "clusters" for r in recs)
    # the planted red square gets the same cluster id in every image
    obj = {int(np.bincount(read_label_map(out / f"im{i}.png")[18:30, 26:38].ravel()).argmax())
           for i in range(N_IMAGES)}
    assert len(obj) == 1, obj


def test_random_init_backbone_predicts_from_cache_but_cannot_be_rebuilt(image_dir, tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    from deepcut.checkpoint import CheckpointError, load_segmenter

    dm = _dm(image_dir, tmp_path / "cache", backbone="timm:vit_tiny_patch16_224",
             backbone_options={"pretrained": False, "depth": 2})
    ck = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="vit")
    trainer = _trainer(tmp_path, epochs=1, callbacks=[ck])
    model = _model(dm)
    trainer.fit(model, dm)
    preds = [r for b in trainer.predict(model, dm) for r in b]  # cached features: fine
    assert len(preds) == N_IMAGES and preds[0]["prediction"].labels.shape == (48, 64)
    with pytest.raises(CheckpointError, match="random-init backbone"):
        load_segmenter(ck.best_model_path).backbone  # noqa: B018


@pytest.mark.slow  # end to end: tens of seconds on a busy 2-core machine
def test_kless_checkpoint_finds_k_below_k_max(image_dir, tmp_path):
    from deepcut.cli.infer import main

    _, _, _, ckpt = _fit_checkpoint(image_dir, tmp_path, n_clusters=5, loss="cc", task="kless")
    out = tmp_path / "out"
    assert main([str(image_dir), "--checkpoint", str(ckpt), "--out", str(out), "--quiet"]) == 0
    for i in range(N_IMAGES):
        rec = json.loads((out / f"im{i}.json").read_text())
        lab = read_label_map(out / f"im{i}.png")
        assert rec["task"] == "kless" and 1 <= rec["n_clusters"] <= 5
        assert sorted(np.unique(lab)) == list(range(len(np.unique(lab))))  # renumbered
    assert main([str(image_dir), "--checkpoint", str(ckpt), "--k-max", "7"]) == 2


@pytest.mark.slow  # end to end: tens of seconds on a busy 2-core machine
def test_checkpoint_refuses_contradicting_options(image_dir, tmp_path, capsys):
    from deepcut.checkpoint import CheckpointError, load_checkpoint
    from deepcut.cli.infer import main

    _, _, _, ckpt = _fit_checkpoint(image_dir, tmp_path)
    assert main([str(image_dir), "--checkpoint", str(ckpt), "--k", "4"]) == 2
    assert "n_clusters=4 contradicts the checkpoint" in capsys.readouterr().err
    # the local graph's settings define the graph the head was trained on
    assert main([str(image_dir), "--checkpoint", str(ckpt), "--radius", "3"]) == 2
    assert "radius=3.0 contradicts the checkpoint" in capsys.readouterr().err
    assert main([str(image_dir), "--checkpoint", str(ckpt), "--contour", "0.5"]) == 2
    assert "contour=0.5 contradicts the checkpoint" in capsys.readouterr().err
    assert main([str(image_dir), "--checkpoint", str(ckpt), "--task", "segment",
                 "--backbone", "classic", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert main([str(image_dir), "--finetune-steps", "2"]) == 2
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(CheckpointError, match="not a deepcut checkpoint"):
        load_checkpoint(bad)


def test_train_cli_fit_validate_saves_config_and_checkpoint(image_dir, tmp_path):
    sys.path.insert(0, str(REPO))
    from train import cli_main

    root = tmp_path / "run"
    common = ["--config", str(REPO / "configs" / "segment_folder.yaml"),
              "--data.root", str(image_dir), "--data.backbone", "classic", "--data.size", "64",
              "--data.cache_dir", str(tmp_path / "cache"), "--trainer.default_root_dir",
              str(root), "--trainer.enable_progress_bar", "false", "--logger", "csv"]
    cli = cli_main(["fit", *common, "--trainer.max_epochs", "2"])
    assert cli.model.hparams.in_dim == 38  # linked from data.feature_dim at instantiation
    log_dir = Path(cli.trainer.log_dir)
    assert (log_dir / "config.yaml").is_file()
    names = sorted(p.name for p in log_dir.glob("checkpoints/*.ckpt"))
    assert names == ["epoch=1-step=2.ckpt", "last.ckpt"], names  # the latest epoch + last.ckpt
    ckpts = [log_dir / "checkpoints" / "last.ckpt"]
    import yaml

    cfg = yaml.safe_load((log_dir / "config.yaml").read_text())
    assert cfg["data"]["root"] == str(image_dir) and cfg["trainer"]["max_epochs"] == 2
    cli = cli_main(["validate", *common, "--ckpt_path", str(ckpts[0])])
    assert "val/loss" in cli.trainer.callback_metrics
    out = tmp_path / "pred"
    cli_main(["predict", *common, "--ckpt_path", str(ckpts[0]), "--writer.output_dir", str(out)])
    recs = [json.loads((out / f"im{i}.json").read_text()) for i in range(N_IMAGES)]
    assert all(r["checkpoint"]["id"] == f"{ckpts[0].name}@sha256:{r['checkpoint']['sha256']}"
               for r in recs)
    assert all((out / f"im{i}_overlay.png").is_file() for i in range(N_IMAGES))


def test_datamodule_reads_a_named_dataset(tmp_path):
    """``dataset`` + ``root``: the evaluation loaders' layout (here SOD: images/ + masks/)."""
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(3):
        make_image(tmp_path / "images" / f"s{i}.jpg", size=(64, 48), seed=i)
        Image.new("L", (64, 48), 255).save(tmp_path / "masks" / f"s{i}.png")
    dm = DeepCutDataModule(root=str(tmp_path), dataset="sod", backbone="classic", size=48,
                           cache_dir=str(tmp_path / "cache"), val_fraction=0.34)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == 2 and len(dm.val_set) == 1
    stems = sorted(it.stem for it in dm.train_set.items + dm.val_set.items)
    assert stems == ["s0", "s1", "s2"]
    item = dm.train_set[0]
    assert item["features"].shape[-1] == 38 and item["meta"]["backbone"] == "classic"
    with pytest.raises(Exception, match="needs root"):
        DeepCutDataModule(dataset="sod", cache_dir=str(tmp_path)).setup("fit")


TRAIN_CONFIGS = ["segment_folder.yaml", "segment_ecssd.yaml", "parts.yaml", "kless.yaml"]


@pytest.mark.parametrize("config", TRAIN_CONFIGS)
def test_every_config_parses(config, tmp_path, capsys):
    sys.path.insert(0, str(REPO))
    from train import cli_main

    with pytest.raises(SystemExit) as e:
        cli_main(["fit", "--config", str(REPO / "configs" / config), "--data.root",
                  str(tmp_path), "--print_config"])
    assert e.value.code == 0
    assert "model:" in capsys.readouterr().out


DDP_SCRIPT = """
import json, os, sys
sys.path.insert(0, {repo!r})
from train import cli_main

# One trainer for fit and predict: Lightning's ddp launcher re-runs this script for rank 1.
cli = cli_main(sys.argv[1:], run=False)
cli.trainer.fit(cli.model, datamodule=cli.datamodule)
preds = cli.trainer.predict(cli.model, datamodule=cli.datamodule)
rank = cli.trainer.global_rank
rows = [r for batch in preds for r in batch]
with open(os.path.join(os.environ["DDP_OUT"], f"rank{{rank}}.json"), "w") as f:
    json.dump({{"world": cli.trainer.world_size, "stems": [r["stem"] for r in rows],
               "ranks": [r["rank"] for r in rows],
               "step": cli.trainer.global_step}}, f)
"""


@pytest.mark.slow  # two DDP processes, end to end
def test_ddp_two_cpu_processes_train_and_shard_predict(image_dir, tmp_path):
    """2-process DDP on the CPU (gloo): training runs and sharded predict writes every image once."""
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT.format(repo=str(REPO)))
    out = tmp_path / "pred"
    args = [sys.executable, str(script),
            "--data.root", str(image_dir), "--data.backbone", "classic", "--data.size", "64",
            "--data.batch_size", "2", "--data.cache_dir", str(tmp_path / "cache"),
            "--model.log_images_every_n_steps", "0",
            "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator",
            "cpu", "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(tmp_path / "run"), "--logger", "csv",
            "--writer.output_dir", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "DDP_OUT": str(tmp_path),
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, check=False,
                         cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world"] == r1["world"] == 2
    assert r0["step"] == r1["step"] == 2 * 2  # 3 images per rank, batch 2: 2 steps per epoch
    # each rank wrote its own images; together every image exactly once
    assert set(r0["ranks"]) == {0} and set(r1["ranks"]) == {1}
    assert not set(r0["stems"]) & set(r1["stems"])
    assert sorted(r0["stems"] + r1["stems"]) == [f"im{i}" for i in range(N_IMAGES)]
    assert len(list(out.glob("*.json"))) == N_IMAGES
    assert list(out.glob(".*.part")) == []
    for i in range(N_IMAGES):  # same count and shape as a single-process run
        assert read_label_map(out / f"im{i}.png").shape == (48, 64)
        rec = json.loads((out / f"im{i}.json").read_text())
        assert rec["n_clusters"] >= 1 and rec["image_size"] == [48, 64]
    assert list((tmp_path / "run").rglob("*.ckpt")), "no checkpoint saved"

