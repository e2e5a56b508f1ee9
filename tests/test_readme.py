"""The README's Python snippets run as written (from the repository root, as a reader would)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def python_snippets() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_has_python_snippets():
    assert len(python_snippets()) >= 2


@pytest.mark.parametrize("index", range(len(python_snippets())))
def test_readme_snippet_runs(index, monkeypatch, one_thread):
    monkeypatch.chdir(REPO)  # README paths are relative to the clone's root
    code = python_snippets()[index]
    namespace: dict = {"__name__": f"readme_snippet_{index}"}
    exec(compile(code, f"README.md python snippet {index}", "exec"), namespace)  # noqa: S102
    # What the snippets promise, checked on the objects they built.
    if "pred" in namespace:
        pred = namespace["pred"]
        assert pred.labels.shape == (300, 451)
        assert pred.overlay().size == (451, 300)
    if "solver" in namespace:
        solver, pf = namespace["solver"], namespace["pf"]
        assert solver.labels_.shape == (pf.grid[0] * pf.grid[1],)
        assert solver.ncut_ >= 0
    assert os.getcwd() == str(REPO)
