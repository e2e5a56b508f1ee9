"""Visualisation helpers: palettes, overlays, segment borders."""
from deepcut.viz.overlay import boundaries, colorize, overlay
from deepcut.viz.palette import label_palette

__all__ = ["boundaries", "colorize", "overlay", "label_palette"]
