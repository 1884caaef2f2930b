// Reading JSONL traces; see trace.h.
#include "tools/loadgen/trace.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tools/loadgen/length_distribution.h"

namespace mlkv::loadgen {
namespace {

// A length field: an integer in [1, LengthDistribution::kMaxLength].
absl::StatusOr<int64_t> Length(const nlohmann::json& line, const char* key) {
  const auto it = line.find(key);
  if (it == line.end()) return absl::InvalidArgumentError(absl::StrCat(key, ": missing"));
  if (!it->is_number_integer() || it->get<int64_t>() < 1 ||
      it->get<int64_t>() > LengthDistribution::kMaxLength) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": must be an integer in [1, ",
                                                   LengthDistribution::kMaxLength, "], got ",
                                                   it->dump()));
  }
  return it->get<int64_t>();
}

absl::StatusOr<TraceEntry> ParseLine(const std::string& text) {
  // Parsing without exceptions: a malformed line comes back "discarded".
  const nlohmann::json line = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (line.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!line.is_object()) return absl::InvalidArgumentError("not a JSON object");
  TraceEntry entry;
  const bool has_prompt = line.contains("prompt"), has_len = line.contains("prompt_len");
  if (has_prompt == has_len) {
    return absl::InvalidArgumentError("needs exactly one of \"prompt\" and \"prompt_len\"");
  }
  if (has_prompt) {
    if (!line["prompt"].is_string() || line["prompt"].get<std::string>().empty()) {
      return absl::InvalidArgumentError("prompt: must be a non-empty string");
    }
    entry.prompt = line["prompt"].get<std::string>();
  } else {
    auto len = Length(line, "prompt_len");
    if (!len.ok()) return len.status();
    entry.prompt_len = *len;
  }
  auto output_len = Length(line, "output_len");
  if (!output_len.ok()) return output_len.status();
  entry.output_len = *output_len;
  return entry;
}

}  // namespace

absl::StatusOr<std::vector<TraceEntry>> ParseTrace(std::istream& in, const std::string& source) {
  std::vector<TraceEntry> entries;
  std::string text;
  for (int64_t number = 1; std::getline(in, text); ++number) {
    if (absl::StripAsciiWhitespace(text).empty()) continue;
    auto entry = ParseLine(text);
    if (!entry.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", number, ": ", entry.status().message()));
    }
    entries.push_back(*std::move(entry));
  }
  if (entries.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no requests"));
  return entries;
}

absl::StatusOr<std::vector<TraceEntry>> ReadTraceFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot be opened"));
  return ParseTrace(in, path);
}

}  // namespace mlkv::loadgen
