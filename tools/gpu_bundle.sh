#!/usr/bin/env bash
# Packs what tools/gpu_check.sh runs into one folder, for a GPU machine that lacks our build
# dependencies (absl, gRPC, spdlog, OpenBLAS, GoogleTest...): builds the binaries here with the CUDA
# backend, then copies them to OUT/bin and the shared libraries they load to OUT/lib, stripped,
# and packs that folder into OUT.tar.xz (about a third of its size). Carry the archive to the GPU
# machine and run `tar -xJf OUT.tar.xz && tools/gpu_check.sh --prebuilt OUT` there
# (docs/testing.md).
#
#   tools/gpu_bundle.sh [build dir (build-cuda)] [out dir (gpu-bundle)]
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${1:-build-cuda}
OUT=${2:-gpu-bundle}
# Where CMake puts each binary; tools/gpu_check.sh keeps the same list.
BINARIES=(kernels/cuda/cuda_attention_plan_test kernels/cuda/cuda_kernels_test
          tests/cuda/cuda_model_test kernels/cuda/cuda_attention_bench tools/mlkv
          bench/decode_bench)
# The GPU machine we are lent has CUDA 13's runtime and cuBLAS in /usr/local/cuda/lib64.
DEVICE_CUDA_MAJOR=13
# The device tool carries at most 64 MiB, the working tree (about 3 MiB) included: the limit of
# the archive that travels.
LIMIT_MIB=60

# Libraries left to the GPU machine. glibc must match the dynamic loader there, so it never travels;
# libstdc++, libgcc_s and libgomp do travel, since our binaries need GCC 12's symbol versions. The
# bundle then needs glibc 2.36 or newer there (the lent machine's Python 3.12.3 says Ubuntu 24.04).
SYSTEM_LIBS='^(ld-linux-x86-64|libc|libm|libmvec|libdl|libpthread|librt|libresolv|libutil)\.so'
# CUDA must match the driver there, and cuBLASLt alone is over 500 MB: it can only be the machine's.
CUDA_LIBS='^(libcudart|libcublas|libcublasLt)\.so'
DRIVER_LIB='^libcuda\.so'

# MLKV_CUDA=ON fails here rather than pack the stub backend. The project's default architectures
# (sm_80 and sm_90 code, sm_90 PTX) cover the H200; on an existing build dir this rebuilds nothing.
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMLKV_CUDA=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target "${BINARIES[@]##*/}"

# Every library the binaries load, directly or not, as "soname path".
deps=$(ldd "${BINARIES[@]/#/$BUILD/}" | awk '$2 == "=>" {print $1, $3}' | sort -u)
if grep ' not$' <<<"$deps"; then
  echo "gpu_bundle: the libraries above are not found on this machine" >&2
  exit 1
fi
# Binaries linked against another CUDA major want sonames (libcublas.so.12...) the machine lacks.
if grep -E "$CUDA_LIBS" <<<"$deps" | grep -v "\.so\.$DEVICE_CUDA_MAJOR "; then
  echo "gpu_bundle: the binaries need the CUDA libraries above, but the GPU machine has CUDA" \
       "$DEVICE_CUDA_MAJOR and cuBLAS is too large to carry: build with CUDA $DEVICE_CUDA_MAJOR" >&2
  exit 1
fi

# Remove only what this script makes, so that a wrong OUT loses nothing else.
rm -rf "${OUT:?}"/{bin,lib,logs,MANIFEST}
mkdir -p "$OUT/bin" "$OUT/lib"
cp "${BINARIES[@]/#/$BUILD/}" "$OUT/bin/"
grep -vE "$SYSTEM_LIBS|$CUDA_LIBS|$DRIVER_LIB" <<<"$deps" | while read -r soname path; do
  cp -L "$path" "$OUT/lib/$soname"
done
strip --strip-unneeded "$OUT"/bin/* "$OUT"/lib/*

changes=$(git diff --quiet HEAD -- || echo ', with uncommitted changes')
nvcc=$(sed -n 's/^CMAKE_CUDA_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
native=$(sed -n 's/^MLKV_NATIVE:BOOL=//p' "$BUILD/CMakeCache.txt")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
  echo "commit: $(git rev-parse HEAD)$changes"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) from $BUILD"
  echo "nvcc: $("$nvcc" --version | grep -o 'release .*')"
  # With -march=native the CPU backend (the reference of every check) may use instructions of this
  # machine's CPU (AVX-512 here); on a CPU without them the binaries die with SIGILL (rc 132).
  echo "MLKV_NATIVE: $native (CPU here: $cpu)"
} >"$OUT/MANIFEST"

tar -cf - "$OUT" | xz -T0 -6 >"$OUT.tar.xz"
size=$(du -sm "$OUT" | cut -f1)
archive=$(du -sm "$OUT.tar.xz" | cut -f1)
libs=$(find "$OUT/lib" -type f | wc -l)
cat "$OUT/MANIFEST"
echo "gpu_bundle: $OUT holds ${#BINARIES[@]} binaries and $libs libraries, $size MiB;" \
     "$OUT.tar.xz, $archive MiB, is what travels"
if (( archive > LIMIT_MIB )); then
  echo "gpu_bundle: $OUT.tar.xz is over $LIMIT_MIB MiB, too large to carry with the working tree" >&2
  exit 1
fi
