#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md in one run: the GPU tests, SA steps/s at width 64 on a 60k energy set
# (simanneal's loop and rounds of candidate moves), K = 10 stacked training vs one model, and the 11-alpha curve
# against the reference style and the library's own per-alpha loop. Writes each table to $OUT (or ./bench-out).
# Needs torch, scipy, simanneal, safetensors (and pytest for the tests) importable; PYTHONPATH gets src/.
set -uo pipefail
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import torch, scipy, simanneal, safetensors; print('torch', torch.__version__)" 2>&1 | tee -a "$OUT/gpu.txt"
timeout 120 $PY -m pytest -q -p no:cacheprovider -k "gpu or cuda" tests/test_batched_annealing.py tests/test_batched_curves.py \
    2>&1 | tail -40 | tee "$OUT/tests.txt"
timeout 240 $PY bench/sa_speed.py --device cuda --width 64 --depths 1 2 --examples 60000 --steps 5 2000 5000 \
    --trained-epochs 5 2>&1 | tee "$OUT/sa_speed.txt"
timeout 150 $PY bench/curve_speed.py --device cuda --repeats 3 --batch-size 45056 2>&1 | tee "$OUT/curve_speed.txt"
timeout 120 $PY bench/train_speed.py --device cuda --k 10 --threads 8 --epochs 2 --repeats 1 2>&1 | tee "$OUT/train_speed.txt"
