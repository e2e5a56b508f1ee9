"""The configuration of one segmentation run, validated once at the boundary."""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from numbers import Integral, Real
from typing import Any, ClassVar

from deepcut._validation import Interval, Options, validate_params
from deepcut.errors import ConfigError

__all__ = ["FOREGROUND_TASKS", "GRAPH_CONSTRAINTS", "PREPROCESSING_KEYS", "SegmenterConfig",
           "default_graph_kind"]


#: Constraints of the graph options, shared by SegmenterConfig and the Lightning module.
GRAPH_CONSTRAINTS: dict[str, list] = {
    "graph": [Options({"ncut", "cc", "falcon", "local"}), None],
    "metric": [Options({"dot", "cosine"})],
    "alpha": [Interval(Real, 1, None, closed="left")],
    "beta": [Interval(Real, 0, None, closed="neither")],
    "lam": [Interval(Real, 0, None, closed="left")],
    "knn": [Interval(Integral, 1, None, closed="left"), None],
    "dense_max_nodes": [Interval(Integral, 1, None, closed="left")],
}


#: The backbone's preprocessing options (DeepCut paper, section 4; DeepCut's values:
#: :data:`deepcut.backbones.paper.PAPER_PREPROCESSING`), passed by every entry point that
#: builds a backbone.
PREPROCESSING_KEYS = ("resize", "resample", "pos_embed", "channel_layout", "dino_head")


#: Tasks whose first cut is object vs background: on ``classic`` features the dense graph scored
#: higher there than the local one (docs/RESULTS.md, issue 11: Weizmann 1obj IoU 49.6 vs 45.3
#: with the GNN, SOD 30.1 vs 30.0; spectral 29.5 vs 25.3 on SOD).
FOREGROUND_TASKS = ("segment", "parts")


def default_graph_kind(solver: str, loss: str, backbone: str | None = None,
                       task: str | None = None) -> str:
    """The graph each solver is defined on: CC loss -> Eq. 7; the ``classic`` backbone on the
    ``clusters`` and ``kless`` tasks -> Shi and Malik's ``local`` graph (its features compare
    well between neighbours; BSDS500 NMI/ARI 54.9/45.4 vs 42.3/32.7); Falcon -> its own
    affinity; else DeepCut's NCut graph (Eq. 6); the ``hierarchy`` task always cuts the NCut
    graph (its spectral embedding, dense or Nystrom)."""
    if task == "hierarchy":
        return "ncut"
    if solver == "gnn" and loss == "cc":
        return "cc"
    if backbone == "classic" and task not in FOREGROUND_TASKS:
        return "local"
    if solver == "falcon":
        return "falcon"
    return "ncut"


