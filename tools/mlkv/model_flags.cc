// The flags shared by model-running subcommands; see model_flags.h.
#include "tools/mlkv/model_flags.h"

#include <filesystem>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/host_memory.h"
#include "engine/kv_capacity.h"
#include "kernels/cpu/cpu_backend.h"
#include "spdlog/spdlog.h"

namespace mlkv::cli {

const std::set<std::string> kModelFlags = {
    "model",         "threads",           "block-size",         "kv-dtype",
    "prefill-chunk", "kv-cache-bytes",    "kv-cache-fraction",  "memory-limit-bytes",
    "max-model-len", "max-num-batched-tokens", "max-num-seqs"};
const std::set<std::string> kModelSwitches = {"no-prefix-caching"};
const std::set<std::string> kSamplingFlags = {
    "temperature",      "top-k",           "top-p", "min-p", "repetition-penalty",
    "presence-penalty", "frequency-penalty", "seed"};

std::set<std::string> Union(std::initializer_list<std::set<std::string>> sets) {
  std::set<std::string> all;
  for (const auto& s : sets) all.insert(s.begin(), s.end());
  return all;
}

absl::StatusOr<LoadedModel> LoadModelFromFlags(const Flags& flags) {
  ASSIGN_OR_RETURN(std::string dir, flags.RequiredString("model"));
  if (!std::filesystem::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat("--model: ", dir, " is not a directory"));
  }
  ASSIGN_OR_RETURN(int64_t threads, flags.Int("threads", 0, 0, 1024));
  LoadedModel loaded;
  loaded.backend = CreateCpuBackend(static_cast<int>(threads));
  ASSIGN_OR_RETURN(loaded.model, Model::Load(dir, loaded.backend.get()));
  return loaded;
}

absl::StatusOr<DType> KvDtypeFromFlags(const Flags& flags) {
  const std::string name = flags.String("kv-dtype", "f32");
  if (name == "f32") return DType::kF32;
  if (name == "bf16") return DType::kBF16;
  return absl::InvalidArgumentError(absl::StrCat("--kv-dtype: must be f32 or bf16, got \"", name, "\""));
}

absl::StatusOr<EngineOptions> EngineOptionsFromFlags(const Flags& flags, const ModelConfig& config,
                                                     int64_t tokens_needed) {
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  ASSIGN_OR_RETURN(int64_t block_size, flags.Int("block-size", 16, 1, 1024));
  ASSIGN_OR_RETURN(DType kv_dtype, KvDtypeFromFlags(flags));
  ASSIGN_OR_RETURN(int64_t prefill_chunk, flags.Int("prefill-chunk", 0, 0, kInt32Max));
  ASSIGN_OR_RETURN(int64_t batched_tokens,
                   flags.Int("max-num-batched-tokens", 2048, 1, kInt32Max));
  ASSIGN_OR_RETURN(int64_t max_seqs, flags.Int("max-num-seqs", 256, 1, kInt32Max));
  ASSIGN_OR_RETURN(int64_t max_model_len,
                   flags.Int("max-model-len", config.max_position_embeddings, 1, kInt32Max));

  int64_t num_blocks = (tokens_needed + block_size - 1) / block_size;
  if (flags.Has("kv-cache-bytes") || flags.Has("kv-cache-fraction")) {
    KvBudget budget;
    ASSIGN_OR_RETURN(budget.kv_cache_bytes,
                     flags.OptionalInt("kv-cache-bytes", 1, std::numeric_limits<int64_t>::max()));
    if (flags.Has("kv-cache-fraction")) {
      ASSIGN_OR_RETURN(budget.kv_cache_fraction, flags.Double("kv-cache-fraction", 0.0, 0.0, 1.0));
    }
    ASSIGN_OR_RETURN(budget.memory_limit_bytes,
                     flags.Int("memory-limit-bytes", HostMemoryBytes(), 1,
                               std::numeric_limits<int64_t>::max()));
    budget.weight_bytes = config.num_parameters() * 4;  // the CPU backend holds float32 weights
    ASSIGN_OR_RETURN(KvCapacity capacity,
                     PlanKvCapacity(config, kv_dtype, block_size, max_model_len, budget));
    spdlog::info("{}", DescribeKvCapacity(capacity));
    num_blocks = capacity.num_blocks;
  }
  EngineOptions options;
  options.kv_dtype = kv_dtype;
  SchedulerConfig& s = options.scheduler;
  s.block_size = static_cast<int32_t>(block_size);
  s.num_blocks = static_cast<int32_t>(std::min(num_blocks, kInt32Max));
  s.max_model_len = static_cast<int32_t>(max_model_len);
  s.max_num_batched_tokens = static_cast<int32_t>(batched_tokens);
  s.max_num_seqs = static_cast<int32_t>(max_seqs);
  s.enable_prefix_caching = !flags.Switch("no-prefix-caching");
  if (prefill_chunk > 0) s.long_prefill_token_threshold = static_cast<int32_t>(prefill_chunk);
  return options;
}

