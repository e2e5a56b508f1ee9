"""Degenerate results are said, once, naming the file: a cluster that is not a segment (less
than half of its affinity inside, Shi and Malik's normalised association) is warned by every
solver on an NCut graph; infer.py prints each solver warning on one line naming the image."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from PIL import Image

from deepcut.graphs import cc_graph, ncut_graph
from deepcut.solvers import BaseSolver, DegenerateResultWarning, SpectralNCut

pytestmark = pytest.mark.usefixtures("one_thread")
REPO = Path(__file__).resolve().parents[1]


def two_blocks(n: int = 30, seed: int = 0) -> torch.Tensor:
    """``(2n, 8)`` features of two well separated groups (rows 0..n-1, n..2n-1)."""
    g = torch.Generator().manual_seed(seed)
    F = torch.randn(2 * n, 8, generator=g)
    F[:n, 0] += 6
    F[n:, 0] -= 6
    return F


class FixedLabels(BaseSolver):
    """A solver whose answer is given: to test what every solver's ``_finish`` reports."""

    solver_name = "fixed"
    _parameter_constraints: ClassVar[dict] = {}

    def __init__(self, labels: torch.Tensor, n_clusters: int = 2) -> None:
        self.labels = labels
        self.n_clusters = n_clusters

    def fit(self, graph, features=None):
        self.timings_, self.n_iter_ = {}, 0
        lab = self.labels
        self._finish(graph, torch.nn.functional.one_hot(lab, 2).float(), lab)
        return self


def test_scattered_cluster_is_warned_a_block_is_not():
    F = two_blocks()
    g = ncut_graph(F)
    blocks = torch.arange(60) // 30
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateResultWarning)
        assert FixedLabels(blocks).fit(g).warnings_ == []  # each block: ratio ~1
        # a converged real solver on the same graph: no warning either
        SpectralNCut(n_clusters=2, random_state=0).fit(g, F)
    scattered = torch.zeros(60, dtype=torch.long)
    scattered[[3, 17, 41, 55]] = 1  # four nodes from both groups: no segment
    with pytest.warns(DegenerateResultWarning, match="not a segment"):
        s = FixedLabels(scattered).fit(g)
    assert len(s.warnings_) == 1
    assert s.warnings_[0].startswith("fixed: cluster 1 (4 of 60 nodes) keeps 0.")
    assert s.summary()["warnings"] == s.warnings_


def test_signed_graph_is_not_judged_by_its_positive_part():
    F = two_blocks()
    scattered = torch.zeros(60, dtype=torch.long)
    scattered[[3, 17, 41, 55]] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateResultWarning)
        assert FixedLabels(scattered).fit(cc_graph(F)).warnings_ == []


def test_cli_silences_the_solver_warning_it_says_itself():
    from deepcut.io.outputs import warnings_said_per_file

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with warnings_said_per_file():
            warnings.warn("inside", DegenerateResultWarning)
            warnings.warn("other", UserWarning)
        warnings.warn("after", DegenerateResultWarning)
    assert [str(w.message) for w in seen] == ["other", "after"]


@pytest.mark.slow
def test_infer_prints_a_solver_warning_once_naming_the_file(tmp_path):
    """In a real process: in-process, pytest would capture the Python warning itself."""
    img = tmp_path / "flat.png"
    Image.new("RGB", (64, 48), (120, 120, 120)).save(img)
    out = tmp_path / "out"
    # DeepCut's 10 steps at lr 1e-3, here none: the untrained head puts every patch in one cluster
    r = subprocess.run([sys.executable, str(REPO / "infer.py"), str(img), "--out", str(out),
                        "--backbone", "classic", "--size", "48", "--preset", "paper",
                        "--steps", "0", "--quiet"], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
    assert r.returncode == 0, r.stderr
    said = json.loads((out / "flat.json").read_text())["solver"]["warnings"]
    assert said, "a degenerate result must be reported in the JSON"
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")] == [
        f"warning: {img}: {w}" for w in said]
