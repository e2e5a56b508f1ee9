"""Helpers shared by the command-line tools: quiet imports, YAML configs, one-line errors."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

__all__ = ["DefaultsOnce", "add_version", "drop_none", "fail", "load_yaml", "one_line_warnings", "quiet_warnings", "version_string"]


def quiet_warnings() -> None:
    """Silence third-party deprecation noise that says nothing to a user of the CLI."""
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.showwarning = _one_line_warning
    warnings.filterwarnings("ignore", message=".*Sparse invariant checks.*")
    os.environ.setdefault("TQDM_MININTERVAL", "0.5")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")


class DefaultsOnce(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help only where the help does not state its
    default already and there is one to show (not None, not an on/off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or action.default is None or isinstance(action.default, bool) \
                or action.default == argparse.SUPPRESS or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def version_string() -> str:
    """``%(prog)s X.Y.Z``: what ``--version`` prints (argparse fills in the program name)."""
    from deepcut import __version__

    return f"%(prog)s {__version__}"


def add_version(parser) -> None:
    """Add ``--version`` to an argparse parser."""
    parser.add_argument("--version", action="version", version=version_string(),
                        help="print the program name and deepcut version, then exit")


def one_line_warnings() -> None:
    """Print warnings as one ``warning: message`` line (no source file and line)."""
    warnings.showwarning = _one_line_warning


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # A CLI user needs the message, not the library line that raised it.
    print(f"warning: {message}", file=file or sys.stderr)


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


def fail(msg: str, code: int = 2) -> int:
    """Print ``error: msg`` on stderr and return ``code`` (for ``sys.exit(main())``)."""
    print(f"error: {msg}", file=sys.stderr)
    return code
