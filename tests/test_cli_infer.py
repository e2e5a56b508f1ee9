"""``infer.py`` end to end with the weight-free backbone: outputs, resume, bad inputs."""
import json

import numpy as np
import pytest
from conftest import make_image
from PIL import Image

from deepcut.cli.infer import main
from deepcut.io import read_label_map

FAST = ["--backbone", "classic", "--quiet", "--size", "64"]


def test_single_image_outputs(tmp_path, image_file):
    out = tmp_path / "out"
    assert main([str(image_file), "--out", str(out), *FAST]) == 0
    lab = read_label_map(out / "img.png")
    assert lab.shape == (64, 96) and set(np.unique(lab)) <= {0, 1}
    assert (out / "img_overlay.png").exists()
    rec = json.loads((out / "img.json").read_text())
    for key in ("config", "seed", "backbone", "weights_id", "ncut", "box", "timings",
                "n_clusters", "label_names"):
        assert key in rec, key
    assert rec["backbone"] == "classic" and rec["weights_id"] == "none"
    assert set(rec["timings"]) >= {"backbone", "graph", "solve", "upsample", "write"}
    # the planted red square is the object: most of it is labelled 1
    assert lab[20:44, 36:60].mean() > 0.8 and lab[:8].mean() < 0.2


def test_same_seed_byte_identical(tmp_path, image_file):
    for d in ("a", "b"):
        assert main([str(image_file), "--out", str(tmp_path / d), *FAST, "--seed", "3"]) == 0
    assert (tmp_path / "a" / "img.png").read_bytes() == (tmp_path / "b" / "img.png").read_bytes()


def test_folder_run_reports_bad_file_and_resumes(tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):
        make_image(src / f"im{i}.png", seed=i)
    (src / "broken.jpg").write_bytes(b"this is not a jpeg")
    (src / "notes.txt").write_text("ignored: not an image extension")
    out = tmp_path / "out"
    code = main([str(src), "--out", str(out), "--backbone", "classic", "--size", "64"])
    err = capsys.readouterr().err
    assert code == 1  # a file failed, the others were written
    assert "broken.jpg: not a readable image" in err
    assert sorted(p.name for p in out.glob("*.json")) == ["im0.json", "im1.json", "im2.json"]
    stamp = (out / "im0.json").stat().st_mtime_ns
    (out / "im2.json").unlink()  # as if interrupted before im2's record was written
    main([str(src), "--out", str(out), "--backbone", "classic", "--size", "64"])
    err = capsys.readouterr().err
    assert "1 segmented, 2 skipped" in err
    assert (out / "im0.json").stat().st_mtime_ns == stamp and (out / "im2.json").exists()


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_odd_modes_segment(tmp_path, mode):
    p = tmp_path / "m.png"
    a = np.zeros((40, 56), np.uint16)
    a[10:30, 20:40] = 60000
    if mode == "I;16":
        Image.fromarray(a).save(p)
    else:
        make_image(p, size=(56, 40), mode=mode)
    assert main([str(p), "--out", str(tmp_path / "o"), *FAST]) == 0
    assert read_label_map(tmp_path / "o" / "m.png").shape == (40, 56)


def test_exif_rotated_image_is_segmented_upright(tmp_path):
    p = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(make_image(tmp_path / "base.png", size=(96, 64))).save(p, exif=exif)
    assert main([str(p), "--out", str(tmp_path / "o"), *FAST]) == 0
    assert read_label_map(tmp_path / "o" / "rot.png").shape == (96, 64)


def test_bad_inputs_one_line_errors(tmp_path, capsys):
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (5, 4)).save(tiny)
    assert main([str(tiny), "--out", str(tmp_path / "o"), *FAST]) == 1
    assert "smaller than one 8 px patch" in capsys.readouterr().err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty), *FAST, "--out", str(tmp_path / "none")]) == 2
    assert "holds no image files" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()  # no output folder for a run with no input
    (empty / "sub").mkdir()
    assert main([str(empty), *FAST, "--out", str(tmp_path / "none")]) == 2
    assert "its subfolders are not searched" in capsys.readouterr().err

    img = make_image(tmp_path / "ok.png")
    assert main([str(img), "--out", str(tmp_path / "o"), *FAST, "--k", "5000"]) == 1
    assert "n_clusters=5000" in capsys.readouterr().err

    assert main([str(img), *FAST, "--size", "0"]) == 2
    assert "'size' parameter of SegmenterConfig must be an int" in capsys.readouterr().err
    assert main([str(img), *FAST, "--alpha", "0.5"]) == 2
    assert "'alpha'" in capsys.readouterr().err

    cfg = tmp_path / "c.yaml"
    cfg.write_text("solver: gnn\nnot_a_key: 3\n")
    assert main([str(img), *FAST, "--config", str(cfg)]) == 2
    assert f"error: config file {cfg}: unknown key(s) ['not_a_key']" in capsys.readouterr().err
    cfg.write_text("size: abc\n")  # a value of the file: the error names it
    assert main([str(img), *FAST[:2], "--config", str(cfg)]) == 2
    assert f"error: config file {cfg}: The 'size' parameter" in capsys.readouterr().err
    # --size overrides the file's value
    assert main([str(img), *FAST, "--config", str(cfg), "--out", str(tmp_path / "o")]) == 0


