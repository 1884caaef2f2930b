#!/usr/bin/env bash
# The decode benchmark of docs/benchmarks.md: the engine on the Pythia-160M MHA and MLKV-2 shapes,
# and the PyTorch eager loop on the same MHA checkpoint, one after the other in one run.
#   bash bench/run_decode_bench.sh [BUILD_DIR]
set -euo pipefail
BUILD="${1:-build}"
PYTHON="${MLKV_PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo /usr/bin/python3 )}"
MODEL="$BUILD/bench-models/pythia-160m-mha-144"
if [ ! -f "$MODEL/model.safetensors" ]; then
  "$BUILD/tools/mlkv" random-model --config configs/pythia-160m-mha-144.json --seed 0 --out "$MODEL"
fi
echo "== mlkv engine, MHA-144 =="
"$BUILD/bench/decode_bench" --config configs/pythia-160m-mha-144.json --json "$BUILD/bench-mha.json"
echo "== mlkv engine, MLKV-2 =="
"$BUILD/bench/decode_bench" --config configs/pythia-160m-mlkv-2.json --json "$BUILD/bench-mlkv2.json"
echo "== PyTorch eager + HF KV cache, MHA-144 =="
"$PYTHON" bench/pytorch_decode.py --model "$MODEL" --json "$BUILD/bench-pytorch.json"
