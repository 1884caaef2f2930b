// Workloads: lengths, vocabulary range, shared prefixes, traces and determinism.
#include "tools/loadgen/workload.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv::loadgen {
namespace {

using ::testing::HasSubstr;

WorkloadOptions Options(const std::string& input, const std::string& output) {
  WorkloadOptions o;
  o.input_len = *LengthDistribution::Parse("input-len", input);
  o.output_len = *LengthDistribution::Parse("output-len", output);
  o.vocab_size = 50;
  o.seed = 1;
  return o;
}

TEST(WorkloadTest, PromptsHaveTheLengthsAndIdsInTheVocabulary) {
  auto w = Workload::Create(Options("uniform:5:9", "12"));
  ASSERT_TRUE(w.ok()) << w.status();
  for (int i = 0; i < 200; ++i) {
    const RequestSpec r = w->Next();
    EXPECT_GE(r.prompt_token_ids.size(), 5u);
    EXPECT_LE(r.prompt_token_ids.size(), 9u);
    EXPECT_TRUE(r.prompt_text.empty());
    EXPECT_EQ(r.output_len, 12);
    for (int32_t id : r.prompt_token_ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, 50);
    }
  }
}

TEST(WorkloadTest, SameSeedSameRequests) {
  auto a = Workload::Create(Options("uniform:5:50", "uniform:1:9"));
  auto b = Workload::Create(Options("uniform:5:50", "uniform:1:9"));
  for (int i = 0; i < 20; ++i) {
    const RequestSpec x = a->Next(), y = b->Next();
    EXPECT_EQ(x.prompt_token_ids, y.prompt_token_ids);
    EXPECT_EQ(x.output_len, y.output_len);
  }
}

TEST(WorkloadTest, SharedPrefixesAreTakenInTurn) {
  WorkloadOptions o = Options("4", "1");
  o.shared_prefix_count = 3;
  o.shared_prefix_len = 10;
  auto w = Workload::Create(o);
  ASSERT_TRUE(w.ok());
  std::vector<std::vector<int32_t>> prefixes;
  for (int i = 0; i < 9; ++i) {
    const RequestSpec r = w->Next();
    ASSERT_EQ(r.prompt_token_ids.size(), 14u);
    prefixes.emplace_back(r.prompt_token_ids.begin(), r.prompt_token_ids.begin() + 10);
  }
  EXPECT_EQ(std::set(prefixes.begin(), prefixes.end()).size(), 3u);
  for (int i = 3; i < 9; ++i) EXPECT_EQ(prefixes[i], prefixes[i - 3]);
}

TEST(WorkloadTest, TraceIsReplayedInOrderAndWraps) {
  WorkloadOptions o = Options("1", "1");
  o.trace = {{std::string("hi"), 0, 3}, {std::nullopt, 6, 2}};
  auto w = Workload::Create(o);
  ASSERT_TRUE(w.ok());
  for (int round = 0; round < 2; ++round) {
    const RequestSpec text = w->Next();
    EXPECT_EQ(text.prompt_text, "hi");
    EXPECT_TRUE(text.prompt_token_ids.empty());
    EXPECT_EQ(text.output_len, 3);
    const RequestSpec ids = w->Next();
    EXPECT_EQ(ids.prompt_token_ids.size(), 6u);
    EXPECT_EQ(ids.output_len, 2);
  }
}

TEST(WorkloadTest, RefusesABadVocabularyAndAPrefixOnText) {
  WorkloadOptions o = Options("1", "1");
  o.vocab_size = 0;
  EXPECT_THAT(Workload::Create(o).status().message(), HasSubstr("--vocab-size"));
  o = Options("1", "1");
  o.trace = {{std::string("hi"), 0, 3}};
  o.shared_prefix_count = 2;
  o.shared_prefix_len = 4;
  EXPECT_THAT(Workload::Create(o).status().message(), HasSubstr("--shared-prefix-count"));
}

}  // namespace
}  // namespace mlkv::loadgen
