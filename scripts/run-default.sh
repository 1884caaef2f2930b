#!/usr/bin/env bash
# Runs the main job on the default model: creates it on first use (random weights in the
# Pythia-160M MLKV-2 shape, so no download is needed), then generates from a prompt of token ids.
set -euo pipefail
BUILD="${1:-build}"
MODEL_DIR="${MLKV_MODEL_DIR:-$BUILD/models/pythia-160m-mlkv-2-random}"
if [ ! -f "$MODEL_DIR/model.safetensors" ]; then
  echo "creating the default model in $MODEL_DIR" >&2
  "$BUILD/tools/mlkv" random-model --config configs/pythia-160m-mlkv-2.json --seed 0 \
    --out "$MODEL_DIR"
fi
"$BUILD/tools/mlkv" inspect --model "$MODEL_DIR"
"$BUILD/tools/mlkv" generate --model "$MODEL_DIR" --token-ids 12092,13,309,717,247 \
  --max-tokens 32 --temperature 0.8 --top-p 0.95 --seed 1 --ignore-eos
