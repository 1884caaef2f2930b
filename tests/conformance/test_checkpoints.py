"""Engine conformance: checkpoint formats, `mlkv inspect`, and Hugging Face as a second reference.

Run as described in test_score_generate.py.
"""

import json
import os

import numpy as np
import pytest

import harness
import reference_model as rm
from harness import LOGPROB_TOL, assert_close, engine_score, token_ids

IDS = token_ids(160, harness.BASE_CONFIG["vocab_size"], seed=21)


@pytest.mark.parametrize("name,rope,dtype", [
    ("mlkv12", "unrotated", "f16"),
    ("mha", None, "bf16"),
    ("mlkv6", "rotated", "bf16"),
    ("gqa48", None, "f16"),
    ("tied_fullrope", "unrotated", "bf16"),
])
def test_half_precision_checkpoints(models, name, rope, dtype):
    model = models.dir(name, rope, dtype)
    st = rm.SafetensorsFile(os.path.join(model, "model.safetensors"))
    want = {"f16": "F16", "bf16": "BF16"}[dtype]
    assert {st.dtype(n) for n in st.names()} == {want}, "random-model --dtype not honoured"
    got, _ = engine_score(model, IDS)
    expected = models.reference(name, rope, dtype).logprobs(IDS)
    assert_close(got, expected, LOGPROB_TOL, f"{name} {dtype} checkpoint")


