// Writing a model directory (config.json + model.safetensors) from host weights: the inverse of
// LoadModelWeights, shared by the random-model generator and the checkpoint converter.
#ifndef MLKV_MODEL_MODEL_WRITER_H_
#define MLKV_MODEL_MODEL_WRITER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/safetensors.h"

namespace mlkv {

// How attention projections are stored (model.md, "Weights").
enum class QkvLayout {
  kFused,  // attention.query_key_value, as standard Pythia; only for standard MHA configs
  kSplit,  // attention.query everywhere, attention.key/value in KV layers only
};

// The named tensors of `weights` in `layout`, encoded as `dtype`. Every vector's size is checked
// against `config`; a mismatch is an error naming the tensor.
absl::StatusOr<std::vector<SafetensorsTensor>> ModelTensors(const ModelConfig& config,
                                                            const ModelHostWeights& weights,
                                                            DType dtype, QkvLayout layout);

// Creates `out_dir` if needed and writes config.json (config.ToJson() with torch_dtype naming
// `dtype`) and model.safetensors (metadata format=pt, which transformers expects).
absl::Status WriteModelDirectory(const ModelConfig& config, const ModelHostWeights& weights,
                                 DType dtype, QkvLayout layout, const std::string& out_dir);

// The config.json spelling of a dtype: "float32", "float16", "bfloat16".
std::string TorchDTypeName(DType dtype);

}  // namespace mlkv

#endif  // MLKV_MODEL_MODEL_WRITER_H_
