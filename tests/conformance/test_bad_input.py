"""Bad input through the `mlkv` CLI: one test per class of bad input.

Each must end in a non-zero exit status that is not a crash (no signal, so returncode > 0) and a
message on stderr that names the problem (a keyword or the offending name). Run as described in
test_score_generate.py.
"""

import json
import os
import struct

import numpy as np
import pytest

import harness
import reference_model as rm
from harness import expect_failure

VOCAB = 256  # the small_model fixture's vocabulary


def _score(model, ids="1,2,3", *extra):
    return ["score", "--model", model, "--token-ids", ids, "--format", "json", *extra]


def _generate(model, *extra, ids="1,2,3", max_tokens="4"):
    greedy = [] if "--temperature" in extra else ["--temperature", "0"]
    return ["generate", "--model", model, "--token-ids", ids, "--max-tokens", max_tokens,
            "--format", "json", *greedy, *extra]


def _by_command(command, model, ids):
    return _score(model, ids) if command == "score" else _generate(model, ids=ids)


def test_small_model_is_valid(small_model):
    """The model the other tests corrupt works as it is."""
    harness.run_mlkv_json(_score(small_model))
    harness.run_mlkv_json(_generate(small_model))


# ---- token ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["score", "generate"])
def test_token_id_outside_vocabulary(small_model, command):
    expect_failure(_by_command(command, small_model, f"1,2,{VOCAB}"), [str(VOCAB), "vocab"])


@pytest.mark.parametrize("command", ["score", "generate"])
def test_negative_token_id(small_model, command):
    expect_failure(_by_command(command, small_model, "1,-3,4"), ["-3", "negative", "token"])


@pytest.mark.parametrize("command", ["score", "generate"])
def test_empty_token_ids(small_model, command):
    expect_failure(_by_command(command, small_model, ""), ["token"])


def test_non_numeric_token_id(small_model):
    expect_failure(_score(small_model, "1,x,3"), ["token", "'x'", '"x"'])


# ---- generation flags --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-5", "ten"])
def test_bad_max_tokens(small_model, value):
    expect_failure(_generate(small_model, max_tokens=value), ["max-tokens", "max_tokens"])


def test_top_p_above_one(small_model):
    expect_failure(_generate(small_model, "--top-p", "1.5"), ["top-p", "top_p"])


def test_negative_temperature(small_model):
    expect_failure(_generate(small_model, "--temperature", "-1"), ["temperature"])


def test_negative_top_k(small_model):
    expect_failure(_generate(small_model, "--top-k", "-2"), ["top-k", "top_k"])


def test_unknown_flag(small_model):
    expect_failure(_score(small_model, "1,2,3", "--bogus-flag", "3"), ["bogus-flag", "bogus_flag"])


def test_unknown_command(small_model):
    expect_failure(["frobnicate", "--model", small_model], ["frobnicate"])


def test_kv_dtype_f8(small_model):
    expect_failure(_score(small_model, "1,2,3", "--kv-dtype", "f8"), ["kv-dtype", "kv_dtype", "f8"])


def test_sampling_placement_unknown(small_model):
    expect_failure(_generate(small_model, "--sampling-placement", "gpu"),
                   ["sampling-placement", "gpu"])


def test_cuda_graphs_on_the_cpu(small_model):
    expect_failure(_generate(small_model, "--cuda-graphs", "--device", "cpu"),
                   ["--cuda-graphs", "CUDA"])


def test_weight_dtype_int8(small_model):
    expect_failure(_generate(small_model, "--weight-dtype", "int8"), ["weight-dtype", "int8"])


@pytest.mark.parametrize("command", ["score", "generate"])
def test_block_size_zero(small_model, command):
    args = _by_command(command, small_model, "1,2,3") + ["--block-size", "0"]
    expect_failure(args, ["block-size", "block_size"])


