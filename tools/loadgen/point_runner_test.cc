// The dispatcher against a fake client: closed loops keep their concurrency, bounds end a phase,
// open loops pace their sends, and a server that went away stops the phase early.
#include "tools/loadgen/point_runner.h"

#include <algorithm>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace mlkv::loadgen {
namespace {

// Completes each request on its own thread after `latency`, with `code`; counts what it saw.
class FakeClient final : public GenerationClient {
 public:
  FakeClient(absl::Duration latency, absl::StatusCode code) : latency_(latency), code_(code) {}
  ~FakeClient() override {
    for (std::thread& t : threads_) t.join();
  }

  absl::StatusOr<ServerInfo> Probe(double) override { return ServerInfo{"fake", 10, 100}; }

  void Start(const RequestSpec& spec, RequestRecord record, Clock::time_point epoch,
             DoneCallback done) override {
    {
      absl::MutexLock lock(&mu_);
      max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
    }
    record.start_s = SecondsSince(epoch);
    record.expected_output_tokens = spec.output_len;
    threads_.emplace_back([this, record, epoch, done, spec]() mutable {
      absl::SleepFor(latency_);
      record.code = code_;
      if (code_ == absl::StatusCode::kOk) {
        record.chunks.push_back({SecondsSince(epoch), spec.output_len});
      }
      record.end_s = SecondsSince(epoch);
      {
        absl::MutexLock lock(&mu_);
        --in_flight_;
      }
      done(std::move(record));
    });
  }

  int64_t max_in_flight() {
    absl::MutexLock lock(&mu_);
    return max_in_flight_;
  }

 private:
  const absl::Duration latency_;
  const absl::StatusCode code_;
  std::vector<std::thread> threads_;  // only the dispatcher starts them
  absl::Mutex mu_;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

// One phase of fixed-length requests (4 in, 3 out), burstiness 1, no progress line.
PhaseResult RunFixedPhase(FakeClient& client, const LoadPoint& point, uint64_t arrival_seed,
                          const PhaseBounds& bounds) {
  WorkloadOptions o;
  o.input_len = *LengthDistribution::Parse("input-len", "4");
  o.output_len = *LengthDistribution::Parse("output-len", "3");
  o.vocab_size = 10;
  Workload workload = *Workload::Create(o);
  ProgressLine progress(false, "test");
  return RunPhase(client, workload, point, 1, arrival_seed, bounds, progress);
}

TEST(PointRunnerTest, ClosedLoopKeepsItsConcurrencyAndSendsExactlyN) {
  // Long enough that the first five are all out before one ends, even on a loaded machine.
  FakeClient client(absl::Milliseconds(20), absl::StatusCode::kOk);
  const PhaseResult r =
      RunFixedPhase(client, {LoadPoint::Mode::kClosedLoop, 5, 0}, 0, {40, std::nullopt});
  EXPECT_EQ(r.records.size(), 40u);
  EXPECT_EQ(client.max_in_flight(), 5);
  EXPECT_FALSE(r.stopped_early.has_value());
  for (const RequestRecord& rec : r.records) EXPECT_EQ(rec.output_tokens(), 3);
  EXPECT_GE(r.duration_s, 40 / 5 * 0.020);
}

TEST(PointRunnerTest, DurationBoundStopsSendingAndAwaitsTheRest) {
  FakeClient client(absl::Milliseconds(20), absl::StatusCode::kOk);
  const PhaseResult r =
      RunFixedPhase(client, {LoadPoint::Mode::kClosedLoop, 2, 0}, 0, {std::nullopt, 0.2});
  EXPECT_GE(r.duration_s, 0.2);
  EXPECT_LT(r.duration_s, 2.0);
  EXPECT_GE(r.records.size(), 4u);
  for (const RequestRecord& rec : r.records) EXPECT_TRUE(rec.ok());
}

TEST(PointRunnerTest, OpenLoopPacesItsSends) {
  FakeClient client(absl::Milliseconds(1), absl::StatusCode::kOk);
  // 20 requests at 100/s: the last is sent after 19 gaps of 10 ms on average.
  const PhaseResult r =
      RunFixedPhase(client, {LoadPoint::Mode::kOpenLoop, 0, 100}, 3, {20, std::nullopt});
  ASSERT_EQ(r.records.size(), 20u);
  double last_start = 0;
  for (const RequestRecord& rec : r.records) last_start = std::max(last_start, rec.start_s);
  EXPECT_GT(last_start, 0.05);
  EXPECT_LT(last_start, 1.0);
}

TEST(PointRunnerTest, AServerThatWentAwayStopsThePhase) {
  FakeClient client(absl::Milliseconds(1), absl::StatusCode::kUnavailable);
  const PhaseResult r =
      RunFixedPhase(client, {LoadPoint::Mode::kClosedLoop, 1, 0}, 0, {1000000, std::nullopt});
  ASSERT_TRUE(r.stopped_early.has_value());
  EXPECT_NE(r.stopped_early->find("UNAVAILABLE"), std::string::npos);
  EXPECT_EQ(r.records.size(), static_cast<size_t>(kUnavailableStreak));
}

}  // namespace
}  // namespace mlkv::loadgen
