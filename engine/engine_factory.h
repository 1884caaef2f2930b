// Assembling a ready engine from plain settings: the backend, the model and its tokenizer, the
// memory the KV cache is planned against, the KV budget and the engine options. The `mlkv` tool,
// mlkv-server and the benchmarks translate their flags into EngineFactoryOptions and call this.
#ifndef MLKV_ENGINE_ENGINE_FACTORY_H_
#define MLKV_ENGINE_ENGINE_FACTORY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "engine/engine.h"
#include "engine/model.h"
#include "kernels/backend.h"
#include "kernels/cuda/attention_plan.h"
#include "scheduler/scheduler_config.h"
#include "tokenizer/tokenizer.h"

namespace mlkv {

enum class Device { kCpu, kCuda };

// Everything an engine is made from. Errors name a setting by its command-line flag
// (--kv-cache-bytes, --device, ...), the one spelling people set it by.
struct EngineFactoryOptions {
  std::string model_dir;
  // The tokenizer file; empty: <model_dir>/tokenizer.json when present, else none.
  std::string tokenizer_path;
  std::optional<Device> device;  // unset: DefaultDevice()
  int threads = 0;               // CPU backend threads; 0: all
  // The CUDA attention kernel; setting it with the CPU backend is an error. Unset: SIMT.
  std::optional<cuda::AttentionKernel> cuda_attention;
  DType weight_dtype = DType::kF32;
  DType kv_dtype = DType::kF32;
  // The KV budget (see KvBudget): bytes, or a fraction of what the memory limit leaves once the
  // weights, the activation workspace and the backend's scratch have their share. Neither: the
  // cache holds `tokens_needed` tokens.
  std::optional<int64_t> kv_cache_bytes;
  std::optional<double> kv_cache_fraction;
  // The memory the budget is planned against; unset: the host's on the CPU, else the GPU's free.
  std::optional<int64_t> memory_limit_bytes;
  int64_t tokens_needed = 0;
  // Scheduling limits. max_model_len is replaced by `max_model_len` (unset: the model's
  // max_position_embeddings), num_blocks by the KV plan.
  SchedulerConfig scheduler;
  std::optional<int32_t> max_model_len;
  SamplingPlacement sampling_placement = SamplingPlacement::kAuto;
  bool decode_graphs = false;              // needs the CUDA backend
  std::shared_ptr<EngineMonitor> monitor;  // may be null
};

// kCuda when this build has CUDA and a device is visible, else kCpu.
Device DefaultDevice();

// The backend `options` names (device, threads, CUDA attention kernel). A CUDA device that cannot
// be used is FailedPrecondition, giving the reason.
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const EngineFactoryOptions& options);

// The memory a KV budget is planned against, and where the figure came from (for messages).
struct MemoryLimit {
  int64_t bytes = 0;
  std::string source;
};
// options.memory_limit_bytes, else on the CPU the host's memory (cgroup limit included), else
// what the GPU has free now (other processes' use and the CUDA context already taken out).
absl::StatusOr<MemoryLimit> MeasureMemoryLimit(const EngineFactoryOptions& options);

struct LoadedModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::shared_ptr<const Tokenizer> tokenizer;  // null: the model takes token ids only
  // MeasureMemoryLimit just before the weights were uploaded: what the KV budget is planned
  // against once they take their share (PlanEngineOptions).
  MemoryLimit memory_before_weights;
};

// Starts the backend and loads the model, its weight matrices stored as weight_dtype, and its
// tokenizer (a malformed one, or one with ids beyond the model's vocabulary, is an error naming
// it). On a GPU, weights larger than the device's free memory are refused (ResourceExhausted,
// "model does not fit") before any upload.
absl::StatusOr<LoadedModel> LoadModel(const EngineFactoryOptions& options);

// The engine options for a model of `config`: the scheduling limits, and the KV budget planned
// (and logged) in `memory` when given (measured before the weights were loaded), else in the
// memory measured now, which is right only before loading them. `backend`: the one the model
// was loaded on, whose scratch the budget leaves room for; null (a benchmark's CPU engine)
// counts none. The tokenizer is left for the caller.
absl::StatusOr<EngineOptions> PlanEngineOptions(const EngineFactoryOptions& options,
                                                const ModelConfig& config,
                                                const std::optional<MemoryLimit>& memory,
                                                const Backend* backend);

struct ReadyEngine {
  std::unique_ptr<Engine> engine;
  EngineOptions options;  // what the engine was created with
};
// LoadModel, PlanEngineOptions, then the engine.
absl::StatusOr<ReadyEngine> CreateEngine(const EngineFactoryOptions& options);
// The engine over a model LoadModel returned, with `engine_options` from PlanEngineOptions (for
// callers that adjust them in between); it takes the model's tokenizer.
absl::StatusOr<ReadyEngine> StartEngine(EngineOptions engine_options, LoadedModel loaded);

}  // namespace mlkv

#endif  // MLKV_ENGINE_ENGINE_FACTORY_H_
