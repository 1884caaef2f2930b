#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds the CUDA backend, runs its tests (which must *run*, not
# skip, here), the decode-attention bandwidth benchmark, and an end-to-end comparison of the CUDA
# and CPU backends through `mlkv score` / `mlkv generate` on seeded random models; then prints a
# summary table. Meant to finish within 8 minutes on a 16-core host; not part of CI (CI has no GPU).
#
#   tools/gpu_check.sh [build dir (build-gpu)]
#
# Record the output in docs/benchmarks.md together with this command line.
set -uo pipefail

cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu}
JOBS=$(nproc)
START=$(date +%s)
declare -a SUMMARY=()
STATUS=0

note() { SUMMARY+=("$(printf '%-34s %-8s %s' "$1" "$2" "$3")"); [[ $2 == FAIL ]] && STATUS=1; }
elapsed() { echo $(( $(date +%s) - START ))s; }

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU visible (nvidia-smi -L fails); nothing to check" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# 'native' compiles for the GPU present only: the quickest build that still runs the real kernels.
if ! timeout 120 cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMLKV_CUDA=ON \
       -DCMAKE_CUDA_ARCHITECTURES=native >"$BUILD.configure.log" 2>&1; then
  tail -20 "$BUILD.configure.log"; echo "gpu_check: configure failed" >&2; exit 1
fi
if timeout 300 cmake --build "$BUILD" -j"$JOBS" --target cuda_kernels_test \
       cuda_attention_plan_test cuda_model_test cuda_attention_bench mlkv >"$BUILD.build.log" 2>&1; then
  note "build (MLKV_CUDA=ON, native arch)" ok "$(elapsed)"
else
  tail -30 "$BUILD.build.log"; echo "gpu_check: build failed" >&2; exit 1
fi

# GoogleTest binaries: passed / skipped / failed counts. On a GPU machine a skip is a failure.
run_gtest() {
  local name=$1 binary=$2 log="$BUILD/$1.log"
  timeout 180 "$binary" >"$log" 2>&1
  local rc=$?
  local passed skipped failed
  passed=$(grep -c '^\[       OK \]' "$log")
  skipped=$(grep -c '^\[  SKIPPED \]' "$log")
  failed=$(grep -c '^\[  FAILED  \]' "$log")
  if [[ $rc -eq 0 && $skipped -eq 0 ]]; then
    note "$name" ok "$passed passed"
  else
    note "$name" FAIL "rc $rc, $passed passed, $skipped skipped, $failed failed lines (see $log)"
    grep -E '^\[  FAILED  \]|Failure|SKIPPED|error' "$log" | head -20
  fi
}
run_gtest cuda_attention_plan_test "$BUILD/kernels/cuda/cuda_attention_plan_test"
run_gtest cuda_kernels_test "$BUILD/kernels/cuda/cuda_kernels_test"
run_gtest cuda_model_test "$BUILD/tests/cuda/cuda_model_test"

echo
echo "== decode attention bandwidth (bench/cuda_attention_bench.cc) =="
if timeout 120 "$BUILD/kernels/cuda/cuda_attention_bench" | tee "$BUILD/cuda_attention_bench.log"; then
  note "cuda_attention_bench" ok "table above"
else
  note "cuda_attention_bench" FAIL "see $BUILD/cuda_attention_bench.log"
fi

# End to end: the same seeded random model scored and greedily continued on both backends.
# float32 weights and activations, no TF32: log-probabilities agree to float32 summation-order
# noise (the CPU backend is within 6e-6 of a float64 reference); 1e-3 still fails any real bug.
MLKV="$BUILD/tools/mlkv"
E2E_DIR=$(mktemp -d)
trap 'rm -rf "$E2E_DIR"' EXIT
IDS=$(python3 -c 'print(",".join(str(1 + (i * 37 + 11) % 500) for i in range(96)))')
for config in configs/smoke-test.json configs/pythia-160m-mqa-12.json configs/pythia-160m-mlkv-2.json; do
  name=$(basename "$config" .json)
  for kv in f32 bf16; do
    label="e2e $name kv=$kv"
    model="$E2E_DIR/$name"
    [[ -d $model ]] || timeout 120 "$MLKV" random-model --config "$config" --seed 1 --out "$model" \
        >/dev/null 2>&1
    ok=1
    for device in cpu cuda; do
      timeout 120 "$MLKV" score --model "$model" --token-ids "$IDS" --kv-dtype "$kv" \
          --device "$device" --format json >"$E2E_DIR/score.$device" 2>"$E2E_DIR/err" || ok=0
      timeout 120 "$MLKV" generate --model "$model" --token-ids "$IDS" --max-tokens 32 \
          --kv-dtype "$kv" --device "$device" --format json >"$E2E_DIR/gen.$device" \
          2>>"$E2E_DIR/err" || ok=0
    done
    if [[ $ok -eq 0 ]]; then
      note "$label" FAIL "$(tail -1 "$E2E_DIR/err")"
      continue
    fi
    verdict=$(python3 - "$E2E_DIR" <<'EOF'
import json, sys
d = sys.argv[1]
load = lambda f: json.load(open(f"{d}/{f}"))
a, b = load("score.cpu")["token_logprobs"], load("score.cuda")["token_logprobs"]
diff = max(abs(x - y) for x, y in zip(a, b))
same = load("gen.cpu")["token_ids"] == load("gen.cuda")["token_ids"]
ok = len(a) == len(b) and diff <= 1e-3 and same
print(("ok" if ok else "FAIL") + f" max|dlogprob| {diff:.2e}, greedy 32 tokens {'equal' if same else 'DIFFER'}")
EOF
)
    note "$label" "${verdict%% *}" "${verdict#* }"
  done
done

echo
echo "== summary ($(elapsed)) =="
printf '%s\n' "${SUMMARY[@]}"
exit $STATUS
