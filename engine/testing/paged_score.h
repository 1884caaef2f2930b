// Test helper: scoring one sequence through Model::Forward and a paged KV cache laid out in a
// chosen way (block size, tokens per step, scattered blocks), for tests that compare layouts or
// backends. For tests only.
#ifndef MLKV_ENGINE_TESTING_PAGED_SCORE_H_
#define MLKV_ENGINE_TESTING_PAGED_SCORE_H_

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <vector>

#include "common/dtype.h"
#include "engine/kv_cache.h"
#include "engine/log_softmax.h"
#include "engine/model.h"
#include "engine/step_batch.h"
#include "gtest/gtest.h"

namespace mlkv::testing {

struct Layout {
  int64_t block_size;
  int64_t chunk;  // tokens per step
  bool shuffle;   // blocks scattered over a larger pool, in random order
  DType kv_dtype = DType::kF32;
};

// log p(tokens[i + 1] | tokens[..i]) for every i, feeding the sequence `layout.chunk` tokens per
// step through the paged cache.
inline std::vector<float> Score(Model& model, const std::vector<int32_t>& tokens,
                                const Layout& layout) {
  const int64_t n = static_cast<int64_t>(tokens.size()), bs = layout.block_size;
  const int64_t blocks = (n + bs - 1) / bs, pool = layout.shuffle ? 3 * blocks + 5 : blocks;
  auto cache = KvCache::Create(model.config(), {bs, pool, layout.kv_dtype}, &model.backend());
  EXPECT_TRUE(cache.ok()) << cache.status();
  std::vector<int32_t> table(pool);
  std::iota(table.begin(), table.end(), 0);
  if (layout.shuffle) std::shuffle(table.begin(), table.end(), std::mt19937(42));
  table.resize(blocks);
  std::vector<float> scores;
  StepOutput output;
  for (int64_t start = 0; start < n; start += layout.chunk) {
    const int64_t end = std::min(n, start + layout.chunk);
    StepBatch batch;
    batch.max_blocks_per_seq = blocks;
    batch.block_tables = table;
    batch.query_start = {0, static_cast<int32_t>(end - start)};
    batch.context_lens = {static_cast<int32_t>(end)};
    for (int64_t p = start; p < end; ++p) {
      batch.token_ids.push_back(tokens[p]);
      batch.positions.push_back(static_cast<int32_t>(p));
      batch.slot_mapping.push_back(static_cast<int64_t>(table[p / bs]) * bs + p % bs);
      batch.logits_rows.push_back(static_cast<int32_t>(p - start));
    }
    absl::Status status = model.Forward(batch, **cache, &output);
    EXPECT_TRUE(status.ok()) << status;
    const int64_t vocab = model.config().vocab_size;
    for (int64_t p = start; p < end && p + 1 < n; ++p) {
      const std::span<const float> row(output.logits.data() + (p - start) * vocab, vocab);
      scores.push_back(LogProbability(row, tokens[p + 1]));
    }
  }
  return scores;
}

}  // namespace mlkv::testing

#endif  // MLKV_ENGINE_TESTING_PAGED_SCORE_H_
