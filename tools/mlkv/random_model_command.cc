// `mlkv random-model`: a checkpoint directory with seeded random weights for a given config, for
// tests, benchmarks and the default smoke-test model.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "cli/flags.h"
#include "common/status_macros.h"
#include "model/random_model.h"
#include "tools/mlkv/commands.h"

namespace mlkv::cli {

absl::Status RunRandomModel(const Args& args) {
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(args, {"config", "seed", "out", "dtype"}));
  if (PrintUsageIfAsked(flags, "mlkv random-model")) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string config_path, flags.RequiredString("config"));
  ASSIGN_OR_RETURN(std::string out_dir, flags.RequiredString("out"));
  ASSIGN_OR_RETURN(int64_t seed, flags.Int("seed", 0, 0, std::numeric_limits<int64_t>::max()));
  const std::string dtype_name = flags.String("dtype", "f32");
  std::optional<DType> dtype = ParseDType(dtype_name);
  if (!dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat("--dtype: must be f32, f16 or bf16, got \"", dtype_name, "\""));
  }
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::FromFile(config_path));
  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  if (error)
    return absl::InternalError(
        absl::StrCat("--out: cannot create ", out_dir, ": ", error.message()));
  return WriteRandomModel(config, static_cast<uint64_t>(seed), *dtype, out_dir);
}

}  // namespace mlkv::cli
