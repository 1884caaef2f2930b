// Scheduler policy: the token budget, chunked prefill beside decodes, max_num_seqs, priorities,
// preemption victims and resumption, prefix-cache hits, and the concurrency a cache of a given
// size reaches. The model is FakeModel (see scheduler_harness.h).
#include "scheduler/scheduler.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/fake_model.h"
#include "scheduler/scheduler_harness.h"

namespace mlkv {
namespace {

using scheduler_testing::Harness;
using scheduler_testing::MakeRequest;
using scheduler_testing::Slice;
using scheduler_testing::SmallConfig;
using scheduler_testing::StepRecord;
using scheduler_testing::Tokens;
using ::testing::ElementsAreArray;

TEST(SchedulerTest, RespectsTheTokenBudgetAndChunksPrompts) {
  Harness h(SmallConfig());
  ASSERT_TRUE(h.Add(MakeRequest("a", Tokens(10, 1), 3)).ok());
  ASSERT_TRUE(h.Add(MakeRequest("b", Tokens(5, 100), 3)).ok());
  StepRecord s1 = h.Step();
  ASSERT_EQ(s1.slices.size(), 1u);
  EXPECT_EQ(s1.slices[0].num_new, 8);
  EXPECT_FALSE(s1.slices[0].needs_sample);  // a prompt chunk short of the end
  StepRecord s2 = h.Step();
  EXPECT_EQ(s2.Ids(), "a:2 b:5 ");
  EXPECT_TRUE(s2.slices[0].needs_sample);
  EXPECT_EQ(s2.slices[0].num_computed, 8);
  StepRecord s3 = h.Step();
  EXPECT_EQ(s3.Ids(), "a:1 b:1 ");
  h.RunToCompletion();
  h.ExpectOutputsMatchRunningAlone();
}

TEST(SchedulerTest, MixesPromptChunksWithDecodes) {
  Harness h(SmallConfig());
  ASSERT_TRUE(h.Add(MakeRequest("a", Tokens(3, 1), 10)).ok());
  EXPECT_EQ(h.Step().Ids(), "a:3 ");
  ASSERT_TRUE(h.Add(MakeRequest("b", Tokens(20, 50), 2)).ok());
  EXPECT_EQ(h.Step().Ids(), "a:1 b:7 ");
  EXPECT_EQ(h.Step().Ids(), "a:1 b:7 ");
  StepRecord s = h.Step();
  EXPECT_EQ(s.Ids(), "a:1 b:6 ");
  EXPECT_TRUE(s.slices[1].needs_sample);
  h.RunToCompletion();
  h.ExpectOutputsMatchRunningAlone();
}

TEST(SchedulerTest, WithoutChunkingAWholePromptWaitsForRoom) {
  SchedulerConfig config = SmallConfig();
  config.enable_chunked_prefill = false;
  config.max_model_len = 16;
  config.max_num_batched_tokens = 16;
  Harness h(config);
  ASSERT_TRUE(h.Add(MakeRequest("a", Tokens(10, 1), 2)).ok());
  ASSERT_TRUE(h.Add(MakeRequest("b", Tokens(10, 30), 2)).ok());
  EXPECT_EQ(h.Step().Ids(), "a:10 ");
  EXPECT_EQ(h.Step().Ids(), "a:1 b:10 ");
  h.RunToCompletion();
  h.ExpectOutputsMatchRunningAlone();
}

TEST(SchedulerTest, LongPrefillThresholdSharesTheStep) {
  SchedulerConfig config = SmallConfig();
  config.max_num_batched_tokens = 16;
  config.long_prefill_token_threshold = 4;
  Harness h(config);
  ASSERT_TRUE(h.Add(MakeRequest("a", Tokens(10, 1), 2)).ok());
  ASSERT_TRUE(h.Add(MakeRequest("b", Tokens(10, 30), 2)).ok());
  EXPECT_EQ(h.Step().Ids(), "a:4 b:4 ");
  h.RunToCompletion();
  h.ExpectOutputsMatchRunningAlone();
}

TEST(SchedulerTest, RunsAtMostMaxNumSeqs) {
  SchedulerConfig config = SmallConfig();
  config.max_num_seqs = 2;
  Harness h(config);
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(h.Add(MakeRequest(id, {1, 2}, 2)).ok());
  EXPECT_EQ(h.Step().Ids(), "a:2 b:2 ");
  EXPECT_EQ(h.scheduler().num_waiting(), 1);
  EXPECT_EQ(h.Step().Ids(), "a:1 b:1 ");  // both finish (max_tokens 2)
  EXPECT_EQ(h.Step().Ids(), "c:2 ");
  h.RunToCompletion();
  h.ExpectOutputsMatchRunningAlone();
}

TEST(SchedulerTest, AdmitsByPriorityThenArrival) {
  SchedulerConfig config = SmallConfig();
  config.max_num_seqs = 1;
  Harness h(config);
  ASSERT_TRUE(h.Add(MakeRequest("late-urgent", {1}, 1, /*priority=*/0)).ok());
  ASSERT_TRUE(h.Add(MakeRequest("lazy", {2}, 1, /*priority=*/5)).ok());
  ASSERT_TRUE(h.Add(MakeRequest("urgent", {3}, 1, /*priority=*/-1)).ok());
  ASSERT_TRUE(h.Add(MakeRequest("late-urgent-2", {4}, 1, /*priority=*/0)).ok());
  std::string order;
  while (h.scheduler().HasUnfinishedRequests()) order += h.Step().Ids();
  EXPECT_EQ(order, "urgent:1 late-urgent:1 late-urgent-2:1 lazy:1 ");
}

// Three requests fill a 6-block cache; growth forces preemptions of the least urgent, latest.
TEST(SchedulerTest, PreemptsLeastUrgentThenLatestAndResumesWithoutLosingTokens) {
  SchedulerConfig config = SmallConfig();
  config.block_size = 2;
  config.num_blocks = 6;
  config.max_num_batched_tokens = 32;
  Harness h(config);
  ASSERT_TRUE(h.Add(MakeRequest("a", {1, 2, 3}, 8, /*priority=*/0)).ok());
  ASSERT_TRUE(h.Add(MakeRequest("b", {4, 5, 6}, 8, /*priority=*/1)).ok());
  ASSERT_TRUE(h.Add(MakeRequest("c", {7, 8, 9}, 8, /*priority=*/1)).ok());
  std::vector<std::string> victims;
  std::map<std::string, std::vector<int32_t>> at_preemption;
  bool saw_resume = false;
  for (int step = 0; step < 200 && h.scheduler().HasUnfinishedRequests(); ++step) {
    StepRecord record = h.Step();
    for (const Slice& s : record.slices) {
      // A resumed request recomputes prompt + kept output in one go, then samples.
      auto it = at_preemption.find(s.id);
      if (it != at_preemption.end() && s.num_computed == 0) {
        EXPECT_EQ(s.num_new, 3 + static_cast<int32_t>(it->second.size()));
        EXPECT_TRUE(s.needs_sample);
        saw_resume = true;
      }
    }
    for (const std::string& id : record.preempted) {
      victims.push_back(id);
      const Request* r = h.scheduler().FindRequest(id);
      ASSERT_NE(r, nullptr);
      EXPECT_EQ(r->status(), RequestStatus::kPreempted);
      EXPECT_EQ(r->num_computed_tokens(), 0);
      EXPECT_TRUE(r->block_table().empty());
      at_preemption[id].assign(r->output_token_ids().begin(), r->output_token_ids().end());
      EXPECT_FALSE(at_preemption[id].empty());
    }
  }
  ASSERT_FALSE(victims.empty());
  EXPECT_EQ(victims[0], "c");
  EXPECT_THAT(victims, ::testing::Not(::testing::Contains("a")));
  EXPECT_TRUE(saw_resume);
  EXPECT_FALSE(h.scheduler().HasUnfinishedRequests());
  for (const auto& [id, tokens] : at_preemption) {
    const Request* r = h.finished(id);
    ASSERT_NE(r, nullptr);
    EXPECT_GT(r->num_preemptions(), 0);
    // The tokens it had when preempted are still the start of its output.
    EXPECT_THAT(std::vector<int32_t>(r->output_token_ids().begin(),
                                     r->output_token_ids().begin() + tokens.size()),
                ElementsAreArray(tokens));
  }
  h.ExpectOutputsMatchRunningAlone();
  EXPECT_GE(h.scheduler().GetStats().num_preemptions, static_cast<int64_t>(victims.size()));
}

TEST(SchedulerTest, PrefixCacheHitsSkipComputationButNotTheLastToken) {
  SchedulerConfig config = SmallConfig();
  config.enable_prefix_caching = true;
  config.max_num_batched_tokens = 32;
  Harness h(config);
  const std::vector<int32_t> prompt = Tokens(12, 1);
  ASSERT_TRUE(h.Add(MakeRequest("a", prompt, 2)).ok());
  h.RunToCompletion();
  // b shares two full blocks, then differs.
  std::vector<int32_t> b_prompt = Tokens(8, 1);
  b_prompt.insert(b_prompt.end(), {70, 71, 72});
  ASSERT_TRUE(h.Add(MakeRequest("b", b_prompt, 2)).ok());
  // c repeats a's prompt: all three blocks are cached, but the last holds the last token.
  ASSERT_TRUE(h.Add(MakeRequest("c", prompt, 2)).ok());
  StepRecord s = h.Step();
  ASSERT_EQ(s.slices.size(), 2u);
  EXPECT_EQ(s.slices[0].num_computed, 8);
  EXPECT_EQ(s.slices[0].num_new, 3);
  EXPECT_EQ(s.slices[1].num_computed, 8);
  EXPECT_EQ(s.slices[1].num_new, 4);
  h.RunToCompletion();
  h.ExpectOutputsMatchRunningAlone();
  EXPECT_EQ(h.finished("b")->num_cached_prompt_tokens(), 8);
  EXPECT_EQ(h.finished("a")->num_cached_prompt_tokens(), 0);
  const SchedulerStats stats = h.scheduler().GetStats();
  EXPECT_EQ(stats.prefix_cache.queries, 3);
  EXPECT_EQ(stats.prefix_cache.hits, 2);
  EXPECT_EQ(stats.prefix_cache.hit_tokens, 16);
  EXPECT_EQ(stats.kv.num_used_blocks, 0);
  EXPECT_GT(stats.kv.num_cached_blocks, 0);
}

TEST(SchedulerTest, SkipPrefixCacheComputesTheWholePrompt) {
  SchedulerConfig config = SmallConfig();
  config.enable_prefix_caching = true;
  config.max_num_batched_tokens = 32;
  Harness h(config);
  const std::vector<int32_t> prompt = Tokens(12, 1);
  ASSERT_TRUE(h.Add(MakeRequest("a", prompt, 2)).ok());
  h.RunToCompletion();
  RequestParams params;
  params.max_tokens = 2;
  params.skip_prefix_cache = true;
  ASSERT_TRUE(h.Add(std::make_unique<Request>("b", prompt, params)).ok());
  StepRecord s = h.Step();
  ASSERT_EQ(s.slices.size(), 1u);
  EXPECT_EQ(s.slices[0].num_computed, 0);
  EXPECT_EQ(s.slices[0].num_new, 12);
  h.RunToCompletion();
  h.ExpectOutputsMatchRunningAlone();
}

TEST(SchedulerTest, ReachesTheConcurrencyTheBlocksAllow) {
  for (int32_t num_blocks : {37, 100, 250}) {
    SchedulerConfig config;
    config.block_size = 16;
    config.num_blocks = num_blocks;
    config.max_model_len = 256;
    config.max_num_batched_tokens = 4096;
    config.max_num_seqs = 1000;
    config.enable_prefix_caching = false;
    Harness h(config);
    const int32_t prompt_len = 100, max_tokens = 60, full_len = prompt_len + max_tokens;
    const int num_requests = 60;
    for (int i = 0; i < num_requests; ++i) {
      ASSERT_TRUE(
          h.Add(MakeRequest(absl::StrCat("r", i), Tokens(prompt_len, i * 1000), max_tokens)).ok());
    }
    int peak = 0;
    for (int step = 0; step < 20000 && h.scheduler().HasUnfinishedRequests(); ++step) {
      const StepRecord record = h.Step();
      int at_full_length = 0;
      for (const Slice& s : record.slices)
        at_full_length += s.num_computed + s.num_new == full_len - 1;
      peak = std::max(peak, at_full_length);
    }
    ASSERT_FALSE(h.scheduler().HasUnfinishedRequests());
    const int32_t blocks_per_seq = (full_len + 15) / 16;
    EXPECT_GE(peak, num_blocks / blocks_per_seq) << num_blocks;
    EXPECT_LE(peak, num_blocks / (blocks_per_seq - 1)) << num_blocks;
    EXPECT_EQ(peak, num_blocks / ((full_len - 1 + 15) / 16)) << num_blocks;
    h.ExpectOutputsMatchRunningAlone();
  }
}

}  // namespace
}  // namespace mlkv
