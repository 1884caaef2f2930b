// libFuzzer target over the tokenizer: loading arbitrary tokenizer.json text, encoding arbitrary
// bytes, streaming arbitrary ids, and stop strings over arbitrary deltas. Crashes, sanitizer
// reports and broken invariants (abort) are findings. Built and run by run_fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/incremental_decoder.h"
#include "tokenizer/stop_string_matcher.h"
#include "tokenizer/test_tokenizer_json.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

using mlkv::Tokenizer;

void Require(bool condition) {
  if (!condition) std::abort();
}

// No normalizer and no stripping: decode(encode(s)) must give s back exactly.
const Tokenizer& LosslessTokenizer() {
  static const Tokenizer* tokenizer = [] {
    nlohmann::json json = mlkv::testing::SmallTokenizerJson(mlkv::testing::SmallMerges());
    json["normalizer"] = nullptr;
    const int next = static_cast<int>(json["model"]["vocab"].size());
    json["added_tokens"].push_back({{"id", next}, {"content", "  "}, {"normalized", true}});
    return Tokenizer::FromJson(json.dump())->release();
  }();
  return *tokenizer;
}

// NFC, a prefix space and every added-token flag: only crashes and well-formedness are checked.
const Tokenizer& FlagsTokenizer() {
  static const Tokenizer* tokenizer = [] {
    nlohmann::json json = mlkv::testing::SmallTokenizerJson(mlkv::testing::SmallMerges());
    json["pre_tokenizer"]["add_prefix_space"] = true;
    int next = static_cast<int>(json["model"]["vocab"].size());
    auto add = [&](const char* content, nlohmann::json flags) {
      flags["id"] = next++;
      flags["content"] = content;
      json["added_tokens"].push_back(flags);
    };
    add("<l>", {{"lstrip", true}, {"normalized", false}, {"special", true}});
    add("<r>", {{"rstrip", true}, {"normalized", false}});
    add("cat", {{"single_word", true}});
    add("e\xCC\x81", {{"normalized", true}});
    return Tokenizer::FromJson(json.dump())->release();
  }();
  return *tokenizer;
}

void FuzzLoad(std::string_view json) {
  auto tokenizer = Tokenizer::FromJson(json);
  if (!tokenizer.ok()) {
    Require(!tokenizer.status().message().empty());
    return;
  }
  auto ids = (*tokenizer)->Encode("Hello  world <|endoftext|> caf\xC3\xA9 123");
  if (ids.ok()) Require((*tokenizer)->Decode(*ids).ok());
}

void FuzzEncode(std::string_view text) {
  const bool valid = mlkv::utf8::IsValid(text);
  auto ids = LosslessTokenizer().Encode(text);
  Require(ids.ok() == valid);
  if (!valid) return;
  auto back = LosslessTokenizer().Decode(*ids);
  Require(back.ok() && *back == text);
  mlkv::IncrementalDecoder decoder(&LosslessTokenizer());
  std::string streamed;
  for (int32_t id : *ids) streamed += *decoder.Add(id);
  streamed += decoder.Flush();
  Require(streamed == text);
  auto flagged = FlagsTokenizer().Encode(text);
  Require(flagged.ok());
  auto decoded = FlagsTokenizer().Decode(*flagged);
  Require(decoded.ok() && mlkv::utf8::IsValid(*decoded));
}

void FuzzStream(std::string_view bytes) {
  const Tokenizer& tokenizer = LosslessTokenizer();
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    ids.push_back((static_cast<uint8_t>(bytes[i]) << 8 | static_cast<uint8_t>(bytes[i + 1])) %
                  (tokenizer.vocab_size() + 4));
  }
  mlkv::IncrementalDecoder decoder(&tokenizer);
  std::string streamed;
  std::vector<int32_t> accepted;
  for (int32_t id : ids) {
    auto delta = decoder.Add(id);
    Require(delta.ok() == tokenizer.TokenBytes(id).ok());
    if (!delta.ok()) continue;
    Require(mlkv::utf8::IsValid(*delta));
    streamed += *delta;
    accepted.push_back(id);
  }
  streamed += decoder.Flush();
  Require(streamed == *tokenizer.Decode(accepted));
}

// Stop strings and deltas separated by 0x00 bytes; the first two pieces are the stop strings.
void FuzzStopStrings(std::string_view bytes) {
  std::vector<std::string> pieces;
  size_t start = 0;
  for (size_t i = 0; i <= bytes.size(); ++i) {
    if (i == bytes.size() || bytes[i] == '\0') {
      pieces.emplace_back(bytes.substr(start, i - start));
      start = i + 1;
    }
  }
  std::vector<std::string> stops;
  for (size_t i = 0; i < 2 && i < pieces.size(); ++i) {
    if (!pieces[i].empty()) stops.push_back(pieces[i]);
  }
  auto matcher = mlkv::StopStringMatcher::Create(stops);
  Require(matcher.ok());
  std::string all, released;
  std::optional<size_t> stop;
  for (size_t i = 2; i < pieces.size() && !stop; ++i) {
    all += pieces[i];
    auto result = matcher->Feed(pieces[i]);
    released += result.text;
    stop = result.stop;
  }
  if (!stop) released += matcher->Flush();
  // The released text is what precedes the first occurrence of any stop string.
  size_t first = std::string::npos;
  for (const std::string& s : stops) first = std::min(first, all.find(s));
  Require(stop.has_value() == (first != std::string::npos));
  Require(released == all.substr(0, first));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      FuzzLoad(rest);
      break;
    case 1:
      FuzzEncode(rest);
      break;
    case 2:
      FuzzStream(rest);
      break;
    default:
      FuzzStopStrings(rest);
      break;
  }
  return 0;
}
