// Added tokens (special tokens such as "<|endoftext|>", and extra tokens such as GPT-NeoX's runs
// of spaces), found in the text before normalization and BPE, as Hugging Face tokenizers does.
#ifndef MLKV_TOKENIZER_ADDED_VOCABULARY_H_
#define MLKV_TOKENIZER_ADDED_VOCABULARY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "tokenizer/normalizer.h"

namespace mlkv {

// One entry of tokenizer.json's "added_tokens".
struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool single_word = false;  // match only where no word character touches either end
  bool lstrip = false;       // the match takes the whitespace before it
  bool rstrip = false;       // the match takes the whitespace after it
  bool normalized = true;    // matched in the normalized text (else in the raw text)
};

// A stretch of text: plain text for the next stage, or a matched added token.
struct TextPiece {
  size_t begin = 0;
  size_t end = 0;
  std::optional<int32_t> id;  // set for an added token
};

// Finds added tokens, leftmost first and longest among those starting at the same byte (the
// Aho-Corasick "leftmost-longest" search Hugging Face uses), then applies each token's flags.
// Immutable after construction: safe to use from several threads.
class AddedVocabulary {
 public:
  // `normalizer` is applied to the content of `normalized` tokens, since those are matched in
  // normalized text.
  AddedVocabulary(std::vector<AddedToken> tokens, NormalizerKind normalizer);

  // Splits raw text with the tokens that have normalized == false.
  void SplitRaw(std::string_view text, std::vector<TextPiece>* pieces) const {
    Split(raw_trie_, text, pieces);
  }
  // Splits (already normalized) text with the tokens that have normalized == true.
  void SplitNormalized(std::string_view text, std::vector<TextPiece>* pieces) const {
    Split(normalized_trie_, text, pieces);
  }

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  // The added token with this id, or nullptr.
  const AddedToken* Find(int32_t id) const;
  bool empty() const { return tokens_.empty(); }

 private:
  // A byte trie over the patterns of one pass; node 0 is the root.
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
      int32_t token = -1;                                 // index into tokens_ when a pattern ends
    };
    std::vector<Node> nodes{Node()};
    bool first_byte[256] = {};  // whether any pattern starts with this byte

    void Insert(std::string_view pattern, int32_t token);
    // The longest pattern that starts at text[pos]: (length, token index).
    std::optional<std::pair<size_t, int32_t>> LongestAt(std::string_view text, size_t pos) const;
  };

  void Split(const Trie& trie, std::string_view text, std::vector<TextPiece>* pieces) const;

  std::vector<AddedToken> tokens_;
  absl::flat_hash_map<int32_t, size_t> by_id_;
  Trie raw_trie_;
  Trie normalized_trie_;
};

}  // namespace mlkv

#endif  // MLKV_TOKENIZER_ADDED_VOCABULARY_H_
