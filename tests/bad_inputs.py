"""A corpus of bad and odd image files, made on the fly, with what each CLI must say about it.

``make_corpus(folder)`` writes every case into ``folder`` and returns ``{file name: Case}``.
A ``bad`` case must be reported on exactly one line that names the file and matches
``problem``; an ``ok`` case (odd but valid) must be segmented like any image (``note``: a
one-line warning it must also produce, e.g. for an animated GIF).

The images are tiny (at most 96 x 64 px) so that a folder run with the weight-free ``classic``
backbone at ``--size 32`` takes a second or two.
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

#: Short side the corpus tests run at (the classic backbone's patch is 8 px).
SIZE = 32


@dataclass(frozen=True)
class Case:
    kind: str  # "bad" or "ok"
    problem: str = ""  # regex the one error line must match (bad cases)
    note: str = ""  # regex of a one-line warning an ok case must produce


def _object(w: int = 96, h: int = 64, seed: int = 0) -> np.ndarray:
    """``(h, w, 3)`` uint8: a bright square on a dark, lightly textured background."""
    rng = np.random.default_rng(seed)
    a = (rng.random((h, w, 3)) * 40).astype(np.uint8)
    a[h // 4: 3 * h // 4, w // 3: 2 * w // 3] = (220, 40, 40)
    return a


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + \
        struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG whose header claims ``width x height`` (900 MP by default) over a few bytes of data:
    decoding it would allocate gigabytes; a reader must refuse it from the header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    idat = zlib.compress(b"\0" * 1024)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def _good_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_object()).save(buf, format="PNG")
    return buf.getvalue()


def _good_jpeg(exif: Image.Exif | None = None, arr: np.ndarray | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_object() if arr is None else arr).save(buf, format="JPEG", quality=90,
                                                            exif=exif or Image.Exif())
    return buf.getvalue()


def _bad_crc_png() -> bytes:
    data = bytearray(_good_png())
    data[29] ^= 0xFF  # the last byte of IHDR's CRC (8 signature + 8 + 13 data bytes)
    return bytes(data)


def _save(path: Path, im: Image.Image, **kw) -> None:
    im.save(path, **kw)


def make_corpus(folder: str | Path) -> dict[str, Case]:
    """Write the corpus into ``folder`` (created); returns ``{file name: Case}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Case] = {}

    def bad(name: str, data: bytes, problem: str) -> None:
        (folder / name).write_bytes(data)
        cases[name] = Case("bad", problem)

    # -- files that are not (whole) images
    bad("zero_bytes.jpg", b"", "empty file")
    bad("text.png", b"just some text, not pixels\n" * 4, "not a readable image")
    bad("truncated.jpg", _good_jpeg()[:400], "cannot read image")
    bad("bad_crc.png", _bad_crc_png(), "damaged PNG file")
    bad("bomb.png", bomb_png(), r"30000x30000 px .*above the .* MP limit")
    # -- images the method cannot use
    Image.new("RGB", (1, 1), (200, 10, 10)).save(folder / "one_px.png")
    cases["one_px.png"] = Case("bad", "smaller than one|empty side|too elongated")
    Image.fromarray(_object(7, 7)).save(folder / "seven_px.png")
    cases["seven_px.png"] = Case("bad", "smaller than one")
    Image.fromarray(_object(2000, 9)).save(folder / "extreme_aspect.png")
    cases["extreme_aspect.png"] = Case("bad", "too elongated")
    # -- links that lead nowhere
    try:
        (folder / "loop.jpg").symlink_to("loop.jpg")
        cases["loop.jpg"] = Case("bad", "symlink loop")
        (folder / "dangling.png").symlink_to("no_such_target.png")
        cases["dangling.png"] = Case("bad", "broken symlink")
    except OSError:  # a file system without symlinks
        pass

    # -- odd but valid images: every one must be segmented
    def ok(name: str, note: str = "") -> None:
        cases[name] = Case("ok", note=note)

    a = _object()
    grey16 = (a[..., 0].astype(np.uint16) * 257)
    Image.fromarray(grey16).save(folder / "depth16.png")  # mode I;16
    ok("depth16.png")
    Image.fromarray(a).convert("1").save(folder / "one_bit.png")
    ok("one_bit.png")
    pal = Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(folder / "palette_transparent.png", transparency=0)
    ok("palette_transparent.png")
    Image.fromarray(a).convert("CMYK").save(folder / "cmyk.jpg", quality=90)
    ok("cmyk.jpg")
    Image.fromarray(a).convert("LA").save(folder / "grey_alpha.png")
    ok("grey_alpha.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees
    (folder / "exif_rotated.jpg").write_bytes(_good_jpeg(exif))
    ok("exif_rotated.jpg")
    frames = [Image.fromarray(np.roll(a, 8 * i, axis=1)) for i in range(3)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:],
                   duration=100, loop=0)
    ok("animated.gif", note="animated .*first frame")
    Image.fromarray(a).save(folder / "tiff_image.tiff")
    ok("tiff_image.tiff")
    Image.fromarray(a).save(folder / "webp_image.webp", quality=90)
    ok("webp_image.webp")
    # -- odd names
    for name in ("with space.png", "ünïcødé 图.png", "-leading-dash.png", "UPPER.PNG",
                 "multi.dots.name.png", "new\nline.png"):
        try:
            (folder / name).write_bytes(_good_png())
        except OSError:  # a file system that refuses the name
            continue
        ok(name)
    return cases


def bad_cases(cases: dict[str, Case]) -> list[str]:
    return sorted(n for n, c in cases.items() if c.kind == "bad")


def ok_cases(cases: dict[str, Case]) -> list[str]:
    return sorted(n for n, c in cases.items() if c.kind == "ok")


def escaped(name: str) -> str:
    """How a one-line message shows ``name`` (control characters escaped)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


#: Bad ``.npy`` inputs of cluster.py: ``{file name: (bytes or array, problem regex)}``.
def make_npy_corpus(folder: str | Path) -> dict[str, str]:
    """Write bad ``.npy`` files into ``folder``; returns ``{file name: problem regex}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    (folder / "zero.npy").write_bytes(b"")
    out["zero.npy"] = "empty file"
    (folder / "text.npy").write_text("1,2,3\n4,5,6\n")
    out["text.npy"] = "not a readable .npy"
    np.save(folder / "pickled.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    out["pickled.npy"] = "refused: .*could run code"
    np.save(folder / "vector.npy", np.arange(5.0))
    out["vector.npy"] = "2-D"
    x = np.random.default_rng(0).random((12, 3))
    x[3, 1] = np.nan
    np.save(folder / "nan.npy", x)
    out["nan.npy"] = "NaN"
    good = io.BytesIO()
    np.save(good, np.random.default_rng(0).random((12, 3)))
    (folder / "truncated.npy").write_bytes(good.getvalue()[:100])
    out["truncated.npy"] = "not a readable .npy"
    return out
