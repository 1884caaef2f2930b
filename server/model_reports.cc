// ModelInfo and Load messages; see model_reports.h.
#include "server/model_reports.h"

namespace mlkv::server {

v1::ModelInfo BuildModelInfo(const std::string& model_name, const ModelConfig& config,
                             const EngineOptions& options, const EngineStats& stats) {
  v1::ModelInfo info;
  info.set_model_name(model_name);

  v1::ModelConfig* c = info.mutable_config();
  c->set_hidden_size(config.hidden_size);
  c->set_num_attention_heads(config.num_attention_heads);
  c->set_num_hidden_layers(config.num_hidden_layers);
  c->set_intermediate_size(config.intermediate_size);
  c->set_vocab_size(config.vocab_size);
  c->set_max_position_embeddings(config.max_position_embeddings);
  c->set_num_key_value_heads(config.num_key_value_heads);
  c->set_num_key_value_layers(config.num_key_value_layers);
  c->set_head_dim(config.head_dim);
  c->set_rotary_dims(config.rotary_dims);
  c->set_bos_token_id(config.bos_token_id);
  c->set_eos_token_id(config.eos_token_id);
  c->set_kv_sharing_rope(config.kv_sharing_rope == KvSharingRope::kRotated ? "rotated"
                                                                           : "unrotated");
  c->set_torch_dtype(config.torch_dtype);
  for (int64_t g = 0; g < config.num_kv_groups(); ++g) {
    v1::KvGroup* group = c->add_kv_groups();
    group->set_group(static_cast<int32_t>(g));
    group->set_kv_layer(static_cast<int32_t>(config.kv_layers[g]));
    for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
      if (config.layer_group[layer] == g) group->add_layers(static_cast<int32_t>(layer));
    }
  }

  const SchedulerConfig& s = options.scheduler;
  v1::KvCacheInfo* kv = info.mutable_kv_cache();
  kv->set_kv_dtype(DTypeName(options.kv_dtype));
  kv->set_block_size(s.block_size);
  kv->set_kv_bytes_per_token(config.kv_bytes_per_token(DTypeBytes(options.kv_dtype)));
  kv->set_block_bytes(stats.block_bytes);
  kv->set_num_blocks(s.num_blocks);
  kv->set_capacity_tokens(static_cast<int64_t>(s.num_blocks) * s.block_size);
  kv->set_max_model_len(s.max_model_len);
  const int64_t blocks_per_sequence = (s.max_model_len + s.block_size - 1) / s.block_size;
  kv->set_max_concurrent_sequences(blocks_per_sequence > 0 ? s.num_blocks / blocks_per_sequence
                                                           : 0);
  kv->set_prefix_caching(s.enable_prefix_caching);

  v1::SchedulerLimits* limits = info.mutable_limits();
  limits->set_max_num_seqs(s.max_num_seqs);
  limits->set_max_num_batched_tokens(s.max_num_batched_tokens);
  limits->set_max_waiting(s.max_waiting);
  return info;
}

v1::Load BuildLoad(const EngineStats& stats) {
  const SchedulerStats& s = stats.scheduler;
  v1::Load load;
  load.set_num_running(s.num_running);
  load.set_num_waiting(s.num_waiting);
  load.set_num_preempted(s.num_preempted);
  load.set_num_used_blocks(s.kv.num_used_blocks);
  load.set_num_blocks(s.kv.num_blocks);
  load.set_kv_cache_usage(
      s.kv.num_blocks > 0 ? static_cast<double>(s.kv.num_used_blocks) / s.kv.num_blocks : 0.0);
  load.set_num_cached_free_blocks(s.kv.num_evictable_blocks);
  load.set_accepting(stats.accepting);
  // Every block holds one K and one V slab per group, all of one size.
  const int64_t group_block_bytes =
      stats.num_kv_groups > 0 ? stats.block_bytes / stats.num_kv_groups : 0;
  for (int64_t g = 0; g < stats.num_kv_groups; ++g) {
    v1::GroupLoad* group = load.add_groups();
    group->set_group(static_cast<int32_t>(g));
    group->set_num_used_blocks(s.kv.num_used_blocks);
    group->set_num_blocks(s.kv.num_blocks);
    group->set_used_bytes(group_block_bytes * s.kv.num_used_blocks);
    group->set_total_bytes(group_block_bytes * s.kv.num_blocks);
  }
  return load;
}

}  // namespace mlkv::server
