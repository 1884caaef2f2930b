"""Self-tests of the Python reference (reference_model.py); they need no engine.

They pin the reference to model.md (KV placement, byte counts, conversion arithmetic), check its
internal consistency (fused == split layout, cached decoding == full forward, GQA == MHA with
replicated heads) and, where transformers is installed, check it against Hugging Face's
GPTNeoXForCausalLM on random MHA checkpoints written here.
"""

import json
import struct

import numpy as np
import pytest
import torch

import harness
import reference_model as rm
import reference_safetensors as rst


def make_dir(tmp_path, cfg_dict, seed=0, fused=None, dtype="F32", name="model"):
    cfg = rm.Config(cfg_dict)
    tensors = rm.random_tensors(cfg, seed, fused=fused)
    path = str(tmp_path / name)
    rm.write_model_dir(path, cfg_dict, tensors, dtype=dtype)
    return path, cfg, tensors


# ---- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize("L,K,expected", [
    (12, 12, list(range(12))),
    (12, 6, [0, 2, 4, 6, 8, 10]),
    (12, 5, [0, 2, 4, 7, 9]),
    (12, 4, [0, 3, 6, 9]),
    (12, 2, [0, 6]),
    (12, 1, [0]),
    (10, 3, [0, 3, 6]),
    (7, 7, list(range(7))),
])
def test_kv_layer_placement(L, K, expected):
    assert rm.compute_kv_layers(L, K) == expected


def test_groups_uneven():
    cfg = rm.Config(harness.variant_config("uneven"))
    assert cfg.kv_layers == [0, 2, 4, 7, 9]
    assert cfg.groups == [[0, 1], [2, 3], [4, 5, 6], [7, 8], [9, 10, 11]]
    assert cfg.kv_source == [0, 0, 2, 2, 4, 4, 4, 7, 7, 9, 9, 9]


@pytest.mark.parametrize("nkv,K,expected", [
    (12, 12, 36864), (4, 12, 12288), (12, 4, 12288), (1, 12, 3072), (3, 4, 3072),
    (1, 6, 1536), (1, 4, 1024), (1, 2, 512), (1, 1, 256),
])
def test_kv_bytes_table_of_model_md(nkv, K, expected):
    cfg = rm.Config({"hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12,
                     "intermediate_size": 3072, "vocab_size": 50304,
                     "num_key_value_heads": nkv, "num_key_value_layers": K})
    assert cfg.kv_bytes_per_token(2) == expected


def test_config_defaults_and_validation():
    cfg = rm.Config({"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 3,
                     "intermediate_size": 128, "vocab_size": 100})
    assert (cfg.rotary_pct, cfg.rotary_emb_base, cfg.use_parallel_residual) == (0.25, 10000.0, True)
    assert cfg.activation == "erf" and cfg.kv_sharing_rope == "unrotated"
    assert (cfg.num_key_value_heads, cfg.num_key_value_layers) == (4, 3)
    assert (cfg.head_dim, cfg.rotary_dims) == (16, 4)
    newer = rm.Config(dict(cfg.raw, partial_rotary_factor=0.5, rope_theta=100.0,
                           hidden_act="gelu_pytorch_tanh"))
    assert (newer.rotary_dims, newer.rotary_emb_base, newer.activation) == (8, 100.0, "tanh")
    for bad in ({"num_key_value_heads": 3}, {"num_key_value_layers": 4},
                {"num_key_value_layers": 0}, {"use_key_value_mlp": True},
                {"kv_sharing_rope": "sideways"}, {"hidden_act": "relu"}, {"rotary_pct": 0.1}):
        with pytest.raises(ValueError):
            rm.Config(dict(cfg.raw, **bad))


# ---- safetensors -------------------------------------------------------------------------------


