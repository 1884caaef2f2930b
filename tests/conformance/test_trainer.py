"""The trainer (tools/train): a tiny pretrain -> `mlkv convert` -> uptrain run that the engine
then loads and scores, determinism under a seed, resuming, and a refusal for each class of bad
input. The models are tiny (2 layers of 32) and the text is the first 60 KB of tinyshakespeare,
so the whole file runs in seconds."""

import json
import math
import os
import subprocess
import sys

import pytest

import harness

TRAIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "train")
sys.path.insert(0, TRAIN_DIR)
import byte_data  # noqa: E402
import hf_checkpoint  # noqa: E402

TINY_CONFIG = {
    "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
    "hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 2,
    "intermediate_size": 64, "vocab_size": 264, "max_position_embeddings": 32,
    "rotary_pct": 0.5, "bos_token_id": 0, "eos_token_id": 0,
}
FAST = ["--batch-size", "8", "--warmup-steps", "5", "--threads", "1", "--log-every", "10"]


def run_train(args, check=True):
    proc = subprocess.run([sys.executable, os.path.join(TRAIN_DIR, "train.py")] + args,
                          capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, f"train.py {' '.join(args)}:\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    src = os.path.join(os.environ.get("MLKV_SHARED_DIR", "../../../shared"),
                       "data/tinyshakespeare/input.txt")
    if not os.path.exists(src):
        pytest.skip(f"{src} is missing: set MLKV_SHARED_DIR to the shared/ folder")
    path = tmp_path_factory.mktemp("data") / "text.txt"
    with open(src, "rb") as f:
        path.write_bytes(f.read(60_000))
    return str(path)


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "config.json"
    path.write_text(json.dumps(TINY_CONFIG))
    return str(path)


def summary(model_dir):
    with open(os.path.join(model_dir, "training.json")) as f:
        return json.load(f)


def engine_val_nats(model_dir, data, tmp_path):
    val = tmp_path / "val.txt"
    val.write_bytes(byte_data.read_split(data)[1])
    out = harness.run_mlkv_json(["score", "--model", model_dir, "--text-file", str(val),
                                 "--format", "json"])
    return -out["total_logprob"] / len(out["token_logprobs"])


def test_pretrain_convert_uptrain_lowers_the_loss_and_serves(data, tiny_config, tmp_path):
    base = str(tmp_path / "base")
    run_train(["pretrain", "--config", tiny_config, "--data", data, "--out", base,
               "--steps", "60", "--eval-every", "20", "--lr", "3e-3"] + FAST)
    history = [h["val_loss"] for h in summary(base)["history"]]
    assert history[0] < math.log(TINY_CONFIG["vocab_size"]), "the first 20 steps learned nothing"
    assert history[-1] < history[0], f"validation loss did not fall: {history}"

    converted = str(tmp_path / "mlkv-1")
    harness.run_mlkv_ok(["convert", "--model", base, "--out", converted,
                         "--num-key-value-heads", "1", "--num-key-value-layers", "1"])
    assert os.path.exists(os.path.join(converted, "tokenizer.json")), "convert kept no tokenizer"
    before = engine_val_nats(converted, data, tmp_path)

    uptrained = str(tmp_path / "mlkv-1-uptrained")
    run_train(["uptrain", "--init", converted, "--data", data, "--out", uptrained,
               "--steps", "30", "--eval-every", "30", "--lr", "2e-3"] + FAST)
    after = engine_val_nats(uptrained, data, tmp_path)
    assert after < before, f"uptraining did not lower the loss: {before} -> {after}"
    # The engine scores the same windows the trainer validates on, so the two agree to float32.
    assert after == pytest.approx(summary(uptrained)["val_nats_per_byte_pytorch"], rel=1e-4)


def test_tokenizer_is_the_one_mlkv_writes(tiny_config, tmp_path):
    out = str(tmp_path / "random")
    harness.run_mlkv_ok(["random-model", "--config", tiny_config, "--seed", "0", "--out", out])
    with open(os.path.join(out, "tokenizer.json")) as f:
        assert hf_checkpoint.byte_tokenizer_json(TINY_CONFIG["eos_token_id"]) == json.load(f)


