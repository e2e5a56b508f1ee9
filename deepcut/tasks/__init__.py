"""Tasks: solver output to labelled patches (localisation, object and part segmentation: DeepCut sections 3.2-3.4; k-less clustering: section 6)."""
from deepcut.tasks import segment as _segment  # noqa: F401  (registers "segment")
from deepcut.tasks.base import (
    TASKS,
    TaskOutput,
    list_tasks,
    make_graph,
    make_solver,
    register_task,
    solve,
)
from deepcut.tasks.foreground import (
    background_cluster,
    border_counts,
    corner_background,
    foreground_mask,
)
from deepcut.tasks.localize import largest_component, object_box, patch_box_to_pixels

__all__ = [
    "TASKS",
    "TaskOutput",
    "background_cluster",
    "border_counts",
    "corner_background",
    "foreground_mask",
    "largest_component",
    "list_tasks",
    "make_graph",
    "make_solver",
    "object_box",
    "patch_box_to_pixels",
    "register_task",
    "solve",
]
from deepcut.tasks import clusters as _clusters  # noqa: F401  (registers "clusters")
from deepcut.tasks import hierarchy as _hierarchy  # noqa: F401  (registers "hierarchy")
from deepcut.tasks import kless as _kless  # noqa: F401  (registers "kless")
from deepcut.tasks import parts as _parts  # noqa: F401  (registers "parts")
