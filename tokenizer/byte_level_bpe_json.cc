// tokenizer.json documents of byte-level BPE tokenizers; see byte_level_bpe_json.h.
#include "tokenizer/byte_level_bpe_json.h"

namespace mlkv {

nlohmann::json ByteLevelBpeJson(
    nlohmann::json vocab, nlohmann::json merges,
    const std::vector<std::pair<int64_t, std::string>>& special_tokens) {
  nlohmann::json added = nlohmann::json::array();
  for (const auto& [id, content] : special_tokens) {
    added.push_back({{"id", id},
                     {"content", content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  const nlohmann::json byte_level = {{"type", "ByteLevel"},
                                     {"add_prefix_space", false},
                                     {"trim_offsets", true},
                                     {"use_regex", true}};
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", std::move(added)},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer", byte_level},
      {"post_processor", byte_level},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"vocab", std::move(vocab)},
        {"merges", std::move(merges)}}},
  };
}

}  // namespace mlkv
