// Streaming detokenization; see incremental_decoder.h.
#include "tokenizer/incremental_decoder.h"

#include "common/status_macros.h"
#include "tokenizer/utf8.h"

namespace mlkv {

// Why the deltas concatenate to Decode(all): the bytes released end just before a truncated but
// well-formed sequence, which begins with a lead byte. No sequence can run across a lead byte, so
// the U+FFFD repair of the released bytes is the repair the whole would get up to that point.
absl::StatusOr<std::string> IncrementalDecoder::Add(int32_t id) {
  ASSIGN_OR_RETURN(std::string_view bytes, tokenizer_->TokenBytes(id));
  if (options_.skip_special_tokens && tokenizer_->IsSpecial(id)) return std::string();
  pending_.append(bytes);
  const size_t keep = static_cast<size_t>(utf8::IncompleteSuffixLength(pending_));
  std::string text;
  utf8::AppendLossy(std::string_view(pending_).substr(0, pending_.size() - keep), &text);
  pending_.erase(0, pending_.size() - keep);
  return text;
}

std::string IncrementalDecoder::Flush() {
  std::string text;
  utf8::AppendLossy(pending_, &text);
  pending_.clear();
  return text;
}

}  // namespace mlkv