def test_safetensors_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    tensors = {"a": rng.standard_normal((3, 5)).astype(np.float32),
               "b": rng.standard_normal((7,)).astype(np.float32)}
    for dtype, tol in (("F32", 0), ("F16", 1e-3), ("BF16", 8e-3)):
        path = str(tmp_path / f"{dtype}.safetensors")
        rm.write_safetensors(path, tensors, dtype=dtype)
        f = rm.SafetensorsFile(path)
        assert f.dtype("a") == dtype and f.shape("a") == (3, 5)
        for name, arr in tensors.items():
            got = f.tensor(name)
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, arr, rtol=tol, atol=0)


def test_bf16_bits():
    values = np.array([1.0, -2.0, 0.5, 1.00390625, 1.01171875, 3.0e38], dtype=np.float32)
    bits = rst._f32_to_bf16_bits(values)
    # 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even -> 1.0;
    # 1 + 3*2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even -> 1 + 2^-6.
    assert [hex(b) for b in bits] == ["0x3f80", "0xc000", "0x3f00", "0x3f80", "0x3f82", "0x7f62"]
    assert rst._bf16_bits_to_f32(np.array([0x3F80, 0xC040], dtype=np.uint16)).tolist() == [1.0, -3.0]


def _raw_file(path, header, data):
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def test_safetensors_reader_rejects_bad_files(tmp_path):
    path = str(tmp_path / "bad.safetensors")
    _raw_file(path, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                     "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12))
    with pytest.raises(rm.SafetensorsError, match="overlap"):
        rm.SafetensorsFile(path)
    _raw_file(path, {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8))
    with pytest.raises(rm.SafetensorsError, match="data_offsets"):
        rm.SafetensorsFile(path)
    _raw_file(path, {"a": {"dtype": "F8", "shape": [1], "data_offsets": [0, 1]}}, bytes(1))
    with pytest.raises(rm.SafetensorsError, match="dtype"):
        rm.SafetensorsFile(path)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", 9) + b"{garbage}")
    with pytest.raises(rm.SafetensorsError, match="JSON"):
        rm.SafetensorsFile(path)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", 1000) + b"{}")
    with pytest.raises(rm.SafetensorsError, match="exceeds"):
        rm.SafetensorsFile(path)


def test_sharded_checkpoint_loads_the_same(tmp_path):
    path, cfg, tensors = make_dir(tmp_path, harness.variant_config("mlkv12"))
    shard_dir = tmp_path / "sharded"
    shard_dir.mkdir()
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2],
              "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for shard, shard_names in shards.items():
        rm.write_safetensors(str(shard_dir / shard), {n: tensors[n] for n in shard_names})
        weight_map.update({n: shard for n in shard_names})
    (shard_dir / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}))
    (shard_dir / "config.json").write_text(json.dumps(cfg.raw))
    loaded = rm.load_checkpoint_tensors(str(shard_dir))
    assert sorted(loaded) == names
    for n in names:
        np.testing.assert_array_equal(loaded[n], tensors[n])


# ---- internal consistency ----------------------------------------------------------------------


IDS = harness.token_ids(48, 512, seed=3)


def test_fused_and_split_layouts_agree():
    cfg = rm.Config(harness.variant_config("mha"))
    fused = rm.random_tensors(cfg, 5, fused=True)
    split = {}
    for name, arr in fused.items():
        if "query_key_value" not in name:
            split[name] = arr
    for layer in range(cfg.num_hidden_layers):
        p = f"gpt_neox.layers.{layer}.attention."
        q, k, v = rm.split_fused_qkv(fused[p + "query_key_value.weight"],
                                     fused[p + "query_key_value.bias"], 12, cfg.head_dim)
        for n, (w, b) in zip(("query", "key", "value"), (q, k, v)):
            split[p + n + ".weight"], split[p + n + ".bias"] = w, b
        # The per-head interleaving: head 1's k rows are rows [3d + d, 3d + 2d) of the fused matrix.
        d = cfg.head_dim
        np.testing.assert_array_equal(k[0][d:2 * d], fused[p + "query_key_value.weight"][4 * d:5 * d])
        w, b = rm.fuse_qkv(q, k, v, 12, d)
        np.testing.assert_array_equal(w, fused[p + "query_key_value.weight"])
    a = rm.ReferenceModel(cfg, fused).forward(IDS)
    b = rm.ReferenceModel(cfg, split).forward(IDS)
    assert torch.equal(a, b)


