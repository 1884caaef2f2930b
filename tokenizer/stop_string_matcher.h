// Stop strings over streamed text: finds the first occurrence of any of several strings in a
// stream of text deltas, even when it spans deltas (and so tokens), and trims the output there.
#ifndef MLKV_TOKENIZER_STOP_STRING_MATCHER_H_
#define MLKV_TOKENIZER_STOP_STRING_MATCHER_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace mlkv {

// Text that might be the start of a stop string is held back until the next delta shows whether
// it is; everything released is final. After a match the stream is over: the text before the
// match has been released, the stop string itself and everything after it never are.
//
// Thread-safety: one matcher per stream, used from one thread at a time.
class StopStringMatcher {
 public:
  struct Result {
    std::string text;            // safe to send now (possibly empty)
    std::optional<size_t> stop;  // the index in stop_strings of the match, once matched
  };

  // Errors: an empty stop string (it would match before any text).
  static absl::StatusOr<StopStringMatcher> Create(std::vector<std::string> stop_strings);

  // Adds the next delta of (well-formed UTF-8) text. When several stop strings occur, the one
  // that starts first wins; of those starting at the same byte, the first listed.
  Result Feed(std::string_view delta);
  // The stream ended without a match: releases the held-back text.
  std::string Flush();

  bool matched() const { return matched_.has_value(); }
  std::optional<size_t> matched_index() const { return matched_; }
  const std::vector<std::string>& stop_strings() const { return stop_strings_; }
  // Bytes held back (at most the longest stop string's length minus one).
  size_t held_bytes() const { return held_.size(); }

 private:
  explicit StopStringMatcher(std::vector<std::string> stop_strings)
      : stop_strings_(std::move(stop_strings)) {}
  // The length of the longest suffix of held_ that is a proper prefix of some stop string.
  size_t LongestPartialMatch() const;

  std::vector<std::string> stop_strings_;
  std::string held_;  // released nothing of this yet; contains no complete stop string
  std::optional<size_t> matched_;
};

}  // namespace mlkv

#endif  // MLKV_TOKENIZER_STOP_STRING_MATCHER_H_
