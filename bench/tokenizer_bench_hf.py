#!/usr/bin/env python3
"""Encode throughput of mlkv's tokenizer and Hugging Face tokenizers, side by side in one run.

Both encode the same inputs on one thread: Tiny Shakespeare as one string and line by line, and
the conformance corpus (tests/conformance/tokenizer_corpus.py: >10,000 strings of
whitespace, numbers, CJK, emoji, code, random Unicode...). Hugging Face runs with
TOKENIZERS_PARALLELISM=false and one encode() call per text (no encode_batch), so neither side
uses a second thread. "cold" is the first pass of a freshly loaded tokenizer (empty caches),
"warm" the best of --repeat passes after it.

    .venv/bin/python bench/tokenizer_bench_hf.py [--build build] [--repeat 5]
        [--tokenizer ../shared/data/gpt-neox-20b/tokenizer.json]
        [--text-file ../shared/data/tinyshakespeare/input.txt]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # before tokenizers is imported

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MLKV_SHARED_DIR") or ROOT.parent / "shared")
sys.path.insert(0, str(ROOT / "tests" / "conformance"))


def hf_measure(tokenizers, path, texts, repeat):
    nbytes = sum(len(t.encode()) for t in texts)
    tok = tokenizers.Tokenizer.from_file(str(path))
    start = time.perf_counter()
    ntokens = sum(len(tok.encode(t).ids) for t in texts)
    cold = time.perf_counter() - start
    best = min(_timed(lambda: [tok.encode(t) for t in texts]) for _ in range(repeat))
    return {"texts": len(texts), "bytes": nbytes, "tokens": ntokens,
            "cold_mbs": nbytes / cold / 1e6, "warm_mbs": nbytes / best / 1e6}


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=str(ROOT / "build"), help="CMake build folder")
    parser.add_argument("--tokenizer", default=str(SHARED / "data/gpt-neox-20b/tokenizer.json"))
    parser.add_argument("--text-file", default=str(SHARED / "data/tinyshakespeare/input.txt"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import tokenizers  # noqa: E402 (after TOKENIZERS_PARALLELISM)
    from tokenizer_corpus import make_corpus  # noqa: E402

    text = Path(args.text_file).read_text(encoding="utf-8")
    corpus = [s for _, s in make_corpus()]
    workloads = {"whole file": [text], "lines": [l for l in text.split("\n") if l],
                 "corpus": corpus}

    bench = Path(args.build) / "bench" / "tokenizer_bench"
    with tempfile.TemporaryDirectory() as tmp:
        corpus_path = Path(tmp) / "corpus.jsonl"
        corpus_path.write_text("".join(json.dumps(s) + "\n" for s in corpus), encoding="utf-8")
        out_path = Path(tmp) / "mlkv.json"
        cmd = [str(bench), "--tokenizer", args.tokenizer, "--text-file", args.text_file,
               "--jsonl", str(corpus_path), "--repeat", str(args.repeat), "--json", str(out_path)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, OMP_WAIT_POLICY="passive"))
        ours = json.loads(out_path.read_text())["workloads"]

    theirs = {name: hf_measure(tokenizers, args.tokenizer, texts, args.repeat)
              for name, texts in workloads.items()}

    print(f"tokenizer {args.tokenizer}; Hugging Face tokenizers {tokenizers.__version__}; "
          f"one thread; MB/s of UTF-8 input")
    print(f"{'workload':<11} {'texts':>7} {'MB':>7} {'mlkv cold':>10} {'HF cold':>8} "
          f"{'mlkv warm':>10} {'HF warm':>8} {'warm ratio':>10}  same #tokens")
    for name in workloads:
        o, t = ours[name], theirs[name]
        same = "yes" if o["tokens"] == t["tokens"] else f"NO ({o['tokens']} vs {t['tokens']})"
        print(f"{name:<11} {t['texts']:>7} {t['bytes'] / 1e6:>7.3f} {o['cold_mbs']:>10.2f} "
              f"{t['cold_mbs']:>8.2f} {o['warm_mbs']:>10.2f} {t['warm_mbs']:>8.2f} "
              f"{o['warm_mbs'] / t['warm_mbs']:>9.1f}x  {same}")


if __name__ == "__main__":
    main()
