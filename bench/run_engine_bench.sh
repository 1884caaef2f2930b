#!/usr/bin/env bash
# The end-to-end engine benchmark of docs/benchmarks.md: the same mixed workload on the MHA, MQA
# and MLKV-2 shapes of Pythia-160M at one KV budget (small enough that MHA runs out of blocks),
# then a shared-prefix workload with prefix caching on and off.
#   bash bench/run_engine_bench.sh [BUILD_DIR]
set -euo pipefail
BUILD="${1:-build}"
BUDGET=$((256 * 1024 * 1024))
for variant in mha-144 mqa-12 mlkv-2; do
  echo "== $variant, mixed workload =="
  "$BUILD/bench/engine_bench" --config "configs/pythia-160m-$variant.json" \
    --kv-cache-bytes "$BUDGET" --num-requests 64 --prompt-len 128:512 --output-len 64:256
done
for caching in on off; do
  echo "== mlkv-2, 384-token shared prefix, prefix caching $caching =="
  flag=""; [ "$caching" = off ] && flag="--no-prefix-caching"
  "$BUILD/bench/engine_bench" --config configs/pythia-160m-mlkv-2.json --kv-cache-bytes "$BUDGET" \
    --num-requests 64 --shared-prefix-len 384 --prompt-len 16:64 --output-len 32:64 $flag
done
