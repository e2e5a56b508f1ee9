"""The notebooks: saved in step with their sources, and each runs top to bottom.

Runner: nbclient (the library behind ``jupyter nbconvert --execute`` and nbmake), called from
this test through ``scripts/make_notebooks.py``'s ``execute``, so CI runs them exactly as the
command that regenerates them does (same working directory ``notebooks/``, same offline
environment, this checkout's ``deepcut``), and a failing cell fails the test with the cell and its
traceback. Executing them takes a few minutes, so those tests carry the ``notebooks`` marker and
are left out of a plain ``pytest`` run (``addopts``); CI runs ``pytest -m notebooks``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[notebooks]'")
pytest.importorskip("nbclient", reason="pip install -e '.[notebooks]'")

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_notebooks",
                                               ROOT / "scripts" / "make_notebooks.py")
make_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_notebooks)
NAMES = [s.stem for s in make_notebooks.sources()]


def test_there_are_four_notebooks():
    assert NAMES == ["01_quickstart", "02_hierarchy_parts_kless", "03_training",
                     "04_evaluation"]


@pytest.mark.parametrize("name", NAMES)
def test_saved_notebook_matches_its_source_and_has_outputs(name):
    """A stale notebook (source edited, not regenerated) or one saved without outputs fails."""
    saved = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    built = make_notebooks.build(make_notebooks.SRC_DIR / f"{name}.py")
    assert make_notebooks.code_of(saved) == make_notebooks.code_of(built), \
        "stale: run python scripts/make_notebooks.py"
    code = [c for c in saved.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "saved without running"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) or "image/jpeg" in o.get("data", {})
               for c in code for o in c.outputs), "no figure in the notebook"


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(name):
    nb = make_notebooks.build(make_notebooks.SRC_DIR / f"{name}.py")
    make_notebooks.execute(nb)  # raises CellExecutionError on the first failing cell
    assert all(c.execution_count is not None for c in nb.cells if c.cell_type == "code")