def test_same_seed_same_weights_and_resume_changes_nothing(data, tiny_config, tmp_path):
    def run(name, seed=5, *extra):
        return run_train(["pretrain", "--config", tiny_config, "--data", data, "--steps", "12",
                          "--eval-every", "12", "--checkpoint-every", "4", "--seed", str(seed),
                          "--out", str(tmp_path / name)] + FAST + list(extra))

    run("a")
    run("b")
    assert "stopped after step 6" in run("c", 5, "--stop-after", "6").stdout
    assert not (tmp_path / "c" / "model.safetensors").exists()
    run("c", 5, "--resume")
    run("d", 6)
    weights = {d: (tmp_path / d / "model.safetensors").read_bytes() for d in "abcd"}
    assert weights["a"] == weights["b"], "two runs with one seed differ"
    assert weights["a"] == weights["c"], "a resumed run differs from an unbroken one"
    assert weights["a"] != weights["d"], "another seed gave the same weights"


def write_config(tmp_path, **overrides):
    path = tmp_path / "bad_config.json"
    path.write_text(json.dumps(dict(TINY_CONFIG, **overrides)))
    return str(path)


@pytest.mark.parametrize("case", [
    "missing_data", "empty_data", "short_data", "config_not_json", "missing_config",
    "use_key_value_mlp", "vocab_too_small", "heads_do_not_divide", "kv_heads_do_not_divide",
    "output_under_a_file", "output_holds_a_model", "output_not_empty", "bad_steps",
    "missing_init", "init_wrong_shapes"])
def test_bad_input_is_refused_and_writes_nothing(case, data, tiny_config, tmp_path):
    out = tmp_path / "out"
    config, data_arg, mode_args = tiny_config, data, None
    expect = None
    if case == "missing_data":
        data_arg, expect = str(tmp_path / "nope.txt"), "nope.txt"
    elif case == "empty_data":
        (tmp_path / "empty.txt").write_bytes(b"")
        data_arg, expect = str(tmp_path / "empty.txt"), "is empty"
    elif case == "short_data":
        (tmp_path / "short.txt").write_bytes(b"To be or not")
        data_arg, expect = str(tmp_path / "short.txt"), "too few"
    elif case == "config_not_json":
        (tmp_path / "c.json").write_text("{hidden_size: 3")
        config, expect = str(tmp_path / "c.json"), "not JSON"
    elif case == "missing_config":
        config, expect = str(tmp_path / "none.json"), "none.json"
    elif case == "use_key_value_mlp":
        config, expect = write_config(tmp_path, use_key_value_mlp=True), "use_key_value_mlp"
    elif case == "vocab_too_small":
        config, expect = write_config(tmp_path, vocab_size=200), "vocab_size"
    elif case == "heads_do_not_divide":
        config, expect = write_config(tmp_path, num_attention_heads=3), "hidden_size"
    elif case == "kv_heads_do_not_divide":
        config, expect = write_config(tmp_path, num_key_value_heads=3), "num_key_value_heads"
    elif case == "output_under_a_file":
        (tmp_path / "file").write_text("x")
        out, expect = tmp_path / "file" / "out", "not a writable directory"
    elif case == "output_holds_a_model":
        out.mkdir()
        (out / "training.json").write_text("{}")
        expect = "already holds a trained model"
    elif case == "output_not_empty":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        expect = "is not empty"
    elif case == "bad_steps":
        mode_args, expect = ["--steps", "0"], "--steps"
    elif case == "missing_init":
        mode_args = ["uptrain", "--init", str(tmp_path / "no-model")]
        expect = "config.json"
    elif case == "init_wrong_shapes":
        init = tmp_path / "init"
        harness.run_mlkv_ok(["random-model", "--config", tiny_config, "--seed", "1",
                             "--out", str(init)])
        cfg = json.loads((init / "config.json").read_text())
        cfg["intermediate_size"] = 48
        (init / "config.json").write_text(json.dumps(cfg))
        mode_args, expect = ["uptrain", "--init", str(init)], "dense_h_to_4h"
    before = sorted(os.listdir(tmp_path))
    if mode_args and mode_args[0] == "uptrain":
        args = mode_args + ["--data", data_arg, "--out", str(out), "--steps", "2"]
    else:
        args = ["pretrain", "--config", config, "--data", data_arg, "--out", str(out),
                "--steps", "2"] + (mode_args or [])
    proc = run_train(args + FAST, check=False)
    assert proc.returncode == 2, f"exit {proc.returncode}, stderr:\n{proc.stderr[-2000:]}"
    assert expect in proc.stderr, f"{expect!r} not in:\n{proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr
    assert sorted(os.listdir(tmp_path)) == before, "a refused run wrote something"
    if out.is_dir():
        assert not (out / "model.safetensors").exists()
