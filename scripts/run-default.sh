#!/usr/bin/env bash
# Runs the main job: mlkv-server on the default model (models/shakespeare-mlkv-2, a small MLKV
# model of Shakespeare that ships with the repository; docs/models.md), on the CPU, on 127.0.0.1.
# Once it is healthy, calls it with mlkv-client to show how, then serves until Ctrl-C (SIGINT
# drains).
#
#   scripts/run-default.sh [BUILD_DIR]     (make run)
#   MLKV_PORT=50051                        the port
#   MLKV_METRICS_PORT=8002                 the Prometheus port (0: any free port)
#   MLKV_MODEL_DIR=...                     another model directory
#   MLKV_DEMO_ONLY=1                       stop the server after the demo calls (smoke test)
set -euo pipefail
BUILD="${1:-build}"
PORT="${MLKV_PORT:-50051}"
TARGET="127.0.0.1:$PORT"
METRICS_PORT="${MLKV_METRICS_PORT:-8002}"
MODEL_DIR="${MLKV_MODEL_DIR:-models/shakespeare-mlkv-2}"
if [ ! -f "$MODEL_DIR/model.safetensors" ]; then
  echo "run-default: $MODEL_DIR/model.safetensors is missing (MLKV_MODEL_DIR)" >&2
  exit 2
fi

# Its own session, so that Ctrl-C reaches only this script, which passes it on once as SIGTERM
# (the server drains, then exits 0; a second signal would make it exit without draining).
setsid "$BUILD/server/mlkv-server" --model "$MODEL_DIR" --host 127.0.0.1 --port "$PORT" \
  --metrics-port "$METRICS_PORT" --kv-cache-bytes 268435456 &
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
# The model takes one token per byte: "ROMEO:" and a newline are ids 83 80 78 70 80 59 11.
echo "--- $CLIENT generate --target $TARGET --token-ids 83,80,78,70,80,59,11 ..."
"$CLIENT" generate --target "$TARGET" --token-ids 83,80,78,70,80,59,11 --max-tokens 32 \
  --temperature 0.8 --seed 2
echo "--- $CLIENT generate --target $TARGET --prompt 'KING HENRY:' ..."
"$CLIENT" generate --target "$TARGET" --prompt $'KING HENRY:\n' --max-tokens 160 \
  --temperature 0.8 --top-p 0.95 --seed 1
echo "--- $CLIENT load --target $TARGET"
"$CLIENT" load --target "$TARGET"

if [ "${MLKV_DEMO_ONLY:-0}" = "1" ]; then
  stop_server
  exit 0
fi
echo "mlkv-server is serving on $TARGET (docs/api.md); Ctrl-C drains and stops it" >&2
wait "$SERVER_PID"
