// Streaming output text with stop strings; see output_text.h.
#include "engine/output_text.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tokenizer/utf8.h"

namespace mlkv {

absl::StatusOr<OutputText> OutputText::Create(const Tokenizer* tokenizer,
                                              std::vector<std::string> stop_strings) {
  for (size_t i = 0; i < stop_strings.size(); ++i) {
    if (!utf8::IsValid(stop_strings[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop: stop string ", i, " is not well-formed UTF-8"));
    }
  }
  absl::StatusOr<StopStringMatcher> matcher = StopStringMatcher::Create(std::move(stop_strings));
  if (!matcher.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("stop: ", matcher.status().message()));
  }
  return OutputText(tokenizer, *std::move(matcher));
}

OutputText::Piece OutputText::Match(const std::string& decoded) {
  StopStringMatcher::Result matched = matcher_.Feed(decoded);
  Piece piece{std::move(matched.text), std::nullopt};
  if (matched.stop) piece.stop_string = matcher_.stop_strings()[*matched.stop];
  return piece;
}

OutputText::Piece OutputText::Add(int32_t token_id) {
  if (stopped()) return {};
  absl::StatusOr<std::string> decoded = decoder_.Add(token_id);
  // An id outside the tokenizer's vocabulary decodes to nothing, as in Hugging Face.
  if (!decoded.ok()) return {};
  return Match(*decoded);
}

OutputText::Piece OutputText::Finish() {
  if (stopped()) return {};
  // The decoder's held-back bytes (U+FFFD now) may still complete a stop string.
  Piece piece = Match(decoder_.Flush());
  if (!piece.stop_string) piece.text += matcher_.Flush();
  return piece;
}

}  // namespace mlkv
