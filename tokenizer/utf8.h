// UTF-8 helpers for the tokenizer: validation, code point access, the lossy repair that Hugging
// Face decoding applies to byte sequences, and the incomplete tail that streaming must hold back.
#ifndef MLKV_TOKENIZER_UTF8_H_
#define MLKV_TOKENIZER_UTF8_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mlkv::utf8 {

// How the bytes at some position begin a UTF-8 sequence.
enum class SequenceKind {
  kComplete,   // a well-formed sequence of `length` bytes
  kTruncated,  // the first `length` bytes of a well-formed sequence, cut short by the end
  kInvalid,    // `length` bytes (the "maximal subpart", >= 1) that no well-formed sequence has
};

struct Sequence {
  SequenceKind kind;
  int length;
};

// Classifies the sequence at the start of `bytes` (which must not be empty), following the
// Unicode "maximal subpart" rule (Unicode 15, section 3.9, U+FFFD substitution), as Rust's
// String::from_utf8_lossy and therefore Hugging Face tokenizers do.
Sequence ScanSequence(std::string_view bytes);

// Whether `bytes` is well-formed UTF-8 (no surrogates, no overlongs, nothing above U+10FFFF).
bool IsValid(std::string_view bytes);

// The byte offset of the first ill-formed sequence, or nullopt when `bytes` is well-formed.
std::optional<size_t> FirstInvalidOffset(std::string_view bytes);

// Appends `bytes` to `out`, replacing each ill-formed maximal subpart by U+FFFD.
void AppendLossy(std::string_view bytes, std::string* out);

// The number of bytes (0-3) at the end of `bytes` that are a truncated, but so far well-formed,
// sequence: more bytes may still complete it, so a streaming decoder must hold them back.
int IncompleteSuffixLength(std::string_view bytes);

// The code point of the well-formed sequence at `bytes[pos]`; sets `*length` to its size.
// Precondition: `bytes` is well-formed from `pos`.
char32_t DecodeAt(std::string_view bytes, size_t pos, int* length);

// The code point that ends just before `end` in well-formed `bytes` (end > 0).
char32_t DecodeBefore(std::string_view bytes, size_t end);

// Appends the UTF-8 encoding of `cp` (a Unicode scalar value) to `out`.
void Append(char32_t cp, std::string* out);

}  // namespace mlkv::utf8

#endif  // MLKV_TOKENIZER_UTF8_H_
