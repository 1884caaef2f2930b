"""Helpers shared by the conformance tests: running the `mlkv` CLI, the model variants, the HF loader.

The CLI is found through the environment variable MLKV_BIN (path to the `mlkv` binary); tests that
need it skip with a message naming the variable when it is unset.
"""

import json
import os
import shutil
import subprocess
import zlib

import numpy as np
import pytest

import reference_model as rm

# ---- tolerances (absolute, on natural-log probabilities) ---------------------------------------

# float32 engine on an f32/f16/bf16 checkpoint vs the float64 reference reading the same file.
LOGPROB_TOL = 1e-4
# KV cache stored in bfloat16 (8-bit mantissa: each cached K/V value is off by up to 2^-9
# relative); the engine still computes in float32. Measured errors on these shapes are ~1e-3 to
# 1e-2; 5e-2 leaves room while still catching a wrong cache layout or a wrong group.
BF16_KV_TOL = 5e-2
# The same engine run with another block size or prefill chunk size: only the summation order in
# attention / GEMMs may differ.
SAME_ENGINE_TOL = 1e-5
# The same, with a bfloat16 KV cache: a summation-order difference of one float32 ulp can move a
# cached value across a bf16 rounding boundary (a 2^-9 relative jump), which later layers carry
# on; measured up to 1e-4 between block sizes 1 and 32.
SAME_ENGINE_BF16_TOL = 1e-3
# Greedy decoding: when the reference's top-1 and top-2 log-probabilities are closer than this,
# a float32 engine may legitimately pick either (a near tie), and the test follows the engine.
TIE_TOL = 2e-4
# Converter outputs in f32 vs the float64 reference conversion.
CONVERT_TOL = 1e-6

# ---- model shapes ------------------------------------------------------------------------------

# Pythia-160M's shape scaled down: 12 layers x 12 heads, head_dim 16.
BASE_CONFIG = {
    "architectures": ["GPTNeoXForCausalLM"],
    "model_type": "gpt_neox",
    "hidden_size": 192,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "intermediate_size": 256,
    "vocab_size": 512,
    "max_position_embeddings": 512,
    "layer_norm_eps": 1e-5,
    "bos_token_id": 0,
    "eos_token_id": 2,
}

# name -> overrides of BASE_CONFIG. Defaults (rotary_pct 0.25, parallel residual, gelu, nKV = nH,
# K = L) are exercised by leaving keys out.
VARIANTS = {
    "mha": {},
    "gqa48": {"num_key_value_heads": 4},
    "mqa12": {"num_key_value_heads": 1},
    "mlkv48": {"num_key_value_layers": 4},
    "mlkv12": {"num_key_value_heads": 3, "num_key_value_layers": 4},
    "mlkv6": {"num_key_value_heads": 1, "num_key_value_layers": 6},
    "mlkv4": {"num_key_value_heads": 1, "num_key_value_layers": 4},
    "mlkv2": {"num_key_value_heads": 1, "num_key_value_layers": 2},
    "mlkv1": {"num_key_value_heads": 1, "num_key_value_layers": 1},
    # kv_layers 0, 2, 4, 7, 9: groups of 2, 2, 3, 2, 3 layers.
    "uneven": {"num_key_value_heads": 3, "num_key_value_layers": 5},
    "serial": {"num_key_value_heads": 3, "num_key_value_layers": 4,
               "use_parallel_residual": False},
    "gelu_new": {"num_key_value_heads": 3, "num_key_value_layers": 4, "hidden_act": "gelu_new",
                 "rotary_pct": 0.5},
    # Tied embeddings, full rotary, the newer key names for rotary settings.
    "tied_fullrope": {"num_key_value_heads": 2, "num_key_value_layers": 3,
                      "tie_word_embeddings": True, "partial_rotary_factor": 1.0,
                      "rope_theta": 500.0},
    # Standard MHA with sequential residual (also checked against Hugging Face).
    "mha_serial": {"use_parallel_residual": False},
}

ROPE_MODES = ("unrotated", "rotated")


def variant_config(name, rope=None):
    cfg = dict(BASE_CONFIG)
    cfg.update(VARIANTS[name])
    if rope is not None:
        cfg["kv_sharing_rope"] = rope
    return cfg


def variant_params(names=None):
    """pytest params "name-rope": both rope modes where layers share K/V (K < L), else one."""
    out = []
    for name in names or VARIANTS:
        cfg = rm.Config(variant_config(name))
        if cfg.num_key_value_layers < cfg.num_hidden_layers:
            out += [pytest.param((name, mode), id=f"{name}-{mode}") for mode in ROPE_MODES]
        else:
            out.append(pytest.param((name, None), id=name))
    return out


def seed_for(*parts):
    return zlib.crc32("/".join(str(p) for p in parts).encode()) % 100000


