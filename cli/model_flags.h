// Flags shared by the commands that run a model (`mlkv`, mlkv-server, the benchmarks): they
// translate into the engine factory's settings (engine/engine_factory.h) and sampling parameters.
#ifndef MLKV_CLI_MODEL_FLAGS_H_
#define MLKV_CLI_MODEL_FLAGS_H_

#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "cli/flags.h"
#include "engine/engine.h"
#include "engine/engine_factory.h"
#include "engine/sampling_params.h"
#include "kernels/backend.h"

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

// The backend that --device (cpu|cuda, `default_device` when absent) and --cuda-attention name,
// with `threads` CPU threads (0: all); see CreateBackend.
absl::StatusOr<std::unique_ptr<Backend>> BackendFromFlags(const Flags& flags, int threads,
                                                          const std::string& default_device);
// The engine settings of kModelFlags and kModelSwitches (--device defaults to DefaultDevice()).
// Without a KV budget flag the cache is sized to hold `tokens_needed` tokens, what an offline
// run of known requests needs. Values are checked here; combinations and files by the factory.
absl::StatusOr<EngineFactoryOptions> EngineFactoryOptionsFromFlags(const Flags& flags,
                                                                   int64_t tokens_needed);
// The scheduling limits the flags ask for, for a model of `config` (its max_position_embeddings
// is the default --max-model-len): --block-size, --max-model-len, --max-num-batched-tokens,
// --max-num-seqs, --prefill-chunk, --no-prefix-caching. num_blocks is left 0 for the KV plan.
absl::StatusOr<SchedulerConfig> SchedulerConfigFromFlags(const Flags& flags,
                                                         const ModelConfig& config);
// PlanEngineOptions for the flags' settings and a model of `config`, with the same `memory` and
// `backend` (a benchmark's engine on a model it made itself).
absl::StatusOr<EngineOptions> EngineOptionsFromFlags(
    const Flags& flags, const ModelConfig& config, int64_t tokens_needed,
    const std::optional<MemoryLimit>& memory = std::nullopt, const Backend* backend = nullptr);
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

#endif  // MLKV_CLI_MODEL_FLAGS_H_
