// Parsing and typed access for command-line flags; see flags.h.
#include "cli/flags.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mlkv::cli {
namespace {

absl::Status FlagError(const std::string& name, const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat("--", name, ": ", reason));
}

absl::StatusOr<int64_t> ParseIntValue(const std::string& name, const std::string& text, int64_t min,
                                      int64_t max) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) {
    return FlagError(name, absl::StrCat("expected an integer, got \"", text, "\""));
  }
  if (value < min || value > max) {
    return FlagError(name, absl::StrCat("must be in [", min, ", ", max, "], got ", value));
  }
  return value;
}

// A comma-separated list of integers in [min, max], at least one.
absl::StatusOr<std::vector<int64_t>> ParseIntList(const std::string& name, const std::string& text,
                                                  int64_t min, int64_t max) {
  if (text.empty()) return FlagError(name, "must not be empty");
  std::vector<int64_t> values;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    auto value = ParseIntValue(name, std::string(absl::StripAsciiWhitespace(part)), min, max);
    if (!value.ok()) return value.status();
    values.push_back(*value);
  }
  return values;
}

}  // namespace

absl::StatusOr<Flags> Flags::Parse(const std::vector<std::string>& args,
                                   const std::set<std::string>& allowed,
                                   const std::set<std::string>& switches,
                                   const std::set<std::string>& repeatable) {
  Flags flags;
  flags.allowed_ = allowed;
  flags.switches_ = switches;
  flags.repeatable_ = repeatable;
  if (allowed.count("help") == 0 && switches.count("help") == 0 &&
      std::find(args.begin(), args.end(), "--help") != args.end()) {
    flags.help_ = true;
    return flags;
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (allowed.count(name) == 0 && switches.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (flags.Has(name) && repeatable.count(name) == 0) {
      return FlagError(name, "given more than once");
    }
    if (switches.count(name) > 0) {
      if (inline_value) return FlagError(name, "takes no value");
    } else if (!inline_value) {
      if (i + 1 >= args.size()) return FlagError(name, "needs a value");
      value = args[++i];
    }
    flags.values_[name].push_back(value);
  }
  return flags;
}

const std::string* Flags::First(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second.front();
}

std::string Flags::Usage(const std::string& command) const {
  std::set<std::string> names = allowed_;
  names.insert(switches_.begin(), switches_.end());
  std::string text = absl::StrCat("usage: ", command, " [FLAGS]\n\nflags:\n");
  for (const std::string& name : names) {
    absl::StrAppend(&text, "  --", name, switches_.count(name) > 0 ? "" : " VALUE",
                    repeatable_.count(name) > 0 ? "  (may be repeated)" : "", "\n");
  }
  absl::StrAppend(&text, "  --help  this list\n");
  return text;
}

bool PrintUsageIfAsked(const Flags& flags, const std::string& command) {
  if (!flags.help()) return false;
  std::fputs(flags.Usage(command).c_str(), stdout);
  return true;
}

absl::StatusOr<std::string> Flags::RequiredString(const std::string& name) const {
  const std::string* value = First(name);
  if (value == nullptr) return FlagError(name, "is required");
  if (value->empty()) return FlagError(name, "must not be empty");
  return *value;
}

std::string Flags::String(const std::string& name, const std::string& fallback) const {
  const std::string* value = First(name);
  return value == nullptr ? fallback : *value;
}

absl::StatusOr<int64_t> Flags::Int(const std::string& name, int64_t fallback, int64_t min,
                                   int64_t max) const {
  const std::string* text = First(name);
  if (text == nullptr) return fallback;
  return ParseIntValue(name, *text, min, max);
}

absl::StatusOr<std::optional<int64_t>> Flags::OptionalInt(const std::string& name, int64_t min,
                                                          int64_t max) const {
  if (!Has(name)) return std::optional<int64_t>();
  auto value = Int(name, 0, min, max);
  if (!value.ok()) return value.status();
  return std::optional<int64_t>(*value);
}

absl::StatusOr<double> Flags::Double(const std::string& name, double fallback, double min,
                                     double max) const {
  const std::string* text = First(name);
  if (text == nullptr) return fallback;
  double value = 0.0;
  if (!absl::SimpleAtod(*text, &value) || !std::isfinite(value)) {
    return FlagError(name, absl::StrCat("expected a number, got \"", *text, "\""));
  }
  if (value < min || value > max) {
    return FlagError(name, absl::StrCat("must be in [", min, ", ", max, "], got ", value));
  }
  return value;
}

absl::StatusOr<std::vector<int64_t>> Flags::IntList(const std::string& name, int64_t min,
                                                    int64_t max) const {
  auto text = RequiredString(name);
  if (!text.ok()) return text.status();
  return ParseIntList(name, *text, min, max);
}

std::vector<std::string> Flags::Strings(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>() : it->second;
}

absl::StatusOr<std::vector<std::vector<int64_t>>> Flags::IntLists(const std::string& name,
                                                                  int64_t min, int64_t max) const {
  auto it = values_.find(name);
  if (it == values_.end()) return FlagError(name, "is required");
  std::vector<std::vector<int64_t>> lists;
  for (const std::string& text : it->second) {
    auto list = ParseIntList(name, text, min, max);
    if (!list.ok()) return list.status();
    lists.push_back(*std::move(list));
  }
  return lists;
}

absl::StatusOr<std::string> ReadFlagInput(const std::string& flag, const std::string& path) {
  std::stringstream buffer;
  if (path == "-") {
    buffer << std::cin.rdbuf();
    return buffer.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("--", flag, ": cannot open ", path));
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("--", flag, ": cannot read ", path));
  return buffer.str();
}

}  // namespace mlkv::cli
