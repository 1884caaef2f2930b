// Backend, model, KV plan and engine from plain settings; see engine_factory.h.
#include "engine/engine_factory.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/model_workspace.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_info.h"
#include "planning/host_memory.h"
#include "planning/kv_capacity.h"
#include "spdlog/spdlog.h"

namespace mlkv {
namespace {

Device DeviceOf(const EngineFactoryOptions& options) {
  return options.device.value_or(DefaultDevice());
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

// The tokenizer file, else <model dir>/tokenizer.json when there is one; null when neither.
absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadTokenizer(const EngineFactoryOptions& options,
                                                               const ModelConfig& config) {
  std::string path = options.tokenizer_path;
  if (path.empty()) {
    path = options.model_dir + "/tokenizer.json";
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

Device DefaultDevice() { return CudaDeviceCount() > 0 ? Device::kCuda : Device::kCpu; }

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const EngineFactoryOptions& options) {
  if (DeviceOf(options) == Device::kCpu) {
    if (options.cuda_attention) {
      return absl::InvalidArgumentError(
          "--cuda-attention: needs the CUDA backend (--device cuda, or a visible GPU)");
    }
    return CreateCpuBackend(options.threads);
  }
  CudaBackendOptions cuda_options;
  cuda_options.attention_kernel = options.cuda_attention.value_or(cuda::AttentionKernel::kSimt);
  absl::StatusOr<std::unique_ptr<Backend>> cuda = CreateCudaBackend(cuda_options);
  if (!cuda.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("--device cuda: ", cuda.status().message()));
  }
  return cuda;
}

absl::StatusOr<MemoryLimit> MeasureMemoryLimit(const EngineFactoryOptions& options) {
  if (options.memory_limit_bytes) {
    return MemoryLimit{*options.memory_limit_bytes, "--memory-limit-bytes"};
  }
  if (DeviceOf(options) == Device::kCpu) {
    return MemoryLimit{HostMemoryBytes(),
                       "the host's memory; set --memory-limit-bytes to change it"};
  }
  ASSIGN_OR_RETURN(DeviceMemory memory, QueryDeviceMemory(0));
  return MemoryLimit{memory.free_bytes, absl::StrCat("the free memory of ", DeviceText(memory),
                                                     "; set --memory-limit-bytes to change it")};
}

absl::StatusOr<LoadedModel> LoadModel(const EngineFactoryOptions& options) {
  const std::string& dir = options.model_dir;
  if (dir.empty()) return absl::InvalidArgumentError("--model: is required");
  if (!std::filesystem::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat("--model: ", dir, " is not a directory"));
  }
  LoadedModel loaded;
  ASSIGN_OR_RETURN(loaded.backend, CreateBackend(options));
  RETURN_IF_ERROR(CheckWeightsFitDevice(*loaded.backend, dir, options.weight_dtype));
  ASSIGN_OR_RETURN(loaded.memory_before_weights, MeasureMemoryLimit(options));
  ASSIGN_OR_RETURN(loaded.model, Model::Load(dir, loaded.backend.get(), options.weight_dtype));
  RETURN_IF_ERROR(CheckBackendServes(*loaded.backend, loaded.model->config()));
  ASSIGN_OR_RETURN(loaded.tokenizer, LoadTokenizer(options, loaded.model->config()));
  return loaded;
}

absl::StatusOr<EngineOptions> PlanEngineOptions(const EngineFactoryOptions& options,
                                                const ModelConfig& config,
                                                const std::optional<MemoryLimit>& memory,
                                                const Backend* backend) {
  EngineOptions engine;
  engine.sampling_placement = options.sampling_placement;
  engine.decode_graphs = options.decode_graphs;
  if (engine.decode_graphs && DeviceOf(options) != Device::kCuda) {
    return absl::InvalidArgumentError(
        "--cuda-graphs: needs the CUDA backend (--device cuda, or a visible GPU)");
  }
  engine.kv_dtype = options.kv_dtype;
  engine.monitor = options.monitor;
  engine.scheduler = options.scheduler;
  SchedulerConfig& s = engine.scheduler;
  s.max_model_len = options.max_model_len.value_or(config.max_position_embeddings);
  int64_t num_blocks = (options.tokens_needed + s.block_size - 1) / s.block_size;
  if (options.kv_cache_bytes || options.kv_cache_fraction) {
    KvBudget budget;
    budget.kv_cache_bytes = options.kv_cache_bytes;
    budget.kv_cache_fraction = options.kv_cache_fraction;
    MemoryLimit limit;
    if (memory) {
      limit = *memory;
    } else {
      ASSIGN_OR_RETURN(limit, MeasureMemoryLimit(options));
    }
    budget.memory_limit_bytes = limit.bytes;
    budget.memory_limit_source = limit.source;
    budget.weight_bytes = config.weight_bytes(options.weight_dtype);
    // The engine reserves the workspace, and the backend's scratch, for the largest step at
    // start-up (Engine::Create).
    ASSIGN_OR_RETURN(budget.workspace_bytes, WorkspaceBytes(config, LargestStep(s)));
    if (backend != nullptr) {
      budget.workspace_bytes +=
          backend->ScratchBytes(LargestStepOps(config, options.weight_dtype, engine.kv_dtype, s));
    }
    ASSIGN_OR_RETURN(KvCapacity capacity, PlanKvCapacity(config, engine.kv_dtype, s.block_size,
                                                         s.max_model_len, budget));
    spdlog::info("{}", DescribeKvCapacity(capacity));
    spdlog::info("{}", DescribeMemoryUse(budget, capacity));
    RETURN_IF_ERROR(CheckMemoryFits(budget, capacity));
    num_blocks = capacity.num_blocks;
  }
  s.num_blocks =
      static_cast<int32_t>(std::min<int64_t>(num_blocks, std::numeric_limits<int32_t>::max()));
  return engine;
}

absl::StatusOr<ReadyEngine> StartEngine(EngineOptions engine_options, LoadedModel loaded) {
  engine_options.tokenizer = std::move(loaded.tokenizer);
  ReadyEngine ready;
  ASSIGN_OR_RETURN(ready.engine, Engine::Create(engine_options, std::move(loaded.backend),
                                                std::move(loaded.model)));
  ready.options = std::move(engine_options);
  return ready;
}

absl::StatusOr<ReadyEngine> CreateEngine(const EngineFactoryOptions& options) {
  ASSIGN_OR_RETURN(LoadedModel loaded, LoadModel(options));
  ASSIGN_OR_RETURN(EngineOptions engine_options,
                   PlanEngineOptions(options, loaded.model->config(), loaded.memory_before_weights,
                                     loaded.backend.get()));
  return StartEngine(std::move(engine_options), std::move(loaded));
}

}  // namespace mlkv
