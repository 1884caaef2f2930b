"""Engine conformance: `mlkv convert` (MHA -> GQA/MQA/MLKV) against the reference conversion.

Run as described in test_score_generate.py.
"""


import numpy as np
import pytest

import harness
import reference_model as rm
from harness import CONVERT_TOL, LOGPROB_TOL, assert_close, engine_score, token_ids

IDS = token_ids(120, harness.BASE_CONFIG["vocab_size"], seed=31)


@pytest.fixture(scope="module")
def source(models):
    """A standard MHA checkpoint (fused layout) to convert."""
    return models.dir("mha")


def _convert(source, out, nkv, k, pool=None):
    args = ["convert", "--model", source, "--out", out, "--num-key-value-heads", nkv,
            "--num-key-value-layers", k]
    if pool:
        args += ["--pool", pool]
    harness.run_mlkv_ok(args)
    return out


def test_identity_conversion_scores_identically(source, tmp_path):
    out = _convert(source, str(tmp_path / "same"), 12, 12)
    cfg = rm.Config(rm.load_config_dict(out))
    assert (cfg.num_key_value_heads, cfg.num_key_value_layers) == (12, 12)
    a, _ = engine_score(source, IDS)
    b, _ = engine_score(out, IDS)
    assert_close(b, a, harness.SAME_ENGINE_TOL, "MHA converted to itself vs the original")
    # And the weights are the same, whatever layout the converter chose.
    src_cfg = rm.Config(rm.load_config_dict(source))
    src_t = rm.load_checkpoint_tensors(source)
    out_t = rm.load_checkpoint_tensors(out)
    for layer in range(12):
        p = rm.extract_layer_projections(src_cfg, src_t, layer)
        q = rm.extract_layer_projections(cfg, out_t, layer)
        for n in ("q", "k", "v"):
            for i in range(2):
                np.testing.assert_allclose(q[n][i], p[n][i], rtol=0, atol=CONVERT_TOL)


@pytest.mark.parametrize("nkv,k,pool", [
    (4, 4, "mean"), (4, 4, "pairwise"), (1, 2, "mean"), (1, 2, "pairwise"),
    (3, 5, "pairwise"), (12, 6, "mean"), (4, 12, None),
])
def test_conversion_matches_reference(source, tmp_path, nkv, k, pool):
    out = _convert(source, str(tmp_path / "out"), nkv, k, pool)
    src_dict = rm.load_config_dict(source)
    src_tensors = rm.load_checkpoint_tensors(source)
    exp_dict, expected = rm.convert_checkpoint(src_dict, src_tensors, nkv, k, pool or "mean")
    cfg = rm.Config(rm.load_config_dict(out))
    assert (cfg.num_key_value_heads, cfg.num_key_value_layers) == (nkv, k)
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
                "vocab_size", "rotary_pct", "rotary_emb_base", "use_parallel_residual",
                "hidden_act", "tie_word_embeddings", "eos_token_id"):
        assert getattr(cfg, key) == getattr(rm.Config(exp_dict), key), key
    got = {n: a for n, a in rm.load_checkpoint_tensors(out).items() if not rm.is_ignored_tensor(n)}
    assert sorted(got) == sorted(expected), (
        f"tensor names differ: missing {sorted(set(expected) - set(got))[:6]}, "
        f"extra {sorted(set(got) - set(expected))[:6]}")
    for name in sorted(expected):
        assert got[name].shape == expected[name].shape, name
        assert_close(got[name], expected[name], CONVERT_TOL, name)
    # The engine serves the converted model as the reference computes it.
    ref = rm.ReferenceModel(cfg, got)
    scores, _ = engine_score(out, IDS)
    assert_close(scores, ref.logprobs(IDS), LOGPROB_TOL, "converted model score")


def test_conversion_of_bf16_checkpoint(models, tmp_path):
    src = models.dir("mha", None, "bf16")
    out = _convert(src, str(tmp_path / "out"), 3, 4, "mean")
    exp_dict, expected = rm.convert_checkpoint(rm.load_config_dict(src),
                                               rm.load_checkpoint_tensors(src), 3, 4, "mean")
    got = rm.load_checkpoint_tensors(out)
    for name in expected:
        # The output may be bf16 again (one rounding of the float result: relative 2^-9) or wider.
        tol = 2.0 ** -8 * max(1e-3, float(np.abs(expected[name]).max()))
        assert_close(got[name], expected[name], tol, name)


@pytest.mark.parametrize("nkv,k,keywords", [
    (5, 4, ["num-key-value-heads", "num_key_value_heads", "divide"]),
    (4, 13, ["num-key-value-layers", "num_key_value_layers"]),
    (4, 0, ["num-key-value-layers", "num_key_value_layers"]),
    (0, 4, ["num-key-value-heads", "num_key_value_heads"]),
])
def test_conversion_rejects_bad_shapes(source, tmp_path, nkv, k, keywords):
    harness.expect_failure(["convert", "--model", source, "--out", str(tmp_path / "o"),
                            "--num-key-value-heads", nkv, "--num-key-value-layers", k], keywords)


def test_conversion_rejects_unknown_pool(source, tmp_path):
    harness.expect_failure(["convert", "--model", source, "--out", str(tmp_path / "o"),
                            "--num-key-value-heads", 4, "--num-key-value-layers", 4,
                            "--pool", "max"], ["pool"])
