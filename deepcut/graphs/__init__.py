"""Patch graphs: features to affinities (DeepCut, Aflalo et al. 2023, section 3: Eq. 6 NCut graph, Eq. 7 CC graph)."""
from deepcut.graphs.affinity import (
    GRAPH_KINDS,
    build_graph,
    cc_graph,
    falcon_graph,
    knn_graph,
    ncut_graph,
    similarity,
)
from deepcut.graphs.graph import Graph, propagate
from deepcut.graphs.landmarks import LandmarkGraph, fit_on_landmarks, landmark_graph
from deepcut.graphs.local import grid_offsets, local_graph

__all__ = [
    "GRAPH_KINDS",
    "Graph",
    "LandmarkGraph",
    "build_graph",
    "cc_graph",
    "falcon_graph",
    "fit_on_landmarks",
    "grid_offsets",
    "knn_graph",
    "landmark_graph",
    "local_graph",
    "ncut_graph",
    "propagate",
    "similarity",
]
