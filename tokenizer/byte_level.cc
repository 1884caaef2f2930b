// The byte-level alphabet's tables; see byte_level.h.
#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace mlkv::byte_level {
namespace {

bool StandsForItself(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<char32_t, 256> to_code_point;
  // Every code point of the alphabet is below U+0144 (256 + 68).
  std::array<int16_t, 0x144> to_byte;
};

const Tables& GetTables() {
  static const Tables tables = [] {
    Tables t;
    t.to_byte.fill(-1);
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = StandsForItself(b) ? char32_t(b) : char32_t(256 + next++);
      t.to_code_point[b] = cp;
      t.to_byte[cp] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return tables;
}

}  // namespace

char32_t ByteToCodePoint(uint8_t byte) { return GetTables().to_code_point[byte]; }

std::optional<uint8_t> CodePointToByte(char32_t cp) {
  const Tables& t = GetTables();
  if (cp >= t.to_byte.size() || t.to_byte[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(t.to_byte[cp]);
}

std::optional<std::string> TokenToBytes(std::string_view token) {
  std::string bytes;
  bytes.reserve(token.size());
  size_t pos = 0;
  while (pos < token.size()) {
    int length = 0;
    const std::optional<uint8_t> b = CodePointToByte(utf8::DecodeAt(token, pos, &length));
    if (!b) return std::nullopt;
    bytes.push_back(static_cast<char>(*b));
    pos += length;
  }
  return bytes;
}

std::string BytesToToken(std::string_view bytes) {
  std::string token;
  token.reserve(bytes.size() * 2);
  for (char c : bytes) utf8::Append(ByteToCodePoint(static_cast<uint8_t>(c)), &token);
  return token;
}

}  // namespace mlkv::byte_level
