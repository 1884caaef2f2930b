// Loading, encoding and decoding; see tokenizer.h.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace mlkv {
namespace {

// The bytes the ByteLevel decoder makes of a token: its characters mapped back to bytes, or, when
// some character is outside the byte-level alphabet (e.g. a raw space in an added token), the
// token's own UTF-8 bytes.
std::string DecodedBytes(const std::string& token) {
  std::optional<std::string> bytes = byte_level::TokenToBytes(token);
  return bytes ? *std::move(bytes) : token;
}

// Hugging Face does not take added-token ids from the file: it assigns them as it adds the tokens
// in order (the model's id for a token in the vocabulary, else the next free id after the
// vocabulary). A file whose ids differ would tokenize differently there, so we refuse it.
absl::Status CheckAddedTokenIds(const TokenizerSpec& spec) {
  const int64_t model_size = static_cast<int64_t>(spec.vocab.size());
  std::optional<int64_t> max_added;
  absl::flat_hash_set<std::string_view> seen;
  for (size_t i = 0; i < spec.added_tokens.size(); ++i) {
    const AddedToken& token = spec.added_tokens[i];
    if (!seen.insert(token.content).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("added_tokens[", i, "]: \"", token.content, "\" is listed more than once"));
    }
    int64_t expected;
    if (auto it = spec.vocab.find(token.content); it != spec.vocab.end()) {
      expected = it->second;
    } else if (!max_added) {
      expected = model_size;
    } else {
      expected = (*max_added >= model_size || model_size == 0) ? *max_added + 1 : model_size;
    }
    if (token.id != expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          "added_tokens[", i, "]: \"", token.content, "\" has id ", token.id,
          ", but Hugging Face tokenizers would give it id ", expected,
          " (the model's id for a vocabulary token, else the next id after the vocabulary)"));
    }
    max_added = std::max(max_added.value_or(expected), expected);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open tokenizer file"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  auto tokenizer = FromJson(buffer.str());
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(path, ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json_text) {
  ASSIGN_OR_RETURN(TokenizerSpec spec, ParseTokenizerJson(json_text));
  return FromSpec(std::move(spec));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromSpec(TokenizerSpec spec) {
  RETURN_IF_ERROR(CheckAddedTokenIds(spec));
  ASSIGN_OR_RETURN(std::unique_ptr<BpeModel> bpe,
                   BpeModel::Create(std::move(spec.vocab), spec.merges));
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(spec), std::move(bpe)));
}

Tokenizer::Tokenizer(TokenizerSpec spec, std::unique_ptr<BpeModel> bpe)
    : normalizer_(spec.normalizer),
      bpe_(std::move(bpe)),
      added_(spec.added_tokens, spec.normalizer),
      pre_tokenizer_(spec.add_prefix_space, spec.use_regex) {
  int32_t max_id = -1;
  for (const auto& [token, id] : bpe_->vocab()) max_id = std::max(max_id, id);
  for (const AddedToken& token : added_.tokens()) max_id = std::max(max_id, token.id);
  tokens_.resize(static_cast<size_t>(max_id) + 1);
  for (const auto& [token, id] : bpe_->vocab()) {
    tokens_[id].used = true;
    tokens_[id].bytes = DecodedBytes(token);
  }
  // An added token's content wins over a vocabulary entry of the same id, as in Hugging Face's
  // id_to_token (CheckAddedTokenIds makes them agree anyway).
  for (const AddedToken& token : added_.tokens()) {
    tokens_[token.id].used = true;
    tokens_[token.id].special = token.special;
    tokens_[token.id].bytes = DecodedBytes(token.content);
  }
}

void Tokenizer::EncodePlain(std::string_view text, std::vector<int32_t>* ids) const {
  std::string scratch;
  std::vector<std::string_view> words;
  pre_tokenizer_.Split(text, &scratch, &words);
  for (std::string_view word : words) bpe_->EncodeWord(word, ids);
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text) const {
  if (std::optional<size_t> bad = utf8::FirstInvalidOffset(text)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("text is not valid UTF-8: ill-formed byte 0x%02X at offset %d",
                        static_cast<uint8_t>(text[*bad]), *bad));
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  std::vector<TextPiece> raw_pieces, normalized_pieces;
  added_.SplitRaw(text, &raw_pieces);
  for (const TextPiece& raw : raw_pieces) {
    if (raw.id) {
      ids.push_back(*raw.id);
      continue;
    }
    const std::string_view piece = text.substr(raw.begin, raw.end - raw.begin);
    std::string normalized_storage;
    std::string_view normalized = piece;
    if (!IsTriviallyNormalized(normalizer_, piece)) {
      normalized_storage = Normalize(normalizer_, piece);
      normalized = normalized_storage;
    }
    normalized_pieces.clear();
    added_.SplitNormalized(normalized, &normalized_pieces);
    for (const TextPiece& part : normalized_pieces) {
      if (part.id) {
        ids.push_back(*part.id);
      } else {
        EncodePlain(normalized.substr(part.begin, part.end - part.begin), &ids);
      }
    }
  }
  return ids;
}

absl::StatusOr<std::string_view> Tokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size() || !tokens_[id].used) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id ", id, " is not in the vocabulary (", vocab_size(), " ids)"));
  }
  return std::string_view(tokens_[id].bytes);
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && tokens_[id].special;
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids,
                                              const DecodeOptions& options) const {
  std::string bytes;
  for (int32_t id : ids) {
    ASSIGN_OR_RETURN(std::string_view token, TokenBytes(id));
    if (options.skip_special_tokens && tokens_[id].special) continue;
    bytes.append(token);
  }
  std::string text;
  text.reserve(bytes.size());
  utf8::AppendLossy(bytes, &text);
  return text;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  for (const AddedToken& added : added_.tokens()) {
    if (added.content == token) return added.id;
  }
  auto it = bpe_->vocab().find(absl::string_view(token.data(), token.size()));
  if (it == bpe_->vocab().end()) return std::nullopt;
  return it->second;
}

}  // namespace mlkv
