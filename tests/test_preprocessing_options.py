"""DeepCut's preprocessing options (``--resize --resample --pos-embed --channel-layout
--dino-head``) reach the backbone from every entry point: cluster.py, deepcut-explore, the
HierarchyPredictor and train.py's datamodule (whose checkpoint records them for inference); the
Lightning module takes the ``local`` graph and its ``radius``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_image, make_image_dir

from deepcut.config import PREPROCESSING_KEYS

pytestmark = pytest.mark.usefixtures("one_thread")

FLAGS = ["--resize", "square", "--resample", "lanczos", "--pos-embed", "dino",
         "--channel-layout", "interleaved", "--dino-head", "student"]
GIVEN = {"resize": "square", "resample": "lanczos", "pos_embed": "dino",
         "channel_layout": "interleaved", "dino_head": "student"}


@pytest.fixture
def built(monkeypatch) -> list[dict]:
    """Records the keyword arguments of every resolve_backbone call (the real one still runs)."""
    from deepcut import backbones

    calls: list[dict] = []
    real = backbones.resolve_backbone

    def spy(name="auto", weights=None, **kw):
        calls.append({"name": name, **kw})
        return real(name, weights=weights, **kw)

    monkeypatch.setattr(backbones, "resolve_backbone", spy)
    return calls


def _images(folder: Path, n: int = 3) -> Path:
    return make_image_dir(folder, n, size=(96, 48))  # 2:1, so square != aspect


def test_cluster_cli_passes_the_options(tmp_path, built):
    from deepcut.cli.cluster import main

    rc = main([str(_images(tmp_path / "im")), "--out", str(tmp_path / "c.csv"), "--backbone",
               "classic", "--size", "32", "--method", "eigengap", "--k-max", "2", "--quiet",
               *FLAGS])
    assert rc == 0 and (tmp_path / "c.csv").exists()
    assert {k: built[-1][k] for k in PREPROCESSING_KEYS} == GIVEN


def test_explore_cli_passes_the_options(tmp_path, built):
    from deepcut.cli.explore import main

    img = make_image(tmp_path / "a.png", size=(96, 48))
    rc = main([str(img), "--backbone", "classic", "--size", "32", "--levels", "2,3",
               "--out", str(tmp_path / "a.html"), *FLAGS])
    assert rc == 0 and (tmp_path / "a.html").exists()
    assert {k: built[-1][k] for k in PREPROCESSING_KEYS} == GIVEN


def test_hierarchy_predictor_squashes_with_resize_square(tmp_path):
    from deepcut.tasks.hierarchy import HierarchyPredictor

    img = make_image(tmp_path / "a.png", size=(96, 48))
    aspect = HierarchyPredictor("classic", n_segments=(2, 3), size=32).set_images([img])
    square = HierarchyPredictor("classic", n_segments=(2, 3), size=32, resize="square",
                                resample="lanczos").set_images([img])
    assert aspect.features_[0].input_size == (32, 64)
    assert square.features_[0].input_size == (32, 32)
    assert square.backbone.preprocessing == {"resize": "square", "resample": "lanczos"}
    assert square.segments(3)[0].shape == (48, 96)  # labels at the image's own size


def test_datamodule_options_reach_the_backbone_cache_key_and_checkpoint(tmp_path):
    lightning = pytest.importorskip("lightning")
    from lightning.pytorch.callbacks import ModelCheckpoint

    from deepcut.checkpoint import load_checkpoint
    from deepcut.cli.infer import main
    from deepcut.io import read_label_map
    from deepcut.lightning.datamodule import DeepCutDataModule
    from deepcut.lightning.module import DeepCutModule

    root = _images(tmp_path / "im", n=2)
    kw = {"root": str(root), "backbone": "classic", "size": 32, "batch_size": 2,
          "cache_dir": str(tmp_path / "cache")}
    plain = DeepCutDataModule(**kw)
    dm = DeepCutDataModule(**kw, resize="square", resample="lanczos")
    assert dm.backbone.preprocessing == {"resize": "square", "resample": "lanczos"}
    assert plain.backbone.preprocessing["resize"] == "aspect"
    assert dm.cache.folder != plain.cache.folder  # other features: another cache entry
    dm.prepare_data()
    dm.setup("fit")
    assert tuple(dm.train_set[0]["meta"]["input_size"]) == (32, 32)

    # the Lightning module trains on Shi-Malik's local graph; the checkpoint records the
    # graph, its radius and the preprocessing, so infer.py rebuilds the same features
    model = DeepCutModule(in_dim=dm.feature_dim, size=32, backbone="classic", graph="local",
                          radius=2.0, lr=0.01, log_images_every_n_steps=0)
    ck = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="last")
    trainer = lightning.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                                enable_progress_bar=False, enable_model_summary=False,
                                default_root_dir=str(tmp_path), callbacks=[ck])
    trainer.fit(model, dm)
    cfg = load_checkpoint(ck.best_model_path).spec["config"]
    assert (cfg["graph"], cfg["radius"], cfg["resize"], cfg["resample"]) == (
        "local", 2.0, "square", "lanczos")
    gb_cfg = model.segmenter_config(device="cpu")
    assert gb_cfg.graph_kind == "local" and gb_cfg.radius == 2.0
    from deepcut.lightning.graph_batch import build_graph_batch

    gb = build_graph_batch([dm.train_set[0]], gb_cfg)
    W = gb.graphs[0][0]
    W = W.to_dense() if W.is_sparse or W.layout == torch.sparse_csr else W
    h, w = dm.train_set[0]["features"].shape[:2]
    rows, cols = np.divmod(np.arange(h * w), w)
    far = (rows[:, None] - rows[None, :]) ** 2 + (cols[:, None] - cols[None, :]) ** 2 > 2.0 ** 2
    assert float(W[torch.as_tensor(far)].abs().max()) == 0.0  # no edge beyond the radius
    assert float(W.abs().sum()) > 0

    pred = trainer.predict(model, dm)[0][0]["prediction"]
    out = tmp_path / "out"
    assert main([str(root / "im0.png"), "--checkpoint", ck.best_model_path, "--out", str(out),
                 "--quiet"]) == 0
    assert np.array_equal(read_label_map(out / "im0.png"), pred.labels)
