"""Graph-cut solvers sharing one interface (design.md, "Solvers")."""
from deepcut.solvers.base import (
    SOLVERS,
    BaseSolver,
    create_solver,
    list_solvers,
    register_solver,
    relabel_consecutive,
)
from deepcut.solvers.falcon import EmptyClusterWarning, FalconCut, falcon_cut
from deepcut.solvers.gnn import GNNSolver, gnn_cut
from deepcut.solvers.spectral import SpectralNCut, eigengap, spectral_embedding, spectral_ncut

__all__ = [
    "SOLVERS",
    "BaseSolver",
    "create_solver",
    "list_solvers",
    "register_solver",
    "relabel_consecutive",
    "GNNSolver",
    "gnn_cut",
    "SpectralNCut",
    "spectral_ncut",
    "spectral_embedding",
    "eigengap",
    "FalconCut",
    "falcon_cut",
    "EmptyClusterWarning",
]
