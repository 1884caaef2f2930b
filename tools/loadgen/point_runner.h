// Runs one phase of a sweep point (warm-up or measured): sends requests at the point's load
// (closed or open loop) until its bound, waits for the last to finish, and returns the records.
#ifndef MLKV_TOOLS_LOADGEN_POINT_RUNNER_H_
#define MLKV_TOOLS_LOADGEN_POINT_RUNNER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/loadgen/generation_client.h"
#include "tools/loadgen/loadgen_options.h"
#include "tools/loadgen/progress_line.h"
#include "tools/loadgen/request_record.h"
#include "tools/loadgen/workload.h"

namespace mlkv::loadgen {

struct PhaseBounds {
  std::optional<int64_t> num_requests;  // stop sending after this many
  std::optional<double> duration_s;     // stop sending after this long
};

struct PhaseResult {
  std::vector<RequestRecord> records;  // in order of completion
  double duration_s = 0;               // from the first send to the last completion
  // Set when the phase stopped before its bound, and why (the server went away).
  std::optional<std::string> stopped_early;
};

// Consecutive UNAVAILABLE failures after which the server counts as gone: sending on would only
// add failures, as fast as the client can make them.
inline constexpr int64_t kUnavailableStreak = 20;

// `bounds` needs at least one bound. The arrivals of an open loop are drawn from `arrival_seed`.
PhaseResult RunPhase(GenerationClient& client, Workload& workload, const LoadPoint& point,
                     double burstiness, uint64_t arrival_seed, const PhaseBounds& bounds,
                     ProgressLine& progress);

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_POINT_RUNNER_H_
