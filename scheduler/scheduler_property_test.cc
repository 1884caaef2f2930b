// Randomized property test: thousands of steps of random arrivals (sharing prefixes), lengths,
// priorities, stop rules, aborts and bad requests against tiny budgets and caches that force
// chunking, prefix reuse and preemption. After every step every invariant holds; in the end every
// request has ended, and each one that ended on its own generated exactly what FakeModel
// generates for it alone (an aborted one, a prefix of that).
#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/fake_model.h"
#include "scheduler/scheduler.h"

namespace mlkv {
namespace {

constexpr int32_t kVocab = 16;  // small: EOS and stop ids come up, outputs share blocks too
constexpr int32_t kEos = 0;

struct Scenario {
  uint32_t seed;
  SchedulerConfig config;
  int arrival_steps;
};

SchedulerConfig Config(int32_t block_size, int32_t num_blocks, int32_t budget, int32_t max_seqs,
                       bool chunked, bool caching) {
  SchedulerConfig c;
  c.block_size = block_size;
  c.num_blocks = num_blocks;
  c.max_num_batched_tokens = budget;
  c.max_num_seqs = max_seqs;
  c.max_model_len = 48;
  c.enable_chunked_prefill = chunked;
  c.enable_prefix_caching = caching;
  c.max_waiting = 12;
  return c;
}

class PropertyRun {
 public:
  explicit PropertyRun(const Scenario& s)
      : config_(s.config),
        rng_(s.seed),
        scheduler_(*Scheduler::Create(s.config)),
        model_(s.config.num_blocks, s.config.block_size, kVocab) {
    // A few shared prompt prefixes so the prefix cache has something to find.
    for (int i = 0; i < 4; ++i) prefixes_.push_back(RandomTokens(Uniform(0, 20)));
  }

  void Run(int arrival_steps) {
    for (int step = 0; step < arrival_steps; ++step) {
      if (Chance(0.2)) {
        ASSERT_NO_FATAL_FAILURE(AddRandomRequest());
      }
      if (Chance(0.05)) {
        ASSERT_NO_FATAL_FAILURE(AddRandomRequest());
      }
      if (Chance(0.03)) {
        ASSERT_NO_FATAL_FAILURE(AbortRandom());
      }
      if (Chance(0.005)) {
        EXPECT_EQ(scheduler_->AbortRequest("no-such-id").code(), absl::StatusCode::kNotFound);
      }
      ASSERT_NO_FATAL_FAILURE(Step());
    }
    for (int step = 0; step < 50000 && scheduler_->HasUnfinishedRequests(); ++step) {
      ASSERT_NO_FATAL_FAILURE(Step());
    }
    ASSERT_FALSE(scheduler_->HasUnfinishedRequests());
    ASSERT_NO_FATAL_FAILURE(Collect());
    EXPECT_EQ(finished_.size(), expected_.size());
    for (const auto& [id, expected] : expected_) EXPECT_TRUE(finished_.contains(id)) << id;
    const SchedulerStats stats = scheduler_->GetStats();
    EXPECT_EQ(stats.num_finished, static_cast<int64_t>(finished_.size()));
    EXPECT_EQ(stats.kv.num_used_blocks, 0);
    EXPECT_EQ(stats.num_running + stats.num_waiting, 0);
  }

  const std::map<std::string, int>& tally() const { return tally_; }
  SchedulerStats stats() const { return scheduler_->GetStats(); }

 private:
  int32_t Uniform(int32_t lo, int32_t hi) {  // [lo, hi]
    return std::uniform_int_distribution<int32_t>(lo, hi)(rng_);
  }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  std::vector<int32_t> RandomTokens(int32_t n) {
    std::vector<int32_t> tokens(n);
    for (int32_t& t : tokens) t = Uniform(0, kVocab - 1);
    return tokens;
  }

