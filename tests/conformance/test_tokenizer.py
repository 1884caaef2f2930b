"""The tokenizer against Hugging Face `tokenizers` on the real GPT-NeoX-20B tokenizer.json.

`mlkv tokenize --jsonl-in` must give the same ids as `Tokenizer.encode(s).ids` for every string of
a deterministic corpus of more than 10,000 strings (whitespace, numbers, punctuation, contractions,
accents and combining marks, CJK, emoji and ZWJ sequences, code, special-token strings, lines of
Tiny Shakespeare, random Unicode), and `mlkv detokenize` must give back NFC(s). Variants of the
file check the features GPT-NeoX does not use (add_prefix_space, added-token flags, merges written
as pairs), and the byte-level tokenizer.json of `mlkv random-model` is checked the same way.

Skipped when `tokenizers` is not importable or ../shared/data/gpt-neox-20b/tokenizer.json (or
$MLKV_SHARED_DIR/data/...) is missing; the CLI comes from $MLKV_BIN as in the other suites.

The corpus is tokenizer_corpus.py's.
"""

import json
import os
import random
import re
import unicodedata
from pathlib import Path

import pytest

import harness
from tokenizer_corpus import CORPUS_SIZE_MIN, SEED, make_corpus, shared_dir

# ---- where things are --------------------------------------------------------------------------


def neox_tokenizer_path():
    return shared_dir() / "data" / "gpt-neox-20b" / "tokenizer.json"


# ---- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_tokenizers():
    harness.mlkv_bin()  # skip first, before any slow reference work, when the CLI is not there
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return pytest.importorskip(
        "tokenizers", reason="Hugging Face tokenizers is not installed (the outside reference)")


@pytest.fixture(scope="module")
def neox_path():
    harness.mlkv_bin()
    path = neox_tokenizer_path()
    if not path.exists():
        pytest.skip(f"{path} is missing (set MLKV_SHARED_DIR to the shared/ folder)")
    return path


@pytest.fixture(scope="module")
def corpus():
    return make_corpus()


