"""The bad-input corpus through every CLI: exit status, one line naming the file and the problem,
no traceback, nothing under a final name for a bad file, and the folder run going on."""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bad_inputs import SIZE, bad_cases, escaped, make_corpus, make_npy_corpus, ok_cases
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# Imported at collection: Lightning's log handler then writes to the session's stderr, not to the
# capture of whichever test imported it first.
sys.path.insert(0, str(REPO))
try:
    import lightning.pytorch  # noqa: F401  (train.py imports it lazily since issue 13)

    from train import cli_main
finally:
    sys.path.remove(str(REPO))
FAST = ["--backbone", "classic", "--size", str(SIZE)]
#: The bad cases of the corpus (checked against make_corpus below).
BAD = ["bad_crc.png", "bomb.png", "dangling.png", "extreme_aspect.png", "loop.jpg", "one_px.png",
       "seven_px.png", "text.png", "truncated.jpg", "zero_bytes.jpg"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, make_corpus(folder)


def _run(args: list[str], cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def _lines_naming(err: str, name: str) -> list[str]:
    # A progress bar may share a line through carriage returns: keep the text after the last.
    lines = [ln.rsplit("\r", 1)[-1] for ln in err.splitlines()]
    return [ln for ln in lines if escaped(name) in ln]


def _check_reports(err: str, cases: dict, bad: list[str]) -> None:
    assert "Traceback" not in err, err
    for name in bad:
        lines = _lines_naming(err, name)
        assert len(lines) == 1, (name, lines)
        assert re.search(cases[name].problem, lines[0]), (name, lines[0])


def test_corpus_is_complete(corpus):
    _, cases = corpus
    if "loop.jpg" in cases:
        assert bad_cases(cases) == BAD
    assert len(ok_cases(cases)) >= 14  # modes, formats, EXIF, animation, odd names


# --------------------------------------------------------------------------------------------
# infer.py
def test_infer_folder_run_reports_each_bad_file_and_goes_on(corpus, tmp_path):
    folder, cases = corpus
    out = tmp_path / "out"
    res = _run(["infer.py", str(folder), "--out", str(out), *FAST], cwd=REPO)
    assert res.returncode == 1, res.stderr
    _check_reports(res.stderr, cases, bad_cases(cases))
    for name in ok_cases(cases):
        stem = Path(name).stem
        assert (out / f"{stem}.json").is_file() and (out / f"{stem}.png").is_file(), name
    for name in bad_cases(cases):  # nothing under a final name for a bad file
        assert not list(out.glob(f"{Path(name).stem}*")), name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no .part, no .lock
    notes = [ln for ln in _lines_naming(res.stderr, "animated.gif") if "warning" in ln]
    assert len(notes) == 1 and re.search(cases["animated.gif"].note, notes[0])
    assert f"{len(ok_cases(cases))} segmented" in res.stderr


@pytest.mark.parametrize("name", BAD)
def test_infer_bad_file_alone(corpus, tmp_path, capsys, name):
    from deepcut.cli.infer import main

    folder, cases = corpus
    if name not in cases:
        pytest.skip("no symlinks on this file system")
    out = tmp_path / "out"
    assert main([str(folder / name), "--out", str(out), "--quiet", *FAST]) == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("skipped: "), lines
    assert escaped(name) in lines[0] and re.search(cases[name].problem, lines[0]), lines[0]
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------------------------
# eval.py (a SOD-layout dataset of the corpus: images/ + masks/)
def _eval_root(folder: Path, cases: dict, root: Path) -> list[str]:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    used = []
    for name in cases:
        src = folder / name
        if src.is_symlink() or "\n" in name:  # ids are file stems: keep them printable
            continue
        (root / "images" / name).write_bytes(src.read_bytes())
        try:
            from deepcut.io import load_image

            w, h = load_image(src).size
        except Exception:  # noqa: BLE001 - a bad image gets any mask
            w, h = 8, 8
        m = np.zeros((h, w), np.uint8)
        m[h // 4: 3 * h // 4, w // 3: 2 * w // 3] = 255
        Image.fromarray(m).save(root / "masks" / f"{Path(name).stem}.png")
        used.append(name)
    return used


def test_eval_folder_run_reports_each_bad_item_and_goes_on(corpus, tmp_path, capsys, caplog):
    import logging

    from deepcut.cli.evaluate import main as eval_main

    folder, cases = corpus
    used = _eval_root(folder, cases, tmp_path / "sod")
    out = tmp_path / "eval"
    # In-process (an interpreter start costs more than the run); the log records are read from
    # caplog, as pytest's handler takes them instead of the command's stderr handler.
    with caplog.at_level(logging.WARNING):
        code = eval_main(["--dataset", "sod", "--root", str(tmp_path / "sod"), "--out",
                          str(out), "--quiet", *FAST])
    assert code == 1
    assert "Traceback" not in capsys.readouterr().err
    records = "\n".join(f"{r.levelname}: {r.getMessage()}" for r in caplog.records)
    bad = [n for n in bad_cases(cases) if n in used]
    assert len(bad) >= 8
    _check_reports(records, cases, bad)
    preds = out / "predictions"
    for name in bad:
        assert not list(preds.glob(f"{Path(name).stem}.*")), name
    for name in ok_cases(cases):
        if name in used:
            assert (preds / f"{Path(name).stem}.json").is_file(), name
    rows = (out / "per_image.csv").read_text().splitlines()
    assert len(rows) == 1 + len(used)


# --------------------------------------------------------------------------------------------
# cluster.py
def test_cluster_folder_run_reports_each_bad_file_and_goes_on(corpus, tmp_path, capsys):
    from deepcut.cli.cluster import main

    folder, cases = corpus
    out = tmp_path / "labels.csv"
    code = main([str(folder), "--out", str(out), "--method", "eigengap", "--k-max", "3",
                 *FAST])
    err = capsys.readouterr().err
    assert code == 1
    _check_reports(err, cases, bad_cases(cases))
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert sorted(r[0] for r in rows[1:]) == ok_cases(cases)  # every readable image, only them


@pytest.mark.parametrize("name", ["zero.npy", "text.npy", "pickled.npy", "vector.npy", "nan.npy",
                                  "truncated.npy"])
def test_cluster_bad_matrix_is_one_line(tmp_path, capsys, name):
    from deepcut.cli.cluster import main

    problems = make_npy_corpus(tmp_path)
    out = tmp_path / "labels.csv"
    assert main([str(tmp_path / name), "--out", str(out)]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], lines
    assert re.search(problems[name], lines[0]), lines[0]
    assert not out.exists() and not out.with_suffix(".json").exists()


# --------------------------------------------------------------------------------------------
# train.py
def _train(args: list[str], tmp_path: Path) -> int:
    base = ["fit", "--data.backbone", "classic", "--data.size", str(SIZE),
            "--data.cache_dir", str(tmp_path / "cache"), "--trainer.max_epochs", "1",
            "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false",
            "--trainer.enable_checkpointing", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--data.batch_size", "4"]
    try:
        cli_main([*base, *args])
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_train_folder_run_skips_bad_images_with_exit_1(corpus, tmp_path, capsys):
    folder, cases = corpus
    assert _train(["--data.root", str(folder)], tmp_path) == 1
    err = capsys.readouterr().err
    _check_reports(err, cases, bad_cases(cases))
    assert f"{len(bad_cases(cases))} image(s) skipped" in err


def _only_bad(tmp_path: Path) -> Path:
    d = tmp_path / "only_bad"
    d.mkdir()
    (d / "a.jpg").write_bytes(b"")
    (d / "b.png").write_text("text")
    return d


@pytest.mark.parametrize("case", ["empty", "missing", "only_bad", "n_clusters_0", "bad_weights",
                                  "parser"])
def test_train_user_errors_are_one_line(tmp_path, capsys, case):
    empty = tmp_path / "empty"
    empty.mkdir()
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"not a checkpoint")
    args, expect = {
        "empty": (["--data.root", str(empty)], rf"no images found under {re.escape(str(empty))}"),
        "missing": (["--data.root", str(tmp_path / "nope")], "nope is not a folder"),
        "only_bad": (["--data.root", str(_only_bad(tmp_path))], "none of the 2 images"),
        "n_clusters_0": (["--data.root", str(REPO / "examples"), "--model.n_clusters", "0"],
                         "n_clusters.*Got 0"),
        "bad_weights": (["--data.root", str(REPO / "examples"), "--data.backbone",
                         "dino_vits16", "--data.weights", str(weights)],
                        r"w\.pth: not a PyTorch checkpoint"),
        "parser": (["--data.root", str(REPO / "examples"), "--model.n_clusters", "abc"],
                   r'model\.n_clusters.*abc \(see .* --help\)'),
    }[case]
    assert _train(args, tmp_path) == 2
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and re.search(expect, errors[0]), err
    assert "Traceback" not in err and "usage:" not in err, err


@pytest.mark.parametrize("extra, message", [
    (["--config", "{cfg}"], (r"bad.yaml: solver_params: GNNSolver.__init__\(\) got an "
                             r"unexpected keyword argument 'foo'")),
    (["--device", "foo"], r"device='foo' is not a torch device"),
    (["--task", "hierarchy", "--levels", "a,b"], r"levels must be comma-separated integers"),
    (["--task", "kless", "--k-rule", "cc", "--solver", "spectral"], r"'cc' needs the gnn solver"),
])
def test_bad_settings_fail_once_before_any_image(tmp_path, capsys, extra, message):
    """A bad solver or task setting is one error line and exit 2 before the first image, not a
    failure per image (nothing is written)."""
    from deepcut.cli.infer import main

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("solver_params: {foo: 1}\n")
    for i in range(2):
        Image.fromarray(np.full((SIZE, SIZE, 3), 60 * i, np.uint8)).save(tmp_path / f"{i}.png")
    args = [str(tmp_path / "0.png"), str(tmp_path / "1.png"), *FAST, "--out",
            str(tmp_path / "out"), *[a.replace("{cfg}", str(cfg)) for a in extra]]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and re.search(message, err[0]), err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_task_params_typos_fail_and_other_tasks_keys_warn():
    """A task parameter no task reads is an error naming the task's own; one of another task
    (a config file run with another --task) is one warning and is not used."""
    from deepcut.config import SegmenterConfig
    from deepcut.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown task parameter\(s\) \['levelz'\] for task "
                                          r"'hierarchy'; it takes \['levels', 'n_sample', "
                                          r"'nested', 'overlay_level'\]"):
        SegmenterConfig(task="hierarchy", task_params={"levelz": "5,10"}).validate()
    with pytest.raises(ConfigError, match="overlay_level must be one of the levels"):
        SegmenterConfig(task="hierarchy", task_params={"levels": "2,4",
                                                       "overlay_level": 7}).validate()
    with pytest.raises(ConfigError, match="'parts' task parameter must be an int >= 1"):
        SegmenterConfig(task="parts", task_params={"parts": 0}).validate()
    with pytest.warns(UserWarning, match=r"\['parts'\] belong to task\(s\) \['parts'\], not to "
                                         r"'segment': not used"):
        SegmenterConfig(task="segment", task_params={"parts": 3}).validate()
