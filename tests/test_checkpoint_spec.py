"""What a checkpoint records and how loading reads it back: the features' size and stride, the
fine-tuning loss settings, unset settings resolved, and one error for a malformed block."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("lightning")

from conftest import make_image_dir
from lightning.pytorch import Trainer

from deepcut.checkpoint import (
    CheckpointError,
    HeadCheckpoint,
    checkpoint_config,
    inference_spec,
    load_checkpoint,
    load_segmenter,
)
from deepcut.errors import ConfigError
from deepcut.lightning.datamodule import DeepCutDataModule
from deepcut.lightning.module import DeepCutModule
from deepcut.nn.head import GNNHead


def _checkpoint(**finetune) -> HeadCheckpoint:
    """A default-trained classic head: stride and preprocessing left unset at training."""
    config = {"task": "segment", "backbone": "classic", "size": 64, "stride": None,
              "n_clusters": 2, "loss": "ncut", "graph": "ncut", "metric": "dot"}
    backbone = {"name": "classic", "weights_id": "none", "size": 64, "stride": 8,
                "patch_size": 8, "feature_dim": 38,
                "preprocessing": {"resize": "aspect", "resample": "bicubic"}}
    spec = inference_spec(in_dim=38, n_clusters=2, hidden=64, mlp_hidden=32, dropout=0.25,
                          config=config, backbone=backbone, finetune=finetune)
    return HeadCheckpoint(spec=spec, head_state=GNNHead(38, 2).state_dict())


def test_unset_training_settings_accept_their_resolved_values():
    """``--stride 8`` and ``--resize aspect`` are what a default-trained stride-8 head used."""
    ckpt = _checkpoint()
    cfg = checkpoint_config(ckpt, overrides={"stride": 8, "resize": "aspect"})
    assert cfg.stride is None and cfg.resize == "aspect"  # the trained values stay
    with pytest.raises(ConfigError, match="stride=4 contradicts the checkpoint"):
        checkpoint_config(ckpt, overrides={"stride": 4})
    with pytest.raises(ConfigError, match="resize='square' contradicts"):
        checkpoint_config(ckpt, overrides={"resize": "square"})


def test_fine_tuning_keeps_the_training_loss_settings():
    sp = checkpoint_config(_checkpoint(ortho_weight=0.25, weight_decay=0.0),
                           finetune_steps=3).solver_params
    assert (sp["ortho_weight"], sp["weight_decay"], sp["steps"]) == (0.25, 0.0, 3)
    old = checkpoint_config(_checkpoint(), finetune_steps=3).solver_params  # older files
    assert "ortho_weight" not in old and "weight_decay" not in old


@pytest.mark.parametrize("block, message", [
    ("a string", "must be mappings"),
    ({"format": 1, "config": {}, "backbone": {}}, "no 'head' mapping"),
    ({"format": 1, "head": {"in_dim": 38}, "config": {}, "backbone": {}},
     r"head record lacks \['n_clusters', 'hidden', 'mlp_hidden', 'dropout'\]"),
])
def test_a_malformed_block_is_one_error(tmp_path, block, message):
    path = tmp_path / "bad.ckpt"
    torch.save({"deepcut": block, "state_dict": {}}, path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_the_checkpoint_records_the_features_size_and_stride(tmp_path):
    """A module left at its defaults (size 280, stride None) trained on 64 px stride-4 features
    records 64 / 4, and inference from the file runs on the training grid."""
    images = make_image_dir(tmp_path / "images", 2)
    dm = DeepCutDataModule(root=str(images), backbone="classic", size=64, stride=4,
                           cache_dir=str(tmp_path / "cache"), batch_size=2)
    model = DeepCutModule(in_dim=dm.feature_dim, log_images_every_n_steps=0)
    trainer = Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=str(tmp_path / "run"),
                      num_sanity_val_steps=0, enable_checkpointing=False)
    trainer.fit(model, dm)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    spec = load_checkpoint(tmp_path / "m.ckpt").spec
    assert (spec["config"]["size"], spec["config"]["stride"]) == (64, 4)
    pred = load_segmenter(tmp_path / "m.ckpt")(images / "im0.png")
    # 64 x 48 -> 85 x 64 px (short side 64); 8 px patches every 4 px: 15 x 20 (not 8 x 10)
    assert pred.meta["stride"] == 4 and tuple(pred.meta["grid"]) == (15, 20)
