// The decode-step cost model; see decode_roofline.h.
#include "planning/decode_roofline.h"

#include <algorithm>

namespace mlkv {

DecodeStepCost EstimateDecodeStep(const ModelConfig& config, DType weight_dtype, DType kv_dtype,
                                  int64_t batch, int64_t context, const DeviceLimits& device) {
  DecodeStepCost cost;
  const double params = static_cast<double>(config.num_parameters());
  const double b = static_cast<double>(batch), c = static_cast<double>(context);
  cost.weight_bytes = static_cast<double>(config.weight_bytes(weight_dtype));
  cost.kv_bytes = b * c * static_cast<double>(config.kv_bytes_per_token(DTypeBytes(kv_dtype)));
  // The input embedding is a row lookup, not a multiply; a tied LM head still multiplies.
  const double embed_in = static_cast<double>(config.vocab_size * config.hidden_size);
  const double multiplying = config.tie_word_embeddings ? params : params - embed_in;
  const double attention = 4.0 * c * static_cast<double>(config.num_attention_heads) *
                           static_cast<double>(config.head_dim) *
                           static_cast<double>(config.num_hidden_layers);
  cost.flops = b * (2.0 * multiplying + attention);
  cost.memory_seconds = (cost.weight_bytes + cost.kv_bytes) / device.memory_bandwidth_bytes_per_s;
  cost.compute_seconds = cost.flops / device.flops_per_s;
  cost.memory_bound = cost.memory_seconds >= cost.compute_seconds;
  cost.tokens_per_s = b / std::max(cost.memory_seconds, cost.compute_seconds);
  return cost;
}

}  // namespace mlkv
