// NFC through utf8proc; see normalizer.h.
#include "tokenizer/normalizer.h"

#include <cstdint>
#include <cstdlib>

#include "common/check.h"
#include "tokenizer/unicode9_changes.h"
#include "tokenizer/utf8.h"
#include "utf8proc.h"

namespace mlkv {

bool IsTriviallyNormalized(NormalizerKind kind, std::string_view text) {
  if (kind == NormalizerKind::kNone) return true;
  for (char c : text) {
    if (static_cast<uint8_t>(c) >= 0x80) return false;
  }
  return true;
}

namespace {

// Appends utf8proc's NFC of `text` to `out`.
void AppendNfc(std::string_view text, std::string* out) {
  if (text.empty()) return;
  // An explicit length (no UTF8PROC_NULLTERM) so that U+0000 inside the text survives.
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  // The tokenizer validates UTF-8 before normalizing, so only allocation can fail here.
  MLKV_CHECK(n >= 0, "utf8proc_map: {}", utf8proc_errmsg(n));
  out->append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
  std::free(mapped);
}

// The smallest code point in the Unicode 9.0 change table.
constexpr char32_t kFirstChangedSinceUnicode9 = 0x7FD;

}  // namespace

// NFC as Hugging Face computes it with Unicode 9.0 tables: a character that it does not know
// (unicode9_changes.h) is a starter with no compositions, which nothing reorders or composes
// across. So the text between such characters is normalized on its own, and they are kept.
std::string Normalize(NormalizerKind kind, std::string_view text) {
  if (IsTriviallyNormalized(kind, text)) return std::string(text);
  std::string result;
  result.reserve(text.size());
  size_t segment = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    int length = 1;
    // Lead bytes below DF start characters below U+07C0, which the table never holds.
    if (static_cast<uint8_t>(text[pos]) >= 0xDF) {
      const char32_t cp = utf8::DecodeAt(text, pos, &length);
      if (cp >= kFirstChangedSinceUnicode9 && ChangedSinceUnicode9(cp)) {
        AppendNfc(text.substr(segment, pos - segment), &result);
        result.append(text.substr(pos, length));
        segment = pos + length;
      }
    }
    pos += length;
  }
  AppendNfc(text.substr(segment), &result);
  return result;
}

}  // namespace mlkv