def write_jsonl(path, items):
    with open(path, "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item) + "\n")
    return path


def mlkv_tokenize_batch(tokenizer_path, strings, tmp_path, name="in"):
    src = write_jsonl(tmp_path / f"{name}.jsonl", strings)
    proc = harness.run_mlkv_ok(["tokenize", "--tokenizer", tokenizer_path, "--jsonl-in", src],
                               timeout=600)
    out = [json.loads(line) for line in proc.stdout.split("\n")[:-1]]
    assert len(out) == len(strings), f"mlkv tokenize printed {len(out)} lines for {len(strings)}"
    return out


def mlkv_detokenize_batch(tokenizer_path, id_lists, tmp_path, name="ids"):
    src = write_jsonl(tmp_path / f"{name}.jsonl", id_lists)
    proc = harness.run_mlkv_ok(["detokenize", "--tokenizer", tokenizer_path, "--jsonl-in", src],
                               timeout=600)
    # Only "\n" ends a line: the JSON strings may hold U+2028, U+0085 and such (splitlines splits
    # on those too).
    out = [json.loads(line) for line in proc.stdout.split("\n")[:-1]]
    assert len(out) == len(id_lists)
    return out


def assert_same_ids(labels, strings, ours, theirs, what):
    bad = [i for i in range(len(strings)) if ours[i] != theirs[i]]
    if bad:
        by_category = {}
        for i in bad:
            by_category[labels[i]] = by_category.get(labels[i], 0) + 1
        examples = "\n".join(
            f"  [{labels[i]}] {strings[i][:80]!r}\n    mlkv {ours[i][:20]}\n    HF   {theirs[i][:20]}"
            for i in bad[:8])
        pytest.fail(f"{what}: {len(bad)} of {len(strings)} strings differ from Hugging Face "
                    f"(by category: {by_category}):\n{examples}")


# ---- GPT-NeoX-20B ------------------------------------------------------------------------------


def test_corpus_is_large_and_covers_every_category(hf_tokenizers, corpus):
    # (Needs the reference only so that a run without it reports the suite skipped.)
    assert len(corpus) >= CORPUS_SIZE_MIN
    categories = {c for c, _ in corpus}
    for needed in ("whitespace", "numbers", "punctuation", "contractions", "accents", "cjk",
                   "emoji", "code", "special_tokens", "fuzz"):
        assert needed in categories
    assert make_corpus() == corpus, "the corpus must be deterministic"


def test_encode_matches_hugging_face(hf_tokenizers, neox_path, corpus, tmp_path):
    hf = hf_tokenizers.Tokenizer.from_file(str(neox_path))
    labels = [c for c, _ in corpus]
    strings = [s for _, s in corpus]
    theirs = [e.ids for e in hf.encode_batch(strings)]
    ours = mlkv_tokenize_batch(neox_path, strings, tmp_path)
    assert_same_ids(labels, strings, ours, theirs, "GPT-NeoX-20B")


def test_decode_of_encode_is_nfc(hf_tokenizers, neox_path, corpus, tmp_path):
    """decode(encode(s)) == NFC(s), NFC as Hugging Face computes it.

    Two refinements of "NFC(s)", both Hugging Face's behaviour: special tokens are cut out of the
    raw text first, so the text on each side is normalized on its own ("<|endoftext|>" + U+0338
    keeps its ">"); and it normalizes with Unicode 9.0 tables, so for strings with marks assigned
    since (tokenizer/unicode9_changes.h) its NFC differs from Python's. The latter are
    counted, and must be rare.
    """
    hf = hf_tokenizers.Tokenizer.from_file(str(neox_path))
    strings = [s for _, s in corpus]
    ours = mlkv_tokenize_batch(neox_path, strings, tmp_path)
    texts = mlkv_detokenize_batch(neox_path, ours, tmp_path)
    special = re.compile("(<\\|endoftext\\|>|<\\|padding\\|>)")

    def hf_nfc_of(s):
        return "".join(p if special.fullmatch(p) else hf.normalizer.normalize_str(p)
                       for p in special.split(s))

    hf_nfc = [hf_nfc_of(s) for s in strings]
    bad = [i for i in range(len(strings)) if texts[i] != hf_nfc[i]]
    assert not bad, (f"{len(bad)} strings: decode(encode(s)) != NFC(s), e.g. "
                     f"{strings[bad[0]][:60]!r} -> {texts[bad[0]][:60]!r}")
    unicode9 = [i for i in range(len(strings))
                if hf_nfc[i] != "".join(p if special.fullmatch(p) else unicodedata.normalize("NFC", p)
                                        for p in special.split(strings[i]))]
    print(f"{len(unicode9)} of {len(strings)} strings hold marks newer than Unicode 9.0")
    assert len(unicode9) < len(strings) // 100
    hf_texts = hf.decode_batch(ours, skip_special_tokens=False)
    bad = [i for i in range(len(strings)) if texts[i] != hf_texts[i]]
    assert not bad, f"{len(bad)} decodings differ from Hugging Face's, e.g. {hf_texts[bad[0]][:60]!r}"


def test_every_code_point_matches_hugging_face(hf_tokenizers, neox_path, tmp_path):
    """Every Unicode scalar value in contexts that expose its split class (letter, number,
    whitespace, other) and its part in NFC (composition across it, reordering around it)."""
    hf = hf_tokenizers.Tokenizer.from_file(str(neox_path))
    probes = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        probes.append(f"a{c}1{c} {c}!{c}e{c}\u0301 {c}\u0323\u0301\u00a0{c}")
    theirs = [e.ids for e in hf.encode_batch(probes)]
    ours = mlkv_tokenize_batch(neox_path, probes, tmp_path, "code_points")
    assert_same_ids([f"U+{ord(p[1]):04X}" for p in probes], probes, ours, theirs, "code points")


def test_decode_repairs_partial_characters_as_hugging_face(hf_tokenizers, neox_path, tmp_path):
    # Token lists that cut multi-byte characters: the U+FFFD repair must match Rust's.
    hf = hf_tokenizers.Tokenizer.from_file(str(neox_path))
    rng = random.Random(SEED + 1)
    ids = hf.encode("\U0001f468\u200d\U0001f469\u200d\U0001f467 \u65e5\u672c\u8a9e caf\u00e9 \u0939\u093f").ids
    cases = [ids[a:b] for a in range(len(ids)) for b in range(a + 1, len(ids) + 1)]
    cases += [[rng.randrange(2, 50254) for _ in range(rng.randint(1, 6))] for _ in range(2000)]
    ours = mlkv_detokenize_batch(neox_path, cases, tmp_path)
    theirs = hf.decode_batch(cases, skip_special_tokens=False)
    bad = [i for i in range(len(cases)) if ours[i] != theirs[i]]
    assert not bad, f"{len(bad)} differ, e.g. ids {cases[bad[0]]}: {ours[bad[0]]!r} vs {theirs[bad[0]]!r}"


def test_single_text_forms_agree(neox_path, tmp_path):
    text = "Hello  world\n\n<|endoftext|> caf\u00e9 \U0001f600"
    path = tmp_path / "text.txt"
    path.write_bytes(text.encode())
    plain = harness.run_mlkv_ok(["tokenize", "--tokenizer", neox_path, "--text", text]).stdout
    as_json = harness.run_mlkv_json(["tokenize", "--tokenizer", neox_path, "--text-file", path,
                                     "--format", "json"])
    ids = [int(t) for t in plain.split()]
    assert as_json["token_ids"] == ids
    back = harness.run_mlkv_ok(["detokenize", "--tokenizer", neox_path, "--token-ids",
                                harness.ids_arg(ids)]).stdout
    assert back == text
    skipped = harness.run_mlkv_json(["detokenize", "--tokenizer", neox_path, "--token-ids",
                                     harness.ids_arg(ids), "--skip-special-tokens", "--format",
                                     "json"])
    assert skipped["text"] == text.replace("<|endoftext|>", "")


# ---- features GPT-NeoX does not use, in modified copies of its file -----------------------------


def _variant(neox_path, tmp_path, name, change):
    data = json.loads(Path(neox_path).read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _add_token(data, content, **flags):
    # The id Hugging Face assigns: the vocabulary's for a token in it, else the next free one.
    vocab = data["model"]["vocab"]
    new_id = vocab.get(content, max([len(vocab) - 1] + [t["id"] for t in data["added_tokens"]]) + 1)
    token = {"id": new_id, "content": content, "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": False}
    token.update(flags)
    data["added_tokens"].append(token)


def _flag_tokens(data):
    _add_token(data, "<L>", lstrip=True, special=True)
    _add_token(data, "<R>", rstrip=True, special=True)
    _add_token(data, "<LR>", lstrip=True, rstrip=True, special=True)
    _add_token(data, "cat", single_word=True, normalized=True)
    _add_token(data, "dog", single_word=True, normalized=False)
    _add_token(data, "caf\u00e9", normalized=True)   # matched in NFC text, so "cafe\u0301" too
    _add_token(data, "na\u00efve", normalized=False)  # matched in the raw text only


FLAG_STRINGS = ["a <L>b", "a \t <L> b", "x<R>  \n y", "<R>", "  <LR>  ", "a<L><L> <R> <R>z",
                "cat", "a cat.", "cats", "concat", "\u00e9cat", "cat_", "dog dog", "hotdog",
                "(dog)", "caf\u00e9", "cafe\u0301", "nai\u0308ve na\u00efve", "<|endoftext|> <L>",
                " <R>\u00a0\u3000x", "\u3000<L>", "<L>" * 3 + " " * 30 + "<R>" + "  y"]


@pytest.mark.parametrize("variant", ["add_prefix_space", "added_token_flags", "no_regex"])
def test_variants_match_hugging_face(hf_tokenizers, neox_path, corpus, tmp_path, variant):
    changes = {
        "add_prefix_space": lambda d: d["pre_tokenizer"].update(add_prefix_space=True),
        "added_token_flags": _flag_tokens,
        "no_regex": lambda d: d["pre_tokenizer"].update(use_regex=False),
    }
    path = _variant(neox_path, tmp_path, variant, changes[variant])
    hf = hf_tokenizers.Tokenizer.from_file(str(path))
    rng = random.Random(SEED + 2)
    sample = [s for _, s in rng.sample(corpus, 2500)]
    strings = FLAG_STRINGS + sample
    strings += [rng.choice(FLAG_STRINGS) + s + rng.choice(FLAG_STRINGS) for s in sample[:1000]]
    if variant == "no_regex":
        strings = [s[:200] for s in strings]  # one word per string: keep BPE's work bounded
    theirs = [e.ids for e in hf.encode_batch(strings)]
    ours = mlkv_tokenize_batch(path, strings, tmp_path)
    assert_same_ids([variant] * len(strings), strings, ours, theirs, variant)


def test_merges_as_pairs_tokenize_as_strings(neox_path, corpus, tmp_path):
    pairs = _variant(neox_path, tmp_path, "pairs", lambda d: d["model"].update(
        merges=[m.split(" ") if isinstance(m, str) else m for m in d["model"]["merges"]]))
    strings = [s for _, s in corpus[::7]]
    assert (mlkv_tokenize_batch(pairs, strings, tmp_path, "pairs")
            == mlkv_tokenize_batch(neox_path, strings, tmp_path, "strings"))


# ---- the random model's tokenizer -------------------------------------------------------------


def test_random_model_tokenizer_matches_hugging_face(hf_tokenizers, corpus, tmp_path):
    cfg = dict(harness.BASE_CONFIG, num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
               intermediate_size=64)
    model = harness.random_model(str(tmp_path / "model"), cfg, seed=3)
    path = Path(model) / "tokenizer.json"
    assert path.exists(), "random-model wrote no tokenizer.json"
    hf = hf_tokenizers.Tokenizer.from_file(str(path))
    assert hf.token_to_id("<|endoftext|>") == cfg["eos_token_id"]
    strings = [s for _, s in corpus[::5]]
    theirs = [e.ids for e in hf.encode_batch(strings)]
    ours = mlkv_tokenize_batch(path, strings, tmp_path)
    assert_same_ids(["random-model"] * len(strings), strings, ours, theirs, "random-model")
    assert max(max(ids, default=0) for ids in ours) < cfg["vocab_size"]
    texts = mlkv_detokenize_batch(path, ours, tmp_path)
    assert texts == [unicodedata.normalize("NFC", s) for s in strings]


def test_random_model_without_room_writes_no_tokenizer(tmp_path):
    cfg = dict(harness.BASE_CONFIG, num_hidden_layers=1, hidden_size=16, num_attention_heads=2,
               intermediate_size=32, vocab_size=200, eos_token_id=2)
    model = harness.random_model(str(tmp_path / "small"), cfg, seed=1)
    assert not (Path(model) / "tokenizer.json").exists()


# ---- bad input ---------------------------------------------------------------------------------


def test_bad_input_fails_clearly(neox_path, tmp_path):
    harness.expect_failure(["tokenize", "--tokenizer", tmp_path / "missing.json", "--text", "x"],
                           ["cannot open", "missing.json"])
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": {"type": "BPE", ')
    harness.expect_failure(["tokenize", "--tokenizer", bad, "--text", "x"], ["not valid json"])
    unknown = _variant(neox_path, tmp_path, "unknown_pre",
                       lambda d: d.update(pre_tokenizer={"type": "Metaspace"}))
    harness.expect_failure(["tokenize", "--tokenizer", unknown, "--text", "x"],
                           ["pre_tokenizer", "Metaspace"])
    bad_merge = _variant(neox_path, tmp_path, "bad_merge",
                         lambda d: d["model"]["merges"].append("nosuchtoken q"))
    harness.expect_failure(["tokenize", "--tokenizer", bad_merge, "--text", "x"],
                           ["model.merges[50009]", "nosuchtoken"])
    harness.expect_failure(["detokenize", "--tokenizer", neox_path, "--token-ids", "1,50277"],
                           ["50277", "not in the vocabulary"])
    harness.expect_failure(["detokenize", "--tokenizer", neox_path, "--token-ids", "1,-5"],
                           ["--token-ids"])
    harness.expect_failure(["tokenize", "--tokenizer", neox_path], ["exactly one of"])
    lines = tmp_path / "lines.jsonl"
    lines.write_text('"ok"\n[1, 2]\n')
    harness.expect_failure(["tokenize", "--tokenizer", neox_path, "--jsonl-in", lines],
                           ["line 2", "not a JSON string"])
    raw = tmp_path / "latin1.txt"
    raw.write_bytes(b"caf\xe9")
    harness.expect_failure(["tokenize", "--tokenizer", neox_path, "--text-file", raw],
                           ["not valid utf-8", "offset 3"])
