// The normalizers a tokenizer.json may name that we support: none, or Unicode NFC (utf8proc).
#ifndef MLKV_TOKENIZER_NORMALIZER_H_
#define MLKV_TOKENIZER_NORMALIZER_H_

#include <string>
#include <string_view>

namespace mlkv {

enum class NormalizerKind { kNone, kNfc };

// Returns `text` (well-formed UTF-8) normalized as `kind` says. NFC is Hugging Face's: Unicode
// 9.0's rules, which leave the marks and compositions assigned since then alone (see
// unicode9_changes.h). Pure ASCII is returned unchanged without calling into utf8proc.
std::string Normalize(NormalizerKind kind, std::string_view text);

// Whether Normalize(kind, text) would return `text` itself, decided cheaply (ASCII only).
bool IsTriviallyNormalized(NormalizerKind kind, std::string_view text);

}  // namespace mlkv

#endif  // MLKV_TOKENIZER_NORMALIZER_H_
