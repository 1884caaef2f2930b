"""`mlkv capacity`, the planning calculator, checked by arithmetic written here from model.md.

For each variant and context length: KV budget = memory x utilization - weights - the activation
workspace the engine reserves for its largest step (or the given budget), blocks = floor(budget / (block_size x bytes per token)), sequences = blocks / blocks per
sequence; the decode roofline bound = batch / max(bytes / bandwidth, FLOPs / FLOP rate). Run as
described in test_score_generate.py.
"""

import json
import math
import os

import pytest

import harness
from harness import expect_failure
from test_capacity import CONFIGS_DIR, num_parameters, weight_bytes, workspace_bytes

VARIANTS = ["mha-144", "gqa-48", "mqa-12", "mlkv-12", "mlkv-6", "mlkv-2", "mlkv-1"]


def config_path(variant):
    return os.path.join(CONFIGS_DIR, f"pythia-160m-{variant}.json")


def load(variant):
    with open(config_path(variant)) as f:
        return json.load(f)


def fp16_bytes_per_token(cfg):
    n_heads = cfg["num_attention_heads"]
    d = cfg["hidden_size"] // n_heads
    return 2 * cfg.get("num_key_value_layers", cfg["num_hidden_layers"]) * \
        cfg.get("num_key_value_heads", n_heads) * d * 2


def run_capacity(*args):
    harness.mlkv_bin()
    cmd = ["capacity", "--format", "json"]
    for v in VARIANTS:
        cmd += ["--config", config_path(v)]
    return harness.run_mlkv_json(cmd + [str(a) for a in args])["rows"]


def test_blocks_and_sequences_on_a_141_gb_device():
    rows = run_capacity("--memory-bytes", "141e9", "--context-lens", "512,2048")
    assert len(rows) == 2 * len(VARIANTS)
    for row, (variant, context) in zip(rows, [(v, c) for v in VARIANTS for c in (512, 2048)]):
        cfg = load(variant)
        weights = weight_bytes(cfg, 2)
        workspace = workspace_bytes(cfg, max_model_len=context)
        budget = int(141e9 * 0.9 - weights - workspace)
        blocks = budget // (16 * fp16_bytes_per_token(cfg))
        assert row["variant"] == f"pythia-160m-{variant}"
        assert row["context_len"] == context
        assert row["weight_bytes"] == weights
        assert row["workspace_bytes"] == workspace
        assert row["kv_bytes_per_token"] == fp16_bytes_per_token(cfg)
        assert row["num_blocks"] == blocks, variant
        assert row["max_concurrent_sequences"] == blocks // math.ceil(context / 16), variant


def test_smaller_steps_leave_more_for_the_kv_cache():
    limits = {"max_num_batched_tokens": 256, "max_num_seqs": 8}
    rows = run_capacity("--memory-bytes", "4e9", "--context-lens", "2048",
                        "--max-num-batched-tokens", 256, "--max-num-seqs", 8)
    default = run_capacity("--memory-bytes", "4e9", "--context-lens", "2048")
    for row, before, variant in zip(rows, default, VARIANTS):
        cfg = load(variant)
        workspace = workspace_bytes(cfg, max_model_len=2048, **limits)
        assert row["workspace_bytes"] == workspace < before["workspace_bytes"]
        budget = int(4e9 * 0.9 - weight_bytes(cfg, 2) - workspace)
        assert row["num_blocks"] == budget // (16 * fp16_bytes_per_token(cfg)), variant


def test_roofline_matches_the_formula():
    rows = run_capacity("--kv-cache-bytes", "10e9", "--context-lens", "1024", "--bandwidth-gbs",
                        "4800", "--tflops", "989", "--max-batch", "64")
    for row, variant in zip(rows, VARIANTS):
        cfg = load(variant)
        params = num_parameters(cfg)
        batch = min(64, row["max_concurrent_sequences"])
        step_bytes = weight_bytes(cfg, 2) + batch * 1024 * fp16_bytes_per_token(cfg)
        multiplying = params - cfg["vocab_size"] * cfg["hidden_size"]
        flops = batch * (2 * multiplying + 4 * 1024 * cfg["hidden_size"] * cfg["num_hidden_layers"])
        bound = batch / max(step_bytes / 4.8e12, flops / 989e12)
        assert row["decode_batch"] == batch
        assert row["decode_tokens_per_s_bound"] == pytest.approx(bound, rel=1e-9), variant
        assert row["decode_bound"] == ("memory" if step_bytes / 4.8e12 >= flops / 989e12
                                       else "compute")


@pytest.mark.parametrize("args,keywords", [
    ([], ["--memory-bytes or --kv-cache-bytes"]),
    (["--memory-bytes", "1e9", "--kv-cache-bytes", "1e9"], ["--memory-bytes or --kv-cache-bytes"]),
    (["--memory-bytes", "1e8"], ["do not fit"]),
    (["--kv-cache-bytes", "1e9", "--context-lens", "4096"], ["max_position_embeddings"]),
    (["--kv-cache-bytes", "1e9", "--kv-dtype", "f8"], ["--kv-dtype"]),
    (["--kv-cache-bytes", "1e9", "--tflops", "100"], ["--bandwidth-gbs"]),
    (["--kv-cache-bytes", "-5"], ["--kv-cache-bytes"]),
    (["--kv-cache-bytes", "1e9", "--max-num-seqs", "0"], ["--max-num-seqs"]),
])
def test_bad_arguments_are_refused_naming_the_flag(args, keywords):
    harness.mlkv_bin()
    expect_failure(["capacity", "--config", config_path("mha-144")] + args, keywords)


def test_missing_config_is_an_error(tmp_path):
    harness.mlkv_bin()
    expect_failure(["capacity", "--config", str(tmp_path / "none.json"), "--kv-cache-bytes", "1e9"],
                   ["cannot open", "none.json"])
