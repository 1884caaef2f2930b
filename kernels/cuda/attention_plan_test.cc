// The CUDA attention planner on the CPU: which shapes are served and by which kernel, when and how
// the context is split, and the shared-memory layout's sizes and bank-conflict-free strides.
#include "kernels/cuda/attention_plan.h"

#include <algorithm>
#include <random>
#include <vector>

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

// `shape` asking for the tensor-core kernel, with `seqs` sequences.
AttentionShape TensorCore(AttentionShape shape, int64_t seqs) {
  shape.kernel = AttentionKernel::kTensorCore;
  shape.num_seqs = seqs;
  return shape;
}

TEST(AttentionPlanTest, ServesGroupsUpTo16AndHeadDimsUpTo256) {
  for (int64_t group : {1, 2, 4, 8, 12, 16}) {
    EXPECT_TRUE(CheckAttentionShape(12 * group, 12, 64).ok()) << group;
  }
  EXPECT_FALSE(CheckAttentionShape(32, 1, 64).ok());  // group 32
  EXPECT_FALSE(CheckAttentionShape(12, 5, 64).ok());  // not a multiple
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
  for (int64_t context : {1, 31, 32, 33, 63, 65, 255, 257, 1000, 4097, 100000}) {
    for (int64_t tokens : {1, 3, 40}) {
      const AttentionPlan simt = PlanAttention(Shape(tokens, 8, 2, 64, context), 108, 0);
      EXPECT_EQ(simt.tile_tokens, kAttentionTile);
      const AttentionShape narrow = Shape(tokens, 8, 2, 64, context, DType::kBF16);
      const AttentionPlan tensor_core = PlanAttention(TensorCore(narrow, 1), 108, 0);
      EXPECT_EQ(tensor_core.kernel, AttentionKernel::kTensorCore);
      EXPECT_EQ(tensor_core.tile_tokens, kTensorCoreTile);
      for (const AttentionPlan& p : {simt, tensor_core}) {
        EXPECT_EQ(p.split_tokens % p.tile_tokens, 0);
        EXPECT_GE(p.split_tokens * p.num_splits, context);
        EXPECT_LT(p.split_tokens * (p.num_splits - 1), context);  // no split starts past the end
        EXPECT_GE(p.num_splits, 1);
        EXPECT_LE(p.num_splits, kMaxSplits);
      }
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

// The reserve bounds every plan of a smaller step (fewer rows, shorter contexts, decode steps or
// prompt chunks), chosen or forced, for both kernels, checked by brute force, and is no more than
// twice the largest of them (it is a bound, not an estimate that could fall short).
TEST(AttentionPlanTest, MaxWorkspaceBoundsEverySmallerStep) {
  struct Case {
    int64_t heads, kv_heads, d, tokens, context, sms, forced;
  };
  for (const AttentionKernel kernel : {AttentionKernel::kSimt, AttentionKernel::kTensorCore}) {
    for (const Case& c : {Case{12, 12, 64, 40, 2048, 132, 0}, Case{12, 1, 64, 300, 2048, 132, 0},
                          Case{16, 2, 128, 8, 20000, 108, 0}, Case{12, 1, 64, 5, 3000, 132, 100},
                          Case{8, 8, 256, 3, 700, 16, 32}, Case{4, 1, 64, 1, 1, 132, 0}}) {
      // bf16, so that the tensor-core kernel serves every head dim it lists.
      auto shape_of = [&](int64_t tokens, int64_t context, int64_t seqs) {
        AttentionShape shape = Shape(tokens, c.heads, c.kv_heads, c.d, context, DType::kBF16);
        shape.kernel = kernel;
        shape.num_seqs = seqs;
        return shape;
      };
      const int64_t bound =
          MaxAttentionWorkspace(shape_of(c.tokens, c.context, 0), c.sms, c.forced);
      int64_t most = 0;
      for (int64_t tokens = 1; tokens <= c.tokens; ++tokens) {
        for (int64_t context = 1; context <= c.context; context += 1 + context / 64) {
          for (int64_t seqs : {int64_t{1}, tokens}) {  // one prompt chunk; a decode step
            const int64_t bytes =
                PlanAttention(shape_of(tokens, context, seqs), c.sms, c.forced).workspace_bytes;
            ASSERT_LE(bytes, bound)
                << tokens << " rows, context " << context << ", " << seqs << " sequences";
            most = std::max(most, bytes);
          }
        }
        const int64_t bytes =
            PlanAttention(shape_of(tokens, c.context, 1), c.sms, c.forced).workspace_bytes;
        ASSERT_LE(bytes, bound) << tokens << " rows, the longest context";
        most = std::max(most, bytes);
      }
      EXPECT_LE(bound, 2 * most) << c.tokens << " rows, context " << c.context;
    }
  }
  // Big steps never split: nothing to reserve.
  EXPECT_EQ(MaxAttentionWorkspace(Shape(1, 12, 12, 64, 1), 132, 0), 0);
}

// The tensor-core kernel takes f16/bf16 caches of its listed head dims on 16-byte aligned pools;
// anything else falls back to the SIMT kernel, which serves every shape.
TEST(AttentionPlanTest, TensorCoreKernelServesNarrowCachesOfItsHeadDims) {
  for (int64_t d : kTensorCoreHeadDims) {
    for (DType dtype : {DType::kF16, DType::kBF16}) {
      EXPECT_EQ(PlanAttention(TensorCore(Shape(1, 12, 1, d, 16, dtype), 1), 132, 0).kernel,
                AttentionKernel::kTensorCore)
          << d;
    }
    EXPECT_EQ(PlanAttention(TensorCore(Shape(1, 12, 1, d, 16), 1), 132, 0).kernel,
              AttentionKernel::kSimt)
        << "f32, d " << d;
  }
  for (int64_t d : {16, 17, 48, 112, 256}) {
    EXPECT_EQ(PlanAttention(TensorCore(Shape(1, 12, 1, d, 16, DType::kF16), 1), 132, 0).kernel,
              AttentionKernel::kSimt)
        << d;
  }
  AttentionShape unaligned = TensorCore(Shape(1, 12, 1, 64, 16, DType::kBF16), 1);
  unaligned.pools_aligned = false;
  EXPECT_EQ(PlanAttention(unaligned, 132, 0).kernel, AttentionKernel::kSimt);
  // Not asked for: the SIMT kernel, whatever the shape.
  EXPECT_EQ(PlanAttention(Shape(1, 12, 1, 64, 16, DType::kBF16), 132, 0).kernel,
            AttentionKernel::kSimt);
}

// Decode steps give each block one row's group, so its four warps split the tokens; prompt
// chunks give it as many rows as fill its 64 query vectors.
TEST(AttentionPlanTest, TensorCoreBlocksTakeWholeRowGroups) {
  for (int64_t group = 1; group <= kMaxGroupSize; ++group) {
    const AttentionShape chunk = TensorCore(Shape(40, 2 * group, 2, 64, 512, DType::kF16), 2);
    const AttentionPlan p = PlanAttention(chunk, 132, 0);
    EXPECT_EQ(p.rows_per_block, kTensorCoreVectors / group) << group;
    EXPECT_LE(p.rows_per_block * group, kTensorCoreVectors);
    // Four warps of 16 vectors each have work: the tile is never under three quarters full.
    EXPECT_GT(p.rows_per_block * group, 3 * kTensorCoreVectors / 4) << group;
    const AttentionShape decode = TensorCore(Shape(40, 2 * group, 2, 64, 512, DType::kF16), 40);
    EXPECT_EQ(PlanAttention(decode, 132, 0).rows_per_block, 1) << group;
  }
  EXPECT_EQ(
      PlanAttention(TensorCore(Shape(40, 12, 1, 64, 512, DType::kF16), 0), 132, 0).rows_per_block,
      5);  // sequences unknown: planned as prompt chunks
}

// The grid's first dimension covers every run of rows whatever the step's split into sequences
// (random ones, with empty sequences among them), and the SIMT kernel gets a block per row.
TEST(AttentionPlanTest, RowBlocksCoverEveryRunOfRows) {
  std::mt19937 rng(5);
  for (int64_t group : {1, 3, 12, 16}) {
    for (int trial = 0; trial < 200; ++trial) {
      const int64_t seqs = 1 + static_cast<int64_t>(rng() % 70);
      std::vector<int64_t> rows(seqs);
      int64_t tokens = 0;
      for (int64_t& n : rows) {
        n = rng() % 4 == 0 ? 0 : static_cast<int64_t>(rng() % 150);  // some sequences empty
        tokens += n;
      }
      if (tokens == 0) continue;
      const AttentionShape shape =
          TensorCore(Shape(tokens, 2 * group, 2, 64, 4096, DType::kBF16), seqs);
      const AttentionPlan p = PlanAttention(shape, 132, 0);
      int64_t runs = 0;
      for (int64_t n : rows) runs += (n + p.rows_per_block - 1) / p.rows_per_block;
      ASSERT_GE(p.row_blocks, runs) << group << ", trial " << trial;
      EXPECT_LE(p.row_blocks, tokens);
      EXPECT_EQ(PlanAttention(Shape(tokens, 2 * group, 2, 64, 4096), 132, 0).row_blocks, tokens);
    }
  }
  // Decode steps: a block per row.
  EXPECT_EQ(
      PlanAttention(TensorCore(Shape(40, 12, 1, 64, 512, DType::kF16), 40), 132, 0).row_blocks, 40);
  // One prompt chunk of 512 rows, groups of 12: 103 runs of 5 rows, not 512 blocks.
  EXPECT_EQ(
      PlanAttention(TensorCore(Shape(512, 12, 1, 64, 512, DType::kF16), 1), 132, 0).row_blocks,
      512 / 5 + 1);
}

TEST(AttentionPlanTest, TensorCoreSharedMemoryFitsAnSm80Block) {
  for (int64_t d : kTensorCoreHeadDims) {
    const AttentionPlan p =
        PlanAttention(TensorCore(Shape(1, 12, 1, d, 16, DType::kF16), 1), 132, 0);
    EXPECT_EQ(p.smem_bytes, TensorCoreSmemBytes(d));
    EXPECT_EQ(p.smem_stride, d + 8);
    EXPECT_LE(p.smem_bytes, 163 * 1024) << d;
    // 16-byte rows (cp.async destinations) whose 4-byte words land on distinct banks for the
    // 8 rows x 4 words of an mma operand.
    EXPECT_EQ(p.smem_stride * 2 % 16, 0);
    std::vector<bool> seen(32, false);
    for (int64_t row = 0; row < 8; ++row) {
      for (int64_t word = 0; word < 4; ++word) {
        const int64_t bank = (row * p.smem_stride / 2 + word) % 32;
        EXPECT_FALSE(seen[bank]) << "d " << d;
        seen[bank] = true;
      }
    }
  }
  // Pythia's head dim needs no opt-in.
  EXPECT_LE(TensorCoreSmemBytes(64), 48 * 1024);
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
