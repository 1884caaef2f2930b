// The flags shared by model-running subcommands; see model_flags.h.
#include "tools/mlkv/model_flags.h"

#include <filesystem>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/host_memory.h"
#include "engine/kv_capacity.h"
#include "engine/model_workspace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_info.h"
#include "spdlog/spdlog.h"

namespace mlkv::cli {

const std::set<std::string> kModelFlags = {
    "model",         "threads",           "block-size",         "kv-dtype",  "weight-dtype",
    "prefill-chunk", "kv-cache-bytes",    "kv-cache-fraction",  "memory-limit-bytes",
    "max-model-len", "max-num-batched-tokens", "max-num-seqs", "tokenizer", "device",
    "sampling-placement", "cuda-attention"};
const std::set<std::string> kModelSwitches = {"no-prefix-caching", "cuda-graphs"};
const std::set<std::string> kSamplingFlags = {
    "temperature",      "top-k",           "top-p", "min-p", "repetition-penalty",
    "presence-penalty", "frequency-penalty", "seed"};

std::set<std::string> Union(std::initializer_list<std::set<std::string>> sets) {
  std::set<std::string> all;
  for (const auto& s : sets) all.insert(s.begin(), s.end());
  return all;
}

namespace {

// --device cpu|cuda, `default_device` when absent.
absl::StatusOr<std::string> DeviceFromFlags(const Flags& flags,
                                            const std::string& default_device) {
  const std::string device = flags.String("device", default_device);
  if (device != "cpu" && device != "cuda") {
    return absl::InvalidArgumentError(
        absl::StrCat("--device: must be cpu or cuda, got \"", device, "\""));
  }
  return device;
}

// --cuda-attention simt|tensor-core (simt when absent).
absl::StatusOr<cuda::AttentionKernel> AttentionKernelFromFlags(const Flags& flags) {
  const std::string kernel = flags.String("cuda-attention", "simt");
  if (kernel == "simt") return cuda::AttentionKernel::kSimt;
  if (kernel == "tensor-core") return cuda::AttentionKernel::kTensorCore;
  return absl::InvalidArgumentError(
      absl::StrCat("--cuda-attention: must be simt or tensor-core, got \"", kernel, "\""));
}

// The CUDA attention kernel serves up to 16 query heads per KV head and head_dim up to 256.
absl::Status CheckBackendServes(const Backend& backend, const ModelConfig& config) {
  if (backend.name() != "cuda") return absl::OkStatus();
  return cuda::CheckAttentionShape(config.num_attention_heads, config.num_key_value_heads,
                                   config.head_dim);
}

std::string DeviceText(const DeviceMemory& memory) {
  return absl::StrCat("CUDA device 0 (", memory.name, ")");
}

}  // namespace

absl::StatusOr<MemoryLimit> MemoryLimitFromFlags(const Flags& flags) {
  constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
  if (flags.Has("memory-limit-bytes")) {
    ASSIGN_OR_RETURN(const int64_t bytes, flags.Int("memory-limit-bytes", 0, 1, kInt64Max));
    return MemoryLimit{bytes, "--memory-limit-bytes"};
  }
  ASSIGN_OR_RETURN(std::string device, DeviceFromFlags(flags, DefaultDevice()));
  if (device == "cpu") {
    return MemoryLimit{HostMemoryBytes(),
                       "the host's memory; set --memory-limit-bytes to change it"};
  }
  ASSIGN_OR_RETURN(DeviceMemory memory, QueryDeviceMemory(0));
  return MemoryLimit{memory.free_bytes,
                     absl::StrCat("the free memory of ", DeviceText(memory),
                                  "; set --memory-limit-bytes to change it")};
}

namespace {

// On a GPU, refuses a model whose weights exceed what the device has free before the checkpoint
// is read, giving both sizes, rather than failing on one upload partway through. Runs only
// where a GPU is present (the arithmetic, CheckWeightsFit, is unit-tested on any machine).
absl::Status CheckWeightsFitDevice(const Backend& backend, const std::string& model_dir,
                                   DType weight_dtype) {
  if (backend.name() != "cuda") return absl::OkStatus();
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::FromFile(model_dir + "/config.json"));
  ASSIGN_OR_RETURN(DeviceMemory memory, QueryDeviceMemory(0));
  return CheckWeightsFit(config.weight_bytes(weight_dtype), weight_dtype, memory.free_bytes,
                         DeviceText(memory));
}

// --tokenizer, else <model dir>/tokenizer.json when there is one; null when neither.
absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadTokenizer(const Flags& flags,
                                                               const std::string& model_dir,
                                                               const ModelConfig& config) {
  std::string path = flags.String("tokenizer", "");
  if (path.empty()) {
    path = model_dir + "/tokenizer.json";
    if (!std::filesystem::exists(path)) return nullptr;
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromFile(path);
  if (!tokenizer.ok()) {  // the message starts with the path
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat("tokenizer: ", tokenizer.status().message()));
  }
  // A tokenizer of another model would encode prompts into ids the model does not have.
  if ((*tokenizer)->vocab_size() > config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer: ", path, " has ids up to ", (*tokenizer)->vocab_size() - 1,
        ", beyond the model's vocab_size ", config.vocab_size, ": is it this model's?"));
  }
  return std::shared_ptr<const Tokenizer>(*std::move(tokenizer));
}

}  // namespace