@pytest.mark.parametrize("variant", ["mlkv12", "uneven", "mlkv1", "gqa48", "tied_fullrope"])
@pytest.mark.parametrize("rope", harness.ROPE_MODES)
def test_cached_decoding_equals_full_forward(variant, rope):
    cfg = rm.Config(harness.variant_config(variant, rope))
    ref = rm.ReferenceModel(cfg, rm.random_tensors(cfg, 11))
    full = ref.forward(IDS)
    for chunk in (1, 5):
        inc = ref.decode_incremental(IDS, chunk=chunk)
        assert (inc - full).abs().max().item() < 1e-10


def test_rope_modes_differ_only_when_layers_share():
    for variant, should_differ in (("gqa48", False), ("mlkv12", True)):
        a_cfg = rm.Config(harness.variant_config(variant, "unrotated"))
        b_cfg = rm.Config(harness.variant_config(variant, "rotated"))
        tensors = rm.random_tensors(a_cfg, 2)
        a = rm.ReferenceModel(a_cfg, tensors).forward(IDS)
        b = rm.ReferenceModel(b_cfg, tensors).forward(IDS)
        diff = (a - b).abs().max().item()
        assert (diff > 1e-3) if should_differ else (diff == 0.0), (variant, diff)


def _replicate_kv_to_mha(cfg, tensors):
    """A GQA checkpoint (K = L) as the equivalent MHA checkpoint: KV head j copied to its queries."""
    g, d = cfg.query_group_size, cfg.head_dim
    out = {n: a for n, a in tensors.items() if ".attention.key." not in n
           and ".attention.value." not in n and ".attention.query." not in n}
    for layer in range(cfg.num_hidden_layers):
        proj = rm.extract_layer_projections(cfg, tensors, layer)
        rep = {}
        for n in ("k", "v"):
            w, b = proj[n]
            rep[n] = (np.repeat(w.reshape(-1, d, w.shape[1]), g, axis=0).reshape(-1, w.shape[1]),
                      np.repeat(b.reshape(-1, d), g, axis=0).reshape(-1))
        w, b = rm.fuse_qkv(proj["q"], rep["k"], rep["v"], cfg.num_attention_heads, d)
        p = f"gpt_neox.layers.{layer}.attention.query_key_value."
        out[p + "weight"], out[p + "bias"] = w, b
    mha = dict(cfg.raw)
    mha.pop("num_key_value_heads")
    return mha, out


@pytest.mark.parametrize("variant", ["gqa48", "mqa12"])
def test_gqa_equals_mha_with_replicated_heads(variant):
    cfg = rm.Config(harness.variant_config(variant))
    tensors = rm.random_tensors(cfg, 4)
    mha_dict, mha_tensors = _replicate_kv_to_mha(cfg, tensors)
    a = rm.ReferenceModel(cfg, tensors).forward(IDS)
    b = rm.ReferenceModel(rm.Config(mha_dict), mha_tensors).forward(IDS)
    assert (a - b).abs().max().item() < 1e-10


def test_greedy_is_recompute_argmax():
    cfg = rm.Config(harness.variant_config("mlkv4", "rotated"))
    ref = rm.ReferenceModel(cfg, rm.random_tensors(cfg, 8))
    tokens, lps, gaps = ref.greedy(IDS[:10], 12)
    lp = ref.next_token_logprobs(IDS[:10] + tokens)
    steps = np.arange(9, 9 + len(tokens))
    assert tokens == lp[steps].argmax(axis=1).tolist()
    np.testing.assert_allclose(lps, lp[steps].max(axis=1), atol=1e-12)
    assert min(gaps) >= 0