@dataclass
class SegmenterConfig:
    """Everything that decides a segmentation (recorded in each output JSON).

    Attributes:
        task: ``segment`` (fg/bg + box) or any task registered in :mod:`deepcut.tasks`.
        backbone: backbone name, or ``auto`` (DINO ViT-S/8 when its weights can be had,
            else ``classic`` with one warning).
        weights: local checkpoint for the backbone (timm or original DINO layout).
        size: short side of the network input in pixels (DeepCut: 280).
        stride: patch stride (None = the patch size; 4 with S/8 gives 4x the nodes).
        device: ``cpu`` or ``cuda``.
        precision: ViT backbone forward: ``fp32``, ``bf16`` (autocast; keys kept within cosine
            0.999 of fp32) or ``auto`` (bf16 on CUDA, fp32 on the CPU).
        resize: ``aspect`` (short side to ``size``, aspect kept) or ``square`` (squash to
            ``size x size``, DeepCut's). See :mod:`deepcut.backbones.paper` for every
            preprocessing difference from DeepCut, with why.
        resample: PIL filter of that resize: ``bicubic``, ``bilinear``, ``lanczos`` (DeepCut's)
            or ``nearest``; None = the backbone's own (bicubic for DINO and classic).
        pos_embed: ViT position-embedding resampling: ``timm`` (exact grid, antialiased) or
            ``dino`` (DINO's ``interpolate_pos_encoding``, DeepCut's).
        channel_layout: ViT key channels: ``head_major`` (``h * head_dim + d``) or
            ``interleaved`` (``d * heads + h``, DeepCut's).
        dino_head: network taken from a DINO full training checkpoint: ``teacher`` or
            ``student`` (the paper's); other weight files hold one network.
        solver: ``gnn`` (DeepCut), ``spectral`` or ``falcon``.
        n_clusters: K (None = the task's default; for ``segment`` 2, or 5 with the ``saliency``
            background rule, the ``classic`` backbone's).
        loss: GNN loss: ``soft_ncut`` (default, the K-way NCut relaxation), ``ncut`` (Eq. 9,
            the paper's) or ``cc`` (Eq. 10).
        steps: GNN cut-loss optimiser steps, at most (None = the solver's: 2 after its
            warm start of at most 10 steps (one Falcon run's partition on a dense graph,
            spectral's on a sparse one), 30 without one, stopping early on a converged loss;
            ``--preset paper``: 10, DeepCut's stage-1 value).
        lr: GNN AdamW learning rate (None = the solver's: 0.03; ``--preset paper``: 1e-3).
        seed: seeds every random choice.
        graph: graph kind (None = the solver's own: ncut, cc or falcon; ``local`` for the
            ``classic`` backbone on ``clusters`` and ``kless`` unless the loss is ``cc``;
            ``hierarchy`` always cuts ``ncut``). ``local``: Shi-Malik's sparse graph of patches
            within ``radius`` (:mod:`deepcut.graphs.local`).
        metric: similarity for ncut/cc graphs: ``dot`` (DeepCut) or ``cosine``.
        alpha: CC k-sensitivity (Eq. 7), >= 1; lower = more clusters.
        beta: Falcon affinity power.
        lam: Falcon diagonal regulariser weight.
        knn: neighbours of a sparse kNN graph (None = dense up to ``dense_max_nodes``).
        dense_max_nodes: above this many nodes the large-image graph is used (landmarks, or a
            kNN graph with k=32 when ``landmarks`` is None). 4096: up to there the dense graph
            costs <= 64 MB and is exact; above it its cost grows as N^2 while the landmark
            path's NCut on the dense graph stayed within 0.5% at K = 2 (benchmarks/scale.py).
        landmarks: landmarks of the large-image path (:mod:`deepcut.graphs.landmarks`: the
            solver runs on the dense graph of this many seeded landmarks and the labels extend
            to every node; linear in N). None = a sparse kNN graph (k=32) instead.
        radius: ``local`` graph radius in patches (9: about 250 neighbours per patch; chosen
            with ``contour`` on the tuning half of BSDS500, see :mod:`deepcut.graphs.local`).
        contour: ``sigma_IC`` of the ``local`` graph's intervening-contour cue (edges crossing
            an image contour are weakened), relative to the image's 90th-percentile edge
            strength; used where the backbone gives an edge map (``classic``), ignored
            otherwise. None = off.
        background_rule: how the ``segment`` task tells object from background: ``border``
            (the cluster with the largest share of border patches), ``corners`` (DeepCut's
            vote) or ``saliency`` (a 5-way cut read by a robust-background saliency map: object =
            the patches whose saliency, averaged with their cluster's, passes Otsu's threshold,
            :mod:`deepcut.tasks.foreground`, :mod:`deepcut.tasks.saliency`). None = ``saliency`` for
            the ``classic`` backbone, ``border`` for the ViTs.
        refine: pixel labels by ``nearest`` upsampling, by partition ``centres``, or nearest
            labels refined along the image by ``pamr`` (:mod:`deepcut.refine.pamr`), by the
            fast ``bilateral`` solver (:mod:`deepcut.refine.bilateral`) or by Falcon's ``dream``
            (:mod:`deepcut.refine.dream`; RGB, or RGB + depth with ``depth``).
        refine_params: extra keyword arguments for the refinement (e.g. ``alpha``, ``n_iter``
            for ``dream``; ``max_side`` for the image-guided ones).
        depth: folder of depth maps, one per image with the image's stem (``refine="dream"``
            only; None = DREAM on RGB alone). See :mod:`deepcut.io.depth`.
        preset: ``default`` or ``paper`` (DeepCut's exact solver settings; :mod:`deepcut.presets`).
            A preset fills the values the user did not set (``from_dict`` / ``from_preset``).
        solver_params: extra keyword arguments for the solver.
        task_params: extra keyword arguments for the task (e.g. ``parts`` for ``parts``).
    """

    task: str = "segment"
    backbone: str = "auto"
    weights: str | None = None
    size: int = 280
    stride: int | None = None
    device: str = "cpu"
    precision: str = "auto"
    resize: str = "aspect"
    resample: str | None = None
    pos_embed: str = "timm"
    channel_layout: str = "head_major"
    dino_head: str = "teacher"
    solver: str = "gnn"
    n_clusters: int | None = None
    loss: str = "soft_ncut"
    steps: int | None = None
    lr: float | None = None
    seed: int = 0
    graph: str | None = None
    metric: str = "dot"
    alpha: float = 3.0
    beta: float = 4.5
    lam: float = 0.0
    knn: int | None = None
    dense_max_nodes: int = 4096
    landmarks: int | None = 512
    radius: float = 9.0
    contour: float | None = 1.0
    background_rule: str | None = None
    refine: str = "nearest"
    refine_params: dict[str, Any] = field(default_factory=dict)
    depth: str | None = None
    preset: str = "default"
    solver_params: dict[str, Any] = field(default_factory=dict)
    task_params: dict[str, Any] = field(default_factory=dict)

    _constraints: ClassVar[dict[str, list]] = {
        "size": [Interval(Integral, 16, 4096, closed="both")],
        "stride": [Interval(Integral, 1, 64, closed="both"), None],
        "resize": [Options({"aspect", "square"})],
        "resample": [Options({"bicubic", "bilinear", "lanczos", "nearest"}), None],
        "pos_embed": [Options({"timm", "dino"})],
        "channel_layout": [Options({"head_major", "interleaved"})],
        "dino_head": [Options({"teacher", "student"})],
        "n_clusters": [Interval(Integral, 2, None, closed="left"), None],
        "loss": [Options({"ncut", "soft_ncut", "cc"})],
        "steps": [Interval(Integral, 0, 100000, closed="both"), None],
        "lr": [Interval(Real, 0, 10, closed="right"), None],
        "seed": [Interval(Integral, 0, 2**63 - 1, closed="both")],
        **GRAPH_CONSTRAINTS,
        "landmarks": [Interval(Integral, 2, None, closed="left"), None],
        "radius": [Interval(Real, 1, None, closed="left")],
        "contour": [Interval(Real, 0, None, closed="neither"), None],
        "background_rule": [Options({"border", "corners", "saliency"}), None],
        "refine": [Options({"nearest", "centres", "pamr", "bilateral", "dream"})],
        "depth": [str, None],
        "device": [str],
        "precision": [Options({"auto", "fp32", "bf16"})],
        "preset": [Options({"default", "paper"})],
    }

    def validate(self) -> SegmenterConfig:
        """Raise :class:`ConfigError` on the first invalid value; return self."""
        from deepcut.solvers import list_solvers
        from deepcut.tasks import list_tasks

        try:
            validate_params(asdict(self), self._constraints, "SegmenterConfig")
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if self.task not in list_tasks():
            raise ConfigError(f"Unknown task {self.task!r}; choose one of {list_tasks()}.")
        if self.solver not in list_solvers():
            raise ConfigError(f"Unknown solver {self.solver!r}; choose one of {list_solvers()}.")
        if self.loss == "cc" and self.graph not in (None, "cc"):
            raise ConfigError("loss='cc' needs the signed CC graph (graph='cc' or unset).")
        if self.depth is not None and self.refine != "dream":
            raise ConfigError(f"depth maps are used by refine='dream' only; got "
                              f"refine={self.refine!r} with depth={self.depth!r}.")
        if self.depth is not None:
            from pathlib import Path

            if not Path(self.depth).is_dir():
                raise ConfigError(f"{self.depth}: depth folder does not exist")
        import torch

        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ConfigError(f"device={self.device!r} is not a torch device (cpu, cuda, "
                              "cuda:N).") from None
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device={self.device!r} but CUDA is not available here; "
                              "use --device cpu.")
        # Task and solver settings are checked here, once, rather than failing on every image.
        from deepcut.tasks.base import check_task_params, make_solver

        check_task_params(self)
        if self.task == "kless" and self.graph not in (None, "cc") and \
                self._kless_rule(self) == "cc":
            warnings.warn(f"graph={self.graph!r} is not used: the kless task's CC rule cuts the "
                          "CC graph (Eq. 7); set the task parameter k_rule: eigengap to find K "
                          f"on the {self.graph!r} graph", UserWarning, stacklevel=1)
        if self.task != "hierarchy":  # always spectral, with its own settings
            try:
                make_solver(self, 2)._validate_params()
            except (TypeError, ValueError) as e:
                raise ConfigError(f"solver_params: {e}") from None
        return self

    @property
    def graph_kind(self) -> str:
        return self.graph_kind_for(self.backbone)

    def graph_kind_for(self, backbone: str | None) -> str:
        """The graph kind for features of ``backbone`` (the resolved name when ``auto``)."""
        return self.graph or default_graph_kind(self.solver, self.loss, backbone, self.task)

    def resolved(self, backbone: str | None) -> SegmenterConfig:
        """This config with its graph resolved for features of ``backbone`` (what runs, and
        what a prediction's JSON records): the ``kless`` task's CC rule cuts the CC graph
        whatever the backbone's default graph or a given one (:meth:`validate` warns of that)."""
        cfg = self if self.graph is not None else replace(self,
                                                          graph=self.graph_kind_for(backbone))
        if cfg.task == "kless" and cfg.graph != "cc" and self._kless_rule(cfg) == "cc":
            cfg = replace(cfg, graph="cc")
        return cfg

    @staticmethod
    def _kless_rule(cfg: SegmenterConfig) -> str:
        from deepcut.tasks.kless import kless_settings

        return kless_settings(cfg)[3]

    def background_rule_for(self, backbone: str | None) -> str:
        """The segment task's background rule for features of ``backbone``: the config's, else
        ``saliency`` for ``classic`` (SOD / Weizmann 1obj IoU 30.1 / 49.6 with the border rule,
        docs/RESULTS.md) and ``border`` for every other backbone."""
        return self.background_rule or ("saliency" if backbone == "classic" else "border")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_preset(cls, preset: str, **values: Any) -> SegmenterConfig:
        """The config of ``preset`` with ``values`` on top (``from_preset("paper", task="parts")``)."""
        return cls.from_dict({**values, "preset": preset})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegmenterConfig:
        """A config from the keys a user set; a ``preset`` key fills in that preset's values."""
        from deepcut.presets import apply_preset

        d = apply_preset(d) if d.get("preset") else d
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"Unknown config keys {unknown}; valid keys: {sorted(known)}.")
        return cls(**d)
