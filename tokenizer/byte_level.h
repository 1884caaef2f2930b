// The GPT-2 byte-level alphabet: each of the 256 byte values stands for one printable code point,
// so that a byte-level vocabulary can be written as strings (byte 0x20, a space, is "Ġ").
#ifndef MLKV_TOKENIZER_BYTE_LEVEL_H_
#define MLKV_TOKENIZER_BYTE_LEVEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mlkv::byte_level {

// The code point that stands for `byte`: the printable Latin-1 bytes ('!'..'~', '¡'..'¬',
// '®'..'ÿ') stand for themselves, the other 68 for U+0100.. in byte order.
char32_t ByteToCodePoint(uint8_t byte);

// The byte `cp` stands for, or nullopt when `cp` is not in the alphabet.
std::optional<uint8_t> CodePointToByte(char32_t cp);

// The byte string that a token written in the alphabet stands for; nullopt when some character
// of the (well-formed UTF-8) token is not in the alphabet.
std::optional<std::string> TokenToBytes(std::string_view token);

// The token text, in the alphabet, of a byte string.
std::string BytesToToken(std::string_view bytes);

}  // namespace mlkv::byte_level

#endif  // MLKV_TOKENIZER_BYTE_LEVEL_H_
