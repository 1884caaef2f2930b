// Flags shared by the `mlkv` subcommands that run a model: loading it, the KV cache and runner
// settings, and the sampling parameters.
#ifndef MLKV_TOOLS_MLKV_MODEL_FLAGS_H_
#define MLKV_TOOLS_MLKV_MODEL_FLAGS_H_

#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/sampling_params.h"
#include "kernels/backend.h"
#include "tools/mlkv/flags.h"

namespace mlkv::cli {

// --model, --threads, --block-size, --kv-dtype, --weight-dtype, --prefill-chunk, the KV budget
// (--kv-cache-bytes, --kv-cache-fraction, --memory-limit-bytes), --max-model-len,
// --max-num-batched-tokens, --max-num-seqs, --tokenizer, --device (cpu|cuda; default cuda when
// built with CUDA and a GPU is visible), --sampling-placement, --cuda-attention (simt|tensor-core);
// the switches --no-prefix-caching and --cuda-graphs.
extern const std::set<std::string> kModelFlags;
extern const std::set<std::string> kModelSwitches;
// --temperature, --top-k, --top-p, --min-p, the three penalties, --seed.
extern const std::set<std::string> kSamplingFlags;

// "cuda" when this build has CUDA and a device is visible, else "cpu": the default --device of
// the commands that run a model.
std::string DefaultDevice();
// The backend that --device (cpu|cuda, `default_device` when absent) names, with `threads` CPU
// threads (0: all). A CUDA device that cannot be used is FailedPrecondition, giving the reason.
absl::StatusOr<std::unique_ptr<Backend>> BackendFromFlags(const Flags& flags, int threads,
                                                          const std::string& default_device);

// The memory a KV budget is planned against, and where the figure came from (for messages).
struct MemoryLimit {
  int64_t bytes = 0;
  std::string source;
};
// --memory-limit-bytes, else on the CPU the host's memory (cgroup limit included), else what the
// GPU has free now (other processes' use and the CUDA context already taken out).
absl::StatusOr<MemoryLimit> MemoryLimitFromFlags(const Flags& flags);

struct LoadedModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::shared_ptr<const Tokenizer> tokenizer;  // null: the model takes token ids only
  // MemoryLimitFromFlags just before the weights were uploaded: what the KV budget is planned
  // against once they take their share (EngineOptionsFromFlags).
  MemoryLimit memory_before_weights;
};

// The model of --model, its weight matrices stored as --weight-dtype, and its tokenizer: --tokenizer FILE, else <model dir>/tokenizer.json when
// present (a malformed one is an error naming it), else none. On a GPU, weights larger than the
// device's free memory are refused (ResourceExhausted, "model does not fit") before any upload.
absl::StatusOr<LoadedModel> LoadModelFromFlags(const Flags& flags);
// The scheduling limits the flags ask for, for a model of `config` (its max_position_embeddings
// is the default --max-model-len): --block-size, --max-model-len, --max-num-batched-tokens,
// --max-num-seqs, --prefill-chunk, --no-prefix-caching. num_blocks is left 0 for the KV plan.
absl::StatusOr<SchedulerConfig> SchedulerConfigFromFlags(const Flags& flags,
                                                         const ModelConfig& config);
// The engine options the flags ask for, for a model of `config` (which bounds --max-model-len
// and sizes the KV budget: --kv-cache-fraction shares out the memory that the weights, the
// activation workspace and `backend`'s scratch leave; --kv-cache-bytes must fit beside them; the
// plan is logged). Without a KV budget flag the cache is sized to hold `tokens_needed` tokens.
// The memory is `memory` when given (measured before the weights were loaded), else measured
// now, which is right only before loading them. `backend`: the one the model was loaded on;
// null (a benchmark's CPU engine) counts no scratch. Also used by mlkv-server, which reports the
// options it runs with.
absl::StatusOr<EngineOptions> EngineOptionsFromFlags(
    const Flags& flags, const ModelConfig& config, int64_t tokens_needed,
    const std::optional<MemoryLimit>& memory = std::nullopt, const Backend* backend = nullptr);
// Loads the model and starts an engine for it. Without a KV budget flag the cache is sized to
// hold `tokens_needed` tokens, what an offline run of known requests needs.
absl::StatusOr<std::unique_ptr<Engine>> CreateEngineFromFlags(const Flags& flags,
                                                              int64_t tokens_needed);
// --<name> f32|f16|bf16 (float32, float16 and bfloat16 also accepted), `default_dtype` when
// absent: --kv-dtype and --weight-dtype.
absl::StatusOr<DType> DTypeFromFlags(const Flags& flags, const std::string& name,
                                     DType default_dtype = DType::kF32);
// Defaults to greedy (temperature 0) so that a bare command is deterministic.
absl::StatusOr<SamplingParams> SamplingFromFlags(const Flags& flags);
// Every --token-ids as int32 ids (range against the vocabulary is checked by the engine).
absl::StatusOr<std::vector<std::vector<int32_t>>> TokenIdsFromFlags(const Flags& flags);
// --format text|json: true for json.
absl::StatusOr<bool> JsonFormatFromFlags(const Flags& flags);

std::set<std::string> Union(std::initializer_list<std::set<std::string>> sets);

}  // namespace mlkv::cli

#endif  // MLKV_TOOLS_MLKV_MODEL_FLAGS_H_
