"""Image reading for every odd mode, atomic writers, label maps that read back exactly."""
import numpy as np
import pytest
from PIL import Image

from deepcut.errors import ImageReadError
from deepcut.io import load_image, read_label_map, save_json, save_label_map


def test_modes_become_rgb(tmp_path):
    a = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20
    cases = {
        "gray.png": Image.fromarray((a // 256).astype(np.uint8), "L"),
        "rgba.png": Image.new("RGBA", (64, 48), (255, 0, 0, 0)),
        "pal.png": Image.new("RGB", (64, 48), (10, 200, 30)).convert("P"),
        "cmyk.jpg": Image.new("CMYK", (64, 48), (0, 255, 0, 0)),
        "bw.png": Image.new("1", (64, 48), 1),
        "i16.png": Image.fromarray(a),  # uint16 -> mode I;16
    }
    for name, im in cases.items():
        im.save(tmp_path / name)
        out = load_image(tmp_path / name)
        assert out.mode == "RGB" and out.size == (64, 48), name
    # fully transparent RGBA composites over white
    assert load_image(tmp_path / "rgba.png").getpixel((0, 0)) == (255, 255, 255)
    # 16-bit is rescaled by its range, not clipped at 255
    g = np.asarray(load_image(tmp_path / "i16.png"))[..., 0]
    assert g.min() == 0 and g.max() == 255 and len(np.unique(g)) > 100


def test_exif_rotation_applied(tmp_path):
    im = Image.new("RGB", (60, 30), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    im.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg").size == (30, 60)


@pytest.mark.parametrize("content,match", [(b"not an image", "not a readable image"),
                                           (b"\x89PNG\r\n\x1a\n" + b"\0" * 20,
                                            "cannot read|not a readable")])
def test_bad_files_raise_one_clear_error(tmp_path, content, match):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(ImageReadError, match=match):
        load_image(p)
    with pytest.raises(ImageReadError, match="no such file"):
        load_image(tmp_path / "missing.png")


def test_huge_image_refused_before_decoding(tmp_path):
    Image.new("L", (300, 200)).save(tmp_path / "big.png")
    with pytest.raises(ImageReadError, match="above the"):
        load_image(tmp_path / "big.png", max_pixels=10_000)


def test_label_map_round_trip_and_atomic(tmp_path):
    lab = np.random.default_rng(0).integers(0, 7, size=(20, 30)).astype(np.uint8)
    save_label_map(lab, tmp_path / "l.png")
    assert np.array_equal(read_label_map(tmp_path / "l.png"), lab)
    with Image.open(tmp_path / "l.png") as im:
        assert im.mode == "P"
    big = np.arange(600, dtype=np.uint16).reshape(20, 30)
    save_label_map(big, tmp_path / "b.png")
    assert np.array_equal(read_label_map(tmp_path / "b.png"), big)
    save_json({"a": np.float32(1.5)}, tmp_path / "x.json")
    assert (tmp_path / "x.json").read_text().strip().startswith("{")
    assert not list(tmp_path.glob(".*part"))  # no temporary files left behind


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        save_label_map(np.zeros((4, 4), np.uint8), tmp_path / "l.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix,fmt", [(".png", "PNG"), (".jpg", "JPEG"), (".webp", "WEBP")])
def test_save_image_names_the_cli_formats_without_scanning_every_plugin(tmp_path, monkeypatch,
                                                                        suffix, fmt):
    """The overlay formats are written without ``Image.init()`` (which imports all of Pillow's
    plugins, ~0.15 s in the first image of a run); the file is of the suffix's format."""
    from deepcut.io.writers import save_image

    def no_scan():
        raise AssertionError("Image.init() called")

    monkeypatch.setattr(Image, "init", no_scan)
    monkeypatch.setattr(Image, "_initialized", 1)  # as after preinit() only
    img = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    save_image(img, tmp_path / f"a{suffix}")
    monkeypatch.undo()
    with Image.open(tmp_path / f"a{suffix}") as im:
        assert im.format == fmt and im.size == (4, 4)
