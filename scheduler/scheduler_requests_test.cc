// Scheduler request lifecycle: aborts in every state, stop rules, every class of bad input (a
// clear error, the others keep running), misuse of the step protocol, and config validation.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/fake_model.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_harness.h"

namespace mlkv {
namespace {

using scheduler_testing::Harness;
using scheduler_testing::MakeRequest;
using scheduler_testing::SmallConfig;
using scheduler_testing::StepRecord;
using scheduler_testing::Tokens;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(SchedulerTest, AbortFreesBlocksInEveryState) {
  SchedulerConfig config = SmallConfig();
  config.max_num_seqs = 2;
  Harness h(config);
  for (const char* id : {"run", "in-step", "wait"}) {
    ASSERT_TRUE(h.Add(MakeRequest(id, Tokens(3, 1), 20)).ok());
  }
  h.Step();
  EXPECT_EQ(h.scheduler().num_running(), 2);
  EXPECT_TRUE(h.scheduler().AbortRequest("wait").ok());  // waiting: finished at once
  EXPECT_TRUE(h.scheduler().AbortRequest("run").ok());   // running between steps
  // Aborted while its step runs: the runner's view stays valid until the update.
  SchedulerOutput output = h.scheduler().Schedule();
  ASSERT_EQ(output.scheduled.size(), 1u);
  EXPECT_THAT(output.finished_ids, ElementsAre("wait", "run"));
  EXPECT_TRUE(h.scheduler().AbortRequest("in-step").ok());
  EXPECT_NE(h.scheduler().FindRequest("in-step"), nullptr);
  std::vector<int32_t> sampled = *h.RunModel(output);
  absl::StatusOr<std::vector<NewToken>> update = h.scheduler().UpdateFromOutput(output, sampled);
  ASSERT_TRUE(update.ok());
  EXPECT_THAT(*update, IsEmpty());  // no token for an aborted request
  EXPECT_TRUE(h.scheduler().CheckInvariants().ok());
  h.Collect();
  for (const char* id : {"run", "in-step", "wait"}) {
    ASSERT_NE(h.finished(id), nullptr) << id;
    EXPECT_EQ(h.finished(id)->finish_reason(), FinishReason::kAbort);
  }
  EXPECT_EQ(h.scheduler().GetStats().kv.num_used_blocks, 0);
  EXPECT_FALSE(h.scheduler().HasUnfinishedRequests());
  EXPECT_EQ(h.scheduler().AbortRequest("run").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(h.scheduler().AbortRequest("never").code(), absl::StatusCode::kNotFound);
}

TEST(SchedulerTest, StopsOnEosStopIdsAndLength) {
  Harness h(SmallConfig());
  const std::vector<int32_t> prompt = {5, 6, 7};
  RequestParams plain;
  plain.max_tokens = 4;
  const std::vector<int32_t> alone = h.model().GenerateAlone(prompt, plain);
  ASSERT_EQ(alone.size(), 4u);

  RequestParams eos = plain;
  eos.eos_token_id = alone[0];
  RequestParams ignore = eos;
  ignore.ignore_eos = true;
  RequestParams stop = plain;
  stop.stop_token_ids = {alone[1]};
  ASSERT_TRUE(h.Add(std::make_unique<Request>("eos", prompt, eos)).ok());
  ASSERT_TRUE(h.Add(std::make_unique<Request>("ignore", prompt, ignore)).ok());
  ASSERT_TRUE(h.Add(std::make_unique<Request>("stop", prompt, stop)).ok());
  ASSERT_TRUE(h.Add(std::make_unique<Request>("length", prompt, plain)).ok());
  h.RunToCompletion();
  EXPECT_EQ(h.finished("eos")->finish_reason(), FinishReason::kStop);
  EXPECT_THAT(h.finished("eos")->output_token_ids(), ElementsAre(alone[0]));
  EXPECT_EQ(h.finished("ignore")->finish_reason(), FinishReason::kLength);
  EXPECT_THAT(h.finished("ignore")->output_token_ids(), ElementsAreArray(alone));
  EXPECT_EQ(h.finished("stop")->finish_reason(), FinishReason::kStop);
  EXPECT_THAT(h.finished("stop")->output_token_ids(), ElementsAre(alone[0], alone[1]));
  EXPECT_EQ(h.finished("length")->finish_reason(), FinishReason::kLength);
  const SchedulerStats stats = h.scheduler().GetStats();
  EXPECT_EQ(stats.num_generated_tokens, 1 + 4 + 2 + 4);
  EXPECT_EQ(stats.num_prompt_tokens, 12);
  EXPECT_EQ(stats.num_finished, 4);
}

TEST(SchedulerTest, RejectsEachClassOfBadInputAndKeepsServing) {
  SchedulerConfig config = SmallConfig();
  config.max_model_len = 32;
  config.num_blocks = 6;  // 24 tokens: less than max_model_len
  config.max_waiting = 2;
  Harness h(config);
  ASSERT_TRUE(h.Add(MakeRequest("good", {1, 2, 3}, 5)).ok());
  h.Step();

  struct Case {
    std::unique_ptr<Request> request;
    absl::StatusCode code;
    const char* message;
  };
  std::vector<Case> cases;
  cases.push_back({MakeRequest("", {1}, 1), absl::StatusCode::kInvalidArgument, "id is empty"});
  cases.push_back({MakeRequest("e", {}, 1), absl::StatusCode::kInvalidArgument, "prompt is empty"});
  cases.push_back({MakeRequest("l", Tokens(33, 0), 1), absl::StatusCode::kInvalidArgument,
                   "more than max_model_len"});
  cases.push_back({MakeRequest("z", {1}, 0), absl::StatusCode::kInvalidArgument,
                   "max_tokens must be at least 1"});
  cases.push_back({MakeRequest("n", {1}, -4), absl::StatusCode::kInvalidArgument,
                   "max_tokens must be at least 1"});
  cases.push_back({MakeRequest("s", Tokens(20, 0), 13), absl::StatusCode::kInvalidArgument,
                   "exceeds max_model_len"});
  cases.push_back(
      {MakeRequest("t", {1, -2}, 1), absl::StatusCode::kInvalidArgument, "negative token id"});
  cases.push_back({MakeRequest("big", Tokens(20, 0), 6), absl::StatusCode::kInvalidArgument,
                   "could never run"});
  cases.push_back({MakeRequest("good", {1}, 1), absl::StatusCode::kAlreadyExists, "already"});
  for (Case& c : cases) {
    const std::string id = c.request->id();
    absl::Status status = h.Add(std::move(c.request));
    EXPECT_EQ(status.code(), c.code) << id << ": " << status;
    EXPECT_THAT(status.message(), HasSubstr(c.message)) << id;
  }
  // A full queue refuses with RESOURCE_EXHAUSTED; a retry after room frees up succeeds.
  ASSERT_TRUE(h.Add(MakeRequest("w1", {1}, 1)).ok());
  ASSERT_TRUE(h.Add(MakeRequest("w2", {2}, 1)).ok());
  absl::Status full = h.Add(MakeRequest("w3", {3}, 1));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_EQ(h.scheduler().GetStats().num_rejected, static_cast<int64_t>(cases.size()) + 1);

  h.RunToCompletion();
  ASSERT_TRUE(h.Add(MakeRequest("w3", {3}, 1)).ok());
  h.RunToCompletion();
  for (const char* id : {"good", "w1", "w2", "w3"}) ASSERT_NE(h.finished(id), nullptr) << id;
  h.ExpectOutputsMatchRunningAlone();
}

TEST(SchedulerTest, RefusesAResubmittedRequest) {
  Harness h(SmallConfig());
  Scheduler& s = h.scheduler();
  ASSERT_TRUE(s.AddRequest(MakeRequest("a", {1, 2}, 1)).ok());
  SchedulerOutput output = s.Schedule();
  ASSERT_TRUE(s.UpdateFromOutput(output, {7}).ok());
  std::vector<std::unique_ptr<Request>> finished = s.TakeFinishedRequests();
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_THAT(finished[0]->output_token_ids(), ElementsAre(7));
  absl::Status status = s.AddRequest(std::move(finished[0]));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("already submitted"));
}

TEST(SchedulerTest, FinishRequestWithErrorFreesIt) {
  Harness h(SmallConfig());
  ASSERT_TRUE(h.Add(MakeRequest("a", {1, 2}, 5)).ok());
  ASSERT_TRUE(h.Add(MakeRequest("b", {3, 4}, 5)).ok());
  h.Step();
  ASSERT_TRUE(h.scheduler().FinishRequest("a", FinishReason::kError).ok());
  h.RunToCompletion();
  EXPECT_EQ(h.finished("a")->finish_reason(), FinishReason::kError);
  EXPECT_EQ(h.finished("b")->finish_reason(), FinishReason::kLength);
  h.ExpectOutputsMatchRunningAlone();
}

TEST(SchedulerTest, UpdateRefusesAnOutputThatDoesNotMatchTheStep) {
  Harness h(SmallConfig());
  ASSERT_TRUE(h.Add(MakeRequest("a", {1, 2}, 3)).ok());
  SchedulerOutput output = h.scheduler().Schedule();
  const std::vector<int32_t> too_many = {1, 2};
  EXPECT_EQ(h.scheduler().UpdateFromOutput(output, too_many).status().code(),
            absl::StatusCode::kInvalidArgument);
  SchedulerOutput stale = output;
  stale.step_id += 7;
  EXPECT_EQ(h.scheduler().UpdateFromOutput(stale, {1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(h.scheduler().UpdateFromOutput(output, {1}).ok());
  EXPECT_TRUE(h.scheduler().CheckInvariants().ok());
  // An empty step starts nothing and ends nothing.
  EXPECT_TRUE(h.scheduler().UpdateFromOutput(SchedulerOutput{}, {}).ok());
}

TEST(SchedulerTest, ConfigValidationNamesTheProblem) {
  SchedulerConfig config = SmallConfig();
  config.num_blocks = 0;
  EXPECT_THAT(Scheduler::Create(config).status().message(), HasSubstr("num_blocks"));
  config = SmallConfig();
  config.enable_chunked_prefill = false;
  EXPECT_THAT(Scheduler::Create(config).status().message(), HasSubstr("max_num_batched_tokens"));
  config = SmallConfig();
  config.long_prefill_token_threshold = 0;
  EXPECT_THAT(Scheduler::Create(config).status().message(),
              HasSubstr("long_prefill_token_threshold"));
  EXPECT_TRUE(Scheduler::Create(SmallConfig()).ok());
}

// Equal-length requests: the number of sequences at full length at once is what the cache
// holds, within one block per sequence (the partly filled last block).

}  // namespace
}  // namespace mlkv
