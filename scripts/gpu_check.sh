#!/usr/bin/env bash
# The GPU check in one command, on a machine with a CUDA GPU (run from anywhere):
#
#     bash scripts/gpu_check.sh [benchmarks/gpu.py options, e.g. --images 256 --batch 64]
#
# 1. the CUDA tests (tests/test_gpu.py: bf16 keys, every solver, graph, task and refinement on
#    the GPU, batched heads, the CLI; tests/test_batched.py: batched heads = single heads;
#    tests/test_seeding.py: a CUDA block's generator seeded and restored), with skip reasons
#    shown (-rs): none should skip here;
# 2. benchmarks/gpu.py: images/s at 280 px, random-init ViT-S/8, sequential and batched, with
#    the per-stage split (target: >= 50 images/s on one H100-class GPU).
# Needs no weights and no data (random-init ViT, synthetic images) and no network.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 WANDB_MODE=offline
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python - <<'PY'
import torch
if not torch.cuda.is_available():
    raise SystemExit("gpu_check: no CUDA GPU visible to torch (torch %s, CUDA build %s)"
                     % (torch.__version__, torch.version.cuda))
print("gpu_check:", torch.cuda.get_device_name(0), "torch", torch.__version__,
      "CUDA", torch.version.cuda)
PY
status=0
python -m pytest tests/test_gpu.py tests/test_batched.py tests/test_seeding.py -q -rs -p no:cacheprovider || status=$?
python benchmarks/gpu.py --device cuda "$@" || status=$?
exit $status
