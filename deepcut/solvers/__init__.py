"""Graph-cut solvers sharing one interface (design.md, "Solvers")."""
from deepcut.solvers.base import (
    SOLVERS,
    BaseSolver,
    create_solver,
    list_solvers,
    register_solver,
    relabel_consecutive,
)
from deepcut.solvers.gnn import GNNSolver, gnn_cut

__all__ = [
    "SOLVERS",
    "BaseSolver",
    "create_solver",
    "list_solvers",
    "register_solver",
    "relabel_consecutive",
    "GNNSolver",
    "gnn_cut",
]