std::string DefaultDevice() { return CudaDeviceCount() > 0 ? "cuda" : "cpu"; }

absl::StatusOr<std::unique_ptr<Backend>> BackendFromFlags(const Flags& flags, int threads,
                                                          const std::string& default_device) {
  ASSIGN_OR_RETURN(std::string device, DeviceFromFlags(flags, default_device));
  CudaBackendOptions options;
  ASSIGN_OR_RETURN(options.attention_kernel, AttentionKernelFromFlags(flags));
  if (device == "cpu") {
    if (flags.Has("cuda-attention")) {
      return absl::InvalidArgumentError(
          "--cuda-attention: needs the CUDA backend (--device cuda, or a visible GPU)");
    }
    return CreateCpuBackend(threads);
  }
  absl::StatusOr<std::unique_ptr<Backend>> cuda = CreateCudaBackend(options);
  if (!cuda.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("--device cuda: ", cuda.status().message()));
  }
  return cuda;
}

absl::StatusOr<LoadedModel> LoadModelFromFlags(const Flags& flags) {
  ASSIGN_OR_RETURN(std::string dir, flags.RequiredString("model"));
  if (!std::filesystem::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat("--model: ", dir, " is not a directory"));
  }
  ASSIGN_OR_RETURN(int64_t threads, flags.Int("threads", 0, 0, 1024));
  LoadedModel loaded;
  ASSIGN_OR_RETURN(loaded.backend,
                   BackendFromFlags(flags, static_cast<int>(threads), DefaultDevice()));
  ASSIGN_OR_RETURN(const DType weight_dtype, DTypeFromFlags(flags, "weight-dtype"));
  RETURN_IF_ERROR(CheckWeightsFitDevice(*loaded.backend, dir, weight_dtype));
  ASSIGN_OR_RETURN(loaded.memory_before_weights, MemoryLimitFromFlags(flags));
  ASSIGN_OR_RETURN(loaded.model, Model::Load(dir, loaded.backend.get(), weight_dtype));
  RETURN_IF_ERROR(CheckBackendServes(*loaded.backend, loaded.model->config()));
  ASSIGN_OR_RETURN(loaded.tokenizer, LoadTokenizer(flags, dir, loaded.model->config()));
  return loaded;
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

absl::StatusOr<SchedulerConfig> SchedulerConfigFromFlags(const Flags& flags,
                                                         const ModelConfig& config) {
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  ASSIGN_OR_RETURN(int64_t block_size, flags.Int("block-size", 16, 1, 1024));
  ASSIGN_OR_RETURN(int64_t prefill_chunk, flags.Int("prefill-chunk", 0, 0, kInt32Max));
  ASSIGN_OR_RETURN(int64_t batched_tokens,
                   flags.Int("max-num-batched-tokens", 2048, 1, kInt32Max));
  ASSIGN_OR_RETURN(int64_t max_seqs, flags.Int("max-num-seqs", 256, 1, kInt32Max));
  ASSIGN_OR_RETURN(int64_t max_model_len,
                   flags.Int("max-model-len", config.max_position_embeddings, 1, kInt32Max));
  SchedulerConfig s;
  s.block_size = static_cast<int32_t>(block_size);
  s.max_model_len = static_cast<int32_t>(max_model_len);
  s.max_num_batched_tokens = static_cast<int32_t>(batched_tokens);
  s.max_num_seqs = static_cast<int32_t>(max_seqs);
  s.enable_prefix_caching = !flags.Switch("no-prefix-caching");
  if (prefill_chunk > 0) s.long_prefill_token_threshold = static_cast<int32_t>(prefill_chunk);
  return s;
}

