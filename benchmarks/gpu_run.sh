#!/bin/sh
# Issue 6 part 3 on a lent GPU machine (one command, about 4 minutes of device time):
#   run: sh benchmarks/gpu_run.sh            (figures also in $OUT/gpu_resnet56.json when $OUT is set)
# Prints the card, then per mode (fp32, tf32, bf16): points/s, achieved TFLOP/s, % of the dense peak,
# the projected time of the whole 51x51 plane and the bf16/tf32 error against fp32.
set -e
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
test -x "$PY" || PY=python3
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
"$PY" benchmarks/gpu_resnet56.py --budget-s "${BUDGET_S:-45}" ${OUT:+--json "$OUT/gpu_resnet56.json"}
