// CPU time of the scheduler and KV cache manager per decode step with N running sequences: the
// engine pays it every step on top of the model, so it must stay a few percent of a GPU decode
// step (goal: under 100 us at N = 1,000).
//
//   scheduler_bench [--steps 200] [--sizes 100,1000,3000,10000]
//
// Each N: N requests with 128-token prompts (distinct first token, so nothing is shared) are
// prefilled, then `steps` decode steps are timed: Schedule() and UpdateFromOutput() with a fixed
// fake sampled token, prefix caching on and off. Crossing a block boundary every 16 tokens (a new
// block per sequence, a block made cacheable) falls inside the timed window.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/flags.h"
#include "scheduler/scheduler.h"

namespace mlkv {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int32_t kPromptLen = 128;
constexpr int32_t kBlockSize = 16;

struct Timing {
  double schedule_us = 0;  // mean per step
  double update_us = 0;
  double p99_us = 0;  // of schedule + update
};

double Micros(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

Timing Measure(int32_t num_seqs, int steps, bool prefix_caching) {
  // Decodes take num_seqs tokens of the budget and prompts the rest, 8192 a step: prefill takes
  // about warmup steps, during which the first sequences already decode.
  constexpr int32_t kPrefillBudget = 8192;
  const int32_t warmup = (num_seqs * kPromptLen + kPrefillBudget - 1) / kPrefillBudget + 2;
  SchedulerConfig config;
  config.block_size = kBlockSize;
  config.max_model_len = kPromptLen + warmup + steps + 16;
  config.num_blocks = num_seqs * ((config.max_model_len + kBlockSize - 1) / kBlockSize);
  config.max_num_seqs = num_seqs;
  config.max_num_batched_tokens = num_seqs + kPrefillBudget;
  config.max_waiting = num_seqs;
  config.enable_prefix_caching = prefix_caching;
  std::unique_ptr<Scheduler> scheduler = *Scheduler::Create(config);
  for (int32_t i = 0; i < num_seqs; ++i) {
    std::vector<int32_t> prompt(kPromptLen);
    for (int32_t j = 0; j < kPromptLen; ++j) prompt[j] = (i * 7919 + j) % 50000;
    prompt[0] = i;
    RequestParams params;
    params.max_tokens = config.max_model_len - kPromptLen;
    params.ignore_eos = true;
    absl::Status status = scheduler->AddRequest(
        std::make_unique<Request>("request-" + std::to_string(i), std::move(prompt), params));
    if (!status.ok()) {
      std::fprintf(stderr, "%s\n", std::string(status.message()).c_str());
      std::exit(1);
    }
  }
  std::vector<int32_t> sampled;
  auto step = [&](Timing* timing, std::vector<double>* totals) {
    const auto t0 = Clock::now();
    SchedulerOutput output = scheduler->Schedule();
    const auto t1 = Clock::now();
    sampled.assign(output.scheduled.size(), 42);
    const auto t2 = Clock::now();
    absl::StatusOr<std::vector<NewToken>> update = scheduler->UpdateFromOutput(output, sampled);
    const auto t3 = Clock::now();
    if (!update.ok()) std::exit(1);
    if (timing != nullptr) {
      timing->schedule_us += Micros(t0, t1);
      timing->update_us += Micros(t2, t3);
      totals->push_back(Micros(t0, t1) + Micros(t2, t3));
    }
  };
  // Prefill until every sequence decodes.
  for (int s = 0;
       scheduler->num_running() < num_seqs || scheduler->GetStats().num_generated_tokens < num_seqs;
       ++s) {
    if (s > warmup) {
      std::fprintf(stderr, "prefill took more than %d steps\n", warmup);
      std::exit(1);
    }
    step(nullptr, nullptr);
  }
  Timing timing;
  std::vector<double> totals;
  for (int s = 0; s < steps; ++s) step(&timing, &totals);
  timing.schedule_us /= steps;
  timing.update_us /= steps;
  std::sort(totals.begin(), totals.end());
  timing.p99_us = totals[std::min<size_t>(totals.size() - 1, totals.size() * 99 / 100)];
  return timing;
}

int Main(int argc, char** argv) {
  absl::StatusOr<cli::Flags> flags =
      cli::Flags::Parse(std::vector<std::string>(argv + 1, argv + argc), {"steps", "sizes"});
  if (flags.ok() && cli::PrintUsageIfAsked(*flags, "scheduler_bench")) return 0;
  absl::StatusOr<int64_t> steps_flag =
      flags.ok() ? flags->Int("steps", 200, 1, 1 << 30) : absl::StatusOr<int64_t>(flags.status());
  absl::StatusOr<std::vector<int64_t>> sizes_flag = std::vector<int64_t>{100, 1000, 3000, 10000};
  if (flags.ok() && flags->Has("sizes")) sizes_flag = flags->IntList("sizes", 1, 1 << 30);
  for (const absl::Status& status : {steps_flag.status(), sizes_flag.status()}) {
    if (!status.ok()) {
      std::fprintf(stderr, "scheduler_bench: %s\n", std::string(status.message()).c_str());
      return 2;
    }
  }
  const int steps = static_cast<int>(*steps_flag);
  const std::vector<int32_t> sizes(sizes_flag->begin(), sizes_flag->end());
  std::printf("decode steps: %d per size; block_size %d; prompt %d tokens\n", steps, kBlockSize,
              kPromptLen);
  std::printf("%8s %7s %12s %12s %12s %12s %10s\n", "seqs", "prefix", "schedule_us", "update_us",
              "step_us", "p99_step_us", "ns/seq");
  for (int32_t n : sizes) {
    for (bool caching : {true, false}) {
      const Timing t = Measure(n, steps, caching);
      const double total = t.schedule_us + t.update_us;
      std::printf("%8d %7s %12.1f %12.1f %12.1f %12.1f %10.1f\n", n, caching ? "on" : "off",
                  t.schedule_us, t.update_us, total, t.p99_us, 1000.0 * total / n);
    }
  }
  return 0;
}

}  // namespace
}  // namespace mlkv

int main(int argc, char** argv) { return mlkv::Main(argc, argv); }
