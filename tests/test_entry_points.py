"""Entry points: console scripts, ``python -m deepcut``, program names, ``--version``, light
``--help`` and the ``--backbone`` choices (registry names and ``timm:NAME``)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import deepcut

REPO = Path(__file__).resolve().parents[1]
# PYTHONPATH: the subprocesses import this checkout's deepcut, whatever the venv has installed.
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
       "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def run(args, cwd=REPO, **kw):
    return subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300,
                          check=False, **kw)


def console_script(tmp_path: Path, name: str) -> Path:
    """The wrapper pip writes for ``[project.scripts]`` (same argv[0] handling), for this venv."""
    module, func = SCRIPTS[name].split(":")
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport re, sys\nfrom {module} import {func}\n"
                    "if __name__ == '__main__':\n"
                    "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
                    f"    sys.exit({func}())\n")
    path.chmod(0o755)
    return path


def test_every_command_has_a_console_script():
    assert set(SCRIPTS) == {"deepcut-infer", "deepcut-train", "deepcut-eval", "deepcut-cluster",
                            "deepcut-explore"}


@pytest.mark.parametrize("name", ["deepcut-infer", "deepcut-eval", "deepcut-cluster",
                                  "deepcut-explore"])
def test_console_script_names_itself(tmp_path, name):
    script = console_script(tmp_path, name)
    help_ = run([str(script), "--help"])
    assert help_.returncode == 0, help_.stderr
    assert help_.stdout.startswith(f"usage: {name} ")
    version = run([str(script), "--version"])
    assert version.stdout.strip() == f"{name} {deepcut.__version__}"


@pytest.mark.slow  # two subprocesses that import Lightning
def test_train_console_script_version_and_name(tmp_path):
    script = console_script(tmp_path, "deepcut-train")
    r = run([str(script), "--version"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"deepcut-train {deepcut.__version__}"
    assert run([str(script), "fit", "--help"]).stdout.startswith("usage: deepcut-train ")


@pytest.mark.parametrize("command", ["infer", "eval", "cluster", "explore"])
def test_python_m_deepcut_command(command):
    """Each command names itself ``python -m deepcut <command>`` and has ``--version``."""
    r = run([sys.executable, "-m", "deepcut", command, "--help"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: python -m deepcut {command} ")
    v = run([sys.executable, "-m", "deepcut", command, "--version"])
    assert v.stdout.strip() == f"python -m deepcut {command} {deepcut.__version__}"


def test_python_m_deepcut_lists_commands_and_refuses_unknown():
    r = run([sys.executable, "-m", "deepcut", "--help"])
    assert r.returncode == 0
    for command in ("infer", "train", "eval", "cluster", "explore"):
        assert f"  {command} " in r.stdout
    bad = run([sys.executable, "-m", "deepcut", "segment"])
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        ("python -m deepcut: error: unknown command 'segment'; choose from infer, train, eval, "
         "cluster, explore")]


def test_scripts_keep_their_file_names():
    r = run([sys.executable, "infer.py", "--help"])
    assert r.stdout.startswith("usage: infer.py ")


@pytest.mark.parametrize("module", ["deepcut.cli.infer", "deepcut.cli.evaluate",
                                    "deepcut.cli.cluster", "deepcut.cli.explore"])
def test_help_imports_no_heavy_package(module):
    """``--help`` must not load torch, timm, torchvision, lightning or wandb (seconds each)."""
    code = (f"import sys\nfrom {module} import build_parser\n"
            "try:\n    build_parser().parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = ['torch', 'timm', 'torchvision', 'lightning', 'wandb', 'sklearn']\n"
            "print(sorted(m for m in heavy if m in sys.modules))")
    r = run([sys.executable, "-c", code])
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout[-500:]


def test_choice_tables_match_the_registries():
    import deepcut.checkpoint  # noqa: F401  (registers the "clusters" task)
    from deepcut.backbones import list_backbones
    from deepcut.cli import _choices
    from deepcut.data import DATASETS
    from deepcut.evaluate import ANNOTATOR_RULES, MATCH_RULES
    from deepcut.solvers import list_solvers
    from deepcut.tasks import list_tasks

    assert list(_choices.BACKBONES) == list_backbones()
    assert list(_choices.SOLVERS) == list_solvers()
    assert list(_choices.TASKS) == list_tasks()
    assert list(_choices.DATASETS) == sorted(DATASETS)
    assert tuple(_choices.ANNOTATOR_RULES) == tuple(ANNOTATOR_RULES)
    assert tuple(_choices.MATCH_RULES) == tuple(MATCH_RULES)


def test_backbone_flag_takes_timm_names_and_lists_choices():
    from deepcut.cli._choices import backbone_choice
    from deepcut.cli.infer import build_parser

    p = build_parser()
    assert p.parse_args(["x.png", "--backbone", "timm:vit_tiny_patch16_224"]).backbone == \
        "timm:vit_tiny_patch16_224"
    assert p.parse_args(["x.png", "--backbone", "dino_vits16"]).backbone == "dino_vits16"
    with pytest.raises(argparse.ArgumentTypeError, match="Unknown timm model 'not_a_model'"):
        backbone_choice("timm:not_a_model")
    with pytest.raises(argparse.ArgumentTypeError,
                       match=r"Did you mean 'dino_vits8'.*timm:<timm ViT name>"):
        backbone_choice("dino_vit8")
    r = run([sys.executable, "infer.py", "x.png", "--backbone", "dino_vit8"])
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(
        "infer.py: error: argument --backbone: unknown backbone 'dino_vit8'")
    assert "timm:NAME" in p.format_help()


def test_timm_backbone_segments_end_to_end(tmp_path):
    """``--backbone timm:NAME`` reaches the ViT builder (random init: no download here)."""
    from deepcut import Segmenter
    from deepcut.backbones import create_backbone

    bb = create_backbone("timm:vit_tiny_patch16_224", pretrained=False, depth=2, size=64)
    pred = Segmenter(backbone=bb, solver="spectral")(REPO / "examples" / "chelsea.png")
    assert pred.meta["backbone"] == "timm:vit_tiny_patch16_224"
    assert pred.labels.shape == (300, 451)  # chelsea.png is 451 x 300


def test_train_version_in_process(capsys):
    from deepcut.cli.train import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"], prog="deepcut-train")
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"deepcut-train {deepcut.__version__}"
