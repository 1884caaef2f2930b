#!/usr/bin/env bash
# `make run`'s demo (scripts/run-default.sh, MLKV_DEMO_ONLY=1) on the shipped default model: the
# script must exit 0, and the generation from the text prompt "KING HENRY:" must come back as
# text (its 12 prompt bytes, 160 generated tokens, a text line that starts with a letter).
#   run_default_test.sh BUILD_DIR      (run from the repository root, as CTest does)
set -uo pipefail
out=$(MLKV_DEMO_ONLY=1 bash scripts/run-default.sh "$1" 2>&1)
status=$?
printf '%s\n' "$out"
if [ "$status" -ne 0 ]; then
  echo "FAIL: scripts/run-default.sh exited $status" >&2
  exit 1
fi
# The text line just before the prompt's finish line.
text=$(printf '%s\n' "$out" | grep -B1 '^finish: .*prompt 12 tokens (0 cached), generated 160' |
  head -1)
case "$text" in
  'text: "'[A-Za-z]*) echo "PASS: the trained model answered: $text" ;;
  *) echo "FAIL: no text came back for the 'KING HENRY:' prompt (got: $text)" >&2; exit 1 ;;
esac
