#!/bin/bash
# Every program, and every command of the programs that have commands, answers --help with exit
# status 0 and a usage on stdout. Usage: answers_help.sh PROGRAM...; the commands of a program
# are the words its own --help lists under "commands:".
set -u
failures=0
check() {
  local out
  if ! out=$("$@" --help 2>/dev/null) || [ -z "$out" ]; then
    echo "FAIL: $* --help (exit status or empty output)"
    failures=$((failures + 1))
  else
    echo "ok: $(basename "$1") ${*:2} --help"
  fi
}
for program in "$@"; do
  check "$program"
  commands=$("$program" --help 2>/dev/null |
             sed -n '/^commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\)\( .*\)\{0,1\}$/\1/p')
  for command in $commands; do check "$program" "$command"; done
done
[ "$failures" -eq 0 ]
