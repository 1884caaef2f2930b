"""The tokenizer conformance corpus: a deterministic list of more than 10,000 strings that stress
byte-level BPE tokenization (whitespace runs and mixed newlines, digits and long numbers,
punctuation, English contractions, accents and combining marks, CJK, emoji and ZWJ sequences,
code, text holding special-token strings, random Unicode, lines of Tiny Shakespeare).

Used by test_tokenizer.py and by bench/tokenizer_bench_hf.py:
    from tokenizer_corpus import make_corpus
"""

import os
import random
from pathlib import Path

SEED = 20240605
CORPUS_SIZE_MIN = 10_000


def shared_dir():
    """$MLKV_SHARED_DIR, else ../shared beside the checkout."""
    env = os.environ.get("MLKV_SHARED_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared"


def shakespeare_path():
    return shared_dir() / "data" / "tinyshakespeare" / "input.txt"


# ---- the corpus --------------------------------------------------------------------------------

WORDS = ("the quick brown fox jumps over lazy dog hello world tokenizer streaming server model "
         "attention cache block layer head value key query prompt answer").split()
CONTRACTIONS = ["don't", "I'm", "we'll", "they're", "you've", "he'd", "it's", "can't", "won't",
                "DON'T", "I'M", "WE'LL", "They'Re", "y'all", "'tis", "rock'n'roll", "o'clock",
                "it\u2019s", "don\u2019t", "'s", "'t", "''", "l'homme", "aujourd'hui"]
WHITESPACE = [" ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", " \n", "\n ", "\u00a0", "\u3000",
              "\u2003", "\u2009", "\u202f", "\u2028", "\u2029", "\x0b", "\x0c", "\x85", "\x1c",
              "\x1f", "\u200b", "\ufeff", " " * 24, " " * 25, " " * 50, "\t\t", "\n" * 5]
PUNCTUATION = list("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~") + [
    "...", "--", "\u2014", "\u2013", "\u00ab", "\u00bb", "\u201c", "\u201d", "\u00bf", "\u00a1",
    "\u3002", "\u3001", "\uff01", "\u2026", "->", "=>", "!=", "::", "//", "/*", "*/", "#!"]
ACCENTED = ["caf\u00e9", "cafe\u0301", "na\u00efve", "nai\u0308ve", "\u00c5ngstr\u00f6m",
            "A\u030angstro\u0308m", "\u212b", "Ti\u1ebfng Vi\u1ec7t", "Tie\u0302\u0301ng Vie\u0323\u0302t",
            "stra\u00dfe", "\u0130stanbul", "\u0131", "Z\u0351\u0360\u036ba\u0310\u0306lgo\u0311",
            "e\u0301\u0301\u0301", "\u1e9b\u0323", "q\u0307\u0323", "\u0041\u030a\u0301",
            "se\u00f1or", "sen\u0303or", "\u00fc\u0308", "\u0f73", "\u0958", "\u2126", "\ufb01",
            "\u00bd", "x\u00b2", "\u2460", "\uff21\uff22", "\u1100\u1161\u11a8", "\u1100\u1161"]
CJK = ["\u65e5\u672c\u8a9e", "\u4e2d\u6587\u5b57\u7b26", "\u6f22\u5b57\u304b\u306a\u30ab\u30ca",
       "\ud55c\uad6d\uc5b4", "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c", "\u4f60\u597d\uff0c\u4e16\u754c\uff01",
       "\u30c8\u30fc\u30af\u30ca\u30a4\u30b6\u30fc", "\U0001d400", "\U00020000\U0002a6d6",
       "\u3131\u314f", "\uff76\uff9e", "\u30ac", "\u30ab\u3099", "\u3400\u4dbf", "\uac00\ud7a3"]
EMOJI = ["\U0001f600", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
         "\U0001f1fa\U0001f1f8", "\U0001f1ef\U0001f1f5\U0001f1eb\U0001f1f7", "\U0001f44d\U0001f3fd",
         "1\ufe0f\u20e3", "\u2764\ufe0f", "\u2764", "\U0001f3f3\ufe0f\u200d\U0001f308",
         "\U0001f9d1\u200d\U0001f4bb", "\U0001f469\U0001f3fe\u200d\U0001f52c", "\u263a\ufe0e",
         "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "\U0001fae0",
         "\u2603", "\U0001f4a9" * 3, "\U0001f926\U0001f3fb\u200d\u2642\ufe0f"]
CODE = [
    "def f(x):\n    return x ** 2\n",
    "for (int i = 0; i < n; ++i) {\n        sum += a[i];\n    }",
    "{\"key\": [1, 2.5e-3, null, true], \"s\": \"a\\\\nb\"}",
    "#include <vector>\n\nint main() { return 0; }\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "\tif x:\n\t\tpass\n",
    "const f = (a, b) => a?.b ?? `t${b}`;",
    "    \n        \n            x = 1\n",
    "<div class=\"x\">&amp; &lt;tag&gt;</div>",
    "$ ls -la | grep '^d' && echo \"done\" # comment",
    "0x1F + 0b1010 - 1_000_000 == 3.14e+10",
    "a_b_c __init__ self.__dict__['k']",
    "    " * 10 + "deeply_nested()",
]
SPECIALS = ["<|endoftext|>", "<|padding|>", "<|endoftext|", "|endoftext|>", "<|endoftext|><|endoftext|>",
            "<|ENDOFTEXT|>", "< |endoftext|>", "<|endo", "<|padding|><|endoftext|>"]


def _pick(rng, items, n):
    return [rng.choice(items) for _ in range(n)]


def _words(rng, n):
    return " ".join(_pick(rng, WORDS, n))


def _whitespace_case(rng):
    parts = []
    for _ in range(rng.randint(1, 8)):
        parts.append(rng.choice(WHITESPACE) if rng.random() < 0.6 else rng.choice(WORDS))
    return "".join(parts)


def _number_case(rng):
    kind = rng.randrange(6)
    if kind == 0:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 60)))
    if kind == 1:
        return f"{rng.uniform(-1e9, 1e9):.{rng.randint(0, 8)}f}"
    if kind == 2:
        return f"+1 ({rng.randint(100, 999)}) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
    if kind == 3:
        return f"{rng.randint(0, 10**12):,} items in {rng.randint(1, 99)} boxes"
    if kind == 4:
        return " ".join(str(rng.randint(0, 10 ** rng.randint(1, 15))) for _ in range(rng.randint(1, 6)))
    digits = ["\u0660\u0661\u0662", "\u0966\u0967", "\uff11\uff12\uff13", "\u2167", "\u00b3", "\u0e51"]
    return rng.choice(digits) + str(rng.randint(0, 999)) + rng.choice(digits)


