// The timeline of one streamed generation as its consumer sees it, recorded the same way whether
// the tokens come from the engine in process (TraceObserver) or through mlkv-server over gRPC
// (TraceReader), and the latency percentiles over many of them: what server_overhead_bench
// compares.
#ifndef MLKV_BENCH_STREAM_TRACE_H_
#define MLKV_BENCH_STREAM_TRACE_H_

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "engine/engine_request.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "mlkv/v1/mlkv.grpc.pb.h"

namespace mlkv::bench {

using Clock = std::chrono::steady_clock;

struct Trace {
  Clock::time_point start;  // just before the submit or the call
  // One entry per delta: when it arrived and how many tokens it held (a server merges the
  // tokens of several engine steps into one delta while a write is in flight).
  std::vector<std::pair<Clock::time_point, int>> arrivals;
  Clock::time_point end;  // the result (or the error) arrived
  std::vector<int32_t> token_ids;
  int status_code = 0;  // canonical code (gRPC and absl share the numbering); 0: OK
};

// Hands a Trace from the thread that records it to the one that waits for it.
class TraceLatch {
 public:
  void Finish(Trace trace) {
    std::lock_guard<std::mutex> lock(mu_);
    trace_ = std::move(trace);
    cv_.notify_all();
  }
  Trace Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return trace_.has_value(); });
    return *trace_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Trace> trace_;
};

// The in-process consumer: timestamps the engine's reports on the engine thread, the earliest
// moment any consumer can see them.
class TraceObserver final : public RequestObserver {
 public:
  explicit TraceObserver(Clock::time_point start) { trace_.start = start; }
  void OnTokens(const TokenDelta& delta) override {
    trace_.arrivals.emplace_back(Clock::now(), static_cast<int>(delta.token_ids.size()));
  }
  void OnFinished(const RequestResult& result) override {
    trace_.end = Clock::now();
    trace_.token_ids = result.output_token_ids;
    trace_.status_code = static_cast<int>(result.status.code());
    latch_.Finish(std::move(trace_));
  }
  Trace Wait() { return latch_.Wait(); }

 private:
  Trace trace_;  // engine thread only, until handed to latch_
  TraceLatch latch_;
};

// The gRPC consumer: one Generate call on the callback API, so that thousands of streams need no
// thread each. gRPC serialises a reactor's callbacks, so trace_ needs no lock until OnDone.
class TraceReader final : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  // gRPC takes deadlines on the system clock.
  TraceReader(v1::GenerateRequest request,
              std::optional<std::chrono::system_clock::time_point> deadline)
      : request_(std::move(request)) {
    if (deadline) context_.set_deadline(*deadline);
  }
  void Start(v1::MlkvService::Stub* stub) {
    trace_.start = Clock::now();
    stub->async()->Generate(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended: OnDone follows
    if (response_.has_delta()) {
      const auto& ids = response_.delta().token_ids();
      trace_.arrivals.emplace_back(Clock::now(), ids.size());
      trace_.token_ids.insert(trace_.token_ids.end(), ids.begin(), ids.end());
    }
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override {
    trace_.end = Clock::now();
    trace_.status_code = static_cast<int>(status.error_code());
    latch_.Finish(std::move(trace_));
  }
  Trace Wait() { return latch_.Wait(); }

 private:
  const v1::GenerateRequest request_;
  grpc::ClientContext context_;
  v1::GenerateResponse response_;
  Trace trace_;
  TraceLatch latch_;
};

// Milliseconds at the 50th and 99th percentiles (nearest rank); zeros for no samples.
struct Percentiles {
  double p50 = 0, p99 = 0;
};

inline Percentiles Percentile(std::vector<double> ms) {
  if (ms.empty()) return {};
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) {
    const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(ms.size())));
    return ms[std::clamp<size_t>(rank, 1, ms.size()) - 1];
  };
  return {at(0.50), at(0.99)};
}

inline double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Request end to end, time to first token, and inter-token latency over the successful traces.
// A token's inter-arrival time is the gap since the previous token reached the consumer: the
// first token of a delta carries the gap since the previous delta, the others of a merged delta
// arrived with it (0).
struct StreamLatency {
  Percentiles e2e, ttft, itl;
};

inline StreamLatency Summarize(const std::vector<Trace>& traces) {
  std::vector<double> e2e, ttft, itl;
  for (const Trace& t : traces) {
    if (t.status_code != 0 || t.arrivals.empty()) continue;
    e2e.push_back(Ms(t.end - t.start));
    ttft.push_back(Ms(t.arrivals.front().first - t.start));
    for (size_t i = 0; i < t.arrivals.size(); ++i) {
      const auto& [when, count] = t.arrivals[i];
      if (i > 0) itl.push_back(Ms(when - t.arrivals[i - 1].first));
      for (int k = 1; k < count; ++k) itl.push_back(0.0);
    }
  }
  return {Percentile(e2e), Percentile(ttft), Percentile(itl)};
}

}  // namespace mlkv::bench

#endif  // MLKV_BENCH_STREAM_TRACE_H_
