// Decode-graph buckets and padded batches; see decode_graph_batch.h.
#include "engine/decode_graph_batch.h"

#include <algorithm>
#include <numeric>

namespace mlkv {

std::vector<int64_t> DecodeGraphBuckets(int64_t max_batch) {
  std::vector<int64_t> buckets;
  for (int64_t b = 1; b < max_batch;) {
    buckets.push_back(b);
    b = b < 8 ? (b == 4 ? 8 : 2 * b) : b + (b < 256 ? 8 : 16);
  }
  if (max_batch >= 1) buckets.push_back(max_batch);
  return buckets;
}

std::optional<int64_t> BucketFor(const std::vector<int64_t>& buckets, int64_t num_seqs) {
  const auto it = std::lower_bound(buckets.begin(), buckets.end(), num_seqs);
  if (it == buckets.end()) return std::nullopt;
  return *it;
}

bool IsDecodeStep(const StepBatch& batch) {
  return batch.num_tokens() == batch.num_seqs() && batch.logits_rows.empty();
}

void PadDecodeBatch(const StepBatch& batch, int64_t bucket, int64_t table_width,
                    StepBatch* padded) {
  const int64_t S = batch.num_seqs(), W = table_width;
  const auto pad = [&](auto& field, const auto& real, auto fill) {
    field.assign(bucket, fill);
    std::copy(real.begin(), real.end(), field.begin());
  };
  pad(padded->token_ids, batch.token_ids, 0);
  pad(padded->positions, batch.positions, 0);
  pad(padded->slot_mapping, batch.slot_mapping, int64_t{-1});
  pad(padded->context_lens, batch.context_lens, 1);
  padded->query_start.resize(bucket + 1);
  std::iota(padded->query_start.begin(), padded->query_start.end(), 0);
  padded->max_blocks_per_seq = W;
  padded->block_tables.assign(bucket * W, 0);
  for (int64_t s = 0; s < S; ++s) {
    const auto table = batch.block_tables.begin() + s * batch.max_blocks_per_seq;
    std::copy(table, table + batch.max_blocks_per_seq, padded->block_tables.begin() + s * W);
  }
  padded->logits_rows.clear();
  padded->argmax_rows.clear();
  padded->sample_rows.resize(bucket);
  std::iota(padded->sample_rows.begin(), padded->sample_rows.end(), 0);
  padded->sample_params.assign(bucket, RowSampling{.temperature = 0.0f});
  for (size_t i = 0; i < batch.sample_rows.size(); ++i) {
    padded->sample_params[batch.sample_rows[i]] = batch.sample_params[i];
  }
}

}  // namespace mlkv
