// `mlkv tokenize`: text to token ids with a tokenizer.json, for one text or, with --jsonl-in,
// one JSON string per line (what the conformance tests use to check thousands of strings).
#include <cstdio>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/flags.h"
#include "cli/model_flags.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tokenizer/tokenizer.h"
#include "tools/mlkv/commands.h"

namespace mlkv::cli {
namespace {

// "[1,2,3]" or "1 2 3".
std::string FormatIds(const std::vector<int32_t>& ids, bool json) {
  std::string joined = absl::StrJoin(ids, json ? "," : " ");
  return json ? absl::StrCat("[", joined, "]") : joined;
}

// Each line a JSON string; prints each encoding as a JSON array, a line each, in order.
absl::Status TokenizeJsonLines(const Tokenizer& tokenizer, const std::string& input) {
  std::istringstream lines(input);
  std::string line, out;
  for (int64_t number = 1; std::getline(lines, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const nlohmann::json value = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded() || !value.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--jsonl-in: line ", number, " is not a JSON string"));
    }
    auto ids = tokenizer.Encode(value.get_ref<const std::string&>());
    if (!ids.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--jsonl-in: line ", number, ": ", ids.status().message()));
    }
    out += FormatIds(*ids, /*json=*/true);
    out += '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunTokenize(const Args& args) {
  ASSIGN_OR_RETURN(Flags flags,
                   Flags::Parse(args, {"tokenizer", "text", "text-file", "jsonl-in", "format"}));
  if (PrintUsageIfAsked(flags, "mlkv tokenize")) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string path, flags.RequiredString("tokenizer"));
  const int inputs = flags.Has("text") + flags.Has("text-file") + flags.Has("jsonl-in");
  if (inputs != 1) {
    return absl::InvalidArgumentError("give exactly one of --text, --text-file and --jsonl-in");
  }
  ASSIGN_OR_RETURN(bool json, JsonFormatFromFlags(flags));
  if (flags.Has("jsonl-in") && flags.Has("format")) {
    return absl::InvalidArgumentError("--format: --jsonl-in always prints JSON lines");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::FromFile(path));
  if (flags.Has("jsonl-in")) {
    ASSIGN_OR_RETURN(std::string input, ReadFlagInput("jsonl-in", flags.String("jsonl-in", "")));
    return TokenizeJsonLines(*tokenizer, input);
  }
  std::string text;
  if (flags.Has("text")) {
    text = flags.String("text", "");
  } else {
    ASSIGN_OR_RETURN(text, ReadFlagInput("text-file", flags.String("text-file", "")));
  }
  auto ids = tokenizer->Encode(text);
  if (!ids.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flags.Has("text") ? "--text: " : "--text-file: ", ids.status().message()));
  }
  const std::string out = json ? absl::StrCat("{\"token_ids\": ", FormatIds(*ids, true), "}\n")
                               : FormatIds(*ids, false) + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return absl::OkStatus();
}

}  // namespace mlkv::cli
