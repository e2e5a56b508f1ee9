"""``DeepCutModule``: one GNN head trained over a whole dataset with a graph-cut loss.

The module wraps what already exists: the seeded shared initialisation and head of the per-image
solver (:class:`~deepcut.nn.GNNHead`, :meth:`GNNSolver.make_head`), the graph builder of the tasks
(:func:`~deepcut.tasks.make_graph`) and the losses of :mod:`deepcut.losses`. The frozen backbone
is not one of its parameters: features come from the datamodule's on-disk cache. A step takes a
batch of images as a padded batch of graphs and minimises the mean of their losses.

Logged: ``{stage}/loss``, ``{stage}/ncut`` (discrete NCut of the argmax labelling, the common
yardstick), ``{stage}/k_used`` (non-empty clusters per image), ``train/lr``; training logs them per
step and their epoch means as ``train/<name>_epoch``; and, every
``log_images_every_n_steps`` steps, overlays of the current clusters (W&B / TensorBoard images,
PNG files beside a CSV log).

Example:
    >>> m = DeepCutModule(in_dim=22, n_clusters=2)
    >>> m.head
    GNNHead(22, 2)
"""
from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import lightning as L
import torch

from deepcut._validation import Interval, Options, validate_params
from deepcut.config import (
    GRAPH_CONSTRAINTS,
    PREPROCESSING_KEYS,
    SegmenterConfig,
    default_graph_kind,
)
from deepcut.errors import ConfigError
from deepcut.lightning.graph_batch import GraphBatch, build_graph_batch
from deepcut.losses import cc_loss, deepcut_ncut_loss, soft_ncut_loss
from deepcut.solvers.gnn import GNNSolver

__all__ = ["DeepCutModule"]