def token_ids(n, vocab, seed):
    return [int(t) for t in np.random.default_rng(seed).integers(0, vocab, n)]


SCORE_LEN = 300       # tokens scored per model
PROMPT_LEN = 32       # generation prompt
GEN_TOKENS = 64       # greedy continuation

# ---- the CLI -----------------------------------------------------------------------------------


def mlkv_bin():
    path = os.environ.get("MLKV_BIN")
    if not path:
        pytest.skip("MLKV_BIN is not set: point it at the built `mlkv` CLI "
                    "(e.g. MLKV_BIN=build/tools/mlkv) to run the engine conformance tests")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip(f"MLKV_BIN={path} is not an executable file (build the `mlkv` target first)")
    return os.path.abspath(path)


def run_mlkv(args, timeout=180):
    """Runs `mlkv args...`; returns the CompletedProcess (text mode)."""
    cmd = [mlkv_bin()] + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def run_mlkv_ok(args, timeout=180):
    proc = run_mlkv(args, timeout)
    assert proc.returncode == 0, (
        f"mlkv {' '.join(map(str, args))[:300]} exited {proc.returncode}\n"
        f"stderr:\n{proc.stderr[-3000:]}"
    )
    return proc


def run_mlkv_json(args, timeout=180):
    proc = run_mlkv_ok(args, timeout)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"mlkv {args[0]} did not print JSON: {e}\nstdout:\n{proc.stdout[:2000]}")


def _option_args(opts):
    args = []
    for key, value in opts.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        args += [flag] if value is True else [flag, value]
    return args


def ids_arg(ids):
    return ",".join(str(t) for t in ids)


def engine_score(model_dir, ids, **opts):
    out = run_mlkv_json(["score", "--model", model_dir, "--token-ids", ids_arg(ids),
                         "--format", "json"] + _option_args(opts))
    lps = np.asarray(out["token_logprobs"], dtype=np.float64)
    assert lps.shape == (len(ids) - 1,), f"expected {len(ids) - 1} token_logprobs, got {lps.shape}"
    return lps, out


def engine_generate(model_dir, ids, max_tokens, **opts):
    out = run_mlkv_json(["generate", "--model", model_dir, "--token-ids", ids_arg(ids),
                         "--max-tokens", max_tokens, "--format", "json"] + _option_args(opts))
    tokens = [int(t) for t in out["token_ids"]]
    lps = np.asarray(out["logprobs"], dtype=np.float64)
    assert len(lps) == len(tokens), "token_ids and logprobs differ in length"
    return tokens, lps


def random_model(out_dir, cfg_dict, seed, dtype="f32"):
    """`mlkv random-model` into out_dir (created by the CLI); returns out_dir."""
    cfg_path = out_dir + ".config.json"
    with open(cfg_path, "w") as f:
        json.dump(cfg_dict, f, indent=2)
    run_mlkv_ok(["random-model", "--config", cfg_path, "--seed", seed, "--out", out_dir,
                 "--dtype", dtype])
    assert os.path.exists(os.path.join(out_dir, "config.json")), "random-model wrote no config.json"
    return out_dir


