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
    "EmptyClusterWarning",
    "FalconCut",
    "GNNSolver",
    "SpectralNCut",
    "create_solver",
    "eigengap",
    "falcon_cut",
    "gnn_cut",
    "list_solvers",
    "register_solver",
    "relabel_consecutive",
    "spectral_embedding",
    "spectral_ncut",
]
