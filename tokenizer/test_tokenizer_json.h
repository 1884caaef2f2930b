// For the tokenizer's unit tests: small, complete tokenizer.json documents built in code, so each
// test can change one part (a merge, a flag, a component type) and see what the loader does.
#ifndef MLKV_TOKENIZER_TEST_TOKENIZER_JSON_H_
#define MLKV_TOKENIZER_TEST_TOKENIZER_JSON_H_

#include <string>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"
#include "tokenizer/byte_level.h"
#include "tokenizer/byte_level_bpe_json.h"

namespace mlkv::testing {

// A byte-level BPE tokenizer: ids 0..255 are the bytes, then one id per merge in order (the
// merges are given as raw byte strings and written in the byte-level alphabet), then
// "<|endoftext|>" as a special added token. NFC normalizer, ByteLevel everything else.
inline nlohmann::json SmallTokenizerJson(
    const std::vector<std::pair<std::string, std::string>>& merges) {
  using byte_level::BytesToToken;
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[BytesToToken(std::string(1, char(b)))] = b;
  nlohmann::json merge_list = nlohmann::json::array();
  int next_id = 256;
  for (const auto& [left, right] : merges) {
    const std::string merged = BytesToToken(left + right);
    if (!vocab.contains(merged)) vocab[merged] = next_id++;
    merge_list.push_back(BytesToToken(left) + " " + BytesToToken(right));
  }
  const int eot = next_id;
  vocab["<|endoftext|>"] = eot;
  return ByteLevelBpeJson(std::move(vocab), std::move(merge_list), {{eot, "<|endoftext|>"}});
}

// Merges that build " the", "the", "he", "in", "ing", " a", " an", " and": enough for the tests
// to see words merge, stop merging, and merge by rank rather than by position.
inline std::vector<std::pair<std::string, std::string>> SmallMerges() {
  return {{"h", "e"}, {"t", "he"}, {" ", "the"}, {"i", "n"},      {"in", "g"},
          {" ", "a"}, {" a", "n"}, {" an", "d"}, {"\xC3", "\xA9"}};
}

// The id SmallTokenizerJson(SmallMerges()) gives to the result of merge `rank`.
inline int SmallMergeId(int rank) { return 256 + rank; }

}  // namespace mlkv::testing

#endif  // MLKV_TOKENIZER_TEST_TOKENIZER_JSON_H_
