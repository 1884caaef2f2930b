"""Text through the engine: `mlkv generate --prompt/--stop` and `mlkv score --text-file`.

- Generated text is what Hugging Face `tokenizers` decodes from the generated ids (special tokens
  left out, ids the tokenizer lacks skipped, ill-formed UTF-8 as U+FFFD), with the real
  GPT-NeoX-20B tokenizer.json (a random model of Pythia's padded vocabulary) and with the
  byte-level tokenizer.json of `mlkv random-model`; a text prompt runs as its HF-encoded ids.
- A stop string ends generation where it first appears, the text cut before it.
- The perplexity of a text file equals the float64 reference's on the HF-encoded ids (within
  1e-4 relative), also when the text is longer than max_model_len and scored in windows.
- Bad input: each refused with a message naming it.

Skipped without `tokenizers` (the reference for ids and text) or without $MLKV_BIN.
"""

import json
import math
import os

import numpy as np
import pytest

import harness
import reference_model as rm
from tokenizer_corpus import shared_dir

# A small MLKV shape whose 512-id vocabulary holds the byte-level tokenizer (eos 2).
SMALL = dict(harness.BASE_CONFIG, hidden_size=64, num_attention_heads=4, num_hidden_layers=4,
             intermediate_size=128, num_key_value_heads=2, num_key_value_layers=2)
# Pythia's vocabulary (50,304 rows for the tokenizer's 50,277 ids: generated ids past the
# tokenizer's have no text) with the GPT-NeoX ids for BOS/EOS.
NEOX = dict(SMALL, hidden_size=32, num_attention_heads=2, num_hidden_layers=2,
            num_key_value_heads=1, num_key_value_layers=1, vocab_size=50304, bos_token_id=0,
            eos_token_id=0)

PROMPTS = ["Hello, world! The quick brown fox", "\u00dcn\u00efc\u00f6d\u00e9 \u2713 \U0001f642 and "
           "\u65e5\u672c\u8a9e", "  spaces\tand\nnew lines<|endoftext|>"]


@pytest.fixture(scope="module")
def hf():
    harness.mlkv_bin()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return pytest.importorskip(
        "tokenizers", reason="Hugging Face tokenizers is not installed (the outside reference)")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    harness.mlkv_bin()
    out = os.path.join(str(tmp_path_factory.mktemp("text")), "model")
    return harness.random_model(out, SMALL, seed=harness.seed_for("text"))


@pytest.fixture(scope="module")
def neox_model(tmp_path_factory):
    harness.mlkv_bin()
    out = os.path.join(str(tmp_path_factory.mktemp("neox")), "model")
    return harness.random_model(out, NEOX, seed=harness.seed_for("neox"))


@pytest.fixture(scope="module")
def neox_path():
    path = shared_dir() / "data" / "gpt-neox-20b" / "tokenizer.json"
    if not path.exists():
        pytest.skip(f"{path} is missing (set MLKV_SHARED_DIR to the shared/ folder)")
    return str(path)


def generate(model, prompts, *flags, max_tokens=24):
    """`mlkv generate` with --prompt per text prompt: one output dict per prompt."""
    args = ["generate", "--model", model, "--max-tokens", max_tokens, "--format", "json", *flags]
    for p in prompts:
        args += ["--prompt", p]
    out = harness.run_mlkv_json(args)
    return out["outputs"] if len(prompts) > 1 else [out]


def check_text_is_hf_decode(hf_tokenizer, model, *flags):
    outputs = generate(model, PROMPTS, "--ignore-eos", *flags)
    for prompt, out in zip(PROMPTS, outputs):
        assert out["text"] == hf_tokenizer.decode(out["token_ids"]), prompt
        # The text prompt ran as the ids HF encodes it to.
        ids = hf_tokenizer.encode(prompt).ids
        by_ids = harness.run_mlkv_json(["generate", "--model", model, "--token-ids",
                                        harness.ids_arg(ids), "--max-tokens", 24, "--ignore-eos",
                                        "--format", "json", *flags])
        assert by_ids["token_ids"] == out["token_ids"], prompt
        assert by_ids["text"] == out["text"], prompt
    return outputs


def test_neox_text_is_hf_decode_of_the_ids(hf, neox_model, neox_path):
    outputs = check_text_is_hf_decode(hf.Tokenizer.from_file(neox_path), neox_model,
                                      "--tokenizer", neox_path)
    assert any(out["text"] for out in outputs)


def test_byte_level_text_is_hf_decode_of_the_ids(hf, small_model):
    # Random bytes: most of this text is U+FFFD from ill-formed UTF-8.
    tokenizer = hf.Tokenizer.from_file(os.path.join(small_model, "tokenizer.json"))
    check_text_is_hf_decode(tokenizer, small_model)


def middle_chars(text, n):
    """n characters from the middle of `text`."""
    start = len(text) // 2
    return text[start:start + n]


def test_stop_string_ends_generation_before_it(small_model):
    [free] = generate(small_model, [PROMPTS[0]], "--ignore-eos", max_tokens=40)
    stop = middle_chars(free["text"], 3)
    [stopped] = generate(small_model, [PROMPTS[0]], "--ignore-eos", "--stop", "\x01never",
                         "--stop", stop, max_tokens=40)
    assert stopped["finish_reason"] == "stop"
    assert stopped["stop_string"] == stop
    assert stopped["text"] == free["text"][:free["text"].find(stop)]
    n = len(stopped["token_ids"])
    assert n < len(free["token_ids"])
    assert stopped["token_ids"] == free["token_ids"][:n]


