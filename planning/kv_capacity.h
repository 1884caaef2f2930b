// How many KV blocks a memory budget buys, and how many full-length sequences they hold at once:
// the start-up memory arithmetic behind --kv-cache-bytes / --kv-cache-fraction (design/model.md),
// with the check that the weights fit the device at all.
#ifndef MLKV_PLANNING_KV_CAPACITY_H_
#define MLKV_PLANNING_KV_CAPACITY_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "model/model_config.h"

namespace mlkv {

// The KV cache's share of memory, in exactly one of two forms.
struct KvBudget {
  // --kv-cache-bytes: the budget itself. The fields below then only feed DescribeMemoryUse and
  // CheckMemoryFits.
  std::optional<int64_t> kv_cache_bytes;
  // --kv-cache-fraction: this fraction, in (0, 1], of
  // (memory_limit_bytes - weight_bytes - workspace_bytes).
  std::optional<double> kv_cache_fraction;
  // Device memory, or on the CPU a configured host-memory limit (--memory-limit-bytes; by default
  // HostMemoryBytes()). The fraction form shares it out; 0 in the bytes form: not checked.
  int64_t memory_limit_bytes = 0;
  // Where memory_limit_bytes came from, for messages: the flag, or e.g. "the free memory of CUDA
  // device 0 (NVIDIA H200)" when it defaulted to what the device has.
  std::string memory_limit_source = "--memory-limit-bytes";
  // Bytes the weights occupy on the device. Only the fraction form reads it.
  int64_t weight_bytes = 0;
  // Bytes of the model's activation workspace for the largest step (model_workspace.h) and of
  // the backend's scratch for its ops (Backend::ScratchBytes), which the engine reserves at
  // start-up. Only the fraction form reads it.
  int64_t workspace_bytes = 0;
};

// The plan. Invariants: num_blocks >= blocks_per_sequence >= 1, so max_concurrent_sequences >= 1;
// num_blocks * block_bytes <= budget_bytes < (num_blocks + 1) * block_bytes.
struct KvCapacity {
  int64_t budget_bytes = 0;        // the KV budget after resolving the fraction form
  int64_t block_size = 0;          // tokens per block
  int64_t block_bytes = 0;         // one block over all sharing groups, K and V
  int64_t num_blocks = 0;          // floor(budget_bytes / block_bytes)
  int64_t num_tokens = 0;          // num_blocks * block_size
  int64_t kv_bytes_per_token = 0;  // 2 x K x nKV x d x dtype bytes
  int64_t max_model_len = 0;
  int64_t blocks_per_sequence = 0;       // ceil(max_model_len / block_size)
  int64_t max_concurrent_sequences = 0;  // full-length sequences that fit at once
};

// Sizes the paged KV cache for `config` with `kv_dtype` elements. A block holds `block_size`
// tokens of every sharing group, so its bytes scale with K (KV layers), not L (layers).
//
// Errors (InvalidArgument) name the flag at fault: neither or both budget forms, a non-positive
// byte budget, a fraction outside (0, 1], a non-positive memory limit or weights and workspace
// that do not fit in it (the message gives both and the limit), block_size <= 0,
// max_model_len <= 0 or beyond the model's max_position_embeddings, a budget below one block,
// and a budget too small for one sequence of max_model_len (the message then names the largest
// --max-model-len that fits).
absl::StatusOr<KvCapacity> PlanKvCapacity(const ModelConfig& config, DType kv_dtype,
                                          int64_t block_size, int64_t max_model_len,
                                          const KvBudget& budget);

// One line for the start-up log: blocks, tokens, concurrency at max_model_len, bytes per token.
std::string DescribeKvCapacity(const KvCapacity& capacity);

// For the --kv-cache-bytes form: OK when the planned KV pool, the weights and the activation
// workspace together fit in budget.memory_limit_bytes; else InvalidArgument naming
// --kv-cache-bytes with all four figures, so that a cache the machine cannot hold fails at
// start-up rather than in an allocation (or, on the CPU, an out-of-memory kill once its pages are
// touched). The fraction form fits by construction.
absl::Status CheckMemoryFits(const KvBudget& budget, const KvCapacity& capacity);

// One line for the start-up log: the bytes of the weights, the activation workspace and the KV
// pool that `capacity` plans for `budget`, their sum, and (fraction form) the memory they share.
std::string DescribeMemoryUse(const KvBudget& budget, const KvCapacity& capacity);

// OK when weights of `weight_bytes` (matrices stored as `weight_dtype`) fit in the `free_bytes`
// that `device` has (a description such as "CUDA device 0 (NVIDIA H200)"); else
// ResourceExhausted "model does not fit", giving both sizes, before any upload is tried.
absl::Status CheckWeightsFit(int64_t weight_bytes, DType weight_dtype, int64_t free_bytes,
                             const std::string& device);

}  // namespace mlkv

#endif  // MLKV_PLANNING_KV_CAPACITY_H_
