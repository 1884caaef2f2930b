"""Decode throughput of a PyTorch eager loop with a Hugging Face-style KV cache.

The baseline the MLKV paper's authors measured against: transformers' GPTNeoXForCausalLM run
token by token with `past_key_values`, in --dtype (float32 on a GPU runs with TF32 off, as the
engine's CUDA backend does; float16 is the usual serving precision, weights, activations and
cache all 16-bit), on the same checkpoint the engine benchmark uses; each step takes its greedy tokens on
the device, as the engine does, and is timed until the device is done. As in bench/decode_bench.cc,
each sequence's cache starts with `--context` random tokens' worth of keys and values instead of
a real prefill.

    python bench/pytorch_decode.py --model DIR [--device cpu|cuda] [--batch 1,8,32,128]
                                   [--context 512] [--steps 8]
                                   [--dtype float32|float16|bfloat16] [--json FILE]

Works with transformers 4.36 (tuples of tensors as the cache) through 5.x (Cache objects only).
Without torch or transformers, or with --device cuda where PyTorch sees no GPU, it prints a line
starting "pytorch_decode: SKIPPED" and exits 0: a missing reference is skipped, never passed.
"""
import argparse
import json
import os
import sys
import time

try:
    import torch
    import transformers
    from transformers import DynamicCache, GPTNeoXForCausalLM
    MISSING = None
except ImportError as e:  # main() reports the run as skipped
    MISSING = e.name


def skip(reason: str) -> int:
    print(f"pytorch_decode: SKIPPED, {reason}")
    return 0


def random_cache(cfg, batch: int, context: int, device, dtype, gen):
    """Every layer's keys and values for `context` random tokens, as a DynamicCache.

    transformers 5.x takes nothing else; 4.36's GPT-NeoX, which expects tuples of tensors, reads
    a DynamicCache through its legacy indexing and returns tuples, which the next step passes on.
    """
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    shape = (batch, cfg.num_attention_heads, context, head_dim)
    cache = DynamicCache()
    for layer in range(cfg.num_hidden_layers):
        cache.update(torch.randn(shape, generator=gen, device=device).to(dtype),
                     torch.randn(shape, generator=gen, device=device).to(dtype), layer)
    return cache


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", default="1,8,32,128")
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    parser.add_argument("--json")
    args = parser.parse_args()
    try:
        batches = [int(b) for b in args.batch.split(",")]
    except ValueError:
        parser.error(f"--batch: a comma-separated list of integers, got {args.batch!r}")
    if min(batches) < 1 or args.context < 1 or args.steps < 2:
        parser.error("--batch values and --context must be positive, --steps at least 2")
    if MISSING:
        return skip(f"{MISSING} is not installed (scripts/install-deps.sh)")
    if args.device == "cuda":
        if not torch.cuda.is_available():
            return skip(f"--device cuda: PyTorch {torch.__version__} sees no CUDA device")
        # Plain float32 GEMMs, as the engine's CUDA backend runs them; the setting moved in 2.9.
        if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
            torch.backends.cuda.matmul.fp32_precision = "ieee"
        else:
            torch.backends.cuda.matmul.allow_tf32 = False
    else:
        torch.set_num_threads(os.cpu_count() or 1)
    device = torch.device(args.device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    model = GPTNeoXForCausalLM.from_pretrained(args.model)
    dtype = getattr(torch, args.dtype)
    model = model.to(device=device, dtype=dtype).eval()
    cfg = model.config
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{torch.get_num_threads()} threads")
    attention = getattr(cfg, "_attn_implementation", None) or "eager"
    print(f"PyTorch {torch.__version__} eager, transformers {transformers.__version__} "
          f"({attention} attention), {args.device} ({where}), {args.dtype}, {args.model}; context "
          f"{args.context}, {args.steps} steps (1 warm-up); greedy tokens taken on the device")
    print(f"{'batch':>6} {'step ms':>12} {'tok/s':>12}", flush=True)
    results = []
    for batch in batches:
        gen = torch.Generator(device=device).manual_seed(0)
        past = random_cache(cfg, batch, args.context, device, dtype, gen)
        tokens = torch.randint(0, cfg.vocab_size, (batch, 1), generator=gen, device=device)
        times = []
        sync()
        with torch.inference_mode():
            for step in range(args.steps):
                start = time.perf_counter()
                position = torch.full((batch, 1), args.context + step, dtype=torch.long,
                                      device=device)
                out = model(input_ids=tokens, past_key_values=past, position_ids=position,
                            use_cache=True)
                tokens = out.logits[:, -1].argmax(-1, keepdim=True)
                past = out.past_key_values
                sync()
                times.append(time.perf_counter() - start)
        del past, out  # free this batch's cache before the next one is drawn
        step_s = sum(times[1:]) / (len(times) - 1)  # the first step warms up
        print(f"{batch:>6} {step_s * 1e3:>12.2f} {batch / step_s:>12.1f}", flush=True)
        results.append({"batch": batch, "step_ms": step_s * 1e3, "tokens_per_s": batch / step_s})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "device": args.device, "context": args.context,
                       "dtype": args.dtype,
                       "torch": torch.__version__, "transformers": transformers.__version__,
                       "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
