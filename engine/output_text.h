// The output text of one request as it streams: token ids in, final text out, cut before the
// first stop string. Keeps the engine loop free of detokenization details.
#ifndef MLKV_ENGINE_OUTPUT_TEXT_H_
#define MLKV_ENGINE_OUTPUT_TEXT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/incremental_decoder.h"
#include "tokenizer/stop_string_matcher.h"
#include "tokenizer/tokenizer.h"

namespace mlkv {

// Decodes as Hugging Face's decode(ids) does by default: special tokens (the EOS that ended a
// request) are left out, and ids the tokenizer does not know (a model's vocabulary is often
// padded past the tokenizer's, e.g. Pythia's 50,304 rows for 50,277 tokens) add no text. So the
// pieces of a request that ends without a stop string concatenate to
// Decode(output ids without unknown ids, {.skip_special_tokens = true}).
//
// Thread-safety: one per request, used from one thread at a time.
class OutputText {
 public:
  struct Piece {
    std::string text;                        // final text, possibly empty
    std::optional<std::string> stop_string;  // set once, by the piece that completed a match
  };

  // `tokenizer` is not owned and must outlive this. Errors (InvalidArgument, "stop: ..."): an
  // empty stop string, or one that is not well-formed UTF-8 (it could match inside a character).
  static absl::StatusOr<OutputText> Create(const Tokenizer* tokenizer,
                                           std::vector<std::string> stop_strings);

  // Adds the next output token. After a stop string matched, adds nothing.
  Piece Add(int32_t token_id);
  // The request ended: releases the text held back (a partial character, a possible start of a
  // stop string), unless a stop string matched. Call once.
  Piece Finish();

  bool stopped() const { return matcher_.matched(); }

 private:
  OutputText(const Tokenizer* tokenizer, StopStringMatcher matcher)
      : decoder_(tokenizer, DecodeOptions{.skip_special_tokens = true}),
        matcher_(std::move(matcher)) {}
  // Runs decoded text through the stop-string matcher.
  Piece Match(const std::string& decoded);

  IncrementalDecoder decoder_;
  StopStringMatcher matcher_;
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_OUTPUT_TEXT_H_