class DeepCutModule(L.LightningModule):
    """Dataset-level DeepCut: a GCN+MLP head over many images' patch graphs.

    Args:
        in_dim: backbone feature dimension D (``train.py`` links it from ``data.feature_dim``).
        n_clusters: K (for ``loss="cc"`` an upper bound; 2 for object segmentation).
        loss: ``ncut`` (DeepCut Eq. 9), ``soft_ncut`` (sum-of-ratios NCut) or ``cc``
            (correlation clustering, Eq. 10, on the signed graph; K becomes an upper bound).
        graph: graph kind ``ncut`` (Eq. 6), ``cc`` (Eq. 7), ``falcon`` or ``local`` (Shi and
            Malik's sparse graph of patches within ``radius``); None picks the loss's own.
        metric: feature similarity of the graph, ``dot`` (DeepCut) or ``cosine``.
        alpha: CC k-sensitivity (Eq. 7), >= 1; lower gives more clusters.
        beta: Falcon affinity power.
        lam: Falcon diagonal regulariser.
        knn: neighbours of a sparse kNN graph (None = dense up to ``dense_max_nodes`` nodes).
        dense_max_nodes: above this many nodes a sparse kNN graph (k=32) is used.
        radius: ``local`` graph radius in patches (9, inference's default: about 250
            neighbours per patch).
        contour: ``sigma_IC`` of the ``local`` graph's intervening-contour cue, used where the
            backbone gives an edge map (``classic``); None = off. Recorded in the checkpoint so
            that inference builds the graph training saw (checkpoints without it: off).
        hidden: GCN width (64 in DeepCut).
        mlp_hidden: MLP hidden width (32 in DeepCut).
        dropout: dropout before the last layer (0.25 in DeepCut; off at inference).
        ortho_weight: weight of the orthogonality term of the ``ncut`` loss.
        lr: AdamW learning rate (1e-3 in DeepCut).
        weight_decay: AdamW weight decay (0.01, torch's default, as DeepCut).
        seed: seed of the shared head initialisation (the same init the per-image solver uses).
        task: what inference with the checkpoint produces: ``segment`` (fg/bg + box),
            ``clusters`` (the K cluster ids, consistent across images) or ``kless`` (CC-loss
            heads: the non-empty clusters, renumbered).
        background_rule: ``border`` or ``corners`` (segment task at inference).
        backbone: backbone name (``train.py`` links it from ``data.backbone``); recorded for
            inference.
        weights: backbone weights file (linked from ``data.weights``).
        size: input short side in px (linked from ``data.size``).
        stride: patch stride (linked from ``data.stride``).
        log_images_every_n_steps: log cluster overlays every N optimiser steps (0 = never).
        n_log_images: images per overlay log.
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "in_dim": [Interval(Integral, 1, None, closed="left")],
        "n_clusters": [Interval(Integral, 2, None, closed="left")],
        "loss": [Options({"ncut", "soft_ncut", "cc"})],
        **GRAPH_CONSTRAINTS,
        "radius": [Interval(Real, 1, None, closed="left")],
        "contour": [Interval(Real, 0, None, closed="neither"), None],
        "hidden": [Interval(Integral, 1, None, closed="left")],
        "mlp_hidden": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "ortho_weight": [Interval(Real, 0, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "seed": [Interval(Integral, 0, None, closed="left")],
        "task": [Options({"segment", "clusters", "kless"})],
        "background_rule": [Options({"border", "corners"})],
        "size": [Interval(Integral, 16, 4096, closed="both")],
        "stride": [Interval(Integral, 1, 64, closed="both"), None],
        "log_images_every_n_steps": [Interval(Integral, 0, None, closed="left")],
        "n_log_images": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        in_dim: int,
        n_clusters: int = 2,
        loss: Literal["ncut", "soft_ncut", "cc"] = "ncut",
        graph: Literal["ncut", "cc", "falcon", "local"] | None = None,
        metric: Literal["dot", "cosine"] = "dot",
        alpha: float = 3.0,
        beta: float = 4.5,
        lam: float = 0.0,
        knn: int | None = None,
        dense_max_nodes: int = 6000,
        radius: float = 9.0,
        contour: float | None = 1.0,
        hidden: int = 64,
        mlp_hidden: int = 32,
        dropout: float = 0.25,
        ortho_weight: float = 1.0,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        seed: int = 0,
        task: Literal["segment", "clusters", "kless"] = "segment",
        background_rule: Literal["border", "corners"] = "border",
        backbone: str = "classic",
        weights: str | None = None,
        size: int = 280,
        stride: int | None = None,
        log_images_every_n_steps: int = 50,
        n_log_images: int = 2,
    ) -> None:
        super().__init__()
        params = dict(locals())
        params.pop("self")
        params.pop("__class__", None)
        try:
            validate_params({k: params[k] for k in self._parameter_constraints},
                            self._parameter_constraints, type(self).__name__)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if loss == "cc" and graph not in (None, "cc"):
            raise ConfigError("loss='cc' needs the signed CC graph (graph='cc' or unset).")
        self.save_hyperparameters()
        # The per-image solver's seeded shared init: a dataset-level run starts where DeepCut does.
        self.head = GNNSolver(n_clusters, hidden=hidden, mlp_hidden=mlp_hidden, dropout=dropout,
                              seed=seed).make_head(in_dim)
        self._backbone_info: dict[str, Any] | None = None
        self._inference = None

    # -- configuration shared with inference ---------------------------------------------------
    def segmenter_config(self, device: str | None = None) -> SegmenterConfig:
        """The graph/loss settings as a :class:`SegmenterConfig` (the inference config)."""
        hp = self.hparams
        info = self.backbone_info()
        # the size and stride of the features the head saw (the datamodule's, when attached)
        stride = info.get("stride", hp.stride)
        stride = None if stride in (None, info.get("patch_size")) else int(stride)
        return SegmenterConfig(
            task=hp.task, backbone=info["name"], weights=hp.weights,
            size=int(info.get("size") or hp.size), stride=stride,
            device=device or str(self.device), solver="gnn",
            n_clusters=hp.n_clusters, loss=hp.loss, lr=hp.lr, seed=hp.seed,
            graph=hp.graph or default_graph_kind("gnn", hp.loss), metric=hp.metric,
            alpha=hp.alpha, beta=hp.beta, lam=hp.lam, knn=hp.knn,
            dense_max_nodes=hp.dense_max_nodes, radius=hp.get("radius", 5.0),
            contour=hp.get("contour"),
            background_rule=hp.background_rule, **self._preprocessing())

    def _preprocessing(self) -> dict[str, Any]:
        """The preprocessing options the datamodule was given (``resize``, ``resample``,
        ``pos_embed``, ``channel_layout``, ``dino_head``; unset ones are the backbone's
        defaults), recorded so that inference with the checkpoint makes the same features."""
        options = dict(self.backbone_info().get("options") or {})
        return {k: v for k, v in options.items() if k in PREPROCESSING_KEYS and v is not None}

    def backbone_info(self) -> dict[str, Any]:
        """The features' provenance: from the datamodule when attached, else the hparams."""
        if self._backbone_info is None:
            dm = getattr(self._trainer, "datamodule", None) if self._trainer else None
            if dm is not None and hasattr(dm, "backbone_info"):
                self._backbone_info = dm.backbone_info()
        if self._backbone_info is not None:
            return self._backbone_info
        hp = self.hparams
        return {"name": hp.backbone, "weights_id": "unknown", "weights": hp.weights,
                "size": hp.size, "stride": hp.stride, "feature_dim": hp.in_dim}

    def inference_spec(self) -> dict[str, Any]:
        """The ``"deepcut"`` block saved in every checkpoint (see :mod:`deepcut.checkpoint`)."""
        from deepcut.checkpoint import inference_spec

        hp = self.hparams
        cfg = self.segmenter_config(device="cpu").to_dict()
        cfg = {k: cfg[k] for k in ("task", "backbone", "weights", "size", "stride", "n_clusters",
                                   "loss", "lr", "seed", "graph", "metric", "alpha", "beta",
                                   "lam", "knn", "dense_max_nodes", "radius", "contour",
                                   "background_rule",
                                   *self._preprocessing())}
        trained = {"epoch": int(self.current_epoch) if self._trainer else None,
                   "global_step": int(self.global_step) if self._trainer else None}
        return inference_spec(in_dim=hp.in_dim, n_clusters=hp.n_clusters, hidden=hp.hidden,
                              mlp_hidden=hp.mlp_hidden, dropout=hp.dropout, config=cfg,
                              backbone=self.backbone_info(), trained=trained,
                              finetune={"ortho_weight": hp.ortho_weight,
                                        "weight_decay": hp.weight_decay})

    def setup(self, stage: str) -> None:
        info = self.backbone_info()
        if int(info.get("feature_dim", self.hparams.in_dim)) != self.hparams.in_dim:
            raise ConfigError(f"the data's features have D={info['feature_dim']} but the head "
                              f"expects in_dim={self.hparams.in_dim}.")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["deepcut"] = self.inference_spec()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "deepcut" in checkpoint:
            self._backbone_info = dict(checkpoint["deepcut"]["backbone"])

    # -- training -------------------------------------------------------------------------------
    def forward(self, AX: torch.Tensor) -> torch.Tensor:
        """Soft assignment ``S: (B, N, K)`` from propagated features ``AX: (B, N, D)``."""
        return torch.softmax(self.head(AX), dim=-1)

    def _loss(self, S: torch.Tensor, gb: GraphBatch) -> torch.Tensor:
        if gb.W is None:  # sparse graphs: one loss per graph, averaged
            losses = [self._loss_one(S[b:b + 1, :n], W, d, None)
                      for b, (n, (W, d)) in enumerate(zip(gb.n_nodes, gb.graphs))]
            return torch.stack(losses).mean()
        return self._loss_one(S, gb.W, gb.degree, gb.mask)

    def _loss_one(self, S, W, d, mask) -> torch.Tensor:
        hp = self.hparams
        if hp.loss == "ncut":
            return deepcut_ncut_loss(S, W, d, mask=mask, ortho_weight=hp.ortho_weight)
        if hp.loss == "soft_ncut":
            return soft_ncut_loss(S, W, d, mask=mask)
        return cc_loss(S, W, mask=mask)

    def _shared_step(self, batch: list[dict[str, Any]], stage: str) -> tuple[torch.Tensor, Any]:
        cfg = self.segmenter_config()
        gb = build_graph_batch(batch, cfg, self.device)
        S = self(gb.AX)  # (B, N, K)
        loss = self._loss(S, gb)
        labels = S.detach().argmax(-1)  # (B, N)
        B = gb.size
        ncut = sum(gb.ncut(labels)) / B
        k_used = sum(gb.clusters_used(labels)) / B
        values = {"loss": loss, "ncut": ncut, "k_used": k_used}
        for name, value in values.items():
            if stage == "train":  # per step under the plain name, the epoch mean as *_epoch
                self.log(f"train/{name}", value, batch_size=B, on_step=True, on_epoch=False,
                         prog_bar=name == "loss")
                self.log(f"train/{name}_epoch", value, batch_size=B, on_step=False,
                         on_epoch=True, sync_dist=True)
            else:
                self.log(f"{stage}/{name}", value, batch_size=B, on_step=False, on_epoch=True,
                         sync_dist=True, prog_bar=name == "loss")
        return loss, (gb, labels)

    def training_step(self, batch: list[dict[str, Any]], batch_idx: int) -> torch.Tensor:
        loss, (gb, labels) = self._shared_step(batch, "train")
        opt = self.optimizers(use_pl_optimizer=False) if self._trainer else None
        if opt is not None:
            self.log("train/lr", float(opt.param_groups[0]["lr"]), batch_size=gb.size,
                     on_step=True, on_epoch=False)
        every = self.hparams.log_images_every_n_steps
        if every and self.global_step % every == 0 and self.hparams.n_log_images:
            self._log_overlays(batch, gb, labels)
        return loss

    def validation_step(self, batch: list[dict[str, Any]], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "val")[0]

    def test_step(self, batch: list[dict[str, Any]], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "test")[0]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.head.parameters(), lr=self.hparams.lr,
                                 weight_decay=self.hparams.weight_decay)

    def _log_overlays(self, batch: list[dict[str, Any]], gb: GraphBatch,
                      labels: torch.Tensor) -> None:
        if not self.loggers or not self.trainer.is_global_zero:
            return
        from deepcut.lightning.loggers import cluster_overlay, log_images

        images, captions = [], []
        for b, item in enumerate(batch[: self.hparams.n_log_images]):
            h, w = gb.grids[b]
            patch = labels[b, : gb.n_nodes[b]].reshape(h, w).cpu().numpy()
            images.append(cluster_overlay(item, patch))
            captions.append(item["stem"])
        log_images(self.loggers, "train/overlays", images, captions, step=self.global_step)

    # -- prediction: exactly the checkpoint-inference path ---------------------------------------
    def inference_segmenter(self, finetune_steps: int = 0, **overrides: Any):
        """A :class:`~deepcut.checkpoint.CheckpointSegmenter` with the current head weights."""
        from deepcut.checkpoint import CheckpointSegmenter, HeadCheckpoint

        state = {k: v.detach().cpu().clone() for k, v in self.head.state_dict().items()}
        ckpt = HeadCheckpoint(spec=self.inference_spec(), head_state=state)
        overrides.setdefault("device", str(self.device))
        return CheckpointSegmenter(ckpt, finetune_steps=finetune_steps, **overrides)

    def on_predict_start(self) -> None:
        ckpt_path = getattr(self.trainer, "ckpt_path", None)
        if ckpt_path:  # predicting from a file: record it exactly as infer.py --checkpoint does
            from deepcut.checkpoint import CheckpointSegmenter, load_checkpoint

            self._inference = CheckpointSegmenter(load_checkpoint(ckpt_path),
                                                  device=str(self.device), **self._asked())
        else:
            self._inference = self.inference_segmenter()

    def _asked(self) -> dict[str, Any]:
        """The settings of this predict run, for a checkpoint loaded from a file: the task and
        inference options asked for (``--model.*``) and the datamodule's features (backbone,
        size, stride). The checkpoint refuses those that contradict its training."""
        hp = self.hparams
        dm = getattr(self.trainer, "datamodule", None)
        data = dm.backbone_info() if dm is not None and hasattr(dm, "backbone_info") else {}
        return {"task": hp.task, "background_rule": hp.background_rule, "knn": hp.knn,
                "dense_max_nodes": hp.dense_max_nodes, "n_clusters": hp.n_clusters,
                "loss": hp.loss, "graph": hp.graph, "metric": hp.metric, "alpha": hp.alpha,
                "beta": hp.beta, "lam": hp.lam, "backbone": data.get("name"),
                "size": data.get("size"), "stride": data.get("stride")}

    def predict_step(self, batch: list[dict[str, Any]], batch_idx: int) -> list[dict[str, Any]]:
        """Per image: ``{"stem", "path", "prediction"}`` with a :class:`~deepcut.Prediction`."""
        from deepcut.lightning.datamodule import to_patch_features

        seg = self._inference or self.inference_segmenter()
        out = []
        for item in batch:
            pred = seg.predict_features(to_patch_features(item))
            pred.meta["image"] = item["path"]
            out.append({"stem": item["stem"], "path": item["path"], "prediction": pred})
        return out
