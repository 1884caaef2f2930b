// `mlkv detokenize`: token ids to text with a tokenizer.json, for one list of ids or, with
// --jsonl-in, one JSON array of ids per line.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/flags.h"
#include "cli/model_flags.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tokenizer/tokenizer.h"
#include "tools/mlkv/commands.h"

namespace mlkv::cli {
namespace {

constexpr int64_t kMaxId = std::numeric_limits<int32_t>::max();

std::string JsonString(const std::string& text) {
  // Decoded text is always well-formed UTF-8 (ill-formed bytes became U+FFFD).
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Each line a JSON array of ids; prints each decoding as a JSON string, a line each, in order.
absl::Status DetokenizeJsonLines(const Tokenizer& tokenizer, const std::string& path,
                                 const DecodeOptions& options) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return absl::NotFoundError(absl::StrCat("--jsonl-in: cannot open ", path));
    in = &file;
  }
  std::string line, out;
  for (int64_t number = 1; std::getline(*in, line); ++number) {
    const nlohmann::json value = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    std::vector<int32_t> ids;
    bool ok = !value.is_discarded() && value.is_array();
    for (size_t i = 0; ok && i < value.size(); ++i) {
      ok = value[i].is_number_integer() && value[i].get<int64_t>() >= 0 &&
           value[i].get<int64_t>() <= kMaxId;
      if (ok) ids.push_back(static_cast<int32_t>(value[i].get<int64_t>()));
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--jsonl-in: line ", number, " is not a JSON array of non-negative integer ids"));
    }
    auto text = tokenizer.Decode(ids, options);
    if (!text.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--jsonl-in: line ", number, ": ", text.status().message()));
    }
    out += JsonString(*text);
    out += '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunDetokenize(const Args& args) {
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(args, {"tokenizer", "token-ids", "jsonl-in", "format"},
                                             {"skip-special-tokens"}));
  if (PrintUsageIfAsked(flags, "mlkv detokenize")) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string path, flags.RequiredString("tokenizer"));
  if (flags.Has("token-ids") == flags.Has("jsonl-in")) {
    return absl::InvalidArgumentError("give exactly one of --token-ids and --jsonl-in");
  }
  ASSIGN_OR_RETURN(bool json, JsonFormatFromFlags(flags));
  if (flags.Has("jsonl-in") && flags.Has("format")) {
    return absl::InvalidArgumentError("--format: --jsonl-in always prints JSON lines");
  }
  const DecodeOptions options{.skip_special_tokens = flags.Switch("skip-special-tokens")};
  std::vector<int32_t> ids;
  if (flags.Has("token-ids")) {
    ASSIGN_OR_RETURN(std::vector<int64_t> wide, flags.IntList("token-ids", 0, kMaxId));
    ids.assign(wide.begin(), wide.end());
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::FromFile(path));
  if (flags.Has("jsonl-in")) {
    return DetokenizeJsonLines(*tokenizer, flags.String("jsonl-in", ""), options);
  }
  auto text = tokenizer->Decode(ids, options);
  if (!text.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--token-ids: ", text.status().message()));
  }
  // Text goes out exactly as decoded, with no newline added, so that output == text.
  const std::string out = json ? absl::StrCat("{\"text\": ", JsonString(*text), "}\n") : *text;
  std::fwrite(out.data(), 1, out.size(), stdout);
  return absl::OkStatus();
}

}  // namespace mlkv::cli
