"""Exceptions with messages meant for users (printed as one line by the CLIs)."""
from __future__ import annotations

__all__ = ["ConfigError", "DeepCutError", "ImageReadError", "WeightsError"]


class DeepCutError(Exception):
    """Base class: a user-facing problem with one clear message and a remedy."""


class ImageReadError(DeepCutError):
    """The file is not a readable image, or the image cannot be processed (too small, too big)."""


class WeightsError(DeepCutError):
    """Backbone weights are missing, unreadable or do not match the architecture."""


class ConfigError(DeepCutError, ValueError):
    """A configuration value is invalid."""
