// The `mlkv` subcommands. Each parses its own flags (args exclude the program and command name),
// prints its result on stdout, and returns an error naming what was wrong.
#ifndef MLKV_TOOLS_MLKV_COMMANDS_H_
#define MLKV_TOOLS_MLKV_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace mlkv::cli {

using Args = std::vector<std::string>;

absl::Status RunGenerate(const Args& args);
absl::Status RunScore(const Args& args);
absl::Status RunInspect(const Args& args);
absl::Status RunRandomModel(const Args& args);
absl::Status RunConvert(const Args& args);
absl::Status RunCapacity(const Args& args);
absl::Status RunTokenize(const Args& args);
absl::Status RunDetokenize(const Args& args);

}  // namespace mlkv::cli

#endif  // MLKV_TOOLS_MLKV_COMMANDS_H_