def test_missing_weights_offline_is_fatal_for_named_backbone(tmp_path, capsys):
    img = make_image(tmp_path / "ok.png")
    assert main([str(img), "--backbone", "dino_vits8", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--weights" in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_auto_falls_back_to_classic_with_one_warning(tmp_path, capsys):
    img = make_image(tmp_path / "ok.png")
    assert main([str(img), "--out", str(tmp_path / "o"), "--size", "64", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "classic" in err
    assert json.loads((tmp_path / "o" / "ok.json").read_text())["backbone"] == "classic"


def test_yaml_config_is_used(tmp_path):
    img = make_image(tmp_path / "ok.png")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("backbone: classic\nsize: 64\nseed: 5\nsteps: 3\n")
    assert main([str(img), "--config", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    rec = json.loads((tmp_path / "o" / "ok.json").read_text())
    assert rec["config"]["seed"] == 5 and rec["config"]["steps"] == 3


def test_gc_paused_restores_the_collector_state():
    """The CLI's start-up runs with the cyclic collector off (gc_paused) and gives it back
    as it found it: on, off, and after an error inside."""
    import gc

    from deepcut.cli.common import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), gc_paused():
        raise ValueError("inside")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # a caller who turned it off keeps it off
    finally:
        gc.enable()


def test_cli_start_up_error_leaves_the_collector_on(tmp_path, capsys):
    """A config error raised while the collector is paused (inside the start-up) is still one
    line and exit 2, and the collector is back on afterwards."""
    import gc

    assert main([str(tmp_path / "x.png"), "--finetune-steps", "3",
                 "--out", str(tmp_path / "o")]) == 2
    assert "--finetune-steps needs --checkpoint" in capsys.readouterr().err
    assert gc.isenabled()


def test_cli_run_unfreezes_what_start_up_froze(tmp_path, image_file, monkeypatch):
    """During the run the start-up's objects are frozen (gc.freeze); afterwards nothing is left
    frozen and the collector is on, so a program calling main() keeps its usual collector."""
    import gc

    from deepcut.cli import infer

    seen = []
    real_run = infer.run

    def run(*args, **kwargs):
        seen.append(gc.get_freeze_count())
        return real_run(*args, **kwargs)

    monkeypatch.setattr(infer, "run", run)
    assert main([str(image_file), "--out", str(tmp_path / "o"), *FAST, "--steps", "3"]) == 0
    assert seen and seen[0] > 1000  # the modules and objects start-up made
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_cli_run_leaves_a_callers_frozen_objects_frozen(tmp_path, image_file):
    """A program that froze objects of its own before calling main() finds them still frozen
    (main() does not freeze, so it must not unfreeze either)."""
    import gc

    gc.freeze()
    try:
        before = gc.get_freeze_count()
        assert before > 0
        assert main([str(image_file), "--out", str(tmp_path / "o"), *FAST, "--steps", "3"]) == 0
        # (refcounting may free a few of them meanwhile; unfreezing would leave 0)
        assert gc.get_freeze_count() > 0.9 * before and gc.isenabled()
    finally:
        gc.unfreeze()


def test_kless_rule_from_the_flags(tmp_path, image_file):
    # classic backbone: K by the local graph's eigengap; --alpha (the CC graph's knob) or
    # --k-rule cc: the GNN's correlation-clustering loss
    for extra, rule in (([], "eigengap"), (["--alpha", "12"], "cc"),
                        (["--k-rule", "cc"], "cc"), (["--alpha", "12", "--k-rule", "eigengap"],
                                                    "eigengap")):
        out = tmp_path / rule / str(len(extra))
        assert main([str(image_file), "--out", str(out), *FAST, "--task", "kless",
                     "--k-max", "4", "--steps", "5", *extra]) == 0
        rec = json.loads((out / "img.json").read_text())
        assert rec["extra"]["k_rule"] == rule, extra
        assert rec["n_clusters"] == rec["extra"]["k_found"] <= 4


def test_contour_flag_sets_or_turns_off_the_cue(tmp_path, image_file, capsys):
    """``--contour SIGMA`` sets the local graph's intervening-contour cue, ``off`` removes it
    (config None), and a bad value is one usage line with exit status 2."""
    for flag, want in ((["--contour", "0.5"], 0.5), (["--contour", "off"], None), ([], 1.0)):
        out = tmp_path / str(want)
        assert main([str(image_file), "--out", str(out), *FAST, "--task", "clusters", "--k",
                     "3", "--steps", "2", *flag]) == 0
        rec = json.loads((out / "img.json").read_text())
        assert rec["config"]["contour"] == want and rec["config"]["graph"] in (None, "local")
    # the cue changes the graph, hence (on this image) the cut's NCut
    ncuts = {w: json.loads((tmp_path / str(w) / "img.json").read_text())["ncut"]
             for w in (0.5, None)}
    assert ncuts[0.5] != ncuts[None]
    for bad in ("-1", "0", "soft"):
        with pytest.raises(SystemExit) as e:
            main([str(image_file), "--out", str(tmp_path / "bad"), *FAST, "--contour", bad])
        assert e.value.code == 2
        assert "expected a number > 0 or 'off'" in capsys.readouterr().err


def test_a_settings_warning_is_said_once(tmp_path, image_file):
    """infer.py validates its config, then the Segmenter does again: a parameter of another
    task is still one warning line (a fresh process: Python says a warning once per place)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "deepcut", "infer", str(image_file), "--out",
                        str(tmp_path / "o"), *FAST, "--parts", "3"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("belong to task(s) ['parts'], not to 'segment': not used") == 1
