"""KV capacity through `mlkv inspect --kv-cache-bytes/--kv-cache-fraction`, checked by arithmetic.

The expected numbers come from design/model.md ("KV cache size") computed here in Python: bytes
per token = 2 x K x nKV x d x dtype bytes, a block = block_size tokens of every sharing group,
blocks = floor(budget / block bytes). `inspect` reads only config.json, so the models here are
config files, not checkpoints. Bad budgets must fail with the flag named. Run as described in
test_score_generate.py.
"""

import json
import os
import re

import pytest

import harness
from harness import expect_failure

CONFIGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs")

# The capacity variants plus an uneven grouping (K = 5 of 12 layers).
VARIANTS = ["mha", "gqa48", "mqa12", "mlkv48", "mlkv6", "mlkv2", "mlkv1", "uneven"]
DTYPE_BYTES = {"f32": 4, "f16": 2, "bf16": 2}


def write_model(root, name, cfg):
    path = os.path.join(str(root), name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return path


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    harness.mlkv_bin()  # skip early, with the message, when the CLI is not there
    root = tmp_path_factory.mktemp("capacity")
    return {name: write_model(root, name, harness.variant_config(name)) for name in VARIANTS}


def bytes_per_token(cfg, kv_dtype="f32"):
    n_heads = cfg["num_attention_heads"]
    head_dim = cfg["hidden_size"] // n_heads
    n_kv_heads = cfg.get("num_key_value_heads", n_heads)
    n_kv_layers = cfg.get("num_key_value_layers", cfg["num_hidden_layers"])
    return 2 * n_kv_layers * n_kv_heads * head_dim * DTYPE_BYTES[kv_dtype]


def parameter_counts(cfg):
    """(matrix and embedding parameters, layernorm and bias parameters) of the GPT-NeoX/MLKV model
    in model.md, counted independently."""
    H, I, V, L = (cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"],
                  cfg["num_hidden_layers"])
    n_heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads", n_heads) * (H // n_heads)
    K = cfg.get("num_key_value_layers", L)
    kv_layers = {0} | {int((i + 1) * (L / K)) for i in range(K - 1)}
    matrices = V * H * (1 if cfg.get("tie_word_embeddings", False) else 2)
    vectors = 2 * H
    for layer in range(L):
        matrices += 2 * H * H + 2 * I * H
        vectors += 4 * H + 2 * H + I + H
        if layer in kv_layers:
            matrices += 2 * kv * H
            vectors += 2 * kv
    return matrices, vectors


def num_parameters(cfg):
    """Weight parameters of the GPT-NeoX/MLKV model in model.md."""
    return sum(parameter_counts(cfg))


def weight_bytes(cfg, matrix_bytes):
    """Bytes of the weights as the engine stores them: matrices and embeddings at `matrix_bytes`
    each (--weight-dtype), layernorm parameters and biases in float32."""
    matrices, vectors = parameter_counts(cfg)
    return matrices * matrix_bytes + vectors * 4


def workspace_bytes(cfg, max_num_batched_tokens=2048, max_num_seqs=256, max_model_len=None,
                    block_size=16):
    """The activation workspace the engine reserves for its largest step (T tokens, S sequences,
    block tables of ceil(max_model_len / block_size) entries), worked out from the forward pass:
    per token five hidden-wide float32 rows (residual, layernorm output, query, attention output,
    the rows gathered for logits; the output projections add onto the residual in place), key and
    value, the MLP's intermediate row and a row of logits; the token id, position, output row and
    the token taken on the backend (int32), the cache slot (int64) and a row's sampling
    parameters (32 bytes); per sequence its query start (plus the closing one) and context
    length; the block tables."""
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    n_heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads", n_heads) * (H // n_heads)
    max_model_len = max_model_len or cfg["max_position_embeddings"]
    # A step has at most max_num_batched_tokens tokens, and no sequence computes more than
    # max_model_len of them.
    T = min(max_num_batched_tokens, max_num_seqs * max_model_len)
    S, B = max_num_seqs, -(-max_model_len // block_size)
    per_token = 4 * (5 * H + 2 * kv + I + V) + 4 * 4 + 8 + 32
    return T * per_token + 4 * (S + 1) + 4 * S + 4 * S * B


def expected_plan(cfg, budget, max_model_len, block_size=16, kv_dtype="f32"):
    block_bytes = block_size * bytes_per_token(cfg, kv_dtype)
    num_blocks = budget // block_bytes
    per_seq = -(-max_model_len // block_size)
    return {"block_size": block_size, "block_bytes": block_bytes, "num_blocks": num_blocks,
            "num_tokens": num_blocks * block_size, "max_model_len": max_model_len,
            "blocks_per_sequence": per_seq, "max_concurrent_sequences": num_blocks // per_seq,
            "kv_budget_bytes": budget}


def inspect(model_dir, *args):
    return harness.run_mlkv_json(["inspect", "--model", model_dir, "--format", "json", *args])


def check_plan(out, expected, what):
    for key, value in expected.items():
        assert out.get(key) == value, f"{what}: {key} = {out.get(key)}, expected {value}"


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("budget,max_model_len,block_size,kv_dtype", [
    (64 << 20, 512, 16, "f32"),
    (64 << 20, 300, 16, "bf16"),          # a length that is not a whole number of blocks
    (10_000_019, 100, 32, "f32"),          # a budget that is no multiple of any block
    (3 << 20, 1, 1, "bf16"),
    (5 << 20, 64, 8, "f16"),
])
def test_blocks_and_concurrency_match_arithmetic(model_dirs, name, budget, max_model_len,
                                                 block_size, kv_dtype):
    cfg = harness.variant_config(name)
    expected = expected_plan(cfg, budget, max_model_len, block_size, kv_dtype)
    assert expected["max_concurrent_sequences"] >= 1, "test budget too small for this variant"
    out = inspect(model_dirs[name], "--kv-cache-bytes", budget, "--max-model-len", max_model_len,
                  "--block-size", block_size, "--kv-dtype", kv_dtype)
    assert out["kv_bytes_per_token"] == bytes_per_token(cfg, kv_dtype)
    check_plan(out, expected, f"{name} budget {budget}")


def test_block_counts_stand_in_the_ratio_of_bytes_per_token(model_dirs):
    """One budget, a multiple of every block size: blocks x bytes per token is the same for all."""
    mha = bytes_per_token(harness.variant_config("mha"))
    budget = 16 * mha * 100
    products = {}
    for name in VARIANTS:
        out = inspect(model_dirs[name], "--kv-cache-bytes", budget)
        products[name] = out["num_blocks"] * out["kv_bytes_per_token"]
    assert set(products.values()) == {budget // 16}, products


def test_pythia_160m_variants_of_the_design_table(tmp_path):
    """The shipped Pythia-160M configs: model.md's bytes per token (fp16 there, so bf16 here)."""
    harness.mlkv_bin()
    table = {"mha-144": 36864, "gqa-48": 12288, "mqa-12": 3072, "mlkv-6": 1536,
             "mlkv-2": 512, "mlkv-1": 256}
    budget = 36864 * 16 * 1000  # 1000 MHA blocks: 7 sequences of 2048 tokens
    for variant, per_token in table.items():
        with open(os.path.join(CONFIGS_DIR, f"pythia-160m-{variant}.json")) as f:
            cfg = json.load(f)
        out = inspect(write_model(tmp_path, variant, cfg), "--kv-cache-bytes", budget,
                      "--max-model-len", 2048, "--kv-dtype", "bf16")
        assert out["kv_bytes_per_token"] == per_token, variant
        assert out["num_blocks"] == 1000 * (36864 // per_token), variant
        assert out["max_concurrent_sequences"] == out["num_blocks"] // 128, variant


def test_defaults_are_block_16_and_full_length(model_dirs):
    cfg = harness.variant_config("mlkv2")
    out = inspect(model_dirs["mlkv2"], "--kv-cache-bytes", 1 << 24)
    check_plan(out, expected_plan(cfg, 1 << 24, cfg["max_position_embeddings"]), "defaults")


def test_without_a_budget_there_is_no_plan(model_dirs):
    out = inspect(model_dirs["mlkv6"])
    assert "num_blocks" not in out and "max_concurrent_sequences" not in out


@pytest.mark.parametrize("limits", [[], ["--max-num-batched-tokens", 512, "--max-num-seqs", 8]],
                         ids=["default-limits", "small-limits"])
def test_fraction_is_of_the_memory_left_after_float32_weights_and_workspace(model_dirs, limits):
    name = "mlkv6"
    cfg = harness.variant_config(name)
    weights = 4 * num_parameters(cfg)
    workspace = workspace_bytes(cfg, *limits[1::2], max_model_len=256)
    limit = weights + workspace + 50_000_003
    out = inspect(model_dirs[name], "--kv-cache-fraction", 0.25, "--memory-limit-bytes", limit,
                  "--max-model-len", 256, *limits)
    assert out["weight_bytes"] == weights
    assert out["weight_dtype"] == "f32"
    assert out["workspace_bytes"] == workspace
    assert out["memory_limit_bytes"] == limit
    budget = 50_000_003 // 4  # 0.25 is exact in binary
    check_plan(out, expected_plan(cfg, budget, 256), "fraction 0.25")


def test_fraction_names_weights_and_workspace_that_do_not_fit(model_dirs):
    cfg = harness.variant_config("mlkv6")
    limit = 4 * num_parameters(cfg) + workspace_bytes(cfg, max_model_len=256) - 1
    args = ["--max-model-len", 256, "--memory-limit-bytes"]
    expect_failure(["inspect", "--model", model_dirs["mlkv6"], "--kv-cache-fraction", 0.5,
                    *args, limit], ["activation workspace"])
    # A byte and 16 blocks more: exactly 16 blocks, one sequence of 256 tokens.
    out = inspect(model_dirs["mlkv6"], "--kv-cache-fraction", 1.0, *args,
                  limit + 1 + 16 * 16 * bytes_per_token(cfg))
    assert out["num_blocks"] == 16 and out["max_concurrent_sequences"] == 1


def test_fraction_defaults_to_host_memory(model_dirs):
    out = inspect(model_dirs["mlkv1"], "--kv-cache-fraction", 0.01)
    assert out["memory_limit_bytes"] > out["weight_bytes"] > 0
    left = out["memory_limit_bytes"] - out["weight_bytes"] - out["workspace_bytes"]
    assert out["kv_budget_bytes"] <= left // 100 + 1


def test_text_output_describes_the_plan(model_dirs):
    proc = harness.run_mlkv_ok(["inspect", "--model", model_dirs["mlkv2"],
                                "--kv-cache-bytes", 1 << 24, "--max-model-len", 512])
    expected = expected_plan(harness.variant_config("mlkv2"), 1 << 24, 512)
    assert f"{expected['num_blocks']} blocks of 16 tokens" in proc.stdout, proc.stdout
    assert f"{expected['max_concurrent_sequences']} sequences of --max-model-len 512" \
        in proc.stdout, proc.stdout


def test_too_long_max_model_len_names_one_that_fits(model_dirs):
    name = "mha"
    cfg = harness.variant_config(name)
    block_bytes = 16 * bytes_per_token(cfg)
    budget = 7 * block_bytes + 123  # 7 blocks: 112 tokens, but 512 need 32 blocks
    proc = expect_failure(["inspect", "--model", model_dirs[name], "--kv-cache-bytes", budget,
                           "--max-model-len", 512], ["--max-model-len"])
    match = re.search(r"--max-model-len (\d+) would fit", proc.stderr)
    assert match, f"the error names no length that fits: {proc.stderr}"
    fitting = int(match.group(1))
    assert fitting == 7 * 16
    out = inspect(model_dirs[name], "--kv-cache-bytes", budget, "--max-model-len", fitting)
    assert out["max_concurrent_sequences"] == 1
    expect_failure(["inspect", "--model", model_dirs[name], "--kv-cache-bytes", budget,
                    "--max-model-len", fitting + 1], ["--max-model-len"])


# (extra args, words of which the error must contain one): one class of bad budget each.
BAD_BUDGETS = [
    (["--kv-cache-bytes", 0], ["--kv-cache-bytes"]),
    (["--kv-cache-bytes", -4096], ["--kv-cache-bytes"]),
    (["--kv-cache-bytes", "lots"], ["--kv-cache-bytes"]),
    (["--kv-cache-bytes", "99999999999999999999999"], ["--kv-cache-bytes"]),
    (["--kv-cache-bytes", 100], ["--kv-cache-bytes"]),  # below one block
    (["--kv-cache-fraction", 0], ["--kv-cache-fraction"]),
    (["--kv-cache-fraction", 1.5], ["--kv-cache-fraction"]),
    (["--kv-cache-fraction", "nan"], ["--kv-cache-fraction"]),
    (["--kv-cache-fraction", 0.5, "--memory-limit-bytes", 1000], ["--memory-limit-bytes"]),
    (["--kv-cache-fraction", 0.5, "--memory-limit-bytes", 0], ["--memory-limit-bytes"]),
    (["--kv-cache-bytes", 1 << 20, "--kv-cache-fraction", 0.5], ["--kv-cache-fraction"]),
    (["--kv-cache-bytes", 1 << 20, "--memory-limit-bytes", 1 << 30], ["--memory-limit-bytes"]),
    (["--kv-cache-bytes", 1 << 20, "--block-size", 0], ["--block-size"]),
    (["--kv-cache-bytes", 1 << 20, "--max-model-len", 0], ["--max-model-len"]),
    (["--kv-cache-bytes", 1 << 20, "--max-model-len", 513], ["max_position_embeddings"]),
    (["--max-model-len", 128], ["--kv-cache-bytes"]),  # a length with no budget to size
    (["--kv-cache-bytes", 1 << 20, "--max-num-seqs", 4], ["--max-num-seqs"]),  # no effect there
    (["--kv-cache-fraction", 0.5, "--max-num-batched-tokens", 0], ["--max-num-batched-tokens"]),
]


@pytest.mark.parametrize("extra,keywords", BAD_BUDGETS,
                         ids=[" ".join(map(str, e)) for e, _ in BAD_BUDGETS])
def test_bad_budget_is_refused_naming_the_flag(model_dirs, extra, keywords):
    expect_failure(["inspect", "--model", model_dirs["mlkv2"], "--format", "json", *extra],
                   keywords)