@pytest.mark.parametrize("command", ["score", "generate"])
def test_kv_cache_bytes_beyond_the_memory_limit(small_model, command):
    # Refused at start-up, naming the flag, rather than failing an allocation (or, on the CPU,
    # being killed once the pages are touched). The limit is the host's memory, or the flag.
    args = _by_command(command, small_model, "1,2,3")
    expect_failure(args + ["--kv-cache-bytes", str(1 << 50)], ["--kv-cache-bytes", "memory"])
    expect_failure(args + ["--kv-cache-bytes", str(1 << 20), "--memory-limit-bytes", str(1 << 20)],
                   ["--kv-cache-bytes", "--memory-limit-bytes"])


def test_negative_prefill_chunk(small_model):
    # (--prefill-chunk 0 means "the whole prompt at once" in the CLI's usage text.)
    expect_failure(_score(small_model, "1,2,3", "--prefill-chunk", "-1"),
                   ["prefill-chunk", "prefill_chunk"])


# ---- model folder and config.json --------------------------------------------------------------


def test_missing_model_dir(tmp_path):
    path = str(tmp_path / "no_such_model")
    expect_failure(_score(path), [path, "no_such_model", "not exist", "no such", "not found"])


def test_model_dir_without_config(small_model, tmp_path):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"))
    os.remove(os.path.join(model, "config.json"))
    expect_failure(_score(model), ["config.json"])


def test_config_invalid_json(small_model, tmp_path):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"))
    with open(os.path.join(model, "config.json"), "w") as f:
        f.write('{"hidden_size": 64, "num_attention_heads": ')
    expect_failure(_score(model), ["valid json", "invalid json", "parse", "syntax"])


@pytest.mark.parametrize("command", ["score", "inspect"])
def test_config_kv_heads_not_dividing_heads(small_model, tmp_path, command):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"), {"num_key_value_heads": 3})
    args = _score(model) if command == "score" else ["inspect", "--model", model, "--format", "json"]
    expect_failure(args, ["num_key_value_heads"])


def test_config_use_key_value_mlp_refused(small_model, tmp_path):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"), {"use_key_value_mlp": True})
    expect_failure(_score(model), ["use_key_value_mlp"])


def test_config_more_kv_layers_than_layers(small_model, tmp_path):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"), {"num_key_value_layers": 5})
    expect_failure(_score(model), ["num_key_value_layers"])


# ---- model.safetensors -------------------------------------------------------------------------


def _safetensors_path(model):
    return os.path.join(model, "model.safetensors")


