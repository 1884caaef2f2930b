// The decode-graph buckets (their ladder, the cap, the bucket each batch size takes) and the
// padded batch a graph runs.
#include "engine/decode_graph_batch.h"

#include <vector>

#include "gtest/gtest.h"

namespace mlkv {
namespace {

TEST(DecodeGraphBucketsTest, LadderOfPowersThenEightsThenSixteensUpToTheCap) {
  EXPECT_EQ(DecodeGraphBuckets(1), (std::vector<int64_t>{1}));
  EXPECT_EQ(DecodeGraphBuckets(3), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(DecodeGraphBuckets(20), (std::vector<int64_t>{1, 2, 4, 8, 16, 20}));
  EXPECT_EQ(DecodeGraphBuckets(24), (std::vector<int64_t>{1, 2, 4, 8, 16, 24}));
  EXPECT_TRUE(DecodeGraphBuckets(0).empty());
  const std::vector<int64_t> large = DecodeGraphBuckets(512);
  ASSERT_EQ(large.size(), 3u + 32u + 16u);  // 1, 2, 4; 8..256 by 8; 272..512 by 16
  EXPECT_EQ(large[3], 8);
  EXPECT_EQ(large[34], 256);
  EXPECT_EQ(large[35], 272);
  EXPECT_EQ(large.back(), 512);
  for (size_t i = 1; i < large.size(); ++i) EXPECT_LT(large[i - 1], large[i]);
}

TEST(DecodeGraphBucketsTest, EachBatchTakesTheSmallestBucketThatHoldsIt) {
  const std::vector<int64_t> buckets = DecodeGraphBuckets(300);
  EXPECT_EQ(BucketFor(buckets, 1), 1);
  EXPECT_EQ(BucketFor(buckets, 3), 4);
  EXPECT_EQ(BucketFor(buckets, 5), 8);
  EXPECT_EQ(BucketFor(buckets, 9), 16);
  EXPECT_EQ(BucketFor(buckets, 256), 256);
  EXPECT_EQ(BucketFor(buckets, 257), 272);
  EXPECT_EQ(BucketFor(buckets, 290), 300);
  EXPECT_EQ(BucketFor(buckets, 300), 300);
  EXPECT_EQ(BucketFor(buckets, 301), std::nullopt);
}

// Three decoding sequences with block tables of two entries, padded to five rows of four-entry
// tables: the real rows as they were, the padding inert, every row a sample row.
TEST(PadDecodeBatchTest, KeepsTheRealRowsAndMakesThePaddingInert) {
  StepBatch batch;
  batch.token_ids = {11, 12, 13};
  batch.positions = {20, 3, 17};
  batch.slot_mapping = {100, 51, 83};
  batch.query_start = {0, 1, 2, 3};
  batch.context_lens = {21, 4, 18};
  batch.max_blocks_per_seq = 2;
  batch.block_tables = {6, 7, 3, 0, 5, 9};
  batch.argmax_rows = {1};
  batch.sample_rows = {2, 0};
  const RowSampling hot{1.5f, 40, 0.9f, 0.0f, 7, 3}, cold{0.5f, 0, 1.0f, 0.1f, 8, 0};
  batch.sample_params = {hot, cold};
  ASSERT_TRUE(IsDecodeStep(batch));

  StepBatch padded;
  padded.logits_rows = {4};  // stale contents of a reused batch are replaced
  PadDecodeBatch(batch, 5, 4, &padded);
  EXPECT_EQ(padded.token_ids, (std::vector<int32_t>{11, 12, 13, 0, 0}));
  EXPECT_EQ(padded.positions, (std::vector<int32_t>{20, 3, 17, 0, 0}));
  EXPECT_EQ(padded.slot_mapping, (std::vector<int64_t>{100, 51, 83, -1, -1}));
  EXPECT_EQ(padded.query_start, (std::vector<int32_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(padded.context_lens, (std::vector<int32_t>{21, 4, 18, 1, 1}));
  EXPECT_EQ(padded.max_blocks_per_seq, 4);
  EXPECT_EQ(padded.block_tables,
            (std::vector<int32_t>{6, 7, 0, 0, 3, 0, 0, 0, 5, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_TRUE(padded.logits_rows.empty());
  EXPECT_TRUE(padded.argmax_rows.empty());
  EXPECT_EQ(padded.sample_rows, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  ASSERT_EQ(padded.sample_params.size(), 5u);
  const auto same = [](const RowSampling& a, const RowSampling& b) {
    return a.temperature == b.temperature && a.top_k == b.top_k && a.top_p == b.top_p &&
           a.min_p == b.min_p && a.seed == b.seed && a.draw == b.draw;
  };
  EXPECT_TRUE(same(padded.sample_params[0], cold));
  EXPECT_TRUE(same(padded.sample_params[2], hot));
  for (int row : {1, 3, 4}) {
    EXPECT_EQ(padded.sample_params[row].temperature, 0.0f) << "row " << row << " is the argmax";
  }
}

TEST(PadDecodeBatchTest, OnlyDecodeStepsWithoutLogitsRowsRunAsGraphs) {
  StepBatch decode;
  decode.token_ids = {1, 2};
  decode.context_lens = {5, 9};
  decode.argmax_rows = {0, 1};
  EXPECT_TRUE(IsDecodeStep(decode));
  StepBatch with_logits = decode;
  with_logits.logits_rows = {0};
  with_logits.argmax_rows = {1};
  EXPECT_FALSE(IsDecodeStep(with_logits));
  StepBatch prefill = decode;
  prefill.token_ids = {1, 2, 3};  // a sequence with two new tokens
  EXPECT_FALSE(IsDecodeStep(prefill));
}

}  // namespace
}  // namespace mlkv
