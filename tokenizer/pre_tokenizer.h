// The ByteLevel pre-tokenizer: splits text into the words that BPE encodes one at a time, with
// the GPT-2 pattern, optionally after prefixing a space (add_prefix_space).
#ifndef MLKV_TOKENIZER_PRE_TOKENIZER_H_
#define MLKV_TOKENIZER_PRE_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "re2/re2.h"

namespace mlkv {

// The GPT-2 split pattern, as Hugging Face runs it (with Oniguruma):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// RE2 has no lookahead, so we match `\s+` and then cut as `\s+(?!\S)` would: a whitespace run of
// two or more characters that is followed by text loses its last character, which then starts
// the next word (so " world" keeps its space). Oniguruma's Unicode \s is spelled out, since RE2's
// is ASCII only: U+0009..U+000D, U+0085 and the Z categories.
//
// Immutable after construction; Split is safe to call from several threads.
class ByteLevelPreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex);
  ByteLevelPreTokenizer(const ByteLevelPreTokenizer&) = delete;
  ByteLevelPreTokenizer& operator=(const ByteLevelPreTokenizer&) = delete;

  // Appends the words of `text` (well-formed UTF-8, not empty) to `words`. The words point into
  // `text`, or into `*scratch` when a prefix space was added; both must outlive their use.
  void Split(std::string_view text, std::string* scratch,
             std::vector<std::string_view>* words) const;

  bool add_prefix_space() const { return add_prefix_space_; }
  bool use_regex() const { return use_regex_; }

 private:
  bool add_prefix_space_;
  bool use_regex_;
  std::unique_ptr<RE2> pattern_;
};

}  // namespace mlkv

#endif  // MLKV_TOKENIZER_PRE_TOKENIZER_H_