namespace {

// --sampling-placement auto|backend|host (auto when absent).
absl::StatusOr<SamplingPlacement> SamplingPlacementFromFlags(const Flags& flags) {
  const std::string placement = flags.String("sampling-placement", "auto");
  if (placement == "auto") return SamplingPlacement::kAuto;
  if (placement == "backend") return SamplingPlacement::kBackend;
  if (placement == "host") return SamplingPlacement::kHost;
  return absl::InvalidArgumentError(absl::StrCat(
      "--sampling-placement: must be auto, backend or host, got \"", placement, "\""));
}

}  // namespace

absl::StatusOr<EngineOptions> EngineOptionsFromFlags(const Flags& flags, const ModelConfig& config,
                                                     int64_t tokens_needed,
                                                     const std::optional<MemoryLimit>& memory,
                                                     const Backend* backend) {
  EngineOptions options;
  ASSIGN_OR_RETURN(options.sampling_placement, SamplingPlacementFromFlags(flags));
  options.decode_graphs = flags.Switch("cuda-graphs");
  if (options.decode_graphs) {
    ASSIGN_OR_RETURN(const std::string device, DeviceFromFlags(flags, DefaultDevice()));
    if (device != "cuda") {
      return absl::InvalidArgumentError(
          "--cuda-graphs: needs the CUDA backend (--device cuda, or a visible GPU)");
    }
  }
  ASSIGN_OR_RETURN(options.kv_dtype, DTypeFromFlags(flags, "kv-dtype"));
  ASSIGN_OR_RETURN(options.scheduler, SchedulerConfigFromFlags(flags, config));
  SchedulerConfig& s = options.scheduler;
  int64_t num_blocks = (tokens_needed + s.block_size - 1) / s.block_size;
  if (flags.Has("kv-cache-bytes") || flags.Has("kv-cache-fraction")) {
    KvBudget budget;
    ASSIGN_OR_RETURN(budget.kv_cache_bytes,
                     flags.OptionalInt("kv-cache-bytes", 1, std::numeric_limits<int64_t>::max()));
    if (flags.Has("kv-cache-fraction")) {
      ASSIGN_OR_RETURN(budget.kv_cache_fraction, flags.Double("kv-cache-fraction", 0.0, 0.0, 1.0));
    }
    MemoryLimit limit;
    if (memory) {
      limit = *memory;
    } else {
      ASSIGN_OR_RETURN(limit, MemoryLimitFromFlags(flags));
    }
    budget.memory_limit_bytes = limit.bytes;
    budget.memory_limit_source = limit.source;
    ASSIGN_OR_RETURN(const DType weight_dtype, DTypeFromFlags(flags, "weight-dtype"));
    budget.weight_bytes = config.weight_bytes(weight_dtype);
    // The engine reserves the workspace, and the backend's scratch, for the largest step at
    // start-up (Engine::Create).
    ASSIGN_OR_RETURN(budget.workspace_bytes, WorkspaceBytes(config, LargestStep(s)));
    if (backend != nullptr) {
      budget.workspace_bytes +=
          backend->ScratchBytes(LargestStepOps(config, weight_dtype, options.kv_dtype, s));
    }
    ASSIGN_OR_RETURN(KvCapacity capacity, PlanKvCapacity(config, options.kv_dtype, s.block_size,
                                                         s.max_model_len, budget));
    spdlog::info("{}", DescribeKvCapacity(capacity));
    spdlog::info("{}", DescribeMemoryUse(budget, capacity));
    RETURN_IF_ERROR(CheckMemoryFits(budget, capacity));
    num_blocks = capacity.num_blocks;
  }
  s.num_blocks = static_cast<int32_t>(
      std::min<int64_t>(num_blocks, std::numeric_limits<int32_t>::max()));
  return options;
}

absl::StatusOr<std::unique_ptr<Engine>> CreateEngineFromFlags(const Flags& flags,
                                                              int64_t tokens_needed) {
  ASSIGN_OR_RETURN(LoadedModel loaded, LoadModelFromFlags(flags));
  ASSIGN_OR_RETURN(EngineOptions options,
                   EngineOptionsFromFlags(flags, loaded.model->config(), tokens_needed,
                                          loaded.memory_before_weights, loaded.backend.get()));
  options.tokenizer = std::move(loaded.tokenizer);
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
