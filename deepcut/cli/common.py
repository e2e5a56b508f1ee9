"""Helpers shared by the command-line tools: quiet imports, YAML configs, one-line errors."""
from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deepcut.config import PREPROCESSING_KEYS  # flag dests = config keys (no torch import)

__all__ = ["PREPROCESSING_KEYS", "DefaultsOnce", "add_preprocessing_options", "add_version", "drop_none", "fail", "gc_paused", "load_yaml", "one_line", "one_line_warnings",
           "quiet_warnings", "version_string"]


def quiet_warnings() -> None:
    """Silence third-party deprecation noise that says nothing to a user of the CLI."""
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.showwarning = _one_line_warning
    warnings.filterwarnings("ignore", message=".*Sparse invariant checks.*")
    os.environ.setdefault("TQDM_MININTERVAL", "0.5")
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig, with one line per record whatever the names
        handler = logging.StreamHandler()
        handler.setFormatter(_OneLineFormatter("%(levelname)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


class _OneLineFormatter(logging.Formatter):
    """One line per record, the level in lower case (``warning: ...``) as the warnings and
    errors the commands print themselves."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord({**record.__dict__, "levelname": record.levelname.lower()})
        return one_line(super().format(record), escape=True)


class DefaultsOnce(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help only where the help does not state its
    default already and there is one to show (not None, not an on/off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or action.default is None or isinstance(action.default, bool) \
                or action.default == argparse.SUPPRESS or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off inside (start-up: importing torch, PyG, SciPy).

    Imports create ~600k long-lived objects and almost no garbage, and each collection during
    them walks those again: 1.25-1.43 of 7.7-8.5 CPU s of the CLI's imports were collections
    (6 full ones), and ``infer.py`` on 20 images started in 5.37 instead of 7.42 CPU s
    (medians of 4 interleaved runs; ``benchmarks/throughput.py``, start-up rows). Reference
    counting still frees everything else meanwhile; the collector is back on (if it was) when
    the block ends, and its next passes collect whatever cycles the block left.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def version_string() -> str:
    """``%(prog)s X.Y.Z``: what ``--version`` prints (argparse fills in the program name)."""
    from deepcut import __version__

    return f"%(prog)s {__version__}"




def add_preprocessing_options(group) -> None:
    """Add ``--dino-head``, ``--resize``, ``--resample``, ``--pos-embed`` and
    ``--channel-layout`` (dests :data:`PREPROCESSING_KEYS`, default None = the backbone's own)
    to an argparse parser or group."""
    group.add_argument("--dino-head", choices=["teacher", "student"],
                       help="network of a full DINO training checkpoint: teacher, DINO's "
                            "evaluated and released one, or student, the DeepCut paper's "
                            "(default: teacher)")
    group.add_argument("--resize", choices=["aspect", "square"],
                       help="aspect: short side to --size, aspect ratio kept; square: squash to "
                            "size x size as DeepCut (default: aspect)")
    group.add_argument("--resample", choices=["bicubic", "bilinear", "lanczos", "nearest"],
                       help="filter of that resize; DeepCut uses lanczos (default: the "
                            "backbone's, bicubic)")
    group.add_argument("--pos-embed", choices=["timm", "dino"],
                       help="ViT position-embedding resampling: timm (exact grid, antialiased) "
                            "or dino (DINO's interpolate_pos_encoding, as DeepCut); "
                            "default: timm")
    group.add_argument("--channel-layout", choices=["head_major", "interleaved"],
                       help="ViT key channel order: head_major (h*64+d) or interleaved "
                            "(d*heads+h, as DeepCut); only a GNN's first layer sees it "
                            "(default: head_major)")


def add_version(parser) -> None:
    """Add ``--version`` to an argparse parser."""
    parser.add_argument("--version", action="version", version=version_string(),
                        help="print the program name and deepcut version, then exit")


def one_line_warnings() -> None:
    """Print warnings as one ``warning: message`` line (no source file and line)."""
    warnings.showwarning = _one_line_warning


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # A CLI user needs the message, not the library line that raised it.
    # tqdm.write keeps the line whole while a progress bar is drawn.
    from tqdm import tqdm

    tqdm.write(f"warning: {one_line(str(message), escape=True)}", file=file or sys.stderr)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; one clear error if it is missing or malformed."""
    import yaml

    from deepcut.errors import ConfigError

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of option: value")
    return data


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    """Options the user left unset do not override the library's defaults (timm/SAM habit)."""
    return {k: v for k, v in d.items() if v is not None}


def one_line(message: str, escape: bool = False) -> str:
    """``message`` on one line: the line breaks of a multi-line library message become spaces,
    other control characters are escaped; ``escape=True`` escapes line breaks too (a message
    naming a file whose name holds one)."""
    text = str(message)
    if not escape:
        text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def fail(msg: str, code: int = 2) -> int:
    """Print ``error: msg`` on stderr (on one line) and return ``code`` (for
    ``sys.exit(main())``)."""
    print(f"error: {one_line(msg)}", file=sys.stderr)
    return code
