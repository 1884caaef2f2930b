// The load generator's view of a server API: probe it once, then start streamed generations
// that report back asynchronously. One implementation per API (native mlkv.v1, KServe v2).
#ifndef MLKV_TOOLS_LOADGEN_GENERATION_CLIENT_H_
#define MLKV_TOOLS_LOADGEN_GENERATION_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "tools/loadgen/request_record.h"
#include "tools/loadgen/workload.h"

namespace mlkv::loadgen {

// Seconds from `epoch` to now on the clock every record's times are measured with.
inline double SecondsSince(std::chrono::steady_clock::time_point epoch) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch).count();
}

// What the load generator needs to know of the served model.
struct ServerInfo {
  std::string model_name;
  int64_t vocab_size = 0;
  int64_t max_model_len = 0;
};

// Fields common to every request of a run.
struct CallOptions {
  bool ignore_eos = true;
  double timeout_s = 600;
};

class GenerationClient {
 public:
  using Clock = std::chrono::steady_clock;
  // Runs once per started request, on a gRPC thread, with the finished record; must not block.
  using DoneCallback = std::function<void(RequestRecord)>;

  virtual ~GenerationClient() = default;
  GenerationClient(const GenerationClient&) = delete;
  GenerationClient& operator=(const GenerationClient&) = delete;

  // Waits up to `timeout_s` for the server, and asks it about its model.
  virtual absl::StatusOr<ServerInfo> Probe(double timeout_s) = 0;

  // Sends `spec` without blocking; `record` comes pre-filled with the index and times relative to
  // `epoch`. Thread-safe.
  virtual void Start(const RequestSpec& spec, RequestRecord record, Clock::time_point epoch,
                     DoneCallback done) = 0;

 protected:
  GenerationClient() = default;
};

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_GENERATION_CLIENT_H_
