"""Graph-cut solvers sharing one interface: DeepCut's GNN, spectral NCut, a Falcon-style cut."""
from deepcut.solvers.base import (
    SOLVERS,
    BaseSolver,
    DegenerateResultWarning,
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
    "DegenerateResultWarning",
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