def _split_file(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _write_raw(path, header, data):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


@pytest.mark.parametrize("keep", ["half", "header_only", "4_bytes"])
def test_truncated_safetensors(small_model, tmp_path, keep):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"))
    path = _safetensors_path(model)
    size = os.path.getsize(path)
    header, _ = _split_file(path)
    header_end = size - max(e for n, t in header.items() if n != "__metadata__"
                            for e in [t["data_offsets"][1]])
    cut = {"half": size // 2, "header_only": header_end, "4_bytes": 4}[keep]
    with open(path, "r+b") as f:
        f.truncate(cut)
    expect_failure(_score(model), ["truncat", "offset", "exceed", "beyond", "size", "short",
                                   "end of file", "eof", "bytes", "header"])


def test_safetensors_garbage_header(small_model, tmp_path):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"))
    _, data = _split_file(_safetensors_path(model))
    _write_raw(_safetensors_path(model), b'{"gpt_neox.embed_in.weight": {"dtype": ]]garbage', data)
    expect_failure(_score(model), ["header", "json", "parse"])


def test_safetensors_header_length_beyond_file(small_model, tmp_path):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"))
    path = _safetensors_path(model)
    with open(path, "r+b") as f:
        f.write(struct.pack("<Q", 1 << 40))
    expect_failure(_score(model), ["header", "exceed", "beyond", "size", "length", "truncat"])


def test_safetensors_overlapping_offsets(small_model, tmp_path):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"))
    path = _safetensors_path(model)
    header, data = _split_file(path)
    a = header["gpt_neox.layers.0.input_layernorm.weight"]
    b = header["gpt_neox.layers.0.input_layernorm.bias"]
    length = b["data_offsets"][1] - b["data_offsets"][0]
    start = a["data_offsets"][0] + length // 2  # b now starts in the middle of a
    b["data_offsets"] = [start, start + length]
    _write_raw(path, header, data)
    expect_failure(_score(model), ["overlap", "offset"])


def test_safetensors_offsets_beyond_data(small_model, tmp_path):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"))
    path = _safetensors_path(model)
    header, data = _split_file(path)
    t = header["gpt_neox.final_layer_norm.bias"]
    length = t["data_offsets"][1] - t["data_offsets"][0]
    t["data_offsets"] = [len(data) + 64, len(data) + 64 + length]
    _write_raw(path, header, data)
    expect_failure(_score(model), ["offset", "beyond", "exceed", "size", "truncat", "bounds",
                                   "range"])


def test_safetensors_offsets_not_matching_shape(small_model, tmp_path):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"))
    path = _safetensors_path(model)
    header, data = _split_file(path)
    t = header["gpt_neox.final_layer_norm.weight"]
    t["shape"] = [t["shape"][0] * 2]  # claims twice the bytes its offsets cover
    _write_raw(path, header, data)
    expect_failure(_score(model), ["final_layer_norm", "offset", "size", "shape", "bytes"])


def _rewrite_tensors(model, mutate, dtype="F32"):
    path = _safetensors_path(model)
    tensors = rm.read_safetensors(path)
    mutate(tensors)
    rm.write_safetensors(path, tensors, dtype=dtype)


@pytest.mark.parametrize("name", [
    "gpt_neox.layers.1.mlp.dense_4h_to_h.bias",
    "gpt_neox.layers.2.attention.key.weight",  # a KV layer's key (kv_layers = 0, 2)
    "embed_out.weight",
])
def test_missing_tensor(small_model, tmp_path, name):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"))
    _rewrite_tensors(model, lambda t: t.pop(name))
    expect_failure(_score(model), [name])


@pytest.mark.parametrize("name,how", [
    ("gpt_neox.layers.1.mlp.dense_h_to_4h.weight", "transpose"),
    ("gpt_neox.layers.0.attention.key.weight", "rows"),  # nH heads instead of nKV
    ("gpt_neox.final_layer_norm.weight", "grow"),
])
def test_misshapen_tensor(small_model, tmp_path, name, how):
    def mutate(t):
        if how == "transpose":
            t[name] = np.ascontiguousarray(t[name].T)
        elif how == "rows":
            t[name] = np.concatenate([t[name], t[name]])
        else:
            t[name] = np.concatenate([t[name], t[name][:1]])

    model = harness.copy_model_dir(small_model, str(tmp_path / "m"))
    _rewrite_tensors(model, mutate)
    expect_failure(_score(model), [name])


def test_unexpected_key_in_non_kv_layer(small_model, tmp_path):
    """A key/value projection in a layer that reuses its group's K/V means another variant."""
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"))
    name = "gpt_neox.layers.1.attention.key.weight"

    def mutate(t):
        t[name] = t["gpt_neox.layers.0.attention.key.weight"].copy()
    _rewrite_tensors(model, mutate)
    expect_failure(_score(model), [name, "unexpected", "unused"])


def test_unsupported_tensor_dtype(small_model, tmp_path):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"))
    path = _safetensors_path(model)
    header, data = _split_file(path)
    header["gpt_neox.final_layer_norm.bias"]["dtype"] = "I32"  # same byte size as F32
    _write_raw(path, header, data)
    expect_failure(_score(model), ["I32", "dtype"])


def test_sharded_index_names_missing_shard(small_model, tmp_path):
    model = harness.copy_model_dir(small_model, str(tmp_path / "m"))
    tensors = rm.read_safetensors(_safetensors_path(model))
    os.remove(_safetensors_path(model))
    names = sorted(tensors)
    rm.write_safetensors(os.path.join(model, "model-00001-of-00002.safetensors"),
                         {n: tensors[n] for n in names[::2]})
    weight_map = {n: "model-00001-of-00002.safetensors" for n in names[::2]}
    weight_map.update({n: "model-00002-of-00002.safetensors" for n in names[1::2]})
    with open(os.path.join(model, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": weight_map}, f)
    expect_failure(_score(model), ["model-00002-of-00002.safetensors"])
