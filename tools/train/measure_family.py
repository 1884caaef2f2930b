#!/usr/bin/env python3
"""Measures the model family that make_family.sh trained, with the C++ engine, for the
quality-capacity table of docs/models.md:

  measure_family.py [--build build] [--family build/models/shakespeare] [--json OUT.json]

Per model: validation bits per byte by `mlkv score` (after conversion and after uptraining,
and with f16 and bf16 KV caches), KV bytes per token and the sequences that fit a fixed KV
budget by `mlkv inspect`, and CPU decode tokens/s at batch 32 by `bench/decode_bench --model`.
The decode runs come last and one after another, so they compare side by side.
"""

import argparse
import json
import math
import os
import subprocess
import sys

import byte_data

MODELS = ["mha-36", "gqa-12", "mqa-6", "mlkv-3", "mlkv-2", "mlkv-1", "mlkv-2-long"]
KV_BUDGET_BYTES = 64 << 20
KV_DTYPE = "f16"  # the cache dtype of the capacity columns, as in model.md's table
DECODE_BATCH = 32


def decode_context(max_model_len):
    """Three quarters of the model's context (192 of 256): room for the measured steps."""
    return max_model_len * 3 // 4


def run_json(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"measure_family: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def bits_per_byte(mlkv, model_dir, val_file, kv_dtype="f32"):
    """Validation bits per byte as the engine computes them (one token per byte)."""
    out = run_json([mlkv, "score", "--model", model_dir, "--text-file", val_file,
                    "--kv-dtype", kv_dtype, "--format", "json"])
    return -out["total_logprob"] / len(out["token_logprobs"]) / math.log(2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--family", default=None, help="default: BUILD/models/shakespeare")
    parser.add_argument("--data", default=os.path.join(
        os.environ.get("MLKV_SHARED_DIR", "../shared"), "data/tinyshakespeare/input.txt"))
    parser.add_argument("--json", default=None, help="default: FAMILY/measurements.json")
    args = parser.parse_args()
    family = args.family or os.path.join(args.build, "models", "shakespeare")
    mlkv = os.path.join(args.build, "tools", "mlkv")
    decode_bench = os.path.join(args.build, "bench", "decode_bench")
    val_file = os.path.join(family, "val.txt")
    with open(val_file, "wb") as f:
        f.write(byte_data.read_split(args.data)[1])

    rows = []
    for name in MODELS:
        model_dir = os.path.join(family, name)
        with open(os.path.join(model_dir, "training.json")) as f:
            training = json.load(f)
        inspect = run_json([mlkv, "inspect", "--model", model_dir, "--kv-dtype", KV_DTYPE,
                            "--kv-cache-bytes", str(KV_BUDGET_BYTES), "--format", "json"])
        row = {
            "name": name,
            "kv_heads": inspect["num_key_value_heads"],
            "kv_layers": inspect["num_key_value_layers"],
            "kv_bytes_per_token_f16": inspect["kv_bytes_per_token"],
            "max_model_len": inspect["max_model_len"],
            "sequences_in_budget": inspect["max_concurrent_sequences"],
            "kv_budget_bytes": KV_BUDGET_BYTES,
            "train_steps": training["steps"],
            "train_tokens": training["tokens"],
            "train_seconds": training["train_seconds"],
            "val_bpb_pytorch": byte_data.bits(training["val_nats_per_byte_pytorch"]),
            "val_bpb": bits_per_byte(mlkv, model_dir, val_file),
            "val_bpb_kv_f16": bits_per_byte(mlkv, model_dir, val_file, "f16"),
            "val_bpb_kv_bf16": bits_per_byte(mlkv, model_dir, val_file, "bf16"),
        }
        converted = model_dir + "-converted"
        if os.path.isdir(converted):
            row["val_bpb_converted"] = bits_per_byte(mlkv, converted, val_file)
        print(json.dumps(row), flush=True)
        rows.append(row)

    for row in rows:
        report = os.path.join(family, f"decode-{row['name']}.json")
        subprocess.run([decode_bench, "--model", os.path.join(family, row["name"]),
                        "--batch", str(DECODE_BATCH),
                        "--context", str(decode_context(row["max_model_len"])),
                        "--kv-dtype", KV_DTYPE, "--json", report], check=True,
                       stdout=subprocess.DEVNULL)
        with open(report) as f:
            row["decode_tokens_per_s_batch32"] = json.load(f)["results"][0]["tokens_per_s"]
        print(f"{row['name']}: {row['decode_tokens_per_s_batch32']:.0f} tok/s", flush=True)

    out = args.json or os.path.join(family, "measurements.json")
    with open(out, "w") as f:
        json.dump({"command": " ".join(sys.argv), "decode_batch": DECODE_BATCH,
                   "decode_context": decode_context(rows[0]["max_model_len"]),
                   "kv_dtype_capacity": KV_DTYPE,
                   "models": rows}, f, indent=2)
        f.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
