#!/usr/bin/env python3
"""Clang's thread-safety analysis over the code that carries Abseil's annotations, as errors.

GCC, the build compiler, ignores ABSL_GUARDED_BY and friends. Rather than a second whole build
with clang, this runs `clang++ -fsyntax-only -Wthread-safety -Werror=thread-safety` over the
translation units that lock or carry the annotations, with the flags CMake recorded in
compile_commands.json: every tracked .cc file that names an annotation or absl::Mutex, the .cc
file beside every annotated header (where its members are defined), and for a header-only class
the .cc files that include it. Inline functions in those headers are analysed in the same runs.

Usage: scripts/check-thread-safety.py BUILD_DIR   (BUILD_DIR is configured, with generated
sources made: run it after the build.) CLANGXX overrides the compiler (default clang++-14).
"""
import concurrent.futures
import json
import os
import re
import shlex
import subprocess
import sys

ANNOTATION = re.compile(
    r"ABSL_(PT_)?GUARDED_BY|ABSL_(EXCLUSIVE|SHARED)_LOCKS_REQUIRED|ABSL_LOCKS_EXCLUDED|"
    r"ABSL_LOCK_RETURNED|ABSL_(EXCLUSIVE_|SHARED_)?(ACQUIRE|RELEASE)|absl::Mutex|absl::MutexLock")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    build = os.path.abspath(sys.argv[1])
    clangxx = os.environ.get("CLANGXX", "clang++-14")
    tracked = subprocess.run(["git", "ls-files", "*.cc", "*.h"], cwd=root, check=True,
                             capture_output=True, text=True).stdout.split()
    text = {}
    for path in tracked:
        with open(os.path.join(root, path), encoding="utf-8") as f:
            text[path] = f.read()
    with open(os.path.join(build, "compile_commands.json"), encoding="utf-8") as f:
        entries = {os.path.relpath(e["file"], root): e for e in json.load(f)}
    wanted = set()
    for path, source in text.items():
        if not ANNOTATION.search(source):
            continue
        if path.endswith(".cc"):
            wanted.add(path)
        elif path[:-2] + ".cc" in entries:
            wanted.add(path[:-2] + ".cc")
        else:  # A header-only class: check it where it is included.
            wanted.update(p for p, s in text.items()
                          if p.endswith(".cc") and f'#include "{path}"' in s)
    units = sorted(p for p in wanted if p in entries)
    only = os.environ.get("ONLY")  # A subset while working on one file: ONLY=engine/engine.cc.
    if only:
        units = [p for p in units if p in only.split(",")]
    if not units:
        print("check-thread-safety: no annotated translation units found", file=sys.stderr)
        return 1

    def check(path):
        entry = entries[path]
        args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
        # Drop a launcher (ccache), the compiler and the output; keep defines, includes, flags.
        while args and not args[0].startswith("-") and "++" not in os.path.basename(args[0]) \
                and os.path.basename(args[0]) not in ("cc", "c++"):
            args = args[1:]
        flags, skip = [], False
        for a in args[1:]:
            if skip:
                skip = False
                continue
            if a in ("-o", "-MF", "-MT", "-MQ"):
                skip = True
                continue
            if a in ("-c", "-MD", "-MMD") or a == entry["file"]:
                continue
            flags.append(a)
        cmd = [clangxx, *flags, "-fsyntax-only", "-Wno-unknown-warning-option",
               "-Wthread-safety", "-Werror=thread-safety", entry["file"]]
        done = subprocess.run(cmd, cwd=entry["directory"], capture_output=True, text=True)
        return path, done.returncode, done.stderr

    failed = 0
    jobs = int(os.environ.get("JOBS", "2"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for path, rc, err in pool.map(check, units):
            print(f"check-thread-safety: {path}: {'ok' if rc == 0 else 'FAILED'}")
            if rc != 0:
                failed += 1
                sys.stderr.write(err)
    print(f"check-thread-safety: {len(units) - failed} of {len(units)} translation units pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
