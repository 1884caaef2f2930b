// Command-line flags of one `mlkv` subcommand: `--name value` or `--name=value`, each flag known
// in advance, every value checked, and every error naming the flag. (absl::flags registers flags
// globally, which does not fit a tool whose subcommands take different flags.)
#ifndef MLKV_CLI_FLAGS_H_
#define MLKV_CLI_FLAGS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mlkv::cli {

class Flags {
 public:
  // `allowed` lists flag names without dashes; `switches` those that take no value;
  // `repeatable` those that may be given more than once (read them with IntLists). A --help
  // anywhere (unless "help" is a flag of the command) asks for help(): nothing else is parsed.
  static absl::StatusOr<Flags> Parse(const std::vector<std::string>& args,
                                     const std::set<std::string>& allowed,
                                     const std::set<std::string>& switches = {},
                                     const std::set<std::string>& repeatable = {});

  // --help was given: print Usage() and do nothing else.
  bool help() const { return help_; }
  // "usage: <command> [FLAGS]" and every flag Parse accepts, from the sets it was given.
  std::string Usage(const std::string& command) const;

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  bool Switch(const std::string& name) const { return Has(name); }
  absl::StatusOr<std::string> RequiredString(const std::string& name) const;
  std::string String(const std::string& name, const std::string& fallback) const;
  // Integers and numbers in [min, max]; the fallback is used when the flag is absent.
  absl::StatusOr<int64_t> Int(const std::string& name, int64_t fallback, int64_t min,
                              int64_t max) const;
  absl::StatusOr<std::optional<int64_t>> OptionalInt(const std::string& name, int64_t min,
                                                     int64_t max) const;
  absl::StatusOr<double> Double(const std::string& name, double fallback, double min,
                                double max) const;
  // A comma-separated list of integers in [min, max]; at least one.
  absl::StatusOr<std::vector<int64_t>> IntList(const std::string& name, int64_t min,
                                               int64_t max) const;
  // Every occurrence of a flag, in order (empty when absent).
  std::vector<std::string> Strings(const std::string& name) const;
  // Every occurrence of a repeatable flag, each a list as for IntList; at least one occurrence.
  absl::StatusOr<std::vector<std::vector<int64_t>>> IntLists(const std::string& name, int64_t min,
                                                             int64_t max) const;

 private:
  // The value of the flag's first occurrence; null when the flag is absent.
  const std::string* First(const std::string& name) const;

  std::map<std::string, std::vector<std::string>> values_;  // every occurrence, in order
  bool help_ = false;
  // What Parse accepted, for Usage.
  std::set<std::string> allowed_, switches_, repeatable_;
};

// When `flags` asked for --help, prints flags.Usage(command) to stdout and returns true: the
// command then returns success without running.
bool PrintUsageIfAsked(const Flags& flags, const std::string& command);

// The bytes of the file `path` that flag --`flag` names, or of standard input for "-"; errors
// name the flag and the path.
absl::StatusOr<std::string> ReadFlagInput(const std::string& flag, const std::string& path);

}  // namespace mlkv::cli

#endif  // MLKV_CLI_FLAGS_H_