  void AddRandomRequest() {
    std::vector<int32_t> prompt;
    if (!past_prompts_.empty() && Chance(0.15)) {
      // The same prompt again: the whole of it may sit in cached blocks.
      prompt = past_prompts_[Uniform(0, past_prompts_.size() - 1)];
    } else {
      prompt = prefixes_[Uniform(0, prefixes_.size() - 1)];
      const std::vector<int32_t> suffix = RandomTokens(Uniform(Chance(0.05) ? 0 : 1, 24));
      prompt.insert(prompt.end(), suffix.begin(), suffix.end());
      if (!prompt.empty()) past_prompts_.push_back(prompt);
    }
    RequestParams params;
    params.max_tokens = Uniform(Chance(0.03) ? -1 : 1, 24);
    params.priority = Uniform(0, 2);
    params.eos_token_id = kEos;
    params.ignore_eos = Chance(0.5);
    if (Chance(0.3)) params.stop_token_ids = {Uniform(1, kVocab - 1)};
    params.skip_prefix_cache = Chance(0.05);
    const std::string id = absl::StrCat("r", next_id_++);

    // What the scheduler must answer, worked out independently.
    const int64_t len = static_cast<int64_t>(prompt.size());
    const int64_t cached = len + params.max_tokens - 1;
    const int64_t blocks_needed = (cached + config_.block_size - 1) / config_.block_size;
    absl::StatusCode want = absl::StatusCode::kOk;
    if (prompt.empty() || params.max_tokens < 1 ||
        len + params.max_tokens > config_.max_model_len || blocks_needed > config_.num_blocks) {
      want = absl::StatusCode::kInvalidArgument;
    } else if (scheduler_->num_waiting() >= config_.max_waiting) {
      want = absl::StatusCode::kResourceExhausted;
    }
    std::vector<int32_t> reference = model_.GenerateAlone(prompt, params);
    absl::Status status =
        scheduler_->AddRequest(std::make_unique<Request>(id, std::move(prompt), params));
    ASSERT_EQ(status.code(), want) << id << ": " << status;
    ++tally_[status.ok() ? "accepted" : absl::StatusCodeToString(status.code())];
    if (status.ok()) expected_[id] = std::move(reference);
  }

  std::string RandomLiveId() {
    std::vector<std::string> live;
    for (const auto& [id, expected] : expected_) {
      if (!finished_.contains(id) && scheduler_->FindRequest(id) != nullptr) live.push_back(id);
    }
    if (live.empty()) return "";
    return live[Uniform(0, live.size() - 1)];
  }

  void AbortRandom() {
    const std::string id = RandomLiveId();
    if (id.empty()) return;
    const FinishReason reason = Chance(0.8) ? FinishReason::kAbort : FinishReason::kError;
    ASSERT_TRUE(scheduler_->FinishRequest(id, reason).ok()) << id;
    ++tally_["aborted"];
  }

  void Step() {
    SchedulerOutput output = scheduler_->Schedule();
    // The step's shape obeys the limits and matches the requests' state.
    int32_t total = 0;
    std::set<std::string> ids;
    for (const ScheduledRequest& s : output.scheduled) {
      const Request& r = *s.request;
      ASSERT_TRUE(ids.insert(r.id()).second) << "scheduled twice: " << r.id();
      ASSERT_GE(s.num_new_tokens, 1);
      ASSERT_EQ(s.num_computed_tokens, r.num_computed_tokens());
      ASSERT_LE(s.num_computed_tokens + s.num_new_tokens, r.num_tokens());
      ASSERT_EQ(s.needs_sample, s.num_computed_tokens + s.num_new_tokens == r.num_tokens());
      ASSERT_TRUE(std::equal(s.token_ids.begin(), s.token_ids.end(),
                             r.all_token_ids().begin() + s.num_computed_tokens));
      ASSERT_GE(static_cast<int64_t>(s.block_table.size()) * config_.block_size,
                s.num_computed_tokens + s.num_new_tokens);
      if (!config_.enable_chunked_prefill) {
        ASSERT_TRUE(s.needs_sample);
      }
      total += s.num_new_tokens;
    }
    ASSERT_EQ(total, output.num_scheduled_tokens);
    ASSERT_LE(total, config_.max_num_batched_tokens);
    ASSERT_LE(static_cast<int32_t>(output.scheduled.size()), config_.max_num_seqs);
    ASSERT_LE(scheduler_->num_running(), config_.max_num_seqs);
    if (!output.preempted_ids.empty()) ++tally_["steps with preemption"];
    if (!output.scheduled.empty() && Chance(0.02)) {
      // Aborted while its step runs: applied when the step comes back.
      const std::string id =
          output.scheduled[Uniform(0, output.scheduled.size() - 1)].request->id();
      ASSERT_TRUE(scheduler_->AbortRequest(id).ok());
      ++tally_["aborted in flight"];
    }
    absl::StatusOr<std::vector<int32_t>> sampled = model_.Step(output);
    ASSERT_TRUE(sampled.ok()) << sampled.status();
    absl::StatusOr<std::vector<NewToken>> update = scheduler_->UpdateFromOutput(output, *sampled);
    ASSERT_TRUE(update.ok()) << update.status();
    absl::Status invariants = scheduler_->CheckInvariants();
    ASSERT_TRUE(invariants.ok()) << invariants;
    ASSERT_NO_FATAL_FAILURE(Collect());
  }