# ---- conversion arithmetic ---------------------------------------------------------------------


def test_conversion_identity_for_mha():
    cfg_dict = harness.variant_config("mha")
    cfg = rm.Config(cfg_dict)
    tensors = rm.random_tensors(cfg, 9)
    new_dict, new = rm.convert_checkpoint(cfg_dict, tensors, 12, 12, "mean")
    a = rm.ReferenceModel(cfg, tensors).forward(IDS)
    b = rm.ReferenceModel(rm.Config(new_dict), new).forward(IDS)
    assert (a - b).abs().max().item() < 1e-12


@pytest.mark.parametrize("pool", ["mean", "pairwise"])
def test_conversion_arithmetic(pool):
    cfg_dict = harness.variant_config("mha")
    cfg = rm.Config(cfg_dict)
    tensors = rm.random_tensors(cfg, 10)
    new_dict, new = rm.convert_checkpoint(cfg_dict, tensors, 4, 5, pool)  # kv_layers 0,2,4,7,9
    d = cfg.head_dim
    kheads = {}  # layer -> k weight [12, d, H]
    for layer in range(12):
        kheads[layer] = np.float64(
            rm.extract_layer_projections(cfg, tensors, layer)["k"][0]).reshape(12, d, -1)
    # Group [4, 5, 6], KV head 1 = query heads 3, 4, 5.
    per_layer = [kheads[layer][3:6].mean(axis=0) for layer in (4, 5, 6)]
    if pool == "mean":
        expected = sum(per_layer) / 3
    else:
        expected = per_layer[0] / 4 + per_layer[1] / 4 + per_layer[2] / 2
    got = new["gpt_neox.layers.4.attention.key.weight"].reshape(4, d, -1)[1]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert "gpt_neox.layers.5.attention.key.weight" not in new
    assert new["gpt_neox.layers.7.attention.value.bias"].shape == (4 * d,)
    rm.ReferenceModel(rm.Config(new_dict), new).forward(IDS[:8])  # loads and runs


# ---- against Hugging Face transformers ---------------------------------------------------------

HF_CONFIGS = {
    "mha": {},
    "mha_serial": {"use_parallel_residual": False},
    "mha_gelu_new_rope50": {"hidden_act": "gelu_new", "rotary_pct": 0.5},
    "mha_tied_fullrope": {"tie_word_embeddings": True, "rotary_pct": 1.0, "rotary_emb_base": 500.0},
}


@pytest.mark.parametrize("name", list(HF_CONFIGS))
def test_reference_matches_hugging_face(tmp_path, name):
    pytest.importorskip("transformers", reason="transformers is not installed")
    cfg_dict = dict(harness.BASE_CONFIG, **HF_CONFIGS[name])
    path, cfg, _ = make_dir(tmp_path, cfg_dict, seed=harness.seed_for("hf", name))
    ids = harness.token_ids(200, cfg.vocab_size, seed=5)
    ref = rm.ReferenceModel.from_dir(path).logprobs(ids)
    hf = harness.hf_logprobs(path, ids)
    harness.assert_close(hf, ref, harness.LOGPROB_TOL, f"{name}: HF vs reference")


def test_reference_gqa_matches_hugging_face_mha_equivalent(tmp_path):
    pytest.importorskip("transformers", reason="transformers is not installed")
    cfg = rm.Config(harness.variant_config("gqa48"))
    tensors = rm.random_tensors(cfg, 12)
    mha_dict, mha_tensors = _replicate_kv_to_mha(cfg, tensors)
    path = str(tmp_path / "mha")
    rm.write_model_dir(path, mha_dict, mha_tensors)
    ids = harness.token_ids(100, cfg.vocab_size, seed=6)
    ref = rm.ReferenceModel(cfg, tensors).logprobs(ids)
    harness.assert_close(harness.hf_logprobs(path, ids), ref, harness.LOGPROB_TOL,
                         "GQA reference vs HF on the replicated-head MHA model")
