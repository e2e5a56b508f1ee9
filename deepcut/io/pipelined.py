"""The pieces of a pipelined folder run (``infer.py DIR --workers N``).

Three stages overlap instead of running one image at a time:

* decode: :class:`DecodeDataset` in torch DataLoader worker processes reads each image
  (:func:`~deepcut.io.images.load_image`), its depth map if the config names a folder, and resizes
  and normalises it to the backbone's input (``Backbone.preprocess``);
* compute (the main thread): :class:`SizeBatcher` groups decoded images of one input size, the
  backbone runs once per group (:func:`batch_features`), then graph, solver and task per image;
* write: :class:`BackgroundWriter`, one thread that encodes and writes the outputs (PNG/JSON
  encoding releases the GIL) while the main thread computes the next image.

With two or more workers on the CPU the compute moves into the workers too
(:class:`ComputeDataset`, :func:`compute_loader`): each worker process decodes and segments a
batch of images (:func:`compute_batch`, the same code the main thread runs with one worker), so
every core runs a solve; the main process hands out the images (taking each one's lock first) and
writes the results in order.

A bad file never stops the run: the worker returns its error message instead of raising, and the
run reports it as the sequential path does.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BackgroundWriter", "ComputeDataset", "Computed", "DecodeDataset", "Decoded",
           "SizeBatcher", "batch_features", "batch_sizes", "compute_batch", "compute_loader",
           "decode_loader", "warm_up"]


@dataclass
class Decoded:
    """One input after the decode stage.

    Attributes:
        index: position in the run's list of inputs.
        path: the image file.
        image: the RGB PIL image (None when ``error`` is set; an ``(H, W, 3)`` uint8 tensor
            until :meth:`DecodeDataset.unpack`).
        x: ``(1, 3, H_in, W_in)`` backbone input (None when ``error`` is set).
        depth: ``(H, W)`` depth map or None.
        load_s: seconds spent reading and preprocessing.
        error: one-line reason the file was skipped, or None.
    """

    index: int
    path: Path
    image: Any = None
    x: Any = None
    depth: Any = None
    load_s: float = 0.0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class DecodeDataset:
    """Map-style dataset: ``ds[i]`` reads, checks and preprocesses ``paths[i]`` (never raises).

    Args:
        paths: the image files.
        preprocess: ``PIL image -> (1, 3, H_in, W_in)`` tensor (the backbone's ``preprocess``).
        patch_size: images smaller than one patch are refused, as ``Segmenter.features`` does.
        backbone_name: named in that refusal.
        depth_folder: ``SegmenterConfig.depth`` (maps looked up by the image's stem) or None.
        max_pixels: passed to :func:`~deepcut.io.images.load_image`.
    """

    def __init__(self, paths: Sequence[Path], preprocess: Callable, patch_size: int,
                 backbone_name: str, depth_folder: str | None = None,
                 max_pixels: int | None = None) -> None:
        self.paths = list(paths)
        self.preprocess = preprocess
        self.patch_size = patch_size
        self.backbone_name = backbone_name
        self.depth_folder = depth_folder
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Decoded:
        item = self.read(i)
        if item.error is not None:
            return item
        # Pixels and depth travel as tensors (torch moves them through shared memory): the
        # worker's pipe then carries a few hundred bytes per image, never a full pipe that
        # would keep an orphaned worker from exiting if the main process is killed.
        import numpy as np
        import torch

        item.image = torch.from_numpy(np.asarray(item.image, dtype=np.uint8).copy())
        if item.depth is not None:
            item.depth = torch.from_numpy(np.ascontiguousarray(item.depth))
        return item

    def read(self, i: int) -> Decoded:
        """``paths[i]`` read, checked and preprocessed: the PIL image, the numpy depth map."""
        from deepcut.errors import DeepCutError, ImageReadError, name_file
        from deepcut.io.depth import depth_for
        from deepcut.io.images import load_image

        path = self.paths[i]
        t0 = time.perf_counter()
        try:
            image = load_image(path, max_pixels=self.max_pixels)
            depth = depth_for(self.depth_folder, path, image.size)
            if min(image.size) < self.patch_size:  # as Segmenter.features
                raise ImageReadError(
                    f"image is {image.width}x{image.height} px, smaller than one "
                    f"{self.patch_size} px patch of backbone {self.backbone_name!r}")
            x = self.preprocess(image)
        except DeepCutError as e:
            return Decoded(i, path, error=name_file(path, str(e)))
        except Exception as e:  # noqa: BLE001 - a folder run reports the file and goes on
            return Decoded(i, path, error=f"{path}: unexpected {type(e).__name__}: {e}")
        return Decoded(i, path, image=image, x=x, depth=depth, load_s=time.perf_counter() - t0)

    @staticmethod
    def unpack(item: Decoded) -> Decoded:
        """``item`` with its PIL image and numpy depth map back (in the main process)."""
        import torch
        from PIL import Image

        if isinstance(item.image, torch.Tensor):
            item.image = Image.fromarray(item.image.numpy(), "RGB")
        if isinstance(item.depth, torch.Tensor):
            item.depth = item.depth.numpy()
        return item


def _as_is(item: Decoded) -> Decoded:
    """The DataLoader's collate function: items pass through unbatched and unconverted."""
    return item


def decode_loader(ds: DecodeDataset, workers: int) -> Iterator[Decoded]:
    """The decoded items of ``ds`` in order; ``workers`` processes decode ahead (0: inline).

    The worker processes are started (forked) by this call, so a caller starts its own threads
    after it: a fork copies no thread, and a lock another thread held at that moment would stay
    held in the worker."""
    if workers == 0:
        return (ds.unpack(ds[i]) for i in range(len(ds)))
    from torch.utils.data import DataLoader

    loader = DataLoader(ds, batch_size=None, shuffle=False, num_workers=workers,
                        collate_fn=_as_is, prefetch_factor=4, worker_init_fn=_share_by_name)
    it = iter(loader)  # the workers are forked now: call this before starting other threads
    return (ds.unpack(item) for item in it)


class SizeBatcher:
    """Groups items by backbone input size into batches of at most ``batch_size``.

    :meth:`add` returns the batches that are ready: a full group, or, when more than
    ``2 * batch_size`` items wait in all groups together (inputs of mixed sizes), the oldest
    group, so memory stays bounded and no image waits long. :meth:`flush` returns the rest.
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = max(1, int(batch_size))
        self._groups: dict[tuple, list] = {}

    def add(self, key: tuple, item: Any) -> list[list]:
        group = self._groups.setdefault(key, [])
        group.append(item)
        if len(group) >= self.batch_size:
            return [self._groups.pop(key)]
        if sum(len(g) for g in self._groups.values()) > 2 * self.batch_size:
            oldest = next(iter(self._groups))
            return [self._groups.pop(oldest)]
        return []

    def flush(self) -> list[list]:
        out = list(self._groups.values())
        self._groups.clear()
        return out


def batch_features(backbone, images: Sequence, xs: Sequence) -> tuple[list, float]:
    """Patch features of several images of one input size in one backbone forward.

    Args:
        backbone: a :class:`~deepcut.backbones.base.Backbone`.
        images: the RGB PIL images (for their original sizes).
        xs: their ``(1, 3, H_in, W_in)`` inputs, all of one shape.

    Returns:
        One :class:`~deepcut.backbones.base.PatchFeatures` per image (as ``backbone(image)``
        gives) and the seconds the forward took.
    """
    import torch

    from deepcut.backbones.base import PatchFeatures

    t0 = time.perf_counter()
    x = torch.cat(list(xs), 0)
    with torch.no_grad():
        feats, cls, extras = backbone.extract_with_extra(x)
    feats = feats.float().cpu()
    cls = None if cls is None else cls.float().cpu()
    out = [PatchFeatures(features=feats[b].clone() if len(xs) > 1 else feats[b],
                         cls=None if cls is None else cls[b].clone(),
                         input_size=(int(x.shape[-2]), int(x.shape[-1])),
                         image_size=(im.height, im.width), patch_size=backbone.patch_size,
                         stride=backbone.stride, backbone=backbone.name,
                         weights_id=backbone.weights_id,
                         extra=extras[b])
           for b, im in enumerate(images)]
    return out, time.perf_counter() - t0


@dataclass
class Computed:
    """One image after the compute stage.

    Attributes:
        item: its :class:`Decoded` input (``image`` the RGB PIL image).
        pred: the :class:`~deepcut.pipeline.Prediction` (timings, ``meta["image"]`` and
            ``image`` filled as ``Segmenter.__call__`` fills them), or None when ``error`` is set.
        error: one-line reason the image was skipped, or None.
        seconds: the image's share of the compute (its decode included).
    """

    item: Decoded
    pred: Any = None
    error: str | None = None
    seconds: float = 0.0


def compute_batch(seg, items: Sequence[Decoded]) -> list[Computed]:
    """Segment decoded images: one backbone forward per input size, the batch's GNN heads
    trained together (:meth:`~deepcut.pipeline.Segmenter.predict_features_batch`); on any error
    each image is redone alone, so that a bad one is named. Never raises (per-image errors come
    back as one-line messages, as the sequential run reports them)."""
    from deepcut.errors import DeepCutError, name_file
    from deepcut.io.outputs import warnings_said_per_file

    bb = seg.backbone
    feats: list | None = [None] * len(items)
    shares = [0.0] * len(items)
    groups: dict[tuple, list[int]] = {}
    for b, item in enumerate(items):
        groups.setdefault(tuple(item.x.shape), []).append(b)
    try:
        for idx in groups.values():
            pfs, t_bb = batch_features(bb, [items[b].image for b in idx],
                                       [items[b].x for b in idx])
            for b, pf in zip(idx, pfs):
                feats[b], shares[b] = pf, t_bb / len(idx)
    except Exception:  # noqa: BLE001 - one at a time below, so the bad image is named
        feats = None
    preds, t_solve = None, 0.0
    if feats is not None and len(items) > 1:
        t0 = time.perf_counter()
        try:
            with warnings_said_per_file():  # said by the caller, naming the file
                preds = seg.predict_features_batch(feats, [it.image for it in items],
                                                   [it.depth for it in items])
        except Exception:  # noqa: BLE001
            preds = None
        t_solve = (time.perf_counter() - t0) / len(items)
    done: list[Computed] = []
    for b, item in enumerate(items):
        t0 = time.perf_counter()
        try:
            if feats is None:
                pf, share = batch_features(bb, [item.image], [item.x])
                pf = pf[0]
            else:
                pf, share = feats[b], shares[b]
            if preds is not None:
                pred, share = preds[b], share + t_solve
            else:
                with warnings_said_per_file():  # said by the caller, naming the file
                    pred = seg.predict_features(pf, image=item.image) if item.depth is None \
                        else seg.predict_features(pf, image=item.image, depth=item.depth)
        except DeepCutError as e:
            done.append(Computed(item, error=name_file(item.path, str(e))))
            continue
        except Exception as e:  # noqa: BLE001 - report the file and go on
            done.append(Computed(item, error=f"{item.path}: unexpected {type(e).__name__}: {e}"))
            continue
        # What Segmenter.__call__ records, so the JSON matches the sequential run's.
        pred.timings = {"load": item.load_s, "backbone": share, **pred.timings}
        pred.meta["image"] = str(item.path)
        pred.image = item.image
        done.append(Computed(item, pred, seconds=item.load_s + share + time.perf_counter() - t0))
    return done


def warm_up(seg) -> None:
    """Segment a small random feature grid once (results discarded), so that what the graph,
    solver, task and refinement import or set up on first use (scikit-learn's k-means, SciPy)
    is loaded once in this process before compute workers are forked, not once in each.

    Best effort: an error here is left to the real images to report.
    """
    import warnings

    import numpy as np
    import torch
    from PIL import Image

    from deepcut.backbones.base import PatchFeatures

    bb = seg.backbone
    h, w = 8, 10
    size = ((h - 1) * bb.stride + bb.patch_size, (w - 1) * bb.stride + bb.patch_size)
    g = torch.Generator().manual_seed(0)
    pf = PatchFeatures(features=torch.randn(h, w, max(1, int(bb.feature_dim)), generator=g),
                       cls=None, input_size=size, image_size=size, patch_size=bb.patch_size,
                       stride=bb.stride, backbone=bb.name, weights_id=bb.weights_id)
    image = Image.fromarray(np.full((size[0], size[1], 3), 128, np.uint8), "RGB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg.predict_features(pf, image=image)
    except Exception:  # noqa: BLE001, S110 - best effort (see above)
        pass


class ComputeDataset:
    """``ds[indices]`` decodes and segments a batch of images in a worker process.

    Returns the batch's :class:`Computed` results (errors included) pickled into a ``uint8``
    tensor: torch moves it through shared memory, so the worker's pipe stays small (see
    :meth:`DecodeDataset.__getitem__`). :func:`compute_loader` unpacks it.
    """

    def __init__(self, decode: DecodeDataset, segmenter) -> None:
        self.decode = decode
        self.segmenter = segmenter

    def __len__(self) -> int:
        return len(self.decode)

    def __getitem__(self, indices: Sequence[int]):
        import pickle

        import torch

        items = [self.decode.read(i) for i in indices]
        done = {c.item.index: c for c in
                compute_batch(self.segmenter, [it for it in items if it.error is None])}
        out = [done.get(it.index) or Computed(it, error=it.error) for it in items]
        for c in out:
            c.item.x = None  # the backbone input is not needed any more: not sent back
        return torch.frombuffer(bytearray(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)),
                                dtype=torch.uint8)


def _share_by_name(_worker_id: int = 0) -> None:
    """A worker's ``worker_init_fn``: its tensors reach the main process through named shared
    memory (torch's ``file_system`` sharing strategy, set in the worker only: the sender
    decides) instead of file descriptors passed over a socket.

    With descriptors, a thread of the worker (multiprocessing's resource_sharer) serves each
    transfer; when the main process was interrupted in the middle of one, that thread died with
    ``ConnectionResetError`` / ``BrokenPipeError`` and printed its traceback under the
    one-line "interrupted" message (3 of 6 interrupted runs here). A name needs no handshake.
    """
    import torch.multiprocessing

    torch.multiprocessing.set_sharing_strategy("file_system")


def _one_thread(_worker_id: int) -> None:
    """A compute worker's ``worker_init_fn``: one thread for torch, OpenMP and BLAS, tensors
    shared by name (:func:`_share_by_name`).

    GNU OpenMP's thread pool does not survive a fork: a forked worker that starts a parallel
    region with more than one thread (scikit-learn's k-means does, when the parent had run one)
    waits forever on threads that only exist in the parent. More cores take more workers.
    """
    import torch
    from threadpoolctl import threadpool_limits

    _share_by_name()
    torch.set_num_threads(1)
    threadpool_limits(1)


def batch_sizes(n: int, batch_size: int, workers: int) -> list[int]:
    """Sizes of the batches that ``n`` images are handed out in to ``workers`` compute workers:
    at most ``batch_size`` each, as equal as possible, and a multiple of ``workers`` of them, so
    that the workers (served in turn) end together: 20 images, batch 4, 2 workers: 4, 4, 3, 3,
    3, 3 (10 each), not 4, 4, 4, 4, 4 (12 and 8)."""
    if n <= 0:
        return []
    nb = -(-n // max(1, batch_size))
    nb = min(n, -(-nb // workers) * workers)
    return [n // nb + (i < n % nb) for i in range(nb)]


def compute_loader(ds: ComputeDataset, workers: int,
                   batches: Iterator[list[int]]) -> Iterator[Computed]:
    """The :class:`Computed` results of ``batches`` (lists of indices into ``ds``) in order;
    ``workers`` processes compute them, one thread each (forked now, so call this before
    starting threads).

    ``batches`` is consumed lazily in this process, two batches per worker ahead of the results:
    a caller can take each image's lock as it hands the image out. The segmenter is warmed up
    (:func:`warm_up`) before the fork.
    """
    import pickle

    from torch.utils.data import DataLoader

    warm_up(ds.segmenter)
    loader = DataLoader(ds, sampler=batches, batch_size=None, shuffle=False,
                        num_workers=workers, collate_fn=_as_is, prefetch_factor=2,
                        worker_init_fn=_one_thread)
    it = iter(loader)  # the workers are forked now: call this before starting other threads

    def results() -> Iterator[Computed]:
        for packed in it:
            yield from pickle.loads(packed.numpy().tobytes())
    return results()


class BackgroundWriter:
    """One thread that runs ``job(run)`` callables in order (writing outputs, reporting).

    ``put`` blocks when ``max_pending`` jobs wait (bounded memory). A job that raises stops the
    writer: ``fatal`` holds the error, later jobs are called with ``run=False`` (to release what
    they hold, e.g. their image lock, without writing), and the run stops at its next
    :meth:`put` or :meth:`close`.
    """

    def __init__(self, max_pending: int = 8) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=max(1, max_pending))
        self.fatal: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="deepcut-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._q.get()
            try:
                if job is None:
                    return
                job(self.fatal is None)
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                self.fatal = e
            finally:
                self._q.task_done()

    def put(self, job: Callable[[bool], None]) -> None:
        if self.fatal is not None:
            raise self.fatal
        self._q.put(job)

    def close(self) -> None:
        """Wait for every queued job; re-raise a job's fatal error."""
        self._q.put(None)
        self._thread.join()
        if self.fatal is not None:
            raise self.fatal
