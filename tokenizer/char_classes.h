// The Unicode character classes the tokenizer tests one character at a time, defined as the
// regex engines of Hugging Face tokenizers define them (Oniguruma for the split pattern, Rust's
// regex crate for the added-token flags), with utf8proc's category tables.
#ifndef MLKV_TOKENIZER_CHAR_CLASSES_H_
#define MLKV_TOKENIZER_CHAR_CLASSES_H_

namespace mlkv {

// \s: U+0009..U+000D, U+0085 and the Z categories (which is also Unicode's White_Space).
bool IsWhitespace(char32_t cp);

// Rust's Unicode \w: Alphabetic, marks, decimal digits, connector punctuation, joiners.
bool IsWordChar(char32_t cp);

}  // namespace mlkv

#endif  // MLKV_TOKENIZER_CHAR_CLASSES_H_
