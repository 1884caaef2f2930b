#!/usr/bin/env bash
# Runs the main job: mlkv-server on the default model (random weights in the Pythia-160M MLKV-2
# shape, created on first use so no download is needed), on the CPU, on 127.0.0.1. Once it is
# healthy, calls it with mlkv-client to show how, then serves until Ctrl-C (SIGINT drains).
#
#   scripts/run-default.sh [BUILD_DIR]     (make run)
#   MLKV_PORT=50051                        the port
#   MLKV_MODEL_DIR=...                     another model directory
#   MLKV_DEMO_ONLY=1                       stop the server after the demo calls (smoke test)
set -euo pipefail
BUILD="${1:-build}"
PORT="${MLKV_PORT:-50051}"
TARGET="127.0.0.1:$PORT"
MODEL_DIR="${MLKV_MODEL_DIR:-$BUILD/models/pythia-160m-mlkv-2-random}"
if [ ! -f "$MODEL_DIR/model.safetensors" ]; then
  echo "creating the default model in $MODEL_DIR" >&2
  "$BUILD/tools/mlkv" random-model --config configs/pythia-160m-mlkv-2.json --seed 0 \
    --out "$MODEL_DIR"
fi

# Its own session, so that Ctrl-C reaches only this script, which passes it on once as SIGTERM
# (the server drains, then exits 0; a second signal would make it exit without draining).
setsid "$BUILD/server/mlkv-server" --model "$MODEL_DIR" --host 127.0.0.1 --port "$PORT" \
  --kv-cache-bytes 1000000000 --max-model-len 2048 &
SERVER_PID=$!
stop_server() { kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" || true; }
trap 'stop_server; exit 0' INT TERM

CLIENT="$BUILD/tools/mlkv-client"
if ! "$CLIENT" health --target "$TARGET" --wait-seconds 120; then
  echo "mlkv-server did not become healthy" >&2
  stop_server
  exit 1
fi
echo "--- $CLIENT info --target $TARGET"
"$CLIENT" info --target "$TARGET"
echo "--- $CLIENT generate --target $TARGET --token-ids 12092,13,309,717,247 ..."
"$CLIENT" generate --target "$TARGET" --token-ids 12092,13,309,717,247 --max-tokens 32 \
  --temperature 0.8 --top-p 0.95 --seed 1 --ignore-eos
# A text prompt: random models ship a byte-level tokenizer (ids 0-256), so the text comes back
# only for the few sampled ids that are bytes; a real checkpoint's tokenizer.json covers them all.
echo "--- $CLIENT generate --target $TARGET --prompt 'The cache holds' ..."
"$CLIENT" generate --target "$TARGET" --prompt "The cache holds" --max-tokens 16 \
  --temperature 0.8 --seed 1
echo "--- $CLIENT load --target $TARGET"
"$CLIENT" load --target "$TARGET"

if [ "${MLKV_DEMO_ONLY:-0}" = "1" ]; then
  stop_server
  exit 0
fi
echo "mlkv-server is serving on $TARGET (docs/api.md); Ctrl-C drains and stops it" >&2
wait "$SERVER_PID"
