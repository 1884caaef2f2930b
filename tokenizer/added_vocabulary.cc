// Matching added tokens; see added_vocabulary.h.
#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "tokenizer/char_classes.h"
#include "tokenizer/utf8.h"

namespace mlkv {
namespace {

// Where the whitespace at the end of text[0, end) begins.
size_t TrailingWhitespaceStart(std::string_view text, size_t end) {
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    int length = 0;
    if (!IsWhitespace(utf8::DecodeAt(text, start, &length))) break;
    end = start;
  }
  return end;
}

// Where the whitespace that starts at text[begin] ends.
size_t LeadingWhitespaceEnd(std::string_view text, size_t begin) {
  while (begin < text.size()) {
    int length = 0;
    if (!IsWhitespace(utf8::DecodeAt(text, begin, &length))) break;
    begin += length;
  }
  return begin;
}

}  // namespace

void AddedVocabulary::Trie::Insert(std::string_view pattern, int32_t token) {
  first_byte[static_cast<uint8_t>(pattern[0])] = true;
  int32_t node = 0;
  for (char c : pattern) {
    const uint8_t byte = static_cast<uint8_t>(c);
    auto& children = nodes[node].children;
    auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(byte, int32_t{0}),
                               [](const auto& a, const auto& b) { return a.first < b.first; });
    if (it != children.end() && it->first == byte) {
      node = it->second;
    } else {
      const int32_t child = static_cast<int32_t>(nodes.size());
      children.insert(it, {byte, child});
      nodes.emplace_back();  // invalidates `children`; not used after this
      node = child;
    }
  }
  // Two tokens cannot have the same pattern (the loader rejects duplicate contents); if
  // normalization makes two patterns equal, the first one listed keeps it.
  if (nodes[node].token < 0) nodes[node].token = token;
}

std::optional<std::pair<size_t, int32_t>> AddedVocabulary::Trie::LongestAt(std::string_view text,
                                                                           size_t pos) const {
  std::optional<std::pair<size_t, int32_t>> best;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const uint8_t byte = static_cast<uint8_t>(text[i]);
    const auto& children = nodes[node].children;
    auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(byte, int32_t{0}),
                               [](const auto& a, const auto& b) { return a.first < b.first; });
    if (it == children.end() || it->first != byte) break;
    node = it->second;
    if (nodes[node].token >= 0) best = std::make_pair(i + 1 - pos, nodes[node].token);
  }
  return best;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, NormalizerKind normalizer)
    : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& token = tokens_[i];
    by_id_.emplace(token.id, i);
    if (token.content.empty()) continue;  // matches nothing (the loader rejects these)
    if (token.normalized) {
      normalized_trie_.Insert(Normalize(normalizer, token.content), static_cast<int32_t>(i));
    } else {
      raw_trie_.Insert(token.content, static_cast<int32_t>(i));
    }
  }
}

const AddedToken* AddedVocabulary::Find(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

// Follows Hugging Face's AddedVocabulary::find_matches: matches are found without regard to the
// flags, so a match that single_word rejects is skipped (not retried shorter), and the search
// resumes after the match itself even when rstrip has taken whitespace beyond it.
void AddedVocabulary::Split(const Trie& trie, std::string_view text,
                            std::vector<TextPiece>* pieces) const {
  size_t plain_start = 0;  // the end of the last piece emitted
  size_t pos = 0;
  while (pos < text.size()) {
    if (!trie.first_byte[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    const auto match = trie.LongestAt(text, pos);
    if (!match) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[match->second];
    size_t start = pos;
    size_t stop = pos + match->first;
    pos = stop;
    if (token.single_word) {
      const bool word_before = start > 0 && IsWordChar(utf8::DecodeBefore(text, start));
      int length = 0;
      const bool word_after = stop < text.size() && IsWordChar(utf8::DecodeAt(text, stop, &length));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) start = std::max(TrailingWhitespaceStart(text, start), plain_start);
    if (token.rstrip) stop = LeadingWhitespaceEnd(text, stop);
    if (plain_start < start) pieces->push_back({plain_start, start, std::nullopt});
    pieces->push_back({start, stop, token.id});
    plain_start = stop;
  }
  if (plain_start < text.size()) pieces->push_back({plain_start, text.size(), std::nullopt});
}

}  // namespace mlkv
