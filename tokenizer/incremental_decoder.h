// Streaming detokenization: token ids in, text deltas out, never a partial UTF-8 character.
#ifndef MLKV_TOKENIZER_INCREMENTAL_DECODER_H_
#define MLKV_TOKENIZER_INCREMENTAL_DECODER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "tokenizer/tokenizer.h"

namespace mlkv {

// A byte-level token may end inside a UTF-8 character (an emoji is often 2-4 tokens), so the
// decoder holds back the incomplete tail of the bytes seen so far and releases it once the
// character is complete. Ill-formed bytes become U+FFFD exactly as Tokenizer::Decode would make
// them, so the deltas of Add(...) followed by Flush() always concatenate to Decode(all ids).
//
// Thread-safety: one decoder per stream, used from one thread at a time; the tokenizer it points
// to may be shared.
class IncrementalDecoder {
 public:
  // `tokenizer` is not owned and must outlive the decoder.
  explicit IncrementalDecoder(const Tokenizer* tokenizer, DecodeOptions options = {})
      : tokenizer_(tokenizer), options_(options) {}

  // Appends token `id`; returns the text that is now complete (possibly empty). An id not in the
  // vocabulary is an error and changes nothing.
  absl::StatusOr<std::string> Add(int32_t id);
  // Ends the stream: returns what was held back (an incomplete character becomes U+FFFD) and
  // resets the decoder for a new stream.
  std::string Flush();

  // The number of bytes held back (0-3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;  // not owned
  DecodeOptions options_;
  std::string pending_;  // the bytes of an incomplete, so far well-formed, UTF-8 sequence
};

}  // namespace mlkv

#endif  // MLKV_TOKENIZER_INCREMENTAL_DECODER_H_
