// The GPT-NeoX / MLKV forward pass (../shared/design/model.md) as a sequence of Backend ops over
// a paged KV cache. Owns the weights on its backend; keeps no per-sequence state (that lives in
// the cache and the caller's block tables).
#ifndef MLKV_ENGINE_MODEL_H_
#define MLKV_ENGINE_MODEL_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kv_cache.h"
#include "engine/model_workspace.h"
#include "engine/step_batch.h"
#include "kernels/backend.h"
#include "model/model_config.h"
#include "model/model_weights.h"

namespace mlkv {

class Model {
 public:
  // Uploads `weights` to `backend` (not owned; must outlive the model). The weight matrices and
  // embedding tables are stored as `weight_dtype` (rounded to nearest even when narrower, see
  // ModelConfig::weight_bytes); layernorm parameters and biases stay float32, as do activations.
  static absl::StatusOr<std::unique_ptr<Model>> Create(const ModelConfig& config,
                                                       const ModelHostWeights& weights,
                                                       Backend* backend,
                                                       DType weight_dtype = DType::kF32);
  // Reads config.json and the checkpoint in `model_dir`.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& model_dir, Backend* backend,
                                                     DType weight_dtype = DType::kF32);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Runs one step: writes the new tokens' K/V into `cache` (KV layers only) and returns the
  // logits of batch.logits_rows, and the greedy tokens of batch.argmax_rows and the drawn tokens
  // of batch.sample_rows, in `output`. The batch is checked first (token ids, positions, slots and
  // block ids in range; consistent lengths; at most one output row per token; sampling
  // parameters in range). A batch beyond the workspace grows it (ReserveWorkspace).
  absl::Status Forward(const StepBatch& batch, KvCache& cache, StepOutput* output);

  // Allocates the activation workspace for every step within `limits` now (the engine passes
  // its scheduler's LargestStep at start-up), so that those steps allocate nothing and a backend
  // too small for them fails here, RESOURCE_EXHAUSTED naming the workspace, not mid-serving.
  // Forward still grows the workspace for a larger batch: tests and benchmarks call it directly
  // with batches of their own and need not reserve. InvalidArgument for non-positive limits.
  absl::Status ReserveWorkspace(const WorkspaceLimits& limits);

  // From now on, decode steps (one new token per sequence, no logits rows) of up to the reserved
  // number of sequences run padded to a bucket (engine/decode_graph_batch.h) and, on a backend
  // that captures graphs (CUDA), as a graph captured at the bucket's first step and replayed
  // after: one launch for the whole step instead of hundreds, which bound a small model's decode.
  // Their tokens are what the eager path gives. A backend without capture runs the padded step
  // eagerly (what tests on the CPU check). FailedPrecondition before ReserveWorkspace, whose
  // limits bound the buckets and fix the block-table width; a capture that fails is logged and
  // turns capture off, not the model.
  absl::Status EnableDecodeGraphs();
  // Graphs captured so far (0 without capture).
  int64_t num_decode_graphs() const;

  const ModelConfig& config() const { return config_; }
  DType weight_dtype() const { return weight_dtype_; }
  Backend& backend() { return *backend_; }

 private:
  struct LayerBuffers;
  struct Workspace;
  struct DecodeGraphs;
  Model(const ModelConfig& config, Backend* backend, DType weight_dtype);

  absl::Status CheckBatch(const StepBatch& batch, const KvCache& cache) const;
  // Makes every workspace buffer at least as large as steps within `limits` need.
  absl::Status GrowWorkspace(const WorkspaceLimits& limits);
  // Whether group g keeps its keys rotated in the cache (see the .cc for the rule).
  bool GroupStoresRotatedKeys(int64_t group) const;
  WeightView Weight(const std::unique_ptr<DeviceBuffer>& buffer) const;
  // The step's metadata into the workspace.
  void UploadBatch(const StepBatch& batch);
  // Every op of the step, issued on the backend: the layers, then the LM head over the output
  // rows and the tokens of the argmax and sample rows (into WorkspaceBuffer::kOutputTokens).
  // What it issues depends only on the batch's sizes, so a graph can record it.
  void RunOps(const StepBatch& batch, KvCache& cache);
  void RunLayer(int64_t layer, const StepBatchView& view, KvCache& cache);
  // A decode step padded to `bucket` sequences, replayed from its graph or run (and captured).
  absl::Status ForwardDecodeGraph(const StepBatch& batch, int64_t bucket, KvCache& cache,
                                  StepOutput* output);

  ModelConfig config_;
  Backend* backend_;  // not owned
  DType weight_dtype_;
  std::unique_ptr<DeviceBuffer> embed_in_, embed_out_, final_ln_weight_, final_ln_bias_;
  std::unique_ptr<DeviceBuffer> rotary_table_;
  std::vector<LayerBuffers> layers_;
  std::unique_ptr<Workspace> workspace_;
  WorkspaceLimits reserved_;              // the last ReserveWorkspace's limits
  std::unique_ptr<DecodeGraphs> graphs_;  // null: decode steps run eagerly as they come
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_MODEL_H_
