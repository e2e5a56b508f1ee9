"""Images/s of the whole path on one device, 280 px ViT-S/8 (random init), with the stage split.

    python benchmarks/gpu.py [--device cuda] [--images 128] [--batch 32] [--size 280]
                             [--precision auto] [--modes sequential,batched] [--seed 0]

Two ways through the same images (synthetic 280 x 280 RGB, a planted object on texture; no data
or weights needed; a random-init ViT-S/8 has DINO's architecture and cost, its weights drawn
after ``torch.manual_seed(--seed)``):

* ``sequential``: ``Segmenter(image)`` one image at a time (today's folder loop, less I/O);
* ``batched``: the backbone forward on ``--batch`` images at once, then
  :meth:`Segmenter.predict_features_batch` (graphs per image, the GNN heads trained together by
  :mod:`deepcut.solvers.batched`, task and refinement per image).

Prints the key cosine of bf16 autocast against fp32 on this device, then per mode: images/s
(wall clock over all images, after one warm-up batch) and seconds per image by stage
(preprocess = PIL resize + normalise on the CPU, backbone, graph, solve, task+refine), and
whether the batched labels equal the sequential ones. ``scripts/gpu_check.sh`` runs it on a
machine with a GPU; the issue's target there is >= 50 images/s on one H100-class GPU.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings


def _images(n: int, size: int):
    import numpy as np

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        a = (rng.random((size, size, 3)) * 80).astype(np.uint8)
        y0, x0 = rng.integers(size // 8, size // 3, 2)
        a[y0:y0 + size // 2, x0:x0 + size // 2] += np.uint8(120 + i % 40)
        out.append(a)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    ap.add_argument("--images", type=int, default=128, help="images timed (default 128)")
    ap.add_argument("--batch", type=int, default=32, help="images per batch (default 32)")
    ap.add_argument("--size", type=int, default=280, help="input side in px (default 280)")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--modes", default="sequential,batched", help="comma-separated modes")
    ap.add_argument("--backbone", default="timm:vit_small_patch8_224",
                    help="backbone (default: random-init ViT-S/8)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the random-init weights (default 0)")
    args = ap.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    from deepcut import Segmenter
    from deepcut.backbones import create_backbone
    from deepcut.backbones.base import PatchFeatures
    from deepcut.pipeline import _precision

    warnings.simplefilter("ignore")
    dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    seg = Segmenter(backbone="dino_vits8", device=dev, precision=args.precision, seed=0)
    prec = _precision(seg.config)
    torch.manual_seed(args.seed)  # the random-init backbones: reproducible weights
    bb = create_backbone(args.backbone, pretrained=False, size=args.size, device=dev,
                         precision=prec)
    seg = Segmenter(seg.config, backbone=bb)
    images = [Image.fromarray(a) for a in _images(args.images + args.batch, args.size)]
    warm, images = images[:args.batch], images[args.batch:]

    def sync():
        if dev.startswith("cuda"):
            torch.cuda.synchronize()

    # bf16 against fp32 keys on this device
    ref = create_backbone(args.backbone, pretrained=False, size=args.size, device=dev)
    half = create_backbone(args.backbone, pretrained=False, size=args.size, device=dev,
                           precision="bf16")
    half.load_state_dict(ref.state_dict())
    cos = torch.nn.functional.cosine_similarity(ref(images[0]).flat, half(images[0]).flat, dim=1)
    name = torch.cuda.get_device_name(0) if dev.startswith("cuda") else f"cpu x{os.cpu_count()}"
    print(f"device={dev} ({name}) torch={torch.__version__} backbone={args.backbone} "
          f"(random init) size={args.size} precision={prec} images={len(images)} "
          f"batch={args.batch}")
    print(f"bf16 vs fp32 keys: per-patch cosine min {float(cos.min()):.5f} "
          f"mean {float(cos.mean()):.5f} (tolerance >= 0.999)")
    del ref, half

    def sequential(ims):
        stages = {"preprocess": 0.0, "backbone": 0.0, "graph": 0.0, "solve": 0.0, "task+refine": 0.0}
        preds = []
        for im in ims:
            p = seg(im)
            stages["backbone"] += p.timings["backbone"]
            stages["graph"] += p.timings["graph"]
            stages["solve"] += p.timings["solve"]
            stages["task+refine"] += p.timings["upsample"]
            preds.append(p)
        return preds, stages

    def batched(ims):
        stages = {"preprocess": 0.0, "backbone": 0.0, "graph": 0.0, "solve": 0.0, "task+refine": 0.0}
        preds = []
        for i in range(0, len(ims), args.batch):
            chunk = ims[i:i + args.batch]
            t0 = time.perf_counter()
            x = torch.cat([bb.preprocess(im) for im in chunk])  # one input size here
            t1 = time.perf_counter()
            with torch.no_grad():
                feats, cls = bb.extract(x.to(dev, non_blocking=True))
            feats = feats.float().cpu()  # PatchFeatures hold CPU features (as Backbone.forward)
            t2 = time.perf_counter()
            pfs = [PatchFeatures(features=feats[b], cls=None if cls is None else cls[b].float().cpu(),
                                 input_size=tuple(x.shape[-2:]), image_size=(im.height, im.width),
                                 patch_size=bb.patch_size, stride=bb.stride, backbone=bb.name,
                                 weights_id=bb.weights_id) for b, im in enumerate(chunk)]
            ps = seg.predict_features_batch(pfs, chunk)
            stages["preprocess"] += t1 - t0
            stages["backbone"] += t2 - t1
            for p in ps:
                stages["graph"] += p.timings["graph"]
                stages["solve"] += p.timings["solve"]
                stages["task+refine"] += p.timings["upsample"]
            preds += ps
        return preds, stages

    modes = {"sequential": sequential, "batched": batched}
    chosen = [m for m in args.modes.split(",") if m]
    results = {}
    for m in chosen:
        modes[m](warm)  # warm-up: kernels, allocator, lazy imports
        sync()
        t0 = time.perf_counter()
        preds, stages = modes[m](images)
        sync()
        wall = time.perf_counter() - t0
        results[m] = (preds, stages, wall)

    n = len(images)
    print("| mode | images/s | s/img total | " + " | ".join(next(iter(results.values()))[1])
          + " | labels = sequential |")
    print("|---" * (4 + len(next(iter(results.values()))[1])) + "|")
    base = results.get("sequential")
    for m, (preds, stages, wall) in results.items():
        same = "-" if base is None or m == "sequential" else (
            "yes" if all(np.array_equal(a.labels, b.labels) for a, b in zip(base[0], preds))
            else f"{sum(np.array_equal(a.labels, b.labels) for a, b in zip(base[0], preds))}/{n}")
        split = " | ".join(f"{v / n * 1000:.1f} ms" for v in stages.values())
        print(f"| {m} | {n / wall:.2f} | {wall / n * 1000:.1f} ms | {split} | {same} |")
    if dev.startswith("cuda"):
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB; "
              f"target >= 50 images/s: "
              f"{'met' if max(n / r[2] for r in results.values()) >= 50 else 'NOT met'}")
    med = statistics.median([len(p.patch_labels.reshape(-1)) for p in results[chosen[0]][0]])
    print(f"nodes per image (median): {med:.0f}")


if __name__ == "__main__":
    main()