def test_text_format_prints_ids_then_text(small_model):
    proc = harness.run_mlkv_ok(["generate", "--model", small_model, "--prompt", PROMPTS[2],
                                "--token-ids", "5,6,7", "--max-tokens", 8, "--ignore-eos"])
    lines = proc.stdout.splitlines()
    assert len(lines) == 4, proc.stdout
    as_json = harness.run_mlkv_json(["generate", "--model", small_model, "--token-ids", "5,6,7",
                                     "--prompt", PROMPTS[2], "--max-tokens", 8, "--ignore-eos",
                                     "--format", "json"])["outputs"]
    for i, out in enumerate(as_json):  # --token-ids prompts first, then --prompt ones
        assert lines[2 * i] == " ".join(map(str, out["token_ids"]))
        assert json.loads(lines[2 * i + 1]) == out["text"]


# ---- score --text-file --------------------------------------------------------------------------

SCORE_TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, "
              "it was the age of foolishness, it was the epoch of belief, it was the epoch of "
              "incredulity. Caf\u00e9 na\u00efve \u00e9t\u00e9, \u65e5\u672c, \U0001f600!\n") * 2


def score_text(model, path, *flags):
    return harness.run_mlkv_json(["score", "--model", model, "--text-file", path,
                                  "--format", "json", *flags])


def expected_windows(ids, max_model_len):
    """score_command.cc's windows: max_model_len - 1 ids each, overlapping by one."""
    window = max_model_len - 1
    return [ids[s:s + window] for s in range(0, len(ids) - 1, window - 1)]


@pytest.mark.parametrize("max_model_len", [None, 64])
def test_score_text_file_matches_reference(hf, small_model, tmp_path, max_model_len):
    path = tmp_path / "text.txt"
    path.write_text(SCORE_TEXT, encoding="utf-8")
    ids = hf.Tokenizer.from_file(os.path.join(small_model, "tokenizer.json")).encode(SCORE_TEXT).ids
    flags = ["--max-model-len", max_model_len] if max_model_len else []
    out = score_text(small_model, str(path), *flags)
    windows = expected_windows(ids, max_model_len or SMALL["max_position_embeddings"])
    assert out["num_tokens"] == len(ids)
    assert out["num_windows"] == len(windows)
    if max_model_len:
        assert len(windows) > 1, "the text was meant to need several windows"
    ref = rm.ReferenceModel.from_dir(small_model)
    expected = np.concatenate([ref.logprobs(w) for w in windows])
    harness.assert_close(out["token_logprobs"], expected, harness.LOGPROB_TOL, "token logprobs")
    ref_perplexity = math.exp(-expected.mean())
    assert out["perplexity"] == pytest.approx(ref_perplexity, rel=1e-4)
    assert out["total_logprob"] == pytest.approx(expected.sum(), rel=1e-4)


# ---- bad input -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def no_tokenizer_model(tmp_path_factory):
    """vocab_size 256 leaves no room for the byte-level tokenizer: token ids only."""
    harness.mlkv_bin()
    out = os.path.join(str(tmp_path_factory.mktemp("ids_only")), "model")
    model = harness.random_model(out, dict(SMALL, vocab_size=256), seed=5)
    assert not os.path.exists(os.path.join(model, "tokenizer.json"))
    return model


def expect_failure(args, needles):
    proc = harness.run_mlkv(args)
    assert proc.returncode > 0, f"exit {proc.returncode}: {proc.stderr}"  # an error, not a signal
    message = proc.stderr.lower()
    assert any(n.lower() in message for n in needles), f"{needles} not in: {proc.stderr}"


def test_text_without_a_tokenizer_is_refused(no_tokenizer_model, tmp_path):
    expect_failure(["generate", "--model", no_tokenizer_model, "--prompt", "hi"], ["prompt_text"])
    expect_failure(["generate", "--model", no_tokenizer_model, "--token-ids", "1,2",
                    "--stop", "x"], ["stop"])
    path = tmp_path / "t.txt"
    path.write_text("some text")
    expect_failure(["score", "--model", no_tokenizer_model, "--text-file", str(path)],
                   ["--text-file", "tokenizer"])


def test_bad_text_flags_are_refused(small_model, tmp_path):
    expect_failure(["generate", "--model", small_model, "--prompt", "hi", "--stop", ""],
                   ["stop: stop string 0 is empty"])
    expect_failure(["generate", "--model", small_model, "--prompt", ""], ["prompt_text"])
    expect_failure(["generate", "--model", small_model, "--max-tokens", 4], ["--prompt"])
    missing = str(tmp_path / "missing.txt")
    expect_failure(["score", "--model", small_model, "--text-file", missing], [missing])
    short = tmp_path / "short.txt"
    short.write_text("a")
    expect_failure(["score", "--model", small_model, "--text-file", str(short)], ["two"])
    expect_failure(["score", "--model", small_model, "--text-file", str(short), "--token-ids",
                    "1,2"], ["exactly one"])
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok \xc3\x28 not UTF-8")
    expect_failure(["score", "--model", small_model, "--text-file", str(bad)], [str(bad)])


def test_malformed_tokenizer_is_an_error_naming_it(small_model, tmp_path):
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{ not json")
    expect_failure(["generate", "--model", small_model, "--prompt", "hi", "--tokenizer",
                    str(broken)], [str(broken)])
    copy = harness.copy_model_dir(small_model, str(tmp_path / "copy"))
    with open(os.path.join(copy, "tokenizer.json"), "w") as f:
        f.write('{"model": {"type": "WordPiece"}}')
    expect_failure(["generate", "--model", copy, "--token-ids", "1,2"],
                   [os.path.join(copy, "tokenizer.json")])


def test_tokenizer_of_a_larger_vocabulary_is_refused(small_model, neox_path):
    expect_failure(["generate", "--model", small_model, "--prompt", "hi", "--tokenizer",
                    neox_path], ["vocab_size 512"])
