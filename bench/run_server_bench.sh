#!/usr/bin/env bash
# The server benchmark of docs/benchmarks.md: the latency mlkv-server adds over calling the engine
# in process (engine and server runs alternate on one engine, so they compare side by side) on
# the smoke-test model and on the Pythia-160M MLKV-2 shape, then how many concurrent streams the
# server sustains on this machine (bursts of N short generations on the smoke-test model, each
# with a 60 s deadline, the waiting queue lifted so that it is not the limit).
#   bash bench/run_server_bench.sh [BUILD_DIR]      (the server's request log goes to stderr)
set -euo pipefail
BENCH="${1:-build}/bench/server_overhead_bench"
export OMP_WAIT_POLICY=passive
echo "== smoke-test model: latency added by the server =="
"$BENCH" --config configs/smoke-test.json --concurrency 1,4,16,64 --requests 128 --rounds 4 \
  --prompt-len 32 --max-tokens 32
echo "== Pythia-160M MLKV-2 shape: latency added by the server =="
"$BENCH" --config configs/pythia-160m-mlkv-2.json --concurrency 1,4,16 --requests 16 --rounds 2 \
  --prompt-len 32 --max-tokens 16
echo "== smoke-test model: concurrent streams sustained =="
"$BENCH" --config configs/smoke-test.json --ramp 100,400,1000,2000,4000,8000,16000 \
  --prompt-len 16 --max-tokens 16 --timeout-seconds 60 --max-waiting 100000
