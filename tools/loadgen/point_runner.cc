// The dispatcher of one phase; see point_runner.h.
//
// One thread (the caller) sends; gRPC threads report completions through a callback that takes
// the mutex, files the record and signals. The dispatcher never holds the mutex while starting
// a call, and waits on the condition with a timeout so that the progress line and the duration
// bound advance even while nothing completes.
#include "tools/loadgen/point_runner.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tools/loadgen/arrival_process.h"

namespace mlkv::loadgen {
namespace {

using Clock = GenerationClient::Clock;

constexpr double kPollS = 0.25;  // longest the dispatcher sleeps before it looks at the clock

// State shared between the dispatcher and the completion callbacks.
class Tally {
 public:
  void OnSent() {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
  }

  void OnDone(RequestRecord record) {
    absl::MutexLock lock(&mu_);
    --in_flight_;
    if (record.ok()) {
      ++completed_;
      output_tokens_ += record.output_tokens();
    } else {
      ++failed_;
    }
    unavailable_streak_ =
        record.code == absl::StatusCode::kUnavailable ? unavailable_streak_ + 1 : 0;
    records_.push_back(std::move(record));
    changed_.Signal();
  }

  // Waits until fewer than `limit` requests are in flight, or `timeout_s` passes.
  void WaitBelow(int64_t limit, double timeout_s) {
    absl::MutexLock lock(&mu_);
    if (in_flight_ >= limit) changed_.WaitWithTimeout(&mu_, absl::Seconds(timeout_s));
  }

  Progress Snapshot(double elapsed_s, std::optional<int64_t> total) {
    absl::MutexLock lock(&mu_);
    return Progress{elapsed_s, completed_, failed_, in_flight_, output_tokens_, total};
  }

  int64_t InFlight() {
    absl::MutexLock lock(&mu_);
    return in_flight_;
  }

  bool ServerGone() {
    absl::MutexLock lock(&mu_);
    return unavailable_streak_ >= kUnavailableStreak;
  }

  std::vector<RequestRecord> TakeRecords() {
    absl::MutexLock lock(&mu_);
    return std::move(records_);
  }

 private:
  absl::Mutex mu_;
  absl::CondVar changed_;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t output_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t unavailable_streak_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<RequestRecord> records_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

PhaseResult RunPhase(GenerationClient& client, Workload& workload, const LoadPoint& point,
                     double burstiness, uint64_t arrival_seed, const PhaseBounds& bounds,
                     ProgressLine& progress) {
  const bool closed = point.mode == LoadPoint::Mode::kClosedLoop;
  ArrivalProcess arrivals(closed ? 1.0 : point.request_rate, burstiness, arrival_seed);
  // Shared with the callbacks: the last of them may still be leaving OnDone when the dispatcher
  // sees nothing in flight and returns.
  auto tally = std::make_shared<Tally>();
  PhaseResult result;
  const Clock::time_point epoch = Clock::now();
  double next_arrival_s = 0;  // open loop: when the next request is due
  int64_t sent = 0;
  while (true) {
    const double now_s = SecondsSince(epoch);
    progress.Update(tally->Snapshot(now_s, bounds.num_requests));
    if (bounds.num_requests.has_value() && sent >= *bounds.num_requests) break;
    if (bounds.duration_s.has_value() && now_s >= *bounds.duration_s) break;
    if (tally->ServerGone()) {
      result.stopped_early = absl::StrCat(kUnavailableStreak,
                                          " requests in a row failed with UNAVAILABLE: the server "
                                          "is gone or refusing; stopped sending");
      break;
    }
    if (closed) {
      if (tally->InFlight() >= point.concurrency) {
        tally->WaitBelow(point.concurrency, kPollS);
        continue;
      }
    } else if (now_s < next_arrival_s) {
      absl::SleepFor(absl::Seconds(std::min(next_arrival_s - now_s, kPollS)));
      continue;
    }
    RequestRecord record;
    record.index = sent++;
    tally->OnSent();
    client.Start(workload.Next(), std::move(record), epoch,
                 [tally](RequestRecord r) { tally->OnDone(std::move(r)); });
    if (!closed) next_arrival_s += arrivals.NextGapSeconds();
  }
  // Await what is in flight: every request sent is measured.
  while (tally->InFlight() > 0) {
    tally->WaitBelow(1, kPollS);
    progress.Update(tally->Snapshot(SecondsSince(epoch), bounds.num_requests));
  }
  result.duration_s = SecondsSince(epoch);
  progress.Finish(tally->Snapshot(result.duration_s, bounds.num_requests));
  result.records = tally->TakeRecords();
  return result;
}

}  // namespace mlkv::loadgen
