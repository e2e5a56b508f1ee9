"""No silent loss: unique output names, --out checked before work, stale temporary files removed,
one process per image, a full disk named, result warnings shown, the pixel limit real."""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image
from PIL import Image

from deepcut.cli.infer import main
from deepcut.errors import ImageReadError, OutputError
from deepcut.io import load_image
from deepcut.io.folders import check_out_dir, clean_stale_parts, image_lock
from deepcut.io.outputs import output_stems

FAST = ["--backbone", "classic", "--size", "32", "--quiet"]


# -- output names ------------------------------------------------------------------------------
def test_output_stems_unique_and_readable():
    files = ["a/img.jpg", "b/img.jpg", "a/img.png", "c/x.jpg", "c/x_overlay.jpg", "d/y.JPG",
             "d/y.jpg", "e/z.png"]
    names = output_stems(files)
    assert names[:3] == ["a__img_jpg", "b__img_jpg", "img_png"]
    assert names[3:5] == ["x", "x_overlay_jpg"]  # not the overlay of x.jpg
    assert names[5] != names[6] and names[5].startswith("y_jpg-")  # differ only in case
    assert names[7] == "z"  # no clash: the plain stem
    assert len({n.casefold() for n in names}) == len(names)
    assert output_stems(files) == names  # deterministic: a rerun resumes
    # nor the hierarchy task's level maps or summary grid of x.jpg; a name that only looks so
    assert output_stems(["c/x.jpg", "c/x_summary.png", "c/x_k10.png", "c/w_k10.png"]) == \
        ["x", "x_summary_png", "x_k10_png", "w_k10"]


def test_output_stems_cut_long_names():
    long = "n" * 300
    a, b = output_stems([f"p/{long}.png", f"q/{long}.png"])
    assert a != b and max(len(a.encode()), len(b.encode())) <= 200


def test_same_name_in_two_folders_both_written(tmp_path, capsys):
    for d, seed in (("dirA", 1), ("dirB", 2)):
        (tmp_path / d).mkdir()
        make_image(tmp_path / d / "img.jpg", seed=seed)
    make_image(tmp_path / "dirA" / "img.JPG", seed=3)
    out = tmp_path / "out"
    assert main([str(tmp_path / "dirA"), str(tmp_path / "dirB"), "--out", str(out), *FAST]) == 0
    records = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert sorted(Path(r["image"]).relative_to(tmp_path).as_posix() for r in records) == \
        ["dirA/img.JPG", "dirA/img.jpg", "dirB/img.jpg"]
    assert all((out / r["outputs"]["labels"]).is_file() for r in records)
    # a rerun resumes: each image is recognised as done, none is taken for another's
    capsys.readouterr()
    assert main([str(tmp_path / "dirA"), str(tmp_path / "dirB"), "--out", str(out),
                 "--backbone", "classic", "--size", "32"]) == 0
    assert "0 segmented, 3 skipped" in capsys.readouterr().err


