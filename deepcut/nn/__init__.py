"""Neural-network modules (the DeepCut GNN head)."""
from deepcut.nn.head import GNNHead, gcn_propagate

__all__ = ["GNNHead", "gcn_propagate"]
