// The cost of one decode step from the model's shape alone — bytes moved and FLOPs — and the
// throughput bound that follows on a device with a given memory bandwidth and FLOP rate. For
// capacity planning; no model is run.
#ifndef MLKV_PLANNING_DECODE_ROOFLINE_H_
#define MLKV_PLANNING_DECODE_ROOFLINE_H_

#include <cstdint>

#include "model/model_config.h"

namespace mlkv {

struct DeviceLimits {
  double memory_bandwidth_bytes_per_s = 0.0;
  double flops_per_s = 0.0;
};

struct DecodeStepCost {
  double weight_bytes = 0.0;  // every weight read once per step
  double kv_bytes = 0.0;      // every cached K/V value of the batch read once
  double flops = 0.0;         // matrix multiplies (2 per multiply-add) and attention
  double memory_seconds = 0.0, compute_seconds = 0.0;
  bool memory_bound = true;   // which of the two is the larger
  double tokens_per_s = 0.0;  // batch / max(memory_seconds, compute_seconds)
};

// One decode step of `batch` sequences that each attend over `context` cached tokens.
// FLOPs: 2 x (parameters that multiply: all but the input embedding) per token, plus attention's
// 4 x context x (query heads x head_dim) per layer per token (scores and weighted sum).
// Weights are read as the engine stores them: matrices as `weight_dtype`, the rest float32
// (ModelConfig::weight_bytes).
DecodeStepCost EstimateDecodeStep(const ModelConfig& config, DType weight_dtype, DType kv_dtype,
                                  int64_t batch, int64_t context, const DeviceLimits& device);

}  // namespace mlkv

#endif  // MLKV_PLANNING_DECODE_ROOFLINE_H_
