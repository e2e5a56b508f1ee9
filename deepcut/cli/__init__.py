"""Command-line entry points (``infer.py``, ``eval.py``, ``train.py`` at the repository root)."""
