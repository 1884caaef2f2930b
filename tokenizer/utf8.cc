// UTF-8 classification and repair; see utf8.h.
#include "tokenizer/utf8.h"

#include <cstdint>

namespace mlkv::utf8 {
namespace {

// The well-formed ranges of the second byte after each lead byte (Unicode Table 3-7); the third
// and fourth bytes are always 80..BF.
struct LeadInfo {
  int length;  // 0: not a lead byte
  uint8_t second_min;
  uint8_t second_max;
};

LeadInfo Lead(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};  // excludes the surrogates D800..DFFF
  if (b == 0xF0) return {4, 0x90, 0xBF};  // excludes overlongs
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
  return {0, 0, 0};                       // 80..C1, F5..FF
}

}  // namespace

Sequence ScanSequence(std::string_view bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const LeadInfo lead = Lead(p[0]);
  if (lead.length == 0) return {SequenceKind::kInvalid, 1};
  if (lead.length == 1) return {SequenceKind::kComplete, 1};
  for (int i = 1; i < lead.length; ++i) {
    if (static_cast<size_t>(i) >= bytes.size()) return {SequenceKind::kTruncated, i};
    const uint8_t lo = i == 1 ? lead.second_min : 0x80;
    const uint8_t hi = i == 1 ? lead.second_max : 0xBF;
    if (p[i] < lo || p[i] > hi) return {SequenceKind::kInvalid, i};
  }
  return {SequenceKind::kComplete, lead.length};
}

std::optional<size_t> FirstInvalidOffset(std::string_view bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    // ASCII runs are the common case; skip them a byte at a time without the table.
    if (static_cast<uint8_t>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Sequence seq = ScanSequence(bytes.substr(pos));
    if (seq.kind != SequenceKind::kComplete) return pos;
    pos += seq.length;
  }
  return std::nullopt;
}

bool IsValid(std::string_view bytes) { return !FirstInvalidOffset(bytes).has_value(); }

void AppendLossy(std::string_view bytes, std::string* out) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const Sequence seq = ScanSequence(bytes.substr(pos));
    if (seq.kind == SequenceKind::kComplete) {
      out->append(bytes.data() + pos, seq.length);
    } else {
      out->append("\xEF\xBF\xBD");  // U+FFFD
    }
    pos += seq.length;
  }
}

int IncompleteSuffixLength(std::string_view bytes) {
  // A truncated sequence is at most 3 bytes and starts at a lead byte; try each start.
  for (int k = 1; k <= 3 && static_cast<size_t>(k) <= bytes.size(); ++k) {
    const Sequence seq = ScanSequence(bytes.substr(bytes.size() - k));
    if (seq.kind == SequenceKind::kTruncated && seq.length == k) return k;
  }
  return 0;
}

char32_t DecodeAt(std::string_view bytes, size_t pos, int* length) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data()) + pos;
  if (p[0] < 0x80) {
    *length = 1;
    return p[0];
  }
  if (p[0] < 0xE0) {
    *length = 2;
    return (char32_t(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (p[0] < 0xF0) {
    *length = 3;
    return (char32_t(p[0] & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *length = 4;
  return (char32_t(p[0] & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) |
         (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

char32_t DecodeBefore(std::string_view bytes, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<uint8_t>(bytes[start]) & 0xC0) == 0x80) --start;
  int length = 0;
  return DecodeAt(bytes, start, &length);
}

void Append(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace mlkv::utf8