def _mix(rng, pools, n):
    out = []
    for _ in range(n):
        pool = rng.choice(pools)
        out.append(rng.choice(pool))
        if rng.random() < 0.5:
            out.append(rng.choice([" ", "", "\n", "  "]))
    return "".join(out)


# Code point ranges the random fuzz draws from: everything but surrogates, weighted towards the
# scripts and blocks where tokenization is interesting.
FUZZ_RANGES = [
    (0x00, 0x7F, 8), (0x80, 0x24F, 4), (0x250, 0x2FF, 1), (0x300, 0x36F, 3), (0x370, 0x3FF, 1),
    (0x400, 0x52F, 2), (0x590, 0x6FF, 2), (0x900, 0x0DFF, 2), (0x0E00, 0x0E7F, 1),
    (0x1100, 0x11FF, 2), (0x1E00, 0x1FFF, 2), (0x2000, 0x206F, 3), (0x2070, 0x2BFF, 2),
    (0x3000, 0x30FF, 2), (0x3400, 0x4DBF, 1), (0x4E00, 0x9FFF, 3), (0xAC00, 0xD7A3, 2),
    (0xE000, 0xF8FF, 1), (0xF900, 0xFAFF, 1), (0xFB00, 0xFFFD, 2), (0x10000, 0x1FFFF, 2),
    (0x1F300, 0x1FAFF, 3), (0x20000, 0x2FFFF, 1), (0xE0000, 0xE007F, 1), (0xF0000, 0x10FFFF, 1),
]


def _fuzz_case(rng):
    weights = [w for _, _, w in FUZZ_RANGES]
    chars = []
    for _ in range(rng.randint(1, 40)):
        lo, hi, _ = rng.choices(FUZZ_RANGES, weights)[0]
        chars.append(chr(rng.randint(lo, hi)))
        if rng.random() < 0.15:
            chars.append(rng.choice([" ", "  ", "\n", "'s", "<|endoftext|>", "\u200d", "\u0301"]))
    return "".join(chars)


def _shakespeare(rng, count):
    path = shakespeare_path()
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")
    out = [line for line in lines[: count // 2]]
    # Multi-line chunks keep the newlines and the indentation between speeches.
    text = "\n".join(lines)
    for _ in range(count - len(out)):
        start = rng.randrange(len(text))
        out.append(text[start: start + rng.randint(1, 600)])
    return out


def make_corpus(seed=SEED):
    """[(category, string)], deterministic for a seed: at least CORPUS_SIZE_MIN strings."""
    rng = random.Random(seed)
    corpus = [("empty", ""), ("space", " "), ("special", "<|endoftext|>")]
    gen = {
        "whitespace": _whitespace_case,
        "numbers": _number_case,
        "punctuation": lambda r: _mix(r, [PUNCTUATION, WORDS], r.randint(1, 10)),
        "contractions": lambda r: _mix(r, [CONTRACTIONS, WORDS], r.randint(1, 8)),
        "accents": lambda r: _mix(r, [ACCENTED, WORDS], r.randint(1, 6)),
        "cjk": lambda r: _mix(r, [CJK, PUNCTUATION], r.randint(1, 6)),
        "emoji": lambda r: _mix(r, [EMOJI, WORDS], r.randint(1, 6)),
        "code": lambda r: "".join(_pick(r, CODE, r.randint(1, 3))),
        "special_tokens": lambda r: _mix(r, [SPECIALS, WORDS, WHITESPACE], r.randint(1, 8)),
        "mixed": lambda r: _mix(r, [WORDS, CONTRACTIONS, WHITESPACE, PUNCTUATION, ACCENTED, CJK,
                                     EMOJI, SPECIALS], r.randint(2, 20)),
        "fuzz": _fuzz_case,
    }
    counts = {"fuzz": 3000, "mixed": 1500}
    for name, fn in gen.items():
        for _ in range(counts.get(name, 700)):
            corpus.append((name, fn(rng)))
    corpus += [("shakespeare", s) for s in _shakespeare(rng, 3000)]
    corpus.append(("long_word", "a" * 5000))
    corpus.append(("long_number", "9" * 3000))
    corpus.append(("long_spaces", " " * 1000 + "x"))
    return corpus
