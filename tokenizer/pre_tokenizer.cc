// The GPT-2 split with RE2 and the lookahead emulation; see pre_tokenizer.h.
#include "tokenizer/pre_tokenizer.h"

#include <cstdint>

#include "common/check.h"
#include "tokenizer/char_classes.h"
#include "tokenizer/utf8.h"

namespace mlkv {
namespace {

// Oniguruma's Unicode \s (char_classes.h IsWhitespace), as an RE2 character-class body.
constexpr char kWhitespaceClass[] = "\\t\\n\\x{0B}\\f\\r\\x{85}\\p{Z}";

std::string Gpt2Pattern() {
  const std::string ws = kWhitespaceClass;
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" + ws + "\\p{L}\\p{N}]+|[" + ws + "]+";
}

// The start of the last character of the non-empty, well-formed `text`.
size_t LastCharStart(std::string_view text) {
  size_t start = text.size() - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  return start;
}

}  // namespace

ByteLevelPreTokenizer::ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
    : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {
  RE2::Options options;
  options.set_log_errors(false);
  // The default 8 MiB DFA budget is shared by all threads; long inputs of mixed scripts can
  // exhaust it and send RE2 to its slower NFA, so give it room.
  options.set_max_mem(64 << 20);
  pattern_ = std::make_unique<RE2>(Gpt2Pattern(), options);
  MLKV_CHECK(pattern_->ok(), "GPT-2 pattern: {}", pattern_->error());
}

void ByteLevelPreTokenizer::Split(std::string_view text, std::string* scratch,
                                  std::vector<std::string_view>* words) const {
  if (add_prefix_space_ && text.front() != ' ') {
    scratch->clear();  // (assign(" ") trips a false -Wrestrict in GCC 12)
    scratch->push_back(' ');
    scratch->append(text);
    text = *scratch;
  }
  if (!use_regex_) {
    words->push_back(text);
    return;
  }
  const re2::StringPiece input(text.data(), text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    re2::StringPiece match;
    // Every character is matched by some alternative, so an anchored match always succeeds.
    const bool found = pattern_->Match(input, pos, text.size(), RE2::ANCHOR_START, &match, 1);
    MLKV_CHECK(found && !match.empty(), "GPT-2 pattern failed to match at byte {}", pos);
    std::string_view word(match.data(), match.size());
    const size_t end = pos + word.size();
    // Only the whitespace alternative ends in whitespace: the others end in a letter, a digit,
    // a contraction or punctuation.
    if (end < text.size()) {
      const size_t last = LastCharStart(word);
      if (last > 0 && IsWhitespace(utf8::DecodeBefore(word, word.size()))) {
        word = word.substr(0, last);  // `\s+(?!\S)`: leave the last character to the next word
      }
    }
    words->push_back(word);
    pos += word.size();
  }
}

}  // namespace mlkv
