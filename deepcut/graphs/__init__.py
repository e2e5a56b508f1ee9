"""Patch graphs: features to affinities (design.md, "Graphs")."""
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

__all__ = [
    "GRAPH_KINDS",
    "Graph",
    "build_graph",
    "cc_graph",
    "falcon_graph",
    "knn_graph",
    "ncut_graph",
    "propagate",
    "similarity",
]
