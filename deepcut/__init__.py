"""deepcut: unsupervised image segmentation with graph cuts on self-supervised ViT features.

Data flow (design.md): ``backbones`` -> ``graphs`` -> ``solvers`` -> ``tasks`` -> ``refine`` ->
``io``/``viz``; ``metrics``/``data`` evaluate, ``lightning`` trains dataset-level heads.
"""
__version__ = "0.1.0"

import warnings as _warnings

# torch_geometric triggers torch's own torch.jit.script deprecation at import time; users cannot
# act on it, so this one message is silenced (nothing else is filtered).
_warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated",
                         category=FutureWarning)

from deepcut.config import SegmenterConfig  # noqa: E402
from deepcut.pipeline import Prediction, Segmenter  # noqa: E402

__all__ = ["__version__", "Segmenter", "SegmenterConfig", "Prediction"]
