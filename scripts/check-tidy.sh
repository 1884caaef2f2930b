#!/usr/bin/env bash
# clang-tidy (the checks of .clang-tidy, findings as errors) over the C++ translation units that
# the newest change touched. Usage: scripts/check-tidy.sh [BUILD_DIR]   (default build; run it
# after the build, which writes compile_commands.json and the generated protobuf headers).
#
# What "changed" means, on a fresh clone of main:
# - HEAD is an ordinary commit: the files it changed against its parent.
# - HEAD is a merge: the files that the merged branch's own commits changed
#   (git rev-list --no-merges HEAD^1..HEAD), so a branch is checked as a whole.
# - Either way, commits listed in .git-blame-ignore-revs (pure reformatting) do not count.
# - A changed header brings in the .cc file beside it; .cu files are not checked (clang-tidy does
#   not take nvcc's command lines). Files that no longer exist are skipped.
# TIDY_BASE=<rev> checks every file changed since <rev> instead (e.g. TIDY_BASE=origin/main on a
# branch); TIDY_ALL=1 checks every translation unit (about an hour on two cores).
# A shallow clone without HEAD's parent has nothing to compare with: the check says so and passes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
BUILD="$(cd "${1:-build}" && pwd)"
CLANG_TIDY="${CLANG_TIDY:-clang-tidy-14}"
RUN_CLANG_TIDY="${RUN_CLANG_TIDY:-run-clang-tidy-14}"
JOBS="${JOBS:-2}"

changed_files() {
  if [ "${TIDY_ALL:-0}" = 1 ]; then
    git ls-files '*.cc'
  elif [ -n "${TIDY_BASE:-}" ]; then
    git diff --name-only --diff-filter=d "$TIDY_BASE" HEAD
  elif ! git rev-parse -q --verify 'HEAD^1' >/dev/null; then
    echo "check-tidy: HEAD has no parent here (shallow clone?); nothing to compare with" >&2
  else
    local ignore=""
    [ -f .git-blame-ignore-revs ] && ignore="$(grep -E '^[0-9a-f]{40}$' .git-blame-ignore-revs || true)"
    for c in $(git rev-list --no-merges 'HEAD^1..HEAD'); do
      if [ -n "$ignore" ] && grep -qx "$c" <<<"$ignore"; then continue; fi
      git diff-tree --no-commit-id --name-only -r --diff-filter=d "$c"
    done | sort -u
  fi
}

# Translation units: changed .cc files, and the .cc beside a changed header, that CMake compiles.
mapfile -t units < <(changed_files | python3 -c '
import json, os, sys
root, build = sys.argv[1], sys.argv[2]
with open(os.path.join(build, "compile_commands.json")) as f:
    known = {os.path.realpath(e["file"]) for e in json.load(f)}
seen = set()
for line in sys.stdin:
    path = line.strip()
    if path.endswith((".h", ".hpp")):
        path = os.path.splitext(path)[0] + ".cc"
    full = os.path.realpath(os.path.join(root, path))
    if path.endswith((".cc", ".cpp")) and full in known and full not in seen:
        seen.add(full)
        print(full)
' "$ROOT" "$BUILD")

if [ "${#units[@]}" -eq 0 ]; then
  echo "check-tidy: no changed C++ translation units"
  exit 0
fi
echo "check-tidy: ${#units[@]} translation unit(s): ${units[*]#"$ROOT/"}"
# Diagnostics in the project's own headers count; system and generated (build/) headers do not.
header_filter="^${ROOT}/(bench|cli|common|engine|kernels|model|planning|scheduler|server|tests|tokenizer|tools)/"
regexes=()
for u in "${units[@]}"; do r="${u//./\\.}"; regexes+=("^${r//+/\\+}\$"); done
"$RUN_CLANG_TIDY" -clang-tidy-binary "$CLANG_TIDY" -p "$BUILD" -j "$JOBS" -quiet \
  -header-filter="$header_filter" "${regexes[@]}"
echo "check-tidy: ${#units[@]} translation unit(s) pass"