def copy_model_dir(src, dst, config_overrides=None):
    shutil.copytree(src, dst)
    if config_overrides:
        path = os.path.join(dst, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg.update(config_overrides)
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
    return dst


class ModelStore:
    """Makes each (variant, rope, dtype) random model once per session, with its reference."""

    def __init__(self, tmp_path_factory):
        self._tmp = tmp_path_factory
        self._dirs = {}
        self._refs = {}
        self._greedy = {}

    def dir(self, name, rope=None, dtype="f32"):
        key = (name, rope, dtype)
        if key not in self._dirs:
            base = str(self._tmp.mktemp(f"{name}-{rope or 'default'}-{dtype}"))
            self._dirs[key] = random_model(os.path.join(base, "model"),
                                           variant_config(name, rope), seed_for(name, dtype), dtype)
        return self._dirs[key]

    def reference(self, name, rope=None, dtype="f32"):
        key = (name, rope, dtype)
        if key not in self._refs:
            self._refs[key] = rm.ReferenceModel.from_dir(self.dir(name, rope, dtype))
        return self._refs[key]

    def reference_greedy(self, name, rope, prompt, n, dtype="f32"):
        key = (name, rope, tuple(prompt), n, dtype)
        if key not in self._greedy:
            self._greedy[key] = self.reference(name, rope, dtype).greedy(prompt, n)
        return self._greedy[key]


# ---- checks ------------------------------------------------------------------------------------


def assert_close(actual, expected, tol, what):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = np.abs(actual - expected)
    worst = int(np.argmax(err)) if err.size else 0
    assert err.size == 0 or err.max() <= tol, (
        f"{what}: max |diff| {err.max():.3g} > {tol:g} at index {worst} "
        f"(got {actual.flat[worst]:.6f}, expected {expected.flat[worst]:.6f}); "
        f"{int((err > tol).sum())} of {err.size} out of tolerance"
    )


def check_teacher_forced(ref, prompt, tokens, logprobs, tol, tie_tol, what, greedy=True):
    """Checks an engine continuation against one full forward of the reference over it.

    Every generated logprob must match the reference's log-softmax at that step; with greedy=True
    every token must be the reference's argmax, or within tie_tol of it.
    """
    seq = list(prompt) + list(tokens)
    lp_all = ref.next_token_logprobs(seq)
    steps = np.arange(len(prompt) - 1, len(seq) - 1)
    expected = lp_all[steps, tokens]
    assert_close(logprobs, expected, tol, f"{what}: generated logprobs vs reference recompute")
    if greedy:
        best = lp_all[steps].max(axis=1)
        shortfall = best - expected
        bad = np.nonzero(shortfall > tie_tol)[0]
        assert bad.size == 0, (
            f"{what}: step {bad[0]} generated token {tokens[bad[0]]}, whose logprob is "
            f"{shortfall[bad[0]]:.3g} below the reference's best token "
            f"{int(lp_all[steps[bad[0]]].argmax())}"
        )


def check_greedy(ref_out, engine_tokens, what):
    """Engine greedy tokens equal the reference's, except after a near tie (then they may differ)."""
    ref_tokens, _, gaps = ref_out
    n = min(len(ref_tokens), len(engine_tokens))
    for i in range(n):
        if ref_tokens[i] != engine_tokens[i]:
            assert gaps[i] <= TIE_TOL, (
                f"{what}: greedy continuations differ at step {i}: engine {engine_tokens[i]}, "
                f"reference {ref_tokens[i]} (reference top-2 gap {gaps[i]:.3g}, not a tie)\n"
                f"engine   : {engine_tokens}\nreference: {ref_tokens}"
            )
            return i  # after a legitimate tie the sequences are different problems
    assert len(engine_tokens) == len(ref_tokens), (
        f"{what}: engine generated {len(engine_tokens)} tokens, reference {len(ref_tokens)}")
    return None


def expect_failure(args, keywords, what=None):
    """The CLI must exit with a positive status (no signal) and name the problem on stderr."""
    proc = run_mlkv(args)
    what = what or " ".join(map(str, args))[:200]
    print(f"{what}\n  -> exit {proc.returncode}: {proc.stderr.strip()[-500:]}")  # shown by -rP
    assert proc.returncode != 0, f"{what}: expected failure, exited 0\nstdout: {proc.stdout[:500]}"
    assert proc.returncode > 0, (
        f"{what}: killed by signal {-proc.returncode} (crash) instead of an error exit\n"
        f"stderr: {proc.stderr[-2000:]}")
    assert proc.returncode < 128, f"{what}: exit status {proc.returncode} suggests a crash"
    err = proc.stderr.lower()
    assert err.strip(), f"{what}: failed without a message on stderr"
    assert any(k.lower() in err for k in keywords), (
        f"{what}: stderr does not name the problem (expected one of {keywords}):\n"
        f"{proc.stderr[-2000:]}")
    return proc


# ---- Hugging Face ------------------------------------------------------------------------------


def hf_logprobs(model_dir, ids):
    """Log-probabilities from transformers' GPTNeoXForCausalLM (float32, eager attention)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip(
        "transformers", reason="transformers is not installed (the second, outside reference)")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    try:
        model = transformers.GPTNeoXForCausalLM.from_pretrained(
            model_dir, torch_dtype=torch.float32, attn_implementation="eager")
    except TypeError:  # transformers without attn_implementation
        model = transformers.GPTNeoXForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    except (AttributeError, OSError, ValueError):
        # from_pretrained insists on {"format": "pt"} metadata in the file; load the same
        # weights with the safetensors package instead (still not our reader).
        config = transformers.GPTNeoXConfig.from_pretrained(model_dir)
        model = transformers.GPTNeoXForCausalLM(config).float()
        state = safetensors_torch.load_file(os.path.join(model_dir, "model.safetensors"))
        missing, unexpected = model.load_state_dict(
            {k: v.float() for k, v in state.items()}, strict=False)
        missing = [m for m in missing if not rm.is_ignored_tensor(m)
                   and not (m == "embed_out.weight" and config.tie_word_embeddings)]
        assert not missing and not unexpected, f"HF load: missing {missing}, unexpected {unexpected}"
        if config.tie_word_embeddings:
            model.tie_weights()
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    lp = torch.log_softmax(logits[:-1], dim=-1)
    return lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].numpy()
