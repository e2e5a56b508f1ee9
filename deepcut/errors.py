"""Exceptions with messages meant for users (printed as one line by the CLIs)."""
from __future__ import annotations

__all__ = ["ConfigError", "DeepCutError", "ImageReadError", "OutputError", "WeightsError",
           "name_file"]


class DeepCutError(Exception):
    """Base class: a user-facing problem with one clear message and a remedy."""


class ImageReadError(DeepCutError):
    """The file is not a readable image, or the image cannot be processed (too small, too big)."""


class WeightsError(DeepCutError):
    """Backbone weights are missing, unreadable or do not match the architecture."""


class ConfigError(DeepCutError, ValueError):
    """A configuration value is invalid."""


class OutputError(DeepCutError):
    """The output folder or file cannot be created or written (a file in the way, read-only,
    full disk). Fatal for a run: the CLIs exit with status 2 before (or instead of) more work."""


def name_file(path, message: str) -> str:
    """``message`` prefixed with ``path`` unless it already names it (every skip line names its
    file)."""
    p = str(path)
    return message if p in message else f"{p}: {message}"
