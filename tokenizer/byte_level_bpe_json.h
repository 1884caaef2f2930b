// Writes the tokenizer.json document of a byte-level BPE tokenizer (the GPT-2 / GPT-NeoX kind):
// what `mlkv random-model` ships with its models, and what the tokenizer tests build on.
#ifndef MLKV_TOKENIZER_BYTE_LEVEL_BPE_JSON_H_
#define MLKV_TOKENIZER_BYTE_LEVEL_BPE_JSON_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"

namespace mlkv {

// A Hugging Face tokenizer.json: NFC normalizer; ByteLevel pre-tokenizer, post-processor and
// decoder (GPT-2's split pattern, no prefix space); a BPE model of `vocab` (an object: token as
// written in the byte-level alphabet -> id) and `merges` (an array of "left right" strings);
// `special_tokens` (id, content) as added tokens matched in the raw text and marked special.
nlohmann::json ByteLevelBpeJson(nlohmann::json vocab, nlohmann::json merges,
                                const std::vector<std::pair<int64_t, std::string>>& special_tokens);

}  // namespace mlkv

#endif  // MLKV_TOKENIZER_BYTE_LEVEL_BPE_JSON_H_
