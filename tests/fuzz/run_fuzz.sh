#!/usr/bin/env bash
# Builds the tokenizer's libFuzzer target with clang (ASan + UBSan) and fuzzes it for a bounded
# time. Exits 77 (CTest: skipped) when clang++ cannot build libFuzzer targets here.
#
#   tests/fuzz/run_fuzz.sh [SECONDS (60)] [BUILD_DIR (build/fuzz)]
#
# Findings (crash-*, leak-*, timeout-* inputs) are left in BUILD_DIR/artifacts; rerun one with
# BUILD_DIR/tokenizer_fuzz FILE.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-60}"
build="${2:-$here/../../build/fuzz}"
cxx="${MLKV_FUZZ_CXX:-clang++}"

if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "run_fuzz: skipped: $cxx not found (install clang)"
  exit 77
fi
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
  > "$probe/probe.cc"
if ! "$cxx" -fsanitize=fuzzer,address "$probe/probe.cc" -o "$probe/probe" 2>"$probe/log"; then
  echo "run_fuzz: skipped: $cxx cannot build libFuzzer targets: $(head -c 300 "$probe/log")"
  exit 77
fi

cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"${JOBS:-2}"

# Seeds: one input per mode (the first byte picks it; see tokenizer_fuzz.cc).
seeds="$build/seeds"
mkdir -p "$seeds" "$build/corpus" "$build/artifacts"
printf '\x00{"model":{"type":"BPE","vocab":{"a":0},"merges":["a a"]},"pre_tokenizer":{"type":"ByteLevel"},"decoder":{"type":"ByteLevel"}}' > "$seeds/load"
printf '\x01Hello  world <|endoftext|> caf\xc3\xa9 e\xcc\x81 <l> cat <r>  \xf0\x9f\x98\x80 123' > "$seeds/encode"
printf '\x02\x00\xc3\x00\xa9\x00\x41\x01\x09\x00\xf0\x00\x9f' > "$seeds/stream"
printf '\x03END\x00\n\nUser:\x00hello E\x00ND\x00 world' > "$seeds/stop"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
"$build/tokenizer_fuzz" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 \
  -timeout=20 -dict="$here/tokenizer.dict" -artifact_prefix="$build/artifacts/" \
  -print_final_stats=1 "$build/corpus" "$seeds"
