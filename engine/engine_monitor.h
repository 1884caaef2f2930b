// Engine-wide observation of every request's life, for metrics and logs: one monitor sees all
// requests, whoever submitted them (native API, KServe, CLI), so counters cannot miss any.
#ifndef MLKV_ENGINE_ENGINE_MONITOR_H_
#define MLKV_ENGINE_ENGINE_MONITOR_H_

#include <cstdint>

#include "absl/time/time.h"
#include "engine/engine_request.h"

namespace mlkv {

// Called on the engine thread, in step order: implementations must be quick and never block
// (update atomics or a mutex-guarded registry, hand logging to spdlog).
class EngineMonitor {
 public:
  virtual ~EngineMonitor() = default;
  // A step sampled `num_tokens` new tokens of one request at `now`. `previous` is when the
  // request's previous tokens were sampled, or its arrival for its first tokens (`first`), so
  // now - previous is the time to first token or an inter-token latency.
  virtual void OnTokens(int32_t num_tokens, bool first, absl::Time previous, absl::Time now) = 0;
  // The request ended (any reason, errors included): its counts and timings. Requests that
  // Engine::Submit refuses never start, so they come here not at all (the caller has the error).
  virtual void OnFinished(const RequestResult& result) = 0;
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_ENGINE_MONITOR_H_
