#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md in one run: SA steps/s at width 64 on a 60k energy set, K = 10 batched
# training vs one model, and the 11-alpha curve vs a per-alpha loop. Writes each table to $OUT (or ./bench-out).
set -uo pipefail
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import torch, scipy, simanneal, safetensors; print('torch', torch.__version__)" 2>&1 | tee -a "$OUT/gpu.txt"
timeout 150 $PY bench/sa_speed.py --device cuda --width 64 --depths 1 2 --examples 60000 --steps 20 2000 5000 \
    2>&1 | tee "$OUT/sa_speed.txt"
timeout 120 $PY bench/train_speed.py --device cuda --k 10 --threads 8 2>&1 | tee "$OUT/train_speed.txt"
timeout 60 $PY bench/curve_speed.py --device cuda --repeats 3 --batch-size 45056 2>&1 | tee "$OUT/curve_speed.txt"