absl::StatusOr<std::unique_ptr<Engine>> CreateEngineFromFlags(const Flags& flags,
                                                              int64_t tokens_needed) {
  ASSIGN_OR_RETURN(LoadedModel loaded, LoadModelFromFlags(flags));
  ASSIGN_OR_RETURN(EngineOptions options,
                   EngineOptionsFromFlags(flags, loaded.model->config(), tokens_needed));
  return Engine::Create(options, std::move(loaded.backend), std::move(loaded.model));
}

absl::StatusOr<SamplingParams> SamplingFromFlags(const Flags& flags) {
  constexpr double kHuge = std::numeric_limits<float>::max();
  SamplingParams p;
  ASSIGN_OR_RETURN(double temperature, flags.Double("temperature", 0.0, 0.0, kHuge));
  ASSIGN_OR_RETURN(int64_t top_k, flags.Int("top-k", 0, 0, std::numeric_limits<int32_t>::max()));
  ASSIGN_OR_RETURN(double top_p, flags.Double("top-p", 1.0, std::numeric_limits<double>::min(), 1.0));
  ASSIGN_OR_RETURN(double min_p, flags.Double("min-p", 0.0, 0.0, 1.0));
  ASSIGN_OR_RETURN(double repetition,
                   flags.Double("repetition-penalty", 1.0, std::numeric_limits<double>::min(), kHuge));
  ASSIGN_OR_RETURN(double presence, flags.Double("presence-penalty", 0.0, -2.0, 2.0));
  ASSIGN_OR_RETURN(double frequency, flags.Double("frequency-penalty", 0.0, -2.0, 2.0));
  ASSIGN_OR_RETURN(std::optional<int64_t> seed,
                   flags.OptionalInt("seed", 0, std::numeric_limits<int64_t>::max()));
  p.temperature = static_cast<float>(temperature);
  p.top_k = static_cast<int32_t>(top_k);
  p.top_p = static_cast<float>(top_p);
  p.min_p = static_cast<float>(min_p);
  p.repetition_penalty = static_cast<float>(repetition);
  p.presence_penalty = static_cast<float>(presence);
  p.frequency_penalty = static_cast<float>(frequency);
  if (seed) p.seed = static_cast<uint64_t>(*seed);
  RETURN_IF_ERROR(p.Validate());
  return p;
}

absl::StatusOr<std::vector<std::vector<int32_t>>> TokenIdsFromFlags(const Flags& flags) {
  ASSIGN_OR_RETURN(auto lists, flags.IntLists("token-ids", 0, std::numeric_limits<int32_t>::max()));
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& ids : lists) prompts.emplace_back(ids.begin(), ids.end());
  return prompts;
}

absl::StatusOr<bool> JsonFormatFromFlags(const Flags& flags) {
  const std::string format = flags.String("format", "text");
  if (format != "text" && format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("--format: must be text or json, got \"", format, "\""));
  }
  return format == "json";
}

}  // namespace mlkv::cli
