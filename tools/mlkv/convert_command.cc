// `mlkv convert`: turns a standard MHA checkpoint into its GQA/MQA/MLKV variant (model.md).
#include "absl/strings/str_cat.h"
#include "cli/flags.h"
#include "common/status_macros.h"
#include "model/converter.h"
#include "tools/mlkv/commands.h"

namespace mlkv::cli {

absl::Status RunConvert(const Args& args) {
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(args, {"model", "out", "num-key-value-heads",
                                                    "num-key-value-layers", "pool"}));
  if (PrintUsageIfAsked(flags, "mlkv convert")) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string model_dir, flags.RequiredString("model"));
  ASSIGN_OR_RETURN(std::string out_dir, flags.RequiredString("out"));
  if (!flags.Has("num-key-value-heads")) {
    return absl::InvalidArgumentError("--num-key-value-heads: is required");
  }
  if (!flags.Has("num-key-value-layers")) {
    return absl::InvalidArgumentError("--num-key-value-layers: is required");
  }
  ASSIGN_OR_RETURN(int64_t kv_heads, flags.Int("num-key-value-heads", 0, 1, 1 << 20));
  ASSIGN_OR_RETURN(int64_t kv_layers, flags.Int("num-key-value-layers", 0, 1, 1 << 20));
  const std::string pool = flags.String("pool", "mean");
  if (pool != "mean" && pool != "pairwise") {
    return absl::InvalidArgumentError(
        absl::StrCat("--pool: must be mean or pairwise, got \"", pool, "\""));
  }
  return ConvertCheckpoint(model_dir, out_dir, kv_heads, kv_layers,
                           pool == "mean" ? KvPooling::kMean : KvPooling::kPairwise);
}

}  // namespace mlkv::cli
