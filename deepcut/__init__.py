"""deepcut: unsupervised image segmentation with graph cuts on self-supervised ViT features.

Data flow: ``backbones`` -> ``graphs`` -> ``solvers`` -> ``tasks`` -> ``refine`` ->
``io``/``viz``; ``metrics``/``data`` evaluate, ``lightning`` trains dataset-level heads.
The top-level names are imported lazily, so ``import deepcut.metrics`` does not load torch.
"""
import warnings as _warnings

__version__ = "0.1.0"

# torch_geometric triggers torch's own torch.jit.script deprecation at import time; users cannot
# act on it, so this one message is silenced (nothing else is filtered).
_warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated",
                         category=FutureWarning)

__all__ = [
    "EigengapClustering",
    "HierarchyPredictor",
    "KLessClustering",
    "Prediction",
    "Segmenter",
    "SegmenterConfig",
    "__version__",
    "create_backbone",
    "create_solver",
]

_LAZY = {"Segmenter": "deepcut.pipeline", "Prediction": "deepcut.pipeline",
         "SegmenterConfig": "deepcut.config", "HierarchyPredictor": "deepcut.tasks.hierarchy",
         "KLessClustering": "deepcut.cluster", "EigengapClustering": "deepcut.cluster",
         "create_backbone": "deepcut.backbones", "create_solver": "deepcut.solvers"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deepcut' has no attribute {name!r}")
