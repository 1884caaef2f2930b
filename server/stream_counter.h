// Counts the streams a service has open, so that a shutdown can wait for the last one to be
// delivered instead of for clients to hang up (gRPC's own shutdown waits for connections).
#ifndef MLKV_SERVER_STREAM_COUNTER_H_
#define MLKV_SERVER_STREAM_COUNTER_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mlkv::server {

// Thread-safe.
class StreamCounter {
 public:
  void Opened() {
    absl::MutexLock lock(&mu_);
    ++open_;
  }
  void Closed() {
    absl::MutexLock lock(&mu_);
    --open_;
  }
  // Waits until no stream is open or `timeout` passes; true when none is open.
  bool WaitForNone(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(
                                    +[](int64_t* open) { return *open == 0; }, &open_),
                                timeout);
  }

 private:
  absl::Mutex mu_;
  int64_t open_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace mlkv::server

#endif  // MLKV_SERVER_STREAM_COUNTER_H_
