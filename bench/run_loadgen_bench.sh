#!/usr/bin/env bash
# The load generator's own ceiling (docs/benchmarks.md): the request and stream rates one
# mlkv-loadgen process sustains against mlkv-stub-server, which answers at once with no model,
# side by side in one run with what mlkv-server reaches on the smoke-test model. Loadgen and
# server share this machine's cores, so the stub figures are a floor of the loadgen's ceiling.
#   bash bench/run_loadgen_bench.sh [BUILD_DIR]
set -euo pipefail
BUILD="${1:-build}"
LOADGEN="$BUILD/tools/loadgen/mlkv-loadgen"
export OMP_WAIT_POLICY=passive
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Starts a server in the background, logging to $1.
start() {
  local log="$1"
  shift
  "$@" >/dev/null 2>"$log" &
  pids+=("$!")
}

# The port the server logging to $1 listens on, once it does.
port_of() {
  local log="$1"
  for _ in $(seq 1 600); do
    local port
    port="$(grep -oE 'on 127\.0\.0\.1:[0-9]+' "$log" | head -1 | cut -d: -f2 || true)"
    if [ -n "$port" ]; then echo "$port"; return; fi
    sleep 0.1
  done
  echo "server did not start:" >&2
  cat "$log" >&2
  exit 1
}

# One loadgen sweep: prints a row per point, with the loadgen's CPU seconds for the sweep.
sweep() {
  local name="$1"
  shift
  /usr/bin/time -f "%U %S" -o "$tmp/time" "$LOADGEN" --quiet --summary-json "$tmp/s.json" "$@" \
    >/dev/null
  python3 - "$name" "$tmp/s.json" "$tmp/time" <<'PY'
import json, sys
name, path, time_path = sys.argv[1:]
user, sys_s = map(float, open(time_path).read().split()[-2:])
points = json.load(open(path))["points"]
requests = sum(p["completed"] + p["failed"] for p in points)
for p in points:
    print(f"{name:28s} {p['concurrency']:>6} {p['completed']:>7} {p['failed']:>5} "
          f"{p['requests_per_s']:>10.0f} {p['output_tokens_per_s']:>10.0f} "
          f"{p['ttft_ms']['p50']:>9.2f} {p['ttft_ms']['p99']:>9.2f} {p['e2e_ms']['p50']:>9.2f}")
print(f"{'':28s} loadgen CPU {user + sys_s:.2f} s for {requests} requests "
      f"= {(user + sys_s) / requests * 1e6:.0f} us/request")
PY
}

start "$tmp/stub.log" "$BUILD/bench/mlkv-stub-server" --port 0
"$BUILD/tools/mlkv" random-model --config configs/smoke-test.json --seed 0 --out "$tmp/smoke" \
  >/dev/null
start "$tmp/server.log" "$BUILD/server/mlkv-server" --model "$tmp/smoke" --port 0 \
  --kv-cache-bytes 200000000 --no-metrics
stub_port="$(port_of "$tmp/stub.log")"
server_port="$(port_of "$tmp/server.log")"

printf "%-28s %6s %7s %5s %10s %10s %9s %9s %9s\n" run conc done fail "req/s" "tok/s" \
  "TTFT p50" "TTFT p99" "E2E p50"
sweep "stub, 1 token" --target "127.0.0.1:$stub_port" --concurrency 1,64,256,1024,4096 \
  --num-requests 20000 --input-len 16 --output-len 1
sweep "stub, 64 tokens (stream)" --target "127.0.0.1:$stub_port" --concurrency 64,1024 \
  --num-requests 2000 --input-len 16 --output-len 64
sweep "mlkv-server smoke, 1 token" --target "127.0.0.1:$server_port" --concurrency 1,64,256 \
  --num-requests 2000 --input-len 16 --output-len 1
sweep "mlkv-server smoke, 64 tok" --target "127.0.0.1:$server_port" --concurrency 64,256 \
  --num-requests 512 --input-len 16 --output-len 64
sweep "mlkv-server smoke, KServe, 1 tok" --target "127.0.0.1:$server_port" --api kserve \
  --concurrency 64 --num-requests 2000 --input-len 16 --output-len 1
