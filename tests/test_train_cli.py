"""``train.py`` / ``deepcut-train`` as a user meets it: one error line without data, last.ckpt,
each run's own config (W&B included), and no advertising or log-interval noise."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from deepcut.cli.train import main

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "segment_folder.yaml")


def _fit(image_dir, tmp_path, *extra):
    return main(["fit", "--config", CONFIG, "--data.root", str(image_dir),
                 "--data.backbone", "classic", "--data.size", "64",
                 "--data.cache_dir", str(tmp_path / "cache"),
                 "--trainer.default_root_dir", str(tmp_path / "run"),
                 "--trainer.enable_progress_bar", "false", *extra])


def test_no_data_root_is_one_error_line(tmp_path, capfd):
    code = main(["fit", "--config", CONFIG, "--trainer.default_root_dir", str(tmp_path)])
    assert code == 2
    out, err = capfd.readouterr()
    assert err.strip().splitlines() == [
        ("error: no images: pass --data.root DIR (a folder of images, or the root of the dataset "
         "named by --data.dataset)")]
    assert "Traceback" not in out + err


def test_a_missing_ckpt_path_is_one_error_line(image_dir, tmp_path, capfd):
    """The README's predict command with a checkpoint that is not there: one line, exit 2
    (not Lightning's traceback)."""
    missing = tmp_path / "run" / "checkpoints" / "LAST.ckpt"
    code = main(["predict", "--config", CONFIG, "--data.root", str(image_dir),
                 "--ckpt_path", str(missing), "--trainer.default_root_dir", str(tmp_path)])
    assert code == 2
    out, err = capfd.readouterr()
    assert err.strip().splitlines() == [f"error: --ckpt_path {missing}: no such checkpoint file"]
    assert "Traceback" not in out + err


def test_fit_writes_last_ckpt_quietly(image_dir, tmp_path, capfd):
    assert _fit(image_dir, tmp_path, "--logger", "csv", "--trainer.max_epochs", "1") == 0
    out, err = capfd.readouterr()
    ckpts = sorted(p.name for p in (tmp_path / "run").rglob("*.ckpt"))
    assert ckpts == ["epoch=0-step=1.ckpt", "last.ckpt"]
    assert "last.ckpt" in out  # the printed path to segment with
    text = out + err
    assert "Tip:" not in text and "litlogger" not in text and "litmodels" not in text
    assert "smaller than the logging interval" not in text  # 1 batch < log_every_n_steps 10


@pytest.mark.slow  # two offline W&B runs
def test_each_wandb_run_keeps_its_own_config(image_dir, tmp_path, capfd, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    save = tmp_path / "wb"
    for epochs in (1, 2):
        assert _fit(image_dir, tmp_path, "--logger", "wandb", "--wandb.mode", "offline",
                    "--wandb.save_dir", str(save), "--trainer.max_epochs", str(epochs)) == 0
    text = "".join(capfd.readouterr())
    assert "anonymous setting" not in text and "Tip:" not in text
    assert not (save / "config.yaml").exists()  # nothing shared by the runs
    configs = sorted(save.glob("deepcut/*/config.yaml"))
    assert len(configs) == 2
    epochs = sorted(yaml.safe_load(p.read_text())["trainer"]["max_epochs"] for p in configs)
    assert epochs == [1, 2]  # the second run did not rewrite the first run's record
    for cfg in configs:
        assert (cfg.parent / "checkpoints" / "last.ckpt").is_file()
        run_id = cfg.parent.name
        copy = next(save.glob(f"wandb/offline-run-*-{run_id}/files/cli_config.yaml"))
        assert not os.path.islink(copy) and copy.read_text() == cfg.read_text()


def test_predict_rerun_computes_nothing_and_never_overwrites_another_image(
        image_dir, tmp_path, capfd, monkeypatch):
    """``train.py predict`` resumes as infer.py does: a rerun drops finished images before the
    head runs, and an output name holding another image's result is reported (exit 1), not
    overwritten."""
    import shutil

    from deepcut.checkpoint import CheckpointSegmenter

    assert _fit(image_dir, tmp_path, "--logger", "csv", "--trainer.max_epochs", "1") == 0
    ckpt = next((tmp_path / "run").rglob("last.ckpt"))
    calls = []
    predict_features = CheckpointSegmenter.predict_features
    monkeypatch.setattr(CheckpointSegmenter, "predict_features",
                        lambda self, *a, **k: calls.append(1) or predict_features(self, *a, **k))
    out = tmp_path / "pred"

    def predict(root, *extra) -> int:
        return main(["predict", "--config", CONFIG, "--data.root", str(root),
                     "--data.backbone", "classic", "--data.size", "64",
                     "--data.cache_dir", str(tmp_path / "cache"), "--ckpt_path", str(ckpt),
                     "--trainer.default_root_dir", str(tmp_path / "run"),
                     "--trainer.enable_progress_bar", "false", "--writer.output_dir", str(out),
                     *extra])

    n = len(list(image_dir.glob("*.png")))
    capfd.readouterr()
    assert predict(image_dir) == 0 and len(calls) == n
    # nothing to checkpoint: no callback warns that the checkpoint's folder is not this run's
    assert "dirpath has changed" not in capfd.readouterr().err
    assert predict(image_dir) == 0 and len(calls) == n  # all done: no head ran again
    other = tmp_path / "other"
    shutil.copytree(image_dir, other)  # other files, the same names
    first = next(iter(sorted(out.glob("*.json"))))
    before = first.read_text()
    capfd.readouterr()
    assert predict(other) == 1 and len(calls) == n
    assert first.read_text() == before
    err = capfd.readouterr().err
    assert err.count("already holds the result of another image") == n
    assert f"{n} image(s) skipped" in err and "Traceback" not in err
    # Lightning restores the model's settings from --ckpt_path: a given one it replaces is said
    assert predict(image_dir, "--model.task", "clusters") == 0
    assert ("warning: --ckpt_path restores the model settings it was trained with: "
            "task='clusters' -> 'segment'") in capfd.readouterr().err
    # and features other than the head's are refused (the datamodule's stride)
    assert predict(image_dir, "--data.stride", "4") == 2
    assert "stride=4 contradicts the checkpoint" in capfd.readouterr().err
