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
from deepcut.graphs.local import grid_offsets, local_graph

__all__ = [
    "GRAPH_KINDS",
    "Graph",
    "build_graph",
    "cc_graph",
    "falcon_graph",
    "grid_offsets",
    "knn_graph",
    "local_graph",
    "ncut_graph",
    "propagate",
    "similarity",
]
