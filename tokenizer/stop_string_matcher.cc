// Stop-string matching over a stream; see stop_string_matcher.h.
#include "tokenizer/stop_string_matcher.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace mlkv {

absl::StatusOr<StopStringMatcher> StopStringMatcher::Create(std::vector<std::string> stop_strings) {
  for (size_t i = 0; i < stop_strings.size(); ++i) {
    if (stop_strings[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("stop string ", i, " is empty"));
    }
  }
  return StopStringMatcher(std::move(stop_strings));
}

size_t StopStringMatcher::LongestPartialMatch() const {
  const std::string_view held(held_);
  size_t best = 0;
  for (const std::string& stop : stop_strings_) {
    // Suffixes longer than `best` only; a full-length one would be a match, found earlier.
    const size_t longest = std::min(held.size(), stop.size() - 1);
    for (size_t length = longest; length > best; --length) {
      if (held.substr(held.size() - length) == std::string_view(stop).substr(0, length)) {
        best = length;
        break;
      }
    }
  }
  return best;
}

StopStringMatcher::Result StopStringMatcher::Feed(std::string_view delta) {
  Result result;
  if (matched_) {
    result.stop = matched_;
    return result;
  }
  // Any match must end inside the delta (held_ holds none), so it starts no earlier than
  // held_.size() + 1 - stop.size() bytes into the new buffer; searching from the start is simply
  // the clearest way to find the first one.
  held_.append(delta);
  size_t best_pos = std::string::npos;
  for (size_t i = 0; i < stop_strings_.size(); ++i) {
    const size_t pos = held_.find(stop_strings_[i]);
    if (pos < best_pos) {
      best_pos = pos;
      matched_ = i;
    }
  }
  if (matched_) {
    result.text = held_.substr(0, best_pos);
    result.stop = matched_;
    held_.clear();
    return result;
  }
  const size_t keep = LongestPartialMatch();
  result.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return result;
}

std::string StopStringMatcher::Flush() {
  std::string text;
  if (!matched_) text.swap(held_);
  held_.clear();
  return text;
}

}  // namespace mlkv
