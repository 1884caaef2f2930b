// The activation workspace of Model: the buffers one step uses on the backend, listed once (in
// model_workspace.cc) so that what Model allocates is what the start-up memory plan counts.
#ifndef MLKV_ENGINE_MODEL_WORKSPACE_H_
#define MLKV_ENGINE_MODEL_WORKSPACE_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "kernels/backend.h"
#include "model/model_config.h"
#include "scheduler/scheduler_config.h"

namespace mlkv {

// Every buffer of the workspace, with its shape (T tokens, S sequences, B blocks per sequence).
enum class WorkspaceBuffer {
  kHidden,        // [T][hidden] f32: the residual stream
  kNormed,        // [T][hidden] f32: layernorm outputs
  kQuery,         // [T][heads x head_dim] f32
  kKey,           // [T][kv heads x head_dim] f32
  kValue,         // [T][kv heads x head_dim] f32
  kAttention,     // [T][hidden] f32
  kMlp,           // [T][intermediate] f32
  kLogitsHidden,  // [T][hidden] f32: the rows that need logits, at most one per token
  kLogits,        // [T][vocab] f32
  kTokenIds,      // [T] i32
  kPositions,     // [T] i32
  kSlotMapping,   // [T] i64
  kLogitsRows,    // [T] i32: logits_rows, then argmax_rows, then sample_rows
  kOutputTokens,  // [T] i32: the tokens taken on the backend, argmax_rows' then sample_rows'
  kSampleParams,  // [T] RowSampling (32 bytes): sample_params
  kQueryStart,    // [S + 1] i32
  kContextLens,   // [S] i32
  kBlockTables,   // [S][B] i32
};
inline constexpr size_t kNumWorkspaceBuffers =
    static_cast<size_t>(WorkspaceBuffer::kBlockTables) + 1;  // kBlockTables is the last

// The largest step a workspace serves.
struct WorkspaceLimits {
  int64_t max_num_tokens = 0;      // T: tokens computed in the step, over all sequences
  int64_t max_num_seqs = 0;        // S: sequences in the step
  int64_t max_blocks_per_seq = 0;  // B: the widest block table
};

// The largest step the scheduler forms with `config` (which must be valid): its token budget
// (at most max_num_seqs x max_model_len), its sequence limit, and block tables of at most
// ceil(max_model_len / block_size) blocks.
WorkspaceLimits LargestStep(const SchedulerConfig& config);

// The backend ops of those steps, for a model of `config` with weights stored as `weight_dtype`
// and a KV cache of `kv_dtype` elements: what Backend::ScratchBytes sizes its scratch by.
OpLimits LargestStepOps(const ModelConfig& config, DType weight_dtype, DType kv_dtype,
                        const SchedulerConfig& scheduler);

// Bytes of each buffer, in WorkspaceBuffer order, for steps within `limits`. InvalidArgument
// when a limit is not positive or a size overflows 64 bits (the message names the buffer).
absl::StatusOr<std::array<int64_t, kNumWorkspaceBuffers>> WorkspaceBufferBytes(
    const ModelConfig& config, const WorkspaceLimits& limits);

// Their sum: the workspace's bytes on the backend. Errors as WorkspaceBufferBytes.
absl::StatusOr<int64_t> WorkspaceBytes(const ModelConfig& config, const WorkspaceLimits& limits);

}  // namespace mlkv

#endif  // MLKV_ENGINE_MODEL_WORKSPACE_H_
