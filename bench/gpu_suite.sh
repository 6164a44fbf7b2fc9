#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md in one run: the GPU tests (marked `gpu`), SA steps/s at width 64 on a 60k
# energy set (simanneal's loop and rounds of candidate moves), K = 10 stacked training vs one model, and the
# 11-alpha curve against the reference style and the library's own per-alpha loop. Writes each table to $OUT (or
# ./bench-out). Needs torch, scipy, simanneal, safetensors and pytest importable; PYTHONPATH gets src/.
# Exits non-zero when a step fails (its output is still written), and when a GPU test was skipped or none ran.
set -uo pipefail
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
failed=()

step() {  # step NAME SECONDS COMMAND...: run COMMAND under a timeout, its output to the screen and $OUT/NAME.txt
  local name=$1 seconds=$2
  shift 2
  timeout "$seconds" "$@" 2>&1 | tee "$OUT/$name.txt"
  local status=${PIPESTATUS[0]}
  [ "$status" -eq 0 ] || failed+=("$name (exit $status)")
}

step gpu 30 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
step versions 60 $PY -c "import torch, scipy, simanneal, safetensors; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
step tests 300 $PY -m pytest -q -p no:cacheprovider -m gpu -rs tests/
if grep -qE "[0-9]+ skipped|no tests ran" "$OUT/tests.txt" || ! grep -q " passed" "$OUT/tests.txt"; then
  failed+=("tests (a GPU test was skipped or none ran)")
fi
step sa_speed 240 $PY bench/sa_speed.py --device cuda --width 64 --depths 1 2 --examples 60000 --steps 5 2000 5000 \
    --trained-epochs 5
step curve_speed 150 $PY bench/curve_speed.py --device cuda --repeats 3 --batch-size 45056
step train_speed 120 $PY bench/train_speed.py --device cuda --k 10 --threads 8 --epochs 2 --repeats 1

if [ ${#failed[@]} -gt 0 ]; then
  printf 'failed: %s\n' "${failed[@]}" | tee "$OUT/failed.txt"
  exit 1
fi
echo "all steps passed"
