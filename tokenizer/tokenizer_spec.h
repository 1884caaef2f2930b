// What a tokenizer.json says, parsed and checked against what we support: every setting that
// changes ids or text is either represented here or rejected by ParseTokenizerJson.
#ifndef MLKV_TOKENIZER_TOKENIZER_SPEC_H_
#define MLKV_TOKENIZER_TOKENIZER_SPEC_H_

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/normalizer.h"

namespace mlkv {

struct TokenizerSpec {
  NormalizerKind normalizer = NormalizerKind::kNone;
  // The ByteLevel pre-tokenizer's settings (the only pre-tokenizer supported).
  bool add_prefix_space = false;
  bool use_regex = true;
  std::vector<AddedToken> added_tokens;  // in file order
  BpeModel::Vocab vocab;                 // token text in the byte-level alphabet -> id
  BpeModel::MergeList merges;            // by rank
};

// Parses the text of a Hugging Face tokenizer.json. Errors name the key (e.g. "model.merges[3]")
// and say what is wrong or which feature is unsupported. Supported: normalizer null or NFC (also
// inside a Sequence); pre_tokenizer ByteLevel; model BPE (no dropout, no subword prefix/suffix,
// no byte_fallback); decoder ByteLevel; post_processor null or ByteLevel; no truncation or
// padding; added tokens with any flags.
absl::StatusOr<TokenizerSpec> ParseTokenizerJson(std::string_view json_text);

}  // namespace mlkv

#endif  // MLKV_TOKENIZER_TOKENIZER_SPEC_H_