def test_outputs_of_another_image_are_a_collision_not_a_skip(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    make_image(tmp_path / "a" / "img.png", seed=1)
    make_image(tmp_path / "b" / "img.png", seed=2)
    out = tmp_path / "out"
    assert main([str(tmp_path / "a" / "img.png"), "--out", str(out), *FAST]) == 0
    before = (out / "img.json").read_bytes()
    assert main([str(tmp_path / "b" / "img.png"), "--out", str(out), *FAST]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "b/img.png" in err[0] and "another image" in err[0]
    assert (out / "img.json").read_bytes() == before  # nothing overwritten
    assert main([str(tmp_path / "b" / "img.png"), "--out", str(out), *FAST, "--overwrite"]) == 0
    assert json.loads((out / "img.json").read_text())["image"].endswith("b/img.png")


# -- --out checked before any work ---------------------------------------------------------------
def test_out_is_a_file_fails_before_work(tmp_path, capsys, image_file):
    f = tmp_path / "taken"
    f.write_text("x")
    for out in (f, f / "below"):
        assert main([str(image_file), "--out", str(out), *FAST]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and str(f) in err[0], err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes into read-only folders: the mode cannot be enforced")
def test_read_only_out_fails_before_work(tmp_path, capsys, image_file, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    import deepcut.pipeline

    def never(*a, **k):
        raise AssertionError("segmented although --out is not writable")

    monkeypatch.setattr(deepcut.pipeline.Segmenter, "__call__", never)
    try:
        assert main([str(image_file), "--out", str(ro), *FAST]) == 2
    finally:
        ro.chmod(0o755)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(ro) in err[0] and "ermission" in err[0]


def test_check_out_dir_refuses_a_full_disk(tmp_path, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OutputError, match=r"no space left .*disk mounted at /"):
        check_out_dir(tmp_path / "o")
    assert not [p for p in (tmp_path / "o").iterdir()]  # no probe left behind


def test_disk_full_mid_run_names_the_disk_not_the_image(tmp_path, capsys, monkeypatch):
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):
        make_image(src / f"im{i}.png", seed=i)
    from deepcut.io import outputs

    real = outputs.save_label_map
    calls = []

    def fill_up(labels, path):
        calls.append(path)
        if len(calls) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(labels, path)

    monkeypatch.setattr(outputs, "save_label_map", fill_up)
    out = tmp_path / "out"
    assert main([str(src), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "no space left" in err and str(out) in err and "im1" not in err
    assert len(calls) == 2  # stopped at once: the third image was not computed
    assert sorted(p.name for p in out.iterdir()) == ["im0.json", "im0.png", "im0_overlay.png"]


# -- temporary files and locks ------------------------------------------------------------------
def _dead_pid() -> int:
    pid = 2 ** 22 - 1
    while pid > 1:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1
    pytest.skip("no free pid")


def test_stale_part_files_are_removed_live_ones_kept(tmp_path, image_file):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".img.png.{_dead_pid()}-abc123_x.part"
    live = out / f".other.png.{os.getpid()}-zz9.part"
    foreign = out / ".notes.part"  # not of our naming
    for p in (stale, live, foreign):
        p.write_bytes(b"")
    assert clean_stale_parts(out) == [stale]
    assert live.exists() and foreign.exists()
    stale.write_bytes(b"")
    assert main([str(image_file), "--out", str(out), *FAST]) == 0  # a run cleans up too
    assert not stale.exists() and (out / "img.json").is_file()


def test_part_files_name_their_writer(tmp_path, monkeypatch):
    from deepcut.io.folders import PART_RE
    from deepcut.io.writers import atomic_path

    with atomic_path(tmp_path / "x.png") as tmp:
        m = PART_RE.match(tmp.name)
        assert m and int(m.group(1)) == os.getpid()
        tmp.write_bytes(b"1")
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_image_in_progress_elsewhere_is_left_to_that_process(tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(2):
        make_image(src / f"im{i}.png", seed=i)
    out = tmp_path / "out"
    out.mkdir()
    with image_lock(out, "im0") as mine:  # as another process segmenting im0 right now
        assert mine
        assert main([str(src), "--out", str(out), "--backbone", "classic", "--size", "32"]) == 0
    err = capsys.readouterr().err
    assert "1 segmented" in err and "1 in progress in another process" in err
    assert not (out / "im0.json").exists() and (out / "im1.json").exists()
    assert not list(out.glob(".*.lock"))  # lock files are removed on release


# -- result warnings ---------------------------------------------------------------------------
def test_result_warnings_are_printed_one_line_each(tmp_path, capsys, image_file, monkeypatch):
    import deepcut.pipeline

    real = deepcut.pipeline.Segmenter.predict_features

    def degenerate(self, pf, image=None):  # as the solver reports a trivial result
        pred = real(self, pf, image=image)
        pred.meta["solver"]["warnings"] = ["one cluster: the cut is trivial"]
        return pred

    monkeypatch.setattr(deepcut.pipeline.Segmenter, "predict_features", degenerate)
    out = tmp_path / "out"
    assert main([str(image_file), "--out", str(out), *FAST]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"warning: {image_file}: one cluster: the cut is trivial"]
    rec = json.loads((out / "img.json").read_text())
    assert rec["solver"]["warnings"] == ["one cluster: the cut is trivial"]


# -- the pixel limit ---------------------------------------------------------------------------
def test_pixel_limit_is_ours_not_pillows(tmp_path, monkeypatch):
    p = tmp_path / "p.png"
    Image.new("RGB", (120, 100)).save(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's limit far below the image
    assert load_image(p).size == (120, 100)  # our default (200 MP) applies
    assert Image.MAX_IMAGE_PIXELS == 1000  # and Pillow's setting is restored
    with pytest.raises(ImageReadError, match=r"p\.png: image is 120x100 px .* above the"):
        load_image(p, max_pixels=11_999)
    monkeypatch.setenv("DEEPCUT_MAX_PIXELS", "11999")
    with pytest.raises(ImageReadError, match="above the"):
        load_image(p)
    monkeypatch.setenv("DEEPCUT_MAX_PIXELS", "12000")
    assert load_image(p).size == (120, 100)


def test_max_pixels_flag(tmp_path, capsys, image_file):
    out = tmp_path / "out"
    assert main([str(image_file), "--out", str(out), *FAST, "--max-pixels", "100"]) == 1
    assert "above the" in capsys.readouterr().err
    assert main([str(image_file), "--out", str(out), *FAST, "--max-pixels", "10000"]) == 0


def test_draft_decodes_a_big_jpeg_at_reduced_size(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (600, 800, 3), dtype=np.uint8)).save(tmp_path / "b.jpg")
    assert load_image(tmp_path / "b.jpg").size == (800, 600)
    # 1/8 would give 100 x 75 < 100: Pillow picks 1/4, the smallest scale still large enough
    assert load_image(tmp_path / "b.jpg", draft_size=(100, 100)).size == (200, 150)
    Image.new("RGB", (800, 600)).save(tmp_path / "b.png")  # other formats: full size
    assert load_image(tmp_path / "b.png", draft_size=(100, 100)).size == (800, 600)


def test_overlay_in_blocks_is_byte_identical(monkeypatch):
    import importlib

    ov = importlib.import_module("deepcut.viz.overlay")
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 5, (130, 70)).astype(np.uint8)
    lab[:20] = 0
    im = Image.fromarray(rng.integers(0, 255, (130, 70, 3), dtype=np.uint8))
    monkeypatch.setattr(ov, "_BLOCK_ROWS", 7)  # many blocks, the last one short
    blocks = np.asarray(ov.overlay(im, lab, box=(3, 4, 50, 90)))
    monkeypatch.setattr(ov, "_BLOCK_ROWS", 10 ** 9)
    whole = np.asarray(ov.overlay(im, lab, box=(3, 4, 50, 90)))
    assert np.array_equal(blocks, whole)
    # and the blend itself: background kept, label 1 half-way to its palette colour
    from deepcut.viz.palette import label_palette

    y, x = np.argwhere((lab == 1) & ~ov.boundaries(lab))[0]
    want = (np.asarray(im)[y, x] * 0.5 + label_palette(5)[1] * 0.5).clip(0, 255).astype(np.uint8)
    assert np.array_equal(whole[y, x], want)


# -- the other commands: --out and refused files ---------------------------------------------------
def test_cluster_out_unwritable_fails_before_work(tmp_path, capsys):
    from deepcut.cli.cluster import main as cluster_main

    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).random((12, 3)))
    taken = tmp_path / "taken"
    taken.write_text("x")
    for out in (taken / "labels.csv", tmp_path):  # below a file; a folder
        assert cluster_main([str(x), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and str(out.parent if out != tmp_path
                                                                      else out) in err[0], err


def test_eval_out_a_file_fails_before_work(tmp_path, capsys, monkeypatch):
    from deepcut.cli.evaluate import main as eval_main

    root = tmp_path / "sod"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    make_image(root / "images" / "a.jpg")
    Image.new("L", (96, 64)).save(root / "masks" / "a.png")
    taken = tmp_path / "taken"
    taken.write_text("x")
    import deepcut.pipeline

    def never(*a, **k):
        raise AssertionError("segmented although --out is a file")

    monkeypatch.setattr(deepcut.pipeline.Segmenter, "__call__", never)
    assert eval_main(["--dataset", "sod", "--root", str(root), "--out", str(taken), "--quiet",
                      "--backbone", "classic", "--size", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(taken) in err[0] and "is a file" in err[0], err


class _Payload:
    """Stands for any pickled object: unpickling one can run code."""


def test_pickled_checkpoint_is_refused_with_the_reason(tmp_path, capsys, image_file):
    import torch

    ckpt = tmp_path / "evil.ckpt"
    torch.save({"deepcut": {"format": 1}, "state_dict": {}, "x": _Payload()}, ckpt)
    assert main([str(image_file), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(ckpt) in err[0] and "could run code" in err[0], err
    assert "weights_only" not in err[0]  # torch's advice to load it unsafely is not repeated


def test_k_larger_than_the_graph_names_the_file(tmp_path, capsys, image_file):
    assert main([str(image_file), "--out", str(tmp_path / "o"), *FAST, "--k", "500"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"skipped: {image_file}: ") and "500" in err[0]


def test_eval_logs_result_warnings_naming_the_file(tmp_path, monkeypatch, caplog):
    import logging

    import deepcut.pipeline
    from deepcut.cli.evaluate import main as eval_main

    root = tmp_path / "sod"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    make_image(root / "images" / "a.jpg")
    Image.new("L", (96, 64)).save(root / "masks" / "a.png")
    real = deepcut.pipeline.Segmenter.predict_features

    def degenerate(self, pf, image=None):
        pred = real(self, pf, image=image)
        pred.meta["solver"]["warnings"] = ["one cluster"]
        return pred

    monkeypatch.setattr(deepcut.pipeline.Segmenter, "predict_features", degenerate)
    with caplog.at_level(logging.WARNING, logger="deepcut.evaluate"):
        assert eval_main(["--dataset", "sod", "--root", str(root), "--out", str(tmp_path / "e"),
                          "--quiet", "--backbone", "classic", "--size", "32"]) == 0
    msgs = [r.getMessage() for r in caplog.records if r.name == "deepcut.evaluate"]
    assert msgs == [f"{root / 'images' / 'a.jpg'}: one cluster"]
