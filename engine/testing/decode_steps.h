// Test helper: a model and its own KV cache fed a scripted run of prompt and decode steps, for
// tests that compare two models (with and without decode graphs, or two backends) step by step.
// Sequences alternate greedy and sampled rows; sequence s owns blocks 1 + 4s .. 4 + 4s, so block
// 0, which padded rows read, stays unwritten. For tests only.
#ifndef MLKV_ENGINE_TESTING_DECODE_STEPS_H_
#define MLKV_ENGINE_TESTING_DECODE_STEPS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/model.h"
#include "gtest/gtest.h"
#include "model/random_model.h"

namespace mlkv::testing {

inline constexpr int64_t kDecodeBlockSize = 4, kDecodeNumBlocks = 64, kDecodeMaxSeqs = 12;
inline constexpr int64_t kDecodeTableWidth = 8;

inline ModelConfig DecodeStepsConfig() {
  auto config = ModelConfig::FromJson({{"hidden_size", 64},
                                       {"num_attention_heads", 4},
                                       {"num_hidden_layers", 3},
                                       {"intermediate_size", 96},
                                       {"vocab_size", 97},
                                       {"max_position_embeddings", 64},
                                       {"rotary_pct", 0.5},
                                       {"num_key_value_heads", 1},
                                       {"num_key_value_layers", 2},
                                       {"kv_sharing_rope", "unrotated"},
                                       {"eos_token_id", 0}});
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

struct ModelAndCache {
  std::unique_ptr<Model> model;
  std::unique_ptr<KvCache> cache;
};

// Seed-5 random weights on `backend`, the workspace reserved for the steps below, decode graphs
// on when `graphs`.
inline ModelAndCache MakeModelAndCache(Backend* backend, bool graphs) {
  const ModelConfig config = DecodeStepsConfig();
  auto model = Model::Create(config, RandomModelWeights(config, 5), backend);
  EXPECT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE(
      (*model)->ReserveWorkspace({kDecodeMaxSeqs * 8, kDecodeMaxSeqs, kDecodeTableWidth}).ok());
  if (graphs) {
    EXPECT_TRUE((*model)->EnableDecodeGraphs().ok());
  }
  auto cache = KvCache::Create(config, {kDecodeBlockSize, kDecodeNumBlocks, DType::kF32}, backend);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return {std::move(*model), std::move(*cache)};
}

inline int32_t DecodeBlockOf(int32_t s, int32_t position) {
  return static_cast<int32_t>(1 + 4 * s + position / kDecodeBlockSize);
}

// One step of lengths.size() sequences: the whole prompt of lengths[s] tokens when `prefill`,
// else one decode token at position lengths[s] - 1. Even sequences are greedy (argmax rows), odd
// ones sampled on the backend with draw index `step`.
inline StepBatch DecodeStep(const std::vector<int32_t>& lengths, bool prefill, int32_t step) {
  StepBatch b;
  b.query_start = {0};
  b.max_blocks_per_seq = 4;
  for (int32_t s = 0; s < static_cast<int32_t>(lengths.size()); ++s) {
    const int32_t first = prefill ? 0 : lengths[s] - 1;
    for (int32_t p = first; p < lengths[s]; ++p) {
      b.token_ids.push_back(1 + (s * 13 + p * 7) % 96);
      b.positions.push_back(p);
      b.slot_mapping.push_back(int64_t{DecodeBlockOf(s, p)} * kDecodeBlockSize +
                               p % kDecodeBlockSize);
    }
    const int32_t last = static_cast<int32_t>(b.token_ids.size()) - 1;
    if (s % 2 == 0) {
      b.argmax_rows.push_back(last);
    } else {
      b.sample_rows.push_back(last);
      b.sample_params.push_back(RowSampling{0.9f, s % 3 == 1 ? 20 : 0, 0.95f, 0.0f,
                                            static_cast<uint64_t>(s), static_cast<uint64_t>(step)});
    }
    b.query_start.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.context_lens.push_back(lengths[s]);
    for (int32_t k = 0; k < 4; ++k) b.block_tables.push_back(DecodeBlockOf(s, 4 * k));
  }
  return b;
}

// Feeds `a` and `b` the same run (batch sizes 1, 3, 5, 8 and 11, each a prompt step then six
// decode steps) and expects the same tokens from both at every step.
inline void ExpectSameDecodeTokens(ModelAndCache& a, ModelAndCache& b) {
  for (int32_t seqs : {1, 3, 5, 8, 11}) {
    std::vector<int32_t> lengths;
    for (int32_t s = 0; s < seqs; ++s) lengths.push_back(3 + s % 4);
    StepOutput out_a, out_b;
    ASSERT_TRUE(a.model->Forward(DecodeStep(lengths, true, 0), *a.cache, &out_a).ok());
    ASSERT_TRUE(b.model->Forward(DecodeStep(lengths, true, 0), *b.cache, &out_b).ok());
    for (int32_t step = 1; step <= 6; ++step) {
      for (int32_t& length : lengths) ++length;
      const StepBatch batch = DecodeStep(lengths, false, step);
      ASSERT_TRUE(a.model->Forward(batch, *a.cache, &out_a).ok());
      ASSERT_TRUE(b.model->Forward(batch, *b.cache, &out_b).ok());
      EXPECT_EQ(out_b.tokens, out_a.tokens) << seqs << " sequences, step " << step;
      EXPECT_TRUE(out_b.logits.empty());
    }
  }
}

}  // namespace mlkv::testing

#endif  // MLKV_ENGINE_TESTING_DECODE_STEPS_H_