  void Collect() {
    for (std::unique_ptr<Request>& r : scheduler_->TakeFinishedRequests()) {
      const std::string id = r->id();
      ASSERT_TRUE(expected_.contains(id)) << id;
      ASSERT_TRUE(r->finish_reason().has_value()) << id;
      const std::vector<int32_t>& reference = expected_.at(id);
      const std::vector<int32_t> output(r->output_token_ids().begin(), r->output_token_ids().end());
      const FinishReason reason = *r->finish_reason();
      if (reason == FinishReason::kAbort || reason == FinishReason::kError) {
        ASSERT_LE(output.size(), reference.size()) << id;
        ASSERT_TRUE(std::equal(output.begin(), output.end(), reference.begin())) << id;
      } else {
        ASSERT_EQ(output, reference) << id << " (" << FinishReasonName(reason) << ", "
                                     << r->num_preemptions() << " preemptions)";
        ++tally_[absl::StrCat("finished ", FinishReasonName(reason))];
      }
      tally_["preemptions seen"] += r->num_preemptions();
      if (r->num_cached_prompt_tokens() > 0) ++tally_["prefix hits"];
      ASSERT_TRUE(finished_.insert(id).second) << id << " finished twice";
    }
  }

  const SchedulerConfig config_;
  std::mt19937 rng_;
  std::unique_ptr<Scheduler> scheduler_;
  FakeModel model_;
  std::vector<std::vector<int32_t>> prefixes_;
  std::vector<std::vector<int32_t>> past_prompts_;
  int next_id_ = 0;
  std::map<std::string, std::vector<int32_t>> expected_;
  std::set<std::string> finished_;
  std::map<std::string, int> tally_;
};

class SchedulerPropertyTest : public ::testing::TestWithParam<std::tuple<Scenario, uint32_t>> {};

TEST_P(SchedulerPropertyTest, EveryRequestEndsWithTheTokensItGetsAlone) {
  Scenario scenario = std::get<0>(GetParam());
  scenario.seed = scenario.seed * 1000 + std::get<1>(GetParam());
  PropertyRun run(scenario);
  ASSERT_NO_FATAL_FAILURE(run.Run(scenario.arrival_steps));
  std::string summary;
  for (const auto& [what, n] : run.tally()) absl::StrAppend(&summary, what, "=", n, " ");
  const SchedulerStats stats = run.stats();
  absl::StrAppend(&summary, "steps=", stats.num_steps,
                  " prefix_hit_tokens=", stats.prefix_cache.hit_tokens,
                  " evictions=", stats.kv.num_evictions);
  std::printf("  %s\n", summary.c_str());
}

// Tiny caches and budgets: every mechanism fires. Block counts below max_model_len's need also
// make some requests unservable, which must be refused up front.
INSTANTIATE_TEST_SUITE_P(
    Workloads, SchedulerPropertyTest,
    ::testing::Combine(::testing::Values(Scenario{1, Config(4, 12, 8, 4, true, true), 10000},
                                         Scenario{2, Config(4, 12, 8, 4, true, false), 10000},
                                         Scenario{3, Config(2, 16, 5, 8, true, true), 10000},
                                         Scenario{4, Config(4, 20, 48, 3, false, true), 10000},
                                         Scenario{5, Config(8, 7, 16, 6, true, true), 10000},
                                         Scenario{6, Config(1, 48, 3, 16, true, true), 10000},
                                         Scenario{7, Config(16, 4, 64, 2, false, false), 10000},
                                         Scenario{8, Config(3, 40, 12, 5, true, true), 10000}),
                       ::testing::Values(1u, 2u, 3u)));

}  // namespace
}  // namespace mlkv
