"""Decode throughput of a PyTorch eager loop with a Hugging Face-style KV cache.

The baseline the MLKV paper's authors measured against: transformers' GPTNeoXForCausalLM run
token by token with `past_key_values`, float32, on the same checkpoint the engine benchmark uses.
As in bench/decode_bench.cc, each sequence's cache starts with `--context` random tokens' worth of
keys and values instead of a real prefill.

    python bench/pytorch_decode.py --model DIR [--batch 1,8,32,128] [--context 512] [--steps 8]
"""
import argparse
import json
import os
import sys
import time

import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", default="1,8,32,128")
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--json")
    args = parser.parse_args()
    try:
        from transformers import GPTNeoXForCausalLM
    except ImportError:
        print("pytorch_decode: SKIPPED, transformers is not installed (scripts/install-deps.sh)")
        return 0
    torch.set_num_threads(os.cpu_count() or 1)
    model = GPTNeoXForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32).eval()
    cfg = model.config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    print(f"PyTorch {torch.__version__} eager, {torch.get_num_threads()} threads, {args.model}")
    print(f"{'batch':>6} {'step ms':>12} {'tok/s':>12}")
    results = []
    for batch in [int(b) for b in args.batch.split(",")]:
        gen = torch.Generator().manual_seed(0)
        shape = (batch, cfg.num_attention_heads, args.context, head_dim)
        past = tuple((torch.randn(shape, generator=gen), torch.randn(shape, generator=gen))
                     for _ in range(cfg.num_hidden_layers))
        tokens = torch.randint(0, cfg.vocab_size, (batch, 1), generator=gen)
        times = []
        with torch.inference_mode():
            for step in range(args.steps):
                start = time.perf_counter()
                position = torch.full((batch, 1), args.context + step, dtype=torch.long)
                out = model(input_ids=tokens, past_key_values=past, position_ids=position,
                            use_cache=True)
                tokens = out.logits[:, -1].argmax(-1, keepdim=True)
                past = out.past_key_values
                times.append(time.perf_counter() - start)
        step_s = sum(times[1:]) / (len(times) - 1)  # the first step warms up
        print(f"{batch:>6} {step_s * 1e3:>12.2f} {batch / step_s:>12.1f}", flush=True)
        results.append({"batch": batch, "step_ms": step_s * 1e3, "tokens_per_s": batch / step_s})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
