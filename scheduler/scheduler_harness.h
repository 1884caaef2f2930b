// Test helpers for the scheduler's unit tests: a Scheduler driven step by step by FakeModel,
// checking every invariant after each step and remembering what each request generates alone.
#ifndef MLKV_SCHEDULER_SCHEDULER_HARNESS_H_
#define MLKV_SCHEDULER_SCHEDULER_HARNESS_H_

#include <algorithm>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/fake_model.h"
#include "scheduler/scheduler.h"

namespace mlkv {
namespace scheduler_testing {

inline constexpr int32_t kHarnessVocab = 1000;

// What one request got in a step, copied before the step's spans go stale.
struct Slice {
  std::string id;
  int32_t num_computed;
  int32_t num_new;
  bool needs_sample;
};

struct StepRecord {
  std::vector<Slice> slices;
  std::vector<std::string> preempted;
  std::string Ids() const {
    std::string ids;
    for (const Slice& s : slices) absl::StrAppend(&ids, s.id, ":", s.num_new, " ");
    return ids;
  }
};

inline SchedulerConfig SmallConfig() {
  SchedulerConfig config;
  config.max_num_batched_tokens = 8;
  config.max_num_seqs = 16;
  config.max_model_len = 64;
  config.block_size = 4;
  config.num_blocks = 64;
  config.enable_prefix_caching = false;
  return config;
}

inline std::vector<int32_t> Tokens(int32_t n, int32_t start) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

inline std::unique_ptr<Request> MakeRequest(const std::string& id, std::vector<int32_t> prompt,
                                            int32_t max_tokens, int32_t priority = 0) {
  RequestParams params;
  params.max_tokens = max_tokens;
  params.priority = priority;
  return std::make_unique<Request>(id, std::move(prompt), params);
}

// A scheduler driven by FakeModel, checking every invariant after each step.
class Harness {
 public:
  explicit Harness(const SchedulerConfig& config)
      : scheduler_(*Scheduler::Create(config)),
        model_(config.num_blocks, config.block_size, kHarnessVocab) {}

  Scheduler& scheduler() { return *scheduler_; }
  const FakeModel& model() const { return model_; }
  absl::StatusOr<std::vector<int32_t>> RunModel(const SchedulerOutput& output) {
    return model_.Step(output);
  }

  absl::Status Add(std::unique_ptr<Request> request) {
    RequestParams params = request->params();
    std::vector<int32_t> prompt(request->prompt_token_ids().begin(),
                                request->prompt_token_ids().end());
    const std::string id = request->id();
    absl::Status status = scheduler_->AddRequest(std::move(request));
    if (status.ok()) expected_[id] = model_.GenerateAlone(prompt, params);
    return status;
  }

  StepRecord Step() {
    SchedulerOutput output = scheduler_->Schedule();
    StepRecord record;
    record.preempted = output.preempted_ids;
    for (const ScheduledRequest& s : output.scheduled) {
      record.slices.push_back(
          {s.request->id(), s.num_computed_tokens, s.num_new_tokens, s.needs_sample});
    }
    absl::StatusOr<std::vector<int32_t>> sampled = RunModel(output);
    EXPECT_TRUE(sampled.ok()) << sampled.status();
    if (!sampled.ok()) return record;
    absl::StatusOr<std::vector<NewToken>> update = scheduler_->UpdateFromOutput(output, *sampled);
    EXPECT_TRUE(update.ok()) << update.status();
    absl::Status invariants = scheduler_->CheckInvariants();
    EXPECT_TRUE(invariants.ok()) << invariants;
    Collect();
    return record;
  }

  void Collect() {
    for (auto& r : scheduler_->TakeFinishedRequests()) {
      const std::string id = r->id();
      finished_[id] = std::move(r);
    }
  }

  void RunToCompletion(int max_steps = 10000) {
    for (int i = 0; i < max_steps && scheduler_->HasUnfinishedRequests(); ++i) Step();
    EXPECT_FALSE(scheduler_->HasUnfinishedRequests());
  }

  const Request* finished(const std::string& id) const {
    auto it = finished_.find(id);
    return it == finished_.end() ? nullptr : it->second.get();
  }

  // Every request that stopped on its own generated what it generates alone; one cut short
  // (abort, error), the start of that.
  void ExpectOutputsMatchRunningAlone() const {
    for (const auto& [id, r] : finished_) {
      const std::vector<int32_t>& alone = expected_.at(id);
      if (r->finish_reason() == FinishReason::kAbort ||
          r->finish_reason() == FinishReason::kError) {
        ASSERT_LE(r->num_output_tokens(), static_cast<int32_t>(alone.size())) << id;
        EXPECT_TRUE(
            std::equal(r->output_token_ids().begin(), r->output_token_ids().end(), alone.begin()))
            << id;
        continue;
      }
      EXPECT_THAT(r->output_token_ids(), ::testing::ElementsAreArray(alone)) << id;
    }
  }

 private:
  std::unique_ptr<Scheduler> scheduler_;
  FakeModel model_;
  std::map<std::string, std::vector<int32_t>> expected_;
  std::map<std::string, std::unique_ptr<Request>> finished_;
};

}  // namespace scheduler_testing
}  // namespace mlkv

#endif  // MLKV_SCHEDULER_SCHEDULER_HARNESS_H_
