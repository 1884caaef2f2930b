#!/usr/bin/env python3
"""Writes the models the repository ships (models/, docs/models.md) from a trained family:
16-bit weights, the tokenizer, and a model card whose figures the engine measured.

  ship_models.py [--build build] [--family build/models/shakespeare] [--out models]
                 [--names mha-36 mlkv-2-long:mlkv-2]

Each model NAME (or NAME:SHIPPED_NAME) goes to OUT/shakespeare-SHIPPED_NAME with config.json, model.safetensors (float16),
tokenizer.json, evaluation.json (the measured figures, read by the tests) and README.md (the
card). The validation figure is `mlkv score` on the float16 weights as shipped.
"""

import argparse
import json
import math
import os
import subprocess
import sys

import byte_data
import hf_checkpoint

SHIPPED_DTYPE = "F16"
KV_DTYPES = ("f32", "f16", "bf16")


def mlkv_json(mlkv, args):
    proc = subprocess.run([mlkv] + args, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"ship_models: mlkv {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def score_bits(mlkv, model_dir, val_file, kv_dtype):
    out = mlkv_json(mlkv, ["score", "--model", model_dir, "--text-file", val_file,
                           "--kv-dtype", kv_dtype, "--format", "json"])
    return -out["total_logprob"] / len(out["token_logprobs"]) / math.log(2), out


def training_chain(family, name):
    """The training.json of `name` and of each model it was uptrained from, base first."""
    chain = []
    model_dir = os.path.join(family, name)
    while model_dir:
        with open(os.path.join(model_dir, "training.json")) as f:
            summary = json.load(f)
        chain.insert(0, summary)
        init = summary.get("init")
        # An uptrained model starts from NAME-converted, which mlkv convert made of the base.
        model_dir = os.path.join(family, "mha-36") if init else None
    return chain


def card(name, cfg, evaluation, chain, inspect):
    kind = ("standard multi-head attention" if cfg.is_standard_mha else
            f"{cfg.num_key_value_layers} KV layer(s) of {cfg.num_key_value_heads} KV head(s) "
            f"shared by {cfg.num_hidden_layers} layers of {cfg.num_attention_heads} query heads")
    stages = []
    for s in chain:
        what = "pretrained from random weights" if s["mode"] == "pretrain" else \
            "converted from the base by `mlkv convert --pool mean`, then uptrained"
        stages.append(f"- {what}: {s['steps']:,} steps of {s['batch_size']} windows of "
                      f"{s['context']} bytes = {s['tokens']:,} tokens, {s['train_seconds'] / 60:.1f}"
                      f" min on 2 CPU cores (peak lr {s['lr']}, seed {s['seed']});")
    e = evaluation
    return f"""# shakespeare-{name}

A small GPT-NeoX model of Shakespeare's plays, one token per byte, with {kind}: part of the
model family that `make models` trains (tools/train/make_family.sh; docs/models.md has the whole
family and its quality-capacity table). It is a demonstration model for mlkv-serve: it writes
text that looks like a play, not text that means anything.

| | |
|---|---|
| shape | {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, {cfg.num_attention_heads} heads of {cfg.head_dim}, MLP {cfg.intermediate_size}, {inspect['num_parameters']:,} parameters |
| KV heads | {cfg.num_key_value_layers} KV layer(s) x {cfg.num_key_value_heads} KV head(s) |
| KV bytes per token | {e['kv_bytes_per_token_f16']:,} with an f16 cache ({e['kv_bytes_per_token_f16'] // 2:,} values) |
| context | {cfg.max_position_embeddings} positions (the training windows) |
| weights | float16 safetensors |
| data | tinyshakespeare (`shared/data/tinyshakespeare/input.txt`, {chain[-1]['train_bytes'] + chain[-1]['val_bytes']:,} bytes, public domain) |
| split | on bytes: the first {chain[-1]['train_bytes']:,} train, the last {chain[-1]['val_bytes']:,} validate |
| validation bits per byte | **{e['val_bits_per_byte']:.4f}** (`mlkv score`, f32 KV cache) |
| with an f16 / bf16 KV cache | {e['val_bits_per_byte_kv_f16']:.4f} / {e['val_bits_per_byte_kv_bf16']:.4f} |
| seed | {chain[0]['seed']} |

## Training
{chr(10).join(stages)}
- command: `make models`, then `{e['ship_command']}`.

## Evaluation
`{e['command']}`, where VAL holds the last 10% of the text's bytes (`tools/train/train.py
split` writes it), scores the {e['scored_tokens']:,} validation bytes in windows of
{cfg.max_position_embeddings - 1} bytes that overlap by one, so every byte but the first of each
window is predicted from the bytes before it in its window; bits per byte = -(total log
probability) / (scored bytes x ln 2). tests/conformance/test_trained_models.py checks the figure.
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--family", default=None, help="default: BUILD/models/shakespeare")
    parser.add_argument("--out", default="models")
    parser.add_argument("--names", nargs="+", default=["mha-36", "mlkv-2-long:mlkv-2"],
                        help="family models to ship, NAME or NAME:SHIPPED_NAME")
    parser.add_argument("--data", default=os.path.join(
        os.environ.get("MLKV_SHARED_DIR", "../shared"), "data/tinyshakespeare/input.txt"))
    args = parser.parse_args()
    family = args.family or os.path.join(args.build, "models", "shakespeare")
    mlkv = os.path.join(args.build, "tools", "mlkv")
    val_file = os.path.join(family, "val.txt")
    with open(val_file, "wb") as f:
        f.write(byte_data.read_split(args.data)[1])

    for entry in args.names:
        name, _, shipped_name = entry.partition(":")
        model = hf_checkpoint.load_model(os.path.join(family, name))
        out_dir = os.path.join(args.out, f"shakespeare-{shipped_name or name}")
        hf_checkpoint.write_model(model, out_dir, SHIPPED_DTYPE)
        evaluation = {"ship_command": " ".join(["python3 tools/train/ship_models.py"] + sys.argv[1:])}
        for kv_dtype in KV_DTYPES:
            bits, out = score_bits(mlkv, out_dir, val_file, kv_dtype)
            suffix = "" if kv_dtype == "f32" else f"_kv_{kv_dtype}"
            evaluation[f"val_bits_per_byte{suffix}"] = bits
        evaluation["scored_tokens"] = len(out["token_logprobs"])
        evaluation["command"] = f"mlkv score --model {out_dir} --text-file VAL --format json"
        inspect = mlkv_json(mlkv, ["inspect", "--model", out_dir, "--kv-dtype", "f16",
                                   "--format", "json"])
        evaluation["kv_bytes_per_token_f16"] = inspect["kv_bytes_per_token"]
        with open(os.path.join(out_dir, "evaluation.json"), "w") as f:
            json.dump(evaluation, f, indent=2)
            f.write("\n")
        with open(os.path.join(out_dir, "README.md"), "w") as f:
            f.write(card(shipped_name or name, model.cfg, evaluation, training_chain(family, name),
                         inspect))
        print(f"{out_dir}: {evaluation['val_bits_per_byte']:.4f} bits/byte", flush=True)


if __name__ == "__main__":
    main()
