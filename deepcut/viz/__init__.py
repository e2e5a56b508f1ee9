"""Visualisation helpers: palettes, overlays, segment borders, level summaries."""
from deepcut.viz.overlay import boundaries, colorize, overlay
from deepcut.viz.palette import label_palette
from deepcut.viz.summary import render_levels, summary_grid

__all__ = ["boundaries", "colorize", "label_palette", "overlay", "render_levels", "summary_grid"]