def _write_sharded(src_dir, dst_dir, num_shards=2, dtype="F32"):
    """Rewrites src_dir's model.safetensors as shards plus model.safetensors.index.json."""
    os.makedirs(dst_dir)
    tensors = rm.read_safetensors(os.path.join(src_dir, "model.safetensors"))
    names = sorted(tensors)
    weight_map = {}
    for s in range(num_shards):
        shard = f"model-{s + 1:05d}-of-{num_shards:05d}.safetensors"
        part = names[s::num_shards]
        rm.write_safetensors(os.path.join(dst_dir, shard), {n: tensors[n] for n in part}, dtype)
        weight_map.update({n: shard for n in part})
    total = sum(tensors[n].size * 4 for n in names)
    with open(os.path.join(dst_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(src_dir, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(dst_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return dst_dir


@pytest.mark.parametrize("name,rope", [("mha", None), ("mlkv12", "rotated")])
def test_sharded_checkpoint(models, tmp_path, name, rope):
    model = models.dir(name, rope)
    sharded = _write_sharded(model, str(tmp_path / "sharded"))
    assert not os.path.exists(os.path.join(sharded, "model.safetensors"))
    got, _ = engine_score(sharded, IDS)
    base, _ = engine_score(model, IDS)
    assert_close(got, base, harness.SAME_ENGINE_TOL, f"{name}: sharded vs single file")
    assert_close(got, models.reference(name, rope).logprobs(IDS), LOGPROB_TOL,
                 f"{name}: sharded vs reference")


def test_split_layout_standard_mha(models, tmp_path):
    """A standard MHA model written in the split layout reads the same as the fused one."""
    src = models.dir("mha")
    cfg = rm.Config(rm.load_config_dict(src))
    tensors = rm.read_safetensors(os.path.join(src, "model.safetensors"))
    assert any("query_key_value" in n for n in tensors), "random-model MHA should be fused"
    split = {n: a for n, a in tensors.items() if "query_key_value" not in n}
    for layer in range(cfg.num_hidden_layers):
        proj = rm.extract_layer_projections(cfg, tensors, layer)
        p = f"gpt_neox.layers.{layer}.attention."
        for short, full in (("q", "query"), ("k", "key"), ("v", "value")):
            split[p + full + ".weight"], split[p + full + ".bias"] = proj[short]
    out = str(tmp_path / "split")
    rm.write_model_dir(out, rm.load_config_dict(src), split)
    got, _ = engine_score(out, IDS)
    base, _ = engine_score(src, IDS)
    assert_close(got, base, harness.SAME_ENGINE_TOL, "MHA split vs fused layout")


def test_random_model_layouts_and_shapes(models):
    """random-model writes exactly the tensors model.md names, fused only for standard MHA."""
    for name, rope in (("mha", None), ("mlkv12", "rotated"), ("uneven", "unrotated"),
                       ("tied_fullrope", "rotated")):
        model = models.dir(name, rope)
        cfg = rm.Config(rm.load_config_dict(model))
        st = rm.SafetensorsFile(os.path.join(model, "model.safetensors"))
        got = {n: st.shape(n) for n in st.names() if not rm.is_ignored_tensor(n)}
        expected = rm.expected_tensor_shapes(cfg, fused=cfg.is_standard_mha)
        assert got == expected, f"{name}: tensors differ: " \
            f"missing {sorted(set(expected) - set(got))[:5]}, extra {sorted(set(got) - set(expected))[:5]}"


def test_random_model_is_seeded(models, tmp_path):
    cfg = harness.variant_config("mlkv4")
    a = harness.random_model(str(tmp_path / "a"), cfg, seed=3)
    b = harness.random_model(str(tmp_path / "b"), cfg, seed=3)
    c = harness.random_model(str(tmp_path / "c"), cfg, seed=4)
    ta, tb, tc = (rm.read_safetensors(os.path.join(d, "model.safetensors")) for d in (a, b, c))
    name = "gpt_neox.layers.0.attention.key.weight"
    assert all(np.array_equal(ta[n], tb[n]) for n in ta), "same seed, different weights"
    assert not np.array_equal(ta[name], tc[name]), "different seeds, same weights"


# ---- inspect -----------------------------------------------------------------------------------


def _inspect(model):
    return harness.run_mlkv_json(["inspect", "--model", model, "--format", "json"])


@pytest.mark.parametrize("variant", harness.variant_params())
def test_inspect(models, variant):
    name, rope = variant
    model = models.dir(name, rope)
    raw = rm.load_config_dict(model)
    cfg = rm.Config(raw)
    out = _inspect(model)
    assert out["kv_layers"] == cfg.kv_layers
    assert out["groups"] == cfg.groups
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
                "vocab_size", "num_key_value_heads", "num_key_value_layers"):
        # The MLKV keys may be left out where config.json leaves them out (the defaults).
        if key in out or key in raw:
            assert out.get(key) == getattr(cfg, key), key
    if rope is not None:
        assert out["kv_sharing_rope"] == rope
    # Parameters: every weight the model reads (embed_out once when tied).
    shapes = rm.expected_tensor_shapes(cfg, fused=False)
    assert out["num_parameters"] == sum(int(np.prod(s)) for s in shapes.values())
    # model.md: 2 x K x nKV x d x bytes(kv dtype). Which KV dtype `inspect` assumes is not fixed
    # by the contract: accept 4 (f32, the engine's default cache) or 2 (16-bit) bytes.
    per_byte = cfg.kv_bytes_per_token(1)
    kv = out["kv_bytes_per_token"]
    sizes = {"f32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "f16": 2, "float16": 2}
    if "kv_dtype" in out:  # inspect says which KV dtype it counted
        assert kv == per_byte * sizes[out["kv_dtype"]], (kv, out["kv_dtype"])
    elif isinstance(kv, dict):  # one entry per KV dtype
        for dtype, value in kv.items():
            assert value == per_byte * sizes[dtype], (dtype, value)
    else:
        assert kv in (per_byte * 4, per_byte * 2), (kv, per_byte)


def test_inspect_kv_bytes_ratios(models):
    """The paper's memory ratios hold whatever the KV dtype inspect assumes."""
    def kv(name, rope=None):
        v = _inspect(models.dir(name, rope))["kv_bytes_per_token"]
        return v if not isinstance(v, dict) else sorted(v.values())[0]
    mha = kv("mha")
    assert mha / kv("gqa48") == 3 and mha / kv("mlkv48", "unrotated") == 3
    assert mha / kv("mqa12") == 12 and mha / kv("mlkv12", "unrotated") == 12
    assert mha / kv("mlkv2", "unrotated") == 72 and mha / kv("mlkv1", "unrotated") == 144


# ---- Hugging Face transformers as a second reference -------------------------------------------


@pytest.mark.parametrize("name", ["mha", "mha_serial"])
def test_engine_matches_hugging_face(models, name):
    pytest.importorskip("transformers", reason="transformers is not installed (second reference)")
    model = models.dir(name)
    ids = IDS
    hf = harness.hf_logprobs(model, ids)
    ref = models.reference(name).logprobs(ids)
    got, _ = engine_score(model, ids)
    assert_close(hf, ref, LOGPROB_TOL, f"{name}: HF vs reference")
    assert_close(got, hf, LOGPROB_TOL, f"{name}: engine vs HF")
