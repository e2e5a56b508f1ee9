"""Weights & Biases logging, offline: what was logged is read back from the run's own files."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("wandb")


from deepcut.lightning.wandb_utils import find_offline_runs, read_offline_run

REPO = Path(__file__).resolve().parents[1]


def test_train_logs_metrics_images_and_config_offline(image_dir, tmp_path, capsys, monkeypatch):
    pytest.importorskip("lightning")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    sys.path.insert(0, str(REPO))
    from train import cli_main

    save = tmp_path / "wb"
    cli_main(["fit", "--config", str(REPO / "configs" / "segment_folder.yaml"),
              "--data.root", str(image_dir), "--data.backbone", "classic", "--data.size", "64",
              "--data.batch_size", "2", "--data.cache_dir", str(tmp_path / "cache"),
              "--trainer.max_epochs", "2", "--trainer.log_every_n_steps", "1",
              "--trainer.enable_progress_bar", "false",
              "--trainer.default_root_dir", str(tmp_path / "run"),
              "--model.log_images_every_n_steps", "2",
              "--logger", "wandb", "--wandb.mode", "offline", "--wandb.save_dir", str(save),
              "--wandb.name", "tiny", "--wandb.tags", "[test, ci]"])
    err = capsys.readouterr().err
    runs = find_offline_runs(save)
    assert len(runs) == 1
    assert f"wandb sync {runs[0]}" in err  # says how to upload the offline run
    got = read_offline_run(runs[0])
    for key in ("train/loss", "train/ncut", "train/k_used", "train/lr", "train/loss_epoch",
                "val/loss", "val/ncut", "train/overlays"):
        assert key in got["keys"], (key, got["keys"])
    losses = [row["train/loss"] for row in got["history"] if "train/loss" in row]
    assert len(losses) == 4 and all(isinstance(v, float) for v in losses)
    assert got["images"] and all(Path(p).stat().st_size > 0 for p in got["images"])
    assert any(p.endswith(".png") for p in got["images"])
    # the module's hyper-parameters and the resolved CLI config are in the run config
    assert got["config"]["n_clusters"] == 2
    assert got["config"]["cli"]["data"]["root"] == str(image_dir)
    assert "cli_config.yaml" in got["files"]  # a copy of this run's own config.yaml


def test_infer_wandb_logs_every_image_offline(image_dir, tmp_path, capsys, monkeypatch):
    from deepcut.cli.infer import main

    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "out"
    assert main([str(image_dir), "--out", str(out), "--backbone", "classic", "--size", "64",
                 "--quiet", "--wandb", "--wandb-mode", "offline", "--wandb-dir",
                 str(tmp_path / "wb"), "--wandb-tags", "a,b", "--wandb-name", "infer"]) == 0
    runs = find_offline_runs(tmp_path / "wb")
    assert len(runs) == 1 and f"wandb sync {runs[0]}" in capsys.readouterr().err
    got = read_offline_run(runs[0])
    rows = [r for r in got["history"] if "image/ncut" in r]
    assert len(rows) == 4
    for key in ("image/ncut", "image/n_clusters", "image/seconds", "timings/backbone",
                "timings/solve", "image/overlay", "images"):
        assert key in got["keys"], key
    assert len([p for p in got["images"] if "overlay" in Path(p).name]) == 4
    ncuts = sorted(r["image/ncut"] for r in rows)
    written = sorted(json.loads((out / f"im{i}.json").read_text())["ncut"] for i in range(4))
    assert ncuts == pytest.approx(written)
    assert got["config"]["backbone"] == "classic"


def _top_level_imports(path: Path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:  # module level only: imports inside functions run when chosen
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_wandb_is_imported_only_when_chosen():
    # (timm imports wandb itself when it is installed, so sys.modules cannot tell; the check is
    # that no deepcut module imports wandb at module level, and infer.py never loads Lightning)
    pkg = REPO / "deepcut"
    for path in [*pkg.rglob("*.py"), REPO / "train.py", REPO / "infer.py"]:
        assert "wandb" not in _top_level_imports(path), path
    assert "lightning" not in _top_level_imports(pkg / "cli" / "infer.py")
    assert "lightning" not in _top_level_imports(pkg / "lightning" / "wandb_utils.py")
