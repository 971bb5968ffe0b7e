#!/usr/bin/env bash
# The GPU session of issue 15, prepared for the next session that has a GPU (< 8 min):
#   1. the card, driver and torch build;
#   2. the CUDA tests (one tiny epoch of ClipClap, AVCA, TCaF on cuda, fp32 and bf16);
#   3. per-method step and epoch times at the published settings (clipclap.ucf, avca.ucf_cls,
#      tcaf.ucf_cls; synthetic data of the published shapes), fp32 and bf16 interleaved,
#      next to the fp32 / bf16 matmul floors measured on the card at the models' shapes,
#      with achieved GFLOP/s.
# Usage, from the repository root: PYTHON=/path/to/python bash benchmarks/gpu_run.sh
# (PYTHON: an interpreter with a CUDA build of torch and lowshot's dependencies; results
# also go to $OUT/gpu_speed.json when OUT is set).
set -euo pipefail
PY=${PYTHON:-python}
OUTDIR=${OUT:-/tmp}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(), 'bf16', torch.cuda.is_bf16_supported())"
timeout 150 "$PY" -m pytest -q -x -rs tests/recipes/test_gzsl_precision.py -k cuda
cd benchmarks
timeout 300 "$PY" precision.py speed --device cuda --method clipclap --method avca --method tcaf \
    --batches 50 --rounds 3 --json "$OUTDIR/gpu_speed.json"
date -u
