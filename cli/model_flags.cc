// The flags shared by model-running subcommands; see model_flags.h.
#include "cli/model_flags.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cuda/attention_plan.h"

namespace mlkv::cli {

const std::set<std::string> kModelFlags = {"model",
                                           "threads",
                                           "block-size",
                                           "kv-dtype",
                                           "weight-dtype",
                                           "prefill-chunk",
                                           "kv-cache-bytes",
                                           "kv-cache-fraction",
                                           "memory-limit-bytes",
                                           "max-model-len",
                                           "max-num-batched-tokens",
                                           "max-num-seqs",
                                           "tokenizer",
                                           "device",
                                           "sampling-placement",
                                           "cuda-attention"};
const std::set<std::string> kModelSwitches = {"no-prefix-caching", "cuda-graphs"};
const std::set<std::string> kSamplingFlags = {
    "temperature",       "top-k", "top-p", "min-p", "repetition-penalty", "presence-penalty",
    "frequency-penalty", "seed"};

std::set<std::string> Union(std::initializer_list<std::set<std::string>> sets) {
  std::set<std::string> all;
  for (const auto& s : sets) all.insert(s.begin(), s.end());
  return all;
}

namespace {

// --device cpu|cuda, `default_device` when absent.
absl::StatusOr<Device> DeviceFromFlags(const Flags& flags, const std::string& default_device) {
  const std::string device = flags.String("device", default_device);
  if (device == "cpu") return Device::kCpu;
  if (device == "cuda") return Device::kCuda;
  return absl::InvalidArgumentError(
      absl::StrCat("--device: must be cpu or cuda, got \"", device, "\""));
}

// --cuda-attention simt|tensor-core; unset when absent.
absl::StatusOr<std::optional<cuda::AttentionKernel>> AttentionKernelFromFlags(const Flags& flags) {
  if (!flags.Has("cuda-attention")) return std::nullopt;
  const std::string kernel = flags.String("cuda-attention", "");
  if (kernel == "simt") return cuda::AttentionKernel::kSimt;
  if (kernel == "tensor-core") return cuda::AttentionKernel::kTensorCore;
  return absl::InvalidArgumentError(
      absl::StrCat("--cuda-attention: must be simt or tensor-core, got \"", kernel, "\""));
}

// --sampling-placement auto|backend|host (auto when absent).
absl::StatusOr<SamplingPlacement> SamplingPlacementFromFlags(const Flags& flags) {
  const std::string placement = flags.String("sampling-placement", "auto");
  if (placement == "auto") return SamplingPlacement::kAuto;
  if (placement == "backend") return SamplingPlacement::kBackend;
  if (placement == "host") return SamplingPlacement::kHost;
  return absl::InvalidArgumentError(
      absl::StrCat("--sampling-placement: must be auto, backend or host, got \"", placement, "\""));
}

// The scheduling flags; max_model_len is returned apart, as its default is the model's.
absl::StatusOr<SchedulerConfig> SchedulerFromFlags(const Flags& flags,
                                                   std::optional<int32_t>* max_model_len) {
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  ASSIGN_OR_RETURN(int64_t block_size, flags.Int("block-size", 16, 1, 1024));
  ASSIGN_OR_RETURN(int64_t prefill_chunk, flags.Int("prefill-chunk", 0, 0, kInt32Max));
  ASSIGN_OR_RETURN(int64_t batched_tokens, flags.Int("max-num-batched-tokens", 2048, 1, kInt32Max));
  ASSIGN_OR_RETURN(int64_t max_seqs, flags.Int("max-num-seqs", 256, 1, kInt32Max));
  ASSIGN_OR_RETURN(std::optional<int64_t> model_len,
                   flags.OptionalInt("max-model-len", 1, kInt32Max));
  if (model_len) *max_model_len = static_cast<int32_t>(*model_len);
  SchedulerConfig s;
  s.block_size = static_cast<int32_t>(block_size);
  s.max_num_batched_tokens = static_cast<int32_t>(batched_tokens);
  s.max_num_seqs = static_cast<int32_t>(max_seqs);
  s.enable_prefix_caching = !flags.Switch("no-prefix-caching");
  if (prefill_chunk > 0) s.long_prefill_token_threshold = static_cast<int32_t>(prefill_chunk);
  return s;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> BackendFromFlags(const Flags& flags, int threads,
                                                          const std::string& default_device) {
  EngineFactoryOptions options;
  ASSIGN_OR_RETURN(options.device, DeviceFromFlags(flags, default_device));
  ASSIGN_OR_RETURN(options.cuda_attention, AttentionKernelFromFlags(flags));
  options.threads = threads;
  return CreateBackend(options);
}

absl::StatusOr<EngineFactoryOptions> EngineFactoryOptionsFromFlags(const Flags& flags,
                                                                   int64_t tokens_needed) {
  constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
  EngineFactoryOptions options;
  // Absent, the factory says it is required where a model is loaded.
  if (flags.Has("model")) {
    ASSIGN_OR_RETURN(options.model_dir, flags.RequiredString("model"));
  }
  options.tokenizer_path = flags.String("tokenizer", "");
  ASSIGN_OR_RETURN(int64_t threads, flags.Int("threads", 0, 0, 1024));
  options.threads = static_cast<int>(threads);
  if (flags.Has("device")) {
    ASSIGN_OR_RETURN(options.device, DeviceFromFlags(flags, ""));
  }
  ASSIGN_OR_RETURN(options.cuda_attention, AttentionKernelFromFlags(flags));
  ASSIGN_OR_RETURN(options.weight_dtype, DTypeFromFlags(flags, "weight-dtype"));
  ASSIGN_OR_RETURN(options.kv_dtype, DTypeFromFlags(flags, "kv-dtype"));
  ASSIGN_OR_RETURN(options.kv_cache_bytes, flags.OptionalInt("kv-cache-bytes", 1, kInt64Max));
  if (flags.Has("kv-cache-fraction")) {
    ASSIGN_OR_RETURN(options.kv_cache_fraction, flags.Double("kv-cache-fraction", 0.0, 0.0, 1.0));
  }
  ASSIGN_OR_RETURN(options.memory_limit_bytes,
                   flags.OptionalInt("memory-limit-bytes", 1, kInt64Max));
  options.tokens_needed = tokens_needed;
  ASSIGN_OR_RETURN(options.scheduler, SchedulerFromFlags(flags, &options.max_model_len));
  ASSIGN_OR_RETURN(options.sampling_placement, SamplingPlacementFromFlags(flags));
  options.decode_graphs = flags.Switch("cuda-graphs");
  return options;
}

absl::StatusOr<SchedulerConfig> SchedulerConfigFromFlags(const Flags& flags,
                                                         const ModelConfig& config) {
  std::optional<int32_t> max_model_len;
  ASSIGN_OR_RETURN(SchedulerConfig s, SchedulerFromFlags(flags, &max_model_len));
  s.max_model_len = max_model_len.value_or(config.max_position_embeddings);
  return s;
}

absl::StatusOr<EngineOptions> EngineOptionsFromFlags(const Flags& flags, const ModelConfig& config,
                                                     int64_t tokens_needed,
                                                     const std::optional<MemoryLimit>& memory,
                                                     const Backend* backend) {
  ASSIGN_OR_RETURN(EngineFactoryOptions options,
                   EngineFactoryOptionsFromFlags(flags, tokens_needed));
  return PlanEngineOptions(options, config, memory, backend);
}

absl::StatusOr<DType> DTypeFromFlags(const Flags& flags, const std::string& name,
                                     DType default_dtype) {
  const std::string value = flags.String(name, DTypeName(default_dtype));
  std::optional<DType> dtype = ParseDType(value);
  if (!dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": must be f32, f16 or bf16, got \"", value, "\""));
  }
  return *dtype;
}

absl::StatusOr<SamplingParams> SamplingFromFlags(const Flags& flags) {
  constexpr double kHuge = std::numeric_limits<float>::max();
  SamplingParams p;
  ASSIGN_OR_RETURN(double temperature, flags.Double("temperature", 0.0, 0.0, kHuge));
  ASSIGN_OR_RETURN(int64_t top_k, flags.Int("top-k", 0, 0, std::numeric_limits<int32_t>::max()));
  ASSIGN_OR_RETURN(double top_p,
                   flags.Double("top-p", 1.0, std::numeric_limits<double>::min(), 1.0));
  ASSIGN_OR_RETURN(double min_p, flags.Double("min-p", 0.0, 0.0, 1.0));
  ASSIGN_OR_RETURN(double repetition, flags.Double("repetition-penalty", 1.0,
                                                   std::numeric_limits<double>::min(), kHuge));
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
