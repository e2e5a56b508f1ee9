"""The pipelined folder run (``infer.py DIR --workers N``) writes what the sequential run writes.

Decode workers, batched backbone and background writer change when things happen, never what is
written: label maps, overlays and JSON records (timings aside) are byte for byte those of
``--workers 0``; every guarantee of the folder run (resume, per-image lock, bad files reported,
exit statuses, one output line per image) holds in both.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_image
from PIL import Image

from deepcut.cli.infer import main
from deepcut.io.folders import ImageLock, image_lock
from deepcut.io.pipelined import SizeBatcher, batch_features, batch_sizes

FAST = ["--backbone", "classic", "--size", "32"]


def _folder(tmp_path: Path) -> Path:
    """Seven images of three sizes (so batches hold one size) and one broken file."""
    src = tmp_path / "imgs"
    src.mkdir()
    sizes = [(96, 64), (64, 96), (96, 64), (80, 80), (96, 64), (64, 96), (96, 64)]
    for i, size in enumerate(sizes):
        make_image(src / f"im{i}.png", size=size, seed=i)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return src


def _outputs(out: Path) -> dict[str, object]:
    """File name -> bytes (images) or the record without its timings (JSON)."""
    got: dict[str, object] = {}
    for p in sorted(out.iterdir()):
        if p.suffix == ".json":
            rec = json.loads(p.read_text())
            rec.pop("timings")
            rec["solver"].pop("timings", None)
            got[p.name] = rec
        else:
            got[p.name] = p.read_bytes()
    return got


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


@pytest.mark.parametrize("workers,batch,task", [
    ("1", "4", []), ("2", "2", []),
    # a one-solve GNN task: the batch's heads are trained together (GNNSolver.fit_many)
    ("1", "4", ["--task", "clusters", "--k", "3"]),
    # two or more workers: the workers also compute (batches of mixed sizes)
    ("3", "3", ["--task", "clusters", "--k", "3"])])
def test_pipelined_run_writes_the_sequential_bytes(tmp_path, capsys, workers, batch, task):
    src = _folder(tmp_path)
    assert main([str(src), "--out", str(tmp_path / "seq"), "--workers", "0", *FAST,
                 *task]) == 1
    seq = capsys.readouterr()
    assert main([str(src), "--out", str(tmp_path / "pip"), "--workers", workers,
                 "--batch-size", batch, *FAST, *task]) == 1
    pip = capsys.readouterr()
    a, b = _outputs(tmp_path / "seq"), _outputs(tmp_path / "pip")
    assert len(a) == 3 * 7 and sorted(a) == sorted(b)  # label map, overlay, JSON per good image
    for name in a:
        assert a[name] == b[name], name
    # One line per segmented image on stdout, in the same format (order may differ: batches).
    out_seq, out_pip = _lines(seq.out), _lines(pip.out)
    assert len(out_seq) == len(out_pip) == 7
    strip = [ln.rsplit(" (", 1)[0].replace("/seq/", "/X/") for ln in out_seq]
    assert sorted(strip) == sorted(ln.rsplit(" (", 1)[0].replace("/pip/", "/X/")
                                   for ln in out_pip)
    # The broken file: one line naming it in both, and the same summary counts.
    for err in (seq.err, pip.err):
        bad = [ln for ln in err.splitlines() if "broken.jpg" in ln]
        assert len(bad) == 1 and bad[0].startswith("skipped: ") and "Traceback" not in err
        assert "done: 7 segmented, 0 skipped (outputs exist), 1 failed" in err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_pipelined_run_resumes_without_redoing_work(tmp_path, capsys, workers):
    src = _folder(tmp_path)
    (src / "broken.jpg").unlink()
    out = tmp_path / "out"
    assert main([str(src), "--out", str(out), "--workers", workers, "--quiet", *FAST]) == 0
    (out / "im3.json").unlink()  # as if killed before im3's JSON (which marks completion)
    stamp = {p.name: p.stat().st_mtime_ns for p in out.glob("im[0-24-6].png")}
    capsys.readouterr()
    assert main([str(src), "--out", str(out), "--workers", workers, *FAST]) == 0
    cap = capsys.readouterr()
    assert "done: 1 segmented, 6 skipped (outputs exist), 0 failed" in cap.err
    assert _lines(cap.out) == [ln for ln in _lines(cap.out) if ln.startswith("im3.png: K=")]
    assert len(_lines(cap.out)) == 1
    assert stamp == {p.name: p.stat().st_mtime_ns for p in out.glob("im[0-24-6].png")}
    assert not list(out.glob(".*.lock")) and not list(out.glob(".*.part"))


@pytest.mark.parametrize("workers", ["1", "2"])  # 2: the compute workers' hand-out
def test_pipelined_run_leaves_an_image_locked_elsewhere(tmp_path, capsys, workers):
    src = _folder(tmp_path)
    (src / "broken.jpg").unlink()
    out = tmp_path / "out"
    out.mkdir()
    with image_lock(out, "im2") as mine:  # as another process segmenting im2 right now
        assert mine
        assert main([str(src), "--out", str(out), "--workers", workers, *FAST]) == 0
    err = capsys.readouterr().err
    assert "6 segmented" in err and "1 in progress in another process" in err
    assert not (out / "im2.json").exists() and (out / "im1.json").exists()


def test_image_lock_can_be_released_by_another_thread(tmp_path):
    import threading

    lock = ImageLock(tmp_path, "a")
    assert lock.acquire() and (tmp_path / ".a.lock").exists()
    t = threading.Thread(target=lock.release)
    t.start()
    t.join()
    assert not (tmp_path / ".a.lock").exists()
    with image_lock(tmp_path, "a") as mine:  # free again
        assert mine


@pytest.mark.parametrize("value,flag", [("-1", "--workers"), ("0", "--batch-size")])
def test_bad_workers_or_batch_size_is_one_line_exit_2(tmp_path, capsys, image_file, value, flag):
    assert main([str(image_file), str(image_file), "--out", str(tmp_path / "o"), flag, value,
                 *FAST]) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and flag in err[0] and value in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "o" / "img.json").exists()


def test_workers_must_be_an_integer(tmp_path, capsys, image_file):
    with pytest.raises(SystemExit) as e:
        main([str(image_file), "--out", str(tmp_path / "o"), "--workers", "two", *FAST])
    assert e.value.code == 2 and "--workers" in capsys.readouterr().err


def test_overlay_format_changes_the_overlay_only(tmp_path, capsys):
    src = _folder(tmp_path)
    (src / "broken.jpg").unlink()
    assert main([str(src), "--out", str(tmp_path / "png"), "--quiet", *FAST]) == 0
    assert main([str(src), "--out", str(tmp_path / "jpg"), "--quiet", "--overlay-format", "jpg",
                 *FAST]) == 0
    for i in range(7):
        assert (tmp_path / "png" / f"im{i}.png").read_bytes() == \
            (tmp_path / "jpg" / f"im{i}.png").read_bytes()  # the label map: same bytes
        with Image.open(tmp_path / "jpg" / f"im{i}_overlay.jpg") as im:
            assert im.format == "JPEG"
        assert not (tmp_path / "jpg" / f"im{i}_overlay.png").exists()
        rec = json.loads((tmp_path / "jpg" / f"im{i}.json").read_text())
        assert rec["outputs"]["overlay"] == f"im{i}_overlay.jpg"
    capsys.readouterr()  # a rerun with the same format finds everything done
    assert main([str(src), "--out", str(tmp_path / "jpg"), "--overlay-format", "jpg",
                 *FAST]) == 0
    assert "0 segmented, 7 skipped" in capsys.readouterr().err


def test_overlay_png_is_lossless_at_the_fast_level(tmp_path, image_file):
    from deepcut.pipeline import Segmenter

    pred = Segmenter(backbone="classic", size=32)(image_file)
    ov = pred.overlay()
    from deepcut.io.outputs import write_outputs

    paths = write_outputs(pred, pred.image, tmp_path, "img")
    with Image.open(paths["overlay"]) as im:
        assert np.array_equal(np.asarray(im), np.asarray(ov))
    buf = io.BytesIO()
    ov.save(buf, format="PNG")  # Pillow's default level: a different, smaller file
    assert paths["overlay"].read_bytes() != buf.getvalue()


@pytest.mark.parametrize("n,batch,workers,want", [
    (20, 4, 2, [4, 4, 3, 3, 3, 3]),  # 10 images per worker, not 12 and 8
    (8, 4, 2, [4, 4]), (3, 4, 2, [2, 1]), (1, 4, 2, [1]), (7, 2, 3, [2, 1, 1, 1, 1, 1]),
    (0, 4, 2, []), (5, 1, 2, [1, 1, 1, 1, 1])])
def test_batch_sizes_share_the_images_evenly(n, batch, workers, want):
    got = batch_sizes(n, batch, workers)
    assert got == want and sum(got) == n and max(got, default=0) <= batch


def test_size_batcher_groups_one_size_and_bounds_the_wait():
    b = SizeBatcher(2)
    assert b.add((1, 3, 8, 8), "a") == []
    assert b.add((1, 3, 8, 16), "x") == []
    assert b.add((1, 3, 8, 8), "b") == [["a", "b"]]  # full group
    assert b.add((1, 3, 4, 4), "p") == []
    assert b.add((1, 3, 2, 2), "q") == []
    assert b.add((1, 3, 6, 6), "r") == []
    # Five waiting > 2 * 2: the oldest group goes even though it is not full.
    assert b.add((1, 3, 9, 9), "s") == [["x"]]
    assert sorted(map(tuple, b.flush())) == [("p",), ("q",), ("r",), ("s",)]
    assert b.flush() == []


def test_batched_backbone_equals_one_image_at_a_time(tmp_path):
    from deepcut.backbones import create_backbone
    from deepcut.io import load_image

    images = [load_image(make_image(tmp_path / f"{i}.png", size=(64, 48), seed=i))
              for i in range(3)]
    for bb, exact in ((create_backbone("classic", size=32), True),
                      (create_backbone("timm:vit_tiny_patch16_224", pretrained=False, depth=2,
                                       size=32), False)):
        singles = [bb(im) for im in images]
        batched, _ = batch_features(bb, images, [bb.preprocess(im) for im in images])
        for s, b in zip(singles, batched):
            assert (s.input_size, s.image_size, s.grid, s.weights_id) == \
                (b.input_size, b.image_size, b.grid, b.weights_id)
            if exact:
                assert torch.equal(s.features, b.features)
            else:  # a batched matmul may sum in another order
                torch.testing.assert_close(s.features, b.features, rtol=1e-4, atol=1e-5)
                torch.testing.assert_close(s.cls, b.cls, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])  # 2: compute workers
def test_interrupted_pipelined_run_exits_130_and_leaves_no_locks(tmp_path, workers):
    import os
    import signal
    import subprocess
    import sys

    src = _folder(tmp_path)
    (src / "broken.jpg").unlink()
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    root = Path(__file__).resolve().parents[1]
    p = subprocess.Popen([sys.executable, str(root / "infer.py"), str(src), "--out", str(out),
                          "--workers", workers, "--batch-size", "2", *FAST], cwd=root, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()  # the first image is written: interrupt the run mid-folder
    assert " K=" in first
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode in (0, 130) and "Traceback" not in err
    assert not list(out.glob(".*.lock")) and not list(out.glob(".*.part"))
    done = {p.stem for p in out.glob("*.json")}
    assert done and all((out / f"{s}.png").exists() for s in done)  # complete sets only


def test_default_workers_sequential_on_the_cpu_pipelined_on_a_gpu(tmp_path, monkeypatch):
    from deepcut.cli import infer

    assert infer.default_workers("cpu") == infer.DEFAULT_CPU_WORKERS == 0
    assert infer.default_workers("cuda") == infer.default_workers("cuda:1") == 1
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        make_image(src / f"im{i}.png", size=(48, 40))
    called = []
    monkeypatch.setattr(infer, "_run_pipelined", lambda *a, **k: called.append(k) or (0, 0))
    assert main([str(src), "--out", str(tmp_path / "seq"), *FAST]) == 0  # CPU: sequential
    assert not called and len(list((tmp_path / "seq").glob("im*.json"))) == 3
    assert main([str(src), "--out", str(tmp_path / "pip"), "--workers", "1", *FAST]) == 0
    assert called and called[0]["workers"] == 1
