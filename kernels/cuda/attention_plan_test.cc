// The CUDA attention planner on the CPU: which shapes are served, when and how the context is
// split, and the shared-memory layout's sizes and bank-conflict-free strides.
#include "kernels/cuda/attention_plan.h"

#include "gtest/gtest.h"

namespace mlkv::cuda {
namespace {

AttentionShape Shape(int64_t tokens, int64_t heads, int64_t kv_heads, int64_t d, int64_t context,
                     DType dtype = DType::kF32) {
  AttentionShape s;
  s.num_tokens = tokens;
  s.num_heads = heads;
  s.num_kv_heads = kv_heads;
  s.head_dim = d;
  s.max_context = context;
  s.kv_dtype = dtype;
  return s;
}

TEST(AttentionPlanTest, ServesGroupsUpTo16AndHeadDimsUpTo256) {
  for (int64_t group : {1, 2, 4, 8, 12, 16}) {
    EXPECT_TRUE(CheckAttentionShape(12 * group, 12, 64).ok()) << group;
  }
  EXPECT_FALSE(CheckAttentionShape(32, 1, 64).ok());   // group 32
  EXPECT_FALSE(CheckAttentionShape(12, 5, 64).ok());   // not a multiple
  EXPECT_FALSE(CheckAttentionShape(12, 0, 64).ok());
  EXPECT_FALSE(CheckAttentionShape(12, 12, 257).ok());
  EXPECT_FALSE(CheckAttentionShape(12, 12, 0).ok());
  EXPECT_TRUE(CheckAttentionShape(12, 12, 256).ok());
  EXPECT_TRUE(CheckAttentionShape(12, 12, 17).ok());
}

TEST(AttentionPlanTest, SplitsOnlyWhenTheGridIsSmall) {
  const int64_t sms = 132;
  // Batch 256 x 12 KV heads: 3072 blocks already fill the GPU.
  AttentionPlan big = PlanAttention(Shape(256, 12, 12, 64, 2048), sms, 0);
  EXPECT_EQ(big.num_splits, 1);
  EXPECT_EQ(big.workspace_bytes, 0);
  // Batch 1, MQA: one block would leave 131 SMs idle; split, but no split below 256 tokens.
  AttentionPlan one = PlanAttention(Shape(1, 12, 1, 64, 4096), sms, 0);
  EXPECT_EQ(one.num_splits, 4096 / kMinSplitTokens);
  EXPECT_EQ(one.split_tokens, kMinSplitTokens);
  // Long contexts allow more splits, capped at kMaxSplits.
  AttentionPlan longest = PlanAttention(Shape(1, 12, 1, 64, 1 << 20), sms, 0);
  EXPECT_EQ(longest.num_splits, kMaxSplits);
  EXPECT_GE(longest.split_tokens * longest.num_splits, 1 << 20);
  // A short context is never split.
  EXPECT_EQ(PlanAttention(Shape(1, 12, 1, 64, 200), sms, 0).num_splits, 1);
}

TEST(AttentionPlanTest, SplitsCoverTheContextInWholeTiles) {
  for (int64_t context : {1, 31, 32, 33, 255, 257, 1000, 4097, 100000}) {
    for (int64_t tokens : {1, 3, 40}) {
      const AttentionPlan p = PlanAttention(Shape(tokens, 8, 2, 64, context), 108, 0);
      EXPECT_EQ(p.split_tokens % kAttentionTile, 0);
      EXPECT_GE(p.split_tokens * p.num_splits, context);
      EXPECT_LT(p.split_tokens * (p.num_splits - 1), context);  // no split starts past the end
      EXPECT_GE(p.num_splits, 1);
      EXPECT_LE(p.num_splits, kMaxSplits);
    }
  }
}

TEST(AttentionPlanTest, ForcedSplitsRoundToTilesAndSizeTheWorkspace) {
  const AttentionPlan p = PlanAttention(Shape(5, 12, 3, 64, 100), 132, 20);
  EXPECT_EQ(p.split_tokens, 32);
  EXPECT_EQ(p.num_splits, 4);
  EXPECT_EQ(p.workspace_bytes, 4 * 5 * 12 * (64 + 2) * 4);
  // Forced splits too short for the context are lengthened to stay within kMaxSplits.
  const AttentionPlan capped = PlanAttention(Shape(1, 4, 4, 64, 10000), 132, 32);
  EXPECT_LE(capped.num_splits, kMaxSplits);
  EXPECT_GE(capped.num_splits * capped.split_tokens, 10000);
}

// The reserve bounds every plan of a smaller step (fewer rows, shorter contexts), chosen or
// forced, checked by brute force, and is no more than twice the largest of them (it is a bound,
// not an estimate that could fall short).
TEST(AttentionPlanTest, MaxWorkspaceBoundsEverySmallerStep) {
  struct Case {
    int64_t heads, kv_heads, d, tokens, context, sms, forced;
  };
  for (const Case& c : {Case{12, 12, 64, 40, 2048, 132, 0}, Case{12, 1, 64, 300, 2048, 132, 0},
                        Case{16, 2, 128, 8, 20000, 108, 0}, Case{12, 1, 64, 5, 3000, 132, 100},
                        Case{8, 8, 256, 3, 700, 16, 32}, Case{4, 1, 64, 1, 1, 132, 0}}) {
    const AttentionShape largest = Shape(c.tokens, c.heads, c.kv_heads, c.d, c.context);
    const int64_t bound = MaxAttentionWorkspace(largest, c.sms, c.forced);
    int64_t most = 0;
    for (int64_t tokens = 1; tokens <= c.tokens; ++tokens) {
      for (int64_t context = 1; context <= c.context; context += 1 + context / 64) {
        const AttentionShape shape = Shape(tokens, c.heads, c.kv_heads, c.d, context);
        const int64_t bytes = PlanAttention(shape, c.sms, c.forced).workspace_bytes;
        ASSERT_LE(bytes, bound) << tokens << " rows, context " << context;
        most = std::max(most, bytes);
      }
      const int64_t bytes = PlanAttention(Shape(tokens, c.heads, c.kv_heads, c.d, c.context),
                                          c.sms, c.forced).workspace_bytes;
      ASSERT_LE(bytes, bound) << tokens << " rows, the longest context";
      most = std::max(most, bytes);
    }
    EXPECT_LE(bound, 2 * most) << c.tokens << " rows, context " << c.context;
  }
  // Big steps never split: nothing to reserve.
  EXPECT_EQ(MaxAttentionWorkspace(Shape(1, 12, 12, 64, 1), 132, 0), 0);
}

TEST(AttentionPlanTest, VectorisesWhenRowsAre16ByteAligned) {
  EXPECT_TRUE(PlanAttention(Shape(1, 4, 4, 64, 16), 132, 0).vectorized);
  EXPECT_TRUE(PlanAttention(Shape(1, 4, 4, 12, 16), 132, 0).vectorized);  // 3 float4s
  EXPECT_FALSE(PlanAttention(Shape(1, 4, 4, 17, 16), 132, 0).vectorized);
  EXPECT_TRUE(PlanAttention(Shape(1, 4, 4, 64, 16, DType::kBF16), 132, 0).vectorized);
  EXPECT_FALSE(PlanAttention(Shape(1, 4, 4, 12, 16, DType::kBF16), 132, 0).vectorized);
  AttentionShape unaligned = Shape(1, 4, 4, 64, 16);
  unaligned.pools_aligned = false;
  EXPECT_FALSE(PlanAttention(unaligned, 132, 0).vectorized);
}

// A warp reads one column of the staged tile, lane t at row t: with float4 reads each quarter
// warp must touch 8 distinct 16-byte bank groups, with scalar reads 32 distinct banks.
TEST(AttentionPlanTest, StagedRowStrideIsBankConflictFree) {
  for (int64_t d = 1; d <= kMaxHeadDim; ++d) {
    for (DType dtype : {DType::kF32, DType::kBF16}) {
      const AttentionPlan p = PlanAttention(Shape(1, 1, 1, d, 16, dtype), 132, 0);
      EXPECT_GE(p.smem_stride, d);
      if (p.vectorized) {
        ASSERT_EQ(p.smem_stride % 4, 0);
        std::vector<bool> seen(8, false);
        for (int64_t lane = 0; lane < 8; ++lane) {
          const int64_t group = (lane * p.smem_stride / 4) % 8;
          EXPECT_FALSE(seen[group]) << "d " << d;
          seen[group] = true;
        }
      } else {
        std::vector<bool> seen(32, false);
        for (int64_t lane = 0; lane < 32; ++lane) {
          const int64_t bank = (lane * p.smem_stride) % 32;
          EXPECT_FALSE(seen[bank]) << "d " << d;
          seen[bank] = true;
        }
      }
    }
  }
}

TEST(AttentionPlanTest, FewerAccumulatorsWhenTheGroupsOutputsAreSmall) {
  for (int64_t group : {1, 2, 4, 8, 12, 16}) {
    EXPECT_EQ(PlanAttention(Shape(1, group, 1, 64, 16), 132, 0).accumulators, kSmallAccumulators)
        << group;
  }
  EXPECT_EQ(PlanAttention(Shape(1, 8, 1, 128, 16), 132, 0).accumulators, kSmallAccumulators);
  EXPECT_EQ(PlanAttention(Shape(1, 16, 1, 128, 16), 132, 0).accumulators, kMaxAccumulators);
  EXPECT_EQ(PlanAttention(Shape(1, 16, 1, 17, 16), 132, 0).accumulators, kSmallAccumulators);
  EXPECT_EQ(PlanAttention(Shape(1, 12, 1, 127, 16), 132, 0).accumulators, kMaxAccumulators);
  // Every thread's share of group x head_dim outputs fits its accumulators.
  for (int64_t group = 1; group <= kMaxGroupSize; ++group) {
    for (int64_t d = 1; d <= kMaxHeadDim; ++d) {
      const AttentionPlan p = PlanAttention(Shape(1, group, 1, d, 16), 132, 0);
      const int64_t width = p.vectorized ? 4 : 1;  // floats per accumulator unit
      const int64_t units = group * (d / width);
      ASSERT_LE((units + kAttentionThreads - 1) / kAttentionThreads * width, p.accumulators)
          << group << " " << d;
    }
  }
}

TEST(AttentionPlanTest, SharedMemoryFitsEveryServedShape) {
  // 48 KiB without opting in; sm_80 allows 163 KiB per block with the opt-in.
  const AttentionPlan pythia = PlanAttention(Shape(1, 12, 1, 64, 16), 132, 0);
  EXPECT_LE(pythia.smem_bytes, 48 * 1024);
  const AttentionPlan large = PlanAttention(Shape(1, 16, 1, 128, 16), 132, 0);
  EXPECT_LE(large.smem_bytes, 48 * 1024);
  const AttentionPlan largest = PlanAttention(Shape(1, 16, 1, kMaxHeadDim, 16), 132, 0);
  EXPECT_LE(largest.smem_bytes, 163 * 1024);
  EXPECT_EQ(largest.smem_bytes % 8, 0);  // the int64 row offsets sit at the end
}

}  // namespace
}  // namespace mlkv::cuda
