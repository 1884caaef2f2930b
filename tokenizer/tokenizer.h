// A Hugging Face byte-level BPE tokenizer (GPT-NeoX, GPT-2 and their kin) loaded from
// tokenizer.json: text to token ids exactly as the `tokenizers` library encodes, and back.
#ifndef MLKV_TOKENIZER_TOKENIZER_H_
#define MLKV_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_spec.h"

namespace mlkv {

struct DecodeOptions {
  // Leave out the tokens marked "special" in added_tokens (e.g. "<|endoftext|>"). Hugging Face's
  // Python decode() does this by default; we default to keeping them, so that
  // Decode(Encode(s)) == NFC(s) for every s.
  bool skip_special_tokens = false;
};

// Encoding, as Hugging Face does it:
//   1. added tokens with normalized == false are found in the raw text;
//   2. each remaining stretch is normalized (NFC), and the normalized added tokens found in it;
//   3. each remaining stretch is split into words (pre_tokenizer.h), each word BPE-encoded.
// Decoding concatenates the tokens' bytes and replaces ill-formed UTF-8 with U+FFFD.
//
// Thread-safety: immutable after loading except for BPE's internally synchronized word cache;
// every const method may be called from any number of threads at once.
class Tokenizer {
 public:
  // Reads and parses a tokenizer.json file; errors start with the path.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  // Parses the text of a tokenizer.json.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view json_text);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromSpec(TokenizerSpec spec);

  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // The ids of `text`; an error only when `text` is not well-formed UTF-8.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const;

  // The text of `ids`; an error names the first id that is not in the vocabulary.
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                     const DecodeOptions& options = {}) const;

  // The raw bytes token `id` decodes to (possibly part of a UTF-8 character); an error when `id`
  // is not in the vocabulary.
  absl::StatusOr<std::string_view> TokenBytes(int32_t id) const;
  // Whether `id` is an added token marked special (false for ids not in the vocabulary).
  bool IsSpecial(int32_t id) const;

  // The id of a token given as written in tokenizer.json ("<|endoftext|>", "Ġthe").
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // One past the largest id; ids below it may still be unused (then Decode rejects them).
  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }
  const std::vector<AddedToken>& added_tokens() const { return added_.tokens(); }

 private:
  // What decoding needs per id.
  struct TokenInfo {
    bool used = false;
    bool special = false;
    std::string bytes;  // what the ByteLevel decoder makes of the token
  };

  Tokenizer(TokenizerSpec spec, std::unique_ptr<BpeModel> bpe);
  // Step 3 above for one stretch of normalized text.
  void EncodePlain(std::string_view text, std::vector<int32_t>* ids) const;

  NormalizerKind normalizer_;
  std::unique_ptr<BpeModel> bpe_;
  AddedVocabulary added_;
  ByteLevelPreTokenizer pre_tokenizer_;
  std::vector<TokenInfo> tokens_;  // by id
};

}  // namespace mlkv

#endif  // MLKV_TOKENIZER_TOKENIZER_H_
