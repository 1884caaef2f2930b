#!/usr/bin/env bash
# Fails (and names the lines) when a tracked C++ or CUDA source is not as clang-format leaves it
# under .clang-format. Debian's clang-format 14 is the reference: another release may break lines
# differently. `make format` rewrites the files in place.
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT="${CLANG_FORMAT:-clang-format-14}"
git ls-files -z '*.cc' '*.h' '*.cu' '*.cuh' '*.cpp' '*.hpp' \
  | xargs -0 "$CLANG_FORMAT" --dry-run --Werror
echo "check-format: every C++/CUDA source is formatted"
