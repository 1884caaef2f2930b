#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds the CUDA backend, runs its tests (which must *run*, not
# skip, here), the decode-attention bandwidth benchmark, an end-to-end comparison of the CUDA
# and CPU backends through `mlkv score` / `mlkv generate` on seeded random models, and the decode
# throughput of the three Pythia-160M variants within one KV budget beside a PyTorch eager loop;
# then prints a summary table. Meant to finish within 8 minutes on a 16-core host; not part of CI
# (CI has no GPU).
#
#   tools/gpu_check.sh [build dir (build-gpu)]   builds here first: needs the build dependencies
#   tools/gpu_check.sh --prebuilt DIR            runs the binaries and libraries that
#                                                tools/gpu_bundle.sh packed into DIR elsewhere
#
# Record the output in docs/benchmarks.md together with this command line.
set -uo pipefail

# Where CMake puts each binary; a bundle holds them all in DIR/bin (tools/gpu_bundle.sh).
BINARIES=(kernels/cuda/cuda_attention_plan_test kernels/cuda/cuda_kernels_test
          tests/cuda/cuda_model_test kernels/cuda/cuda_attention_bench tools/mlkv
          bench/decode_bench)
PREBUILT=
if [[ ${1:-} == --prebuilt ]]; then
  if [[ $# -ne 2 || ! -d $2 ]]; then
    echo "usage: tools/gpu_check.sh --prebuilt DIR (a folder made by tools/gpu_bundle.sh)" >&2
    exit 1
  fi
  # Absolute before the cd below, so that DIR may be given relative to where we are called.
  PREBUILT=$(realpath "$2")
  for binary in "${BINARIES[@]}"; do
    if [[ ! -x $PREBUILT/bin/${binary##*/} ]]; then
      echo "gpu_check: $PREBUILT/bin/${binary##*/} missing; make DIR with tools/gpu_bundle.sh" >&2
      exit 1
    fi
  done
  LOGS=$PREBUILT/logs
  mkdir -p "$LOGS"
  # The bundle's own libraries first, then CUDA's; whatever the machine already sets (the driver's
  # libcuda, say) stays after them.
  export LD_LIBRARY_PATH=$PREBUILT/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
else
  BUILD=${1:-build-gpu}
  LOGS=$BUILD
fi

cd "$(dirname "$0")/.." || exit 1
START=$(date +%s)
declare -a SUMMARY=()
STATUS=0

# Each result also goes to LOGS/summary.txt as it comes, so that a check stopped by a time limit
# still says what it reached.
note() {
  SUMMARY+=("$(printf '%-40s %-8s %s' "$1" "$2" "$3")")
  printf '%s\n' "${SUMMARY[-1]}" >>"$LOGS/summary.txt"
  [[ $2 == FAIL ]] && STATUS=1
}
elapsed() { echo $(( $(date +%s) - START ))s; }
# A binary by its path in the build tree, taken from the bundle in --prebuilt mode.
bin() { if [[ -n $PREBUILT ]]; then echo "$PREBUILT/bin/${1##*/}"; else echo "$BUILD/$1"; fi; }

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU visible (nvidia-smi -L fails); nothing to check" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
mkdir -p "$LOGS"
rm -f "$LOGS/summary.txt"

if [[ -n $PREBUILT ]]; then
  # A bundle that cannot load here (a library missing, glibc too old) would fail every check below;
  # say so once instead.
  if ! "$(bin tools/mlkv)" --help >/dev/null 2>"$LOGS/start.log"; then
    cat "$LOGS/start.log"
    echo "gpu_check: $(bin tools/mlkv) does not start on this machine (see above)" >&2
    exit 1
  fi
  note "prebuilt $(basename "$PREBUILT")" ok "$(sed -n 's/^commit: //p' "$PREBUILT/MANIFEST")"
else
  # 'native' compiles for the GPU present only: the quickest build that still runs the real kernels.
  mkdir -p "$BUILD"
  if ! timeout 120 cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMLKV_CUDA=ON \
         -DCMAKE_CUDA_ARCHITECTURES=native >"$BUILD/configure.log" 2>&1; then
    tail -20 "$BUILD/configure.log"; echo "gpu_check: configure failed" >&2; exit 1
  fi
  if timeout 300 cmake --build "$BUILD" -j"$(nproc)" --target "${BINARIES[@]##*/}" \
         >"$BUILD/build.log" 2>&1; then
    note "build (MLKV_CUDA=ON, native arch)" ok "$(elapsed)"
  else
    tail -30 "$BUILD/build.log"; echo "gpu_check: build failed" >&2; exit 1
  fi
fi

# GoogleTest binaries: passed / skipped / failed counts. On a GPU machine a skip is a failure.
run_gtest() {
  local name=$1 binary=$2 log="$LOGS/$1.log"
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
run_gtest cuda_attention_plan_test "$(bin kernels/cuda/cuda_attention_plan_test)"
run_gtest cuda_kernels_test "$(bin kernels/cuda/cuda_kernels_test)"
run_gtest cuda_model_test "$(bin tests/cuda/cuda_model_test)"

echo
echo "== decode attention bandwidth (bench/cuda_attention_bench.cc) =="
if timeout 120 "$(bin kernels/cuda/cuda_attention_bench)" \
     | tee "$LOGS/cuda_attention_bench.log"; then
  note "cuda_attention_bench" ok "table above"
else
  note "cuda_attention_bench" FAIL "see $LOGS/cuda_attention_bench.log"
fi

# End to end: the same seeded random model scored and greedily continued on both backends, for
# each KV cache dtype with float32 weights, and with f16/bf16 weights (and cache).
# float32 weights and activations, no TF32: log-probabilities agree to float32 summation-order
# noise (the CPU backend is within 6e-6 of a float64 reference); 1e-3 still fails any real bug,
# and the greedy continuations must be equal.
# f16/bf16 weights: CUDA also rounds each GEMM's input to that dtype, the CPU does not, an error
# the size of the weights' own rounding; so CUDA may differ from the CPU by 1e-3 plus twice what
# the narrow weights move the CPU's scores from float32 weights (measured here), and greedy
# continuations may part after a near-tie (the count of equal leading tokens is reported).
MLKV=$(bin tools/mlkv)
E2E_DIR=$(mktemp -d)
trap 'rm -rf "$E2E_DIR"' EXIT
IDS=$(python3 -c 'print(",".join(str(1 + (i * 37 + 11) % 500) for i in range(96)))')
for config in configs/smoke-test.json configs/pythia-160m-mqa-12.json configs/pythia-160m-mlkv-2.json; do
  name=$(basename "$config" .json)
  # kv:weights; float32 weights of each kv dtype first, as the narrow-weight cases measure from
  # them. The Pythia-sized models take a subset, to keep the check within its 8 minutes.
  combos="f32:f32 f16:f32 bf16:f32 f16:f16 bf16:bf16"
  [[ $name == smoke-test ]] || combos="f32:f32 f16:f32 f16:f16"
  for dtypes in $combos; do
    kv=${dtypes%:*} weights=${dtypes#*:}
    label="e2e $name kv=$kv w=$weights"
    model="$E2E_DIR/$name"
    [[ -d $model ]] || timeout 120 "$MLKV" random-model --config "$config" --seed 1 --out "$model" \
        >/dev/null 2>&1
    ok=1
    for device in cpu cuda; do
      out="$E2E_DIR/$device.$kv.$weights"
      timeout 120 "$MLKV" score --model "$model" --token-ids "$IDS" --kv-dtype "$kv" \
          --weight-dtype "$weights" --device "$device" --format json >"$out.score" \
          2>"$E2E_DIR/err" || ok=0
      timeout 120 "$MLKV" generate --model "$model" --token-ids "$IDS" --max-tokens 32 \
          --kv-dtype "$kv" --weight-dtype "$weights" --device "$device" --format json \
          >"$out.gen" 2>>"$E2E_DIR/err" || ok=0
    done
    if [[ $ok -eq 0 ]]; then
      note "$label" FAIL "$(tail -1 "$E2E_DIR/err")"
      continue
    fi
    verdict=$(python3 - "$E2E_DIR" "$kv" "$weights" <<'EOF'
import json, sys
d, kv, weights = sys.argv[1:]
load = lambda f: json.load(open(f"{d}/{f}"))
lps = lambda device, w: load(f"{device}.{kv}.{w}.score")["token_logprobs"]
maxdiff = lambda a, b: max(abs(x - y) for x, y in zip(a, b))
a, b = lps("cpu", weights), lps("cuda", weights)
diff, tol, drift = maxdiff(a, b), 1e-3, 0.0
if weights != "f32":
    drift = maxdiff(a, lps("cpu", "f32"))
    tol += 2 * drift
x, y = load(f"cpu.{kv}.{weights}.gen")["token_ids"], load(f"cuda.{kv}.{weights}.gen")["token_ids"]
equal = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
ok = len(a) == len(b) and diff <= tol
# float32 weights must continue identically; narrow ones must differ from float32 at all.
ok = ok and (x == y if weights == "f32" else drift > 0)
what = f"max|dlogprob| {diff:.2e} (tolerance {tol:.2e}"
what += f"; {weights} weights drift {drift:.2e})" if weights != "f32" else ")"
print(("ok" if ok else "FAIL") + f" {what}, greedy {equal}/{len(x)} tokens equal")
EOF
)
    note "$label" "${verdict%% *}" "${verdict#* }"
  done
  # The tensor-core attention kernel (--cuda-attention tensor-core) on each narrow KV cache run
  # above with float32 weights. It also rounds queries and softmax weights to the cache's dtype,
  # so it may differ from the CPU by 1e-3 plus twice what rounding the cache itself moves the
  # CPU's scores from a float32 cache (measured here); greedy continuations may part after a
  # near-tie.
  for kv in f16 bf16; do
    [[ -f $E2E_DIR/cpu.$kv.f32.score ]] || continue
    label="e2e $name kv=$kv tensor-core attention"
    out="$E2E_DIR/mma.$kv.f32"
    if ! timeout 120 "$MLKV" score --model "$model" --token-ids "$IDS" --kv-dtype "$kv" \
           --device cuda --cuda-attention tensor-core --format json >"$out.score" \
           2>"$E2E_DIR/err" ||
       ! timeout 120 "$MLKV" generate --model "$model" --token-ids "$IDS" --max-tokens 32 \
           --kv-dtype "$kv" --device cuda --cuda-attention tensor-core --format json \
           >"$out.gen" 2>>"$E2E_DIR/err"; then
      note "$label" FAIL "$(tail -1 "$E2E_DIR/err")"
      continue
    fi
    verdict=$(python3 - "$E2E_DIR" "$kv" <<'EOF'
import json, sys
d, kv = sys.argv[1:]
load = lambda f: json.load(open(f"{d}/{f}"))
lps = lambda run: load(f"{run}.score")["token_logprobs"]
maxdiff = lambda a, b: max(abs(x - y) for x, y in zip(a, b))
a, b = lps(f"cpu.{kv}.f32"), lps(f"mma.{kv}.f32")
drift = maxdiff(a, lps("cpu.f32.f32"))
diff, tol = maxdiff(a, b), 1e-3 + 2 * drift
x, y = load(f"cpu.{kv}.f32.gen")["token_ids"], load(f"mma.{kv}.f32.gen")["token_ids"]
equal = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
ok = len(a) == len(b) and diff <= tol and drift > 0
print(("ok" if ok else "FAIL") + f" max|dlogprob| {diff:.2e} (tolerance {tol:.2e}; {kv} cache "
      f"drift {drift:.2e}), greedy {equal}/{len(x)} tokens equal")
EOF
)
    note "$label" "${verdict%% *}" "${verdict#* }"
  done
done

# Sampling on the backend, and decode graphs: a seeded, filtered draw and a greedy continuation on
# the CPU, on CUDA, and on CUDA with --cuda-graphs, all with --sampling-placement backend and text
# output (json would ask for logprobs, which only the host sampler gives). All draw by one
# definition (Backend::SampleRows) from logits that agree to float32 rounding, so the tokens must
# be equal unless a draw lands within ~1e-6 of a boundary (a chance of about 1e-4 over 32 draws).
for config in configs/smoke-test.json configs/pythia-160m-mlkv-2.json; do
  name=$(basename "$config" .json)
  model="$E2E_DIR/$name"
  for sampling in "--temperature 0.8 --top-k 50 --top-p 0.9 --seed 7" "--temperature 0"; do
    ok=1
    for run in cpu cuda cuda-graphs; do
      device=${run%-graphs}
      graphs=(); [[ $run == cuda-graphs ]] && graphs=(--cuda-graphs)
      # shellcheck disable=SC2086  # $sampling is a list of flags
      timeout 120 "$MLKV" generate --model "$model" --token-ids "$IDS" --max-tokens 32 \
          $sampling --sampling-placement backend --device "$device" "${graphs[@]}" \
          >"$E2E_DIR/$run.tokens" 2>"$E2E_DIR/err" || ok=0
    done
    label="backend tokens $name T=${sampling#--temperature }"; label=${label%% --*}
    if [[ $ok -eq 0 ]]; then
      note "$label" FAIL "$(tail -1 "$E2E_DIR/err")"
      continue
    fi
    verdict=$(python3 - "$E2E_DIR" <<'EOF'
import sys
d = sys.argv[1]
ids = lambda run: [int(t) for t in open(f"{d}/{run}.tokens").readline().split()]
x = ids("cpu")
def equal(y):
    return next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
y, z = ids("cuda"), ids("cuda-graphs")
ok = x == y == z and len(x) == 32
print(("ok" if ok else "FAIL") + f" CUDA {equal(y)}/32, CUDA graphs {equal(z)}/32 equal to CPU")
EOF
)
    note "$label" "${verdict%% *}" "${verdict#* }"
  done
done

# Decode throughput (docs/benchmarks.md): the engine's decode step on the three Pythia-160M shapes
# in fp16 (f16 weights and KV cache; float32 accumulation and activations between GEMMs), each at
# batches 1, 8, 32, ... up to as many sequences as one KV budget holds at this context, beside a
# PyTorch eager loop in float16 with transformers' KV cache on the MHA weights at the same
# batches. decode_bench draws the seed-0 weights that `mlkv random-model --seed 0` writes, so only
# PyTorch needs the checkpoint. The time limits add up to about 6.5 minutes.
KV_BUDGET=$((4 << 30))  # 4 GiB of f16: about 220 MHA sequences of 528 tokens, 15,900 MLKV-2 ones
CONTEXT=512
STEPS=16
DECODE=$LOGS/decode
rm -rf "$DECODE"
mkdir -p "$DECODE"
# "batch 1: X tok/s, batch N: Y tok/s": the first and the last batch of a decode JSON.
decode_figures() {
  python3 - "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(", ".join(f"batch {x['batch']}: {x['tokens_per_s']:,.0f} tok/s" for x in (r[0], r[-1])))
EOF
}
echo
echo "== decode throughput, fp16, $((KV_BUDGET >> 30)) GiB of KV, context $CONTEXT (decode_bench) =="
# Each variant with decode graphs (one launch per step), and MLKV-2 also without, up to batch 128,
# for the ratio (55 s each), and with the tensor-core attention kernel up to batch 512 (40 s).
for run in mha-144:graphs mqa-12:graphs mlkv-2:graphs mlkv-2:eager mlkv-2:mma; do
  variant=${run%:*} mode=${run#*:}
  name=$variant; args=(--cuda-graphs --kv-cache-bytes "$KV_BUDGET")
  if [[ $mode == eager ]]; then name=$variant-eager; args=(--batch 1,8,32,128); fi
  if [[ $mode == mma ]]; then
    name=$variant-mma; args=(--cuda-graphs --cuda-attention tensor-core --batch 1,8,32,128,512)
  fi
  limit=55; [[ $mode == mma ]] && limit=40
  if timeout "$limit" "$(bin bench/decode_bench)" --device cuda \
       --config "configs/pythia-160m-$variant.json" "${args[@]}" --weight-dtype f16 \
       --kv-dtype f16 --context "$CONTEXT" --steps "$STEPS" --json "$DECODE/$name.json" 2>&1 \
       | tee "$LOGS/decode_bench-$name.log"; then
    note "decode $name" ok "$(decode_figures "$DECODE/$name.json")"
  else
    note "decode $name" FAIL "see $LOGS/decode_bench-$name.log"
  fi
done

echo
echo "== PyTorch eager float16 + transformers KV cache, MHA-144 (bench/pytorch_decode.py) =="
PT_LOG=$LOGS/pytorch_decode.log  # the table; warnings and progress bars go to PT_ERR
PT_ERR=$LOGS/pytorch_decode.err
PT_MODEL=$E2E_DIR/pythia-160m-mha-144-seed0
if [[ ! -f $DECODE/mha-144.json ]]; then
  note "decode PyTorch mha-144" SKIPPED "no batch sizes: decode mha-144 failed"
elif ! timeout 30 "$MLKV" random-model --config configs/pythia-160m-mha-144.json --seed 0 \
         --out "$PT_MODEL" >/dev/null 2>"$PT_ERR"; then
  note "decode PyTorch mha-144" FAIL "mlkv random-model: $(tail -1 "$PT_ERR")"
else
  batches=$(python3 -c 'import json, sys
print(",".join(str(r["batch"]) for r in json.load(open(sys.argv[1]))["results"]))' \
              "$DECODE/mha-144.json")
  # HF_HUB_OFFLINE: the checkpoint is local, and the device machine reaches no network.
  if HF_HUB_OFFLINE=1 timeout 90 python3 bench/pytorch_decode.py --device cuda \
       --model "$PT_MODEL" --batch "$batches" --context "$CONTEXT" --steps "$STEPS" --dtype float16 \
       --json "$DECODE/pytorch-mha-144.json" 2>"$PT_ERR" | tee "$PT_LOG"; then
    if grep -q '^pytorch_decode: SKIPPED' "$PT_LOG"; then
      note "decode PyTorch mha-144" SKIPPED "$(sed -n 's/^pytorch_decode: SKIPPED, //p' "$PT_LOG")"
    else
      note "decode PyTorch mha-144" ok "$(decode_figures "$DECODE/pytorch-mha-144.json")"
    fi
  else
    tail -5 "$PT_ERR"
    note "decode PyTorch mha-144" FAIL "see $PT_ERR"
  fi
fi

# Side by side, tokens/s by batch: a blank cell is past that run's capacity, or a run that failed.
echo
python3 - "$DECODE" <<'EOF'
import json, os, sys
d = sys.argv[1]
columns = {"mha-144": "engine MHA-144", "mqa-12": "engine MQA-12", "mlkv-2": "engine MLKV-2",
           "pytorch-mha-144": "PyTorch MHA-144", "mlkv-2-eager": "MLKV-2 no graph",
           "mlkv-2-mma": "MLKV-2 TC attn"}
runs = {n: json.load(open(f"{d}/{n}.json")) for n in columns if os.path.exists(f"{d}/{n}.json")}
tok = {n: {r["batch"]: r["tokens_per_s"] for r in runs[n]["results"]} for n in runs}
print("fp16 tokens/s; capacity in sequences:",
      ", ".join(f"{columns[n]} {r['capacity']}" for n, r in runs.items() if "capacity" in r))
print(f"{'batch':>6}" + "".join(f"{c:>17}" for c in columns.values()) + f"{'engine/PyTorch':>16}")
for batch in sorted(set().union(*tok.values())):
    cells = [tok.get(n, {}).get(batch) for n in columns]
    ratio = f"{cells[0] / cells[3]:>15.2f}x" if cells[0] and cells[3] else ""
    row = f"{batch:>6}" + "".join(f"{x:>17,.1f}" if x else " " * 17 for x in cells) + ratio
    print(row.rstrip())
EOF

echo
echo "== summary ($(elapsed)) =="
printf '%s\n' "${SUMMARY[@]}"
exit $STATUS
