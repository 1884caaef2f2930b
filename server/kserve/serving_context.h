// What every KServe call needs of the server: the engine, the model as KServe describes it, and
// the count of requests still to be answered. Owned by the service, shared by its reactors.
#ifndef MLKV_SERVER_KSERVE_SERVING_CONTEXT_H_
#define MLKV_SERVER_KSERVE_SERVING_CONTEXT_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "server/kserve/infer_request.h"
#include "server/stream_counter.h"

namespace mlkv::server::kserve {

// Thread-safe.
struct ServingContext {
  Engine* engine = nullptr;  // not owned
  KServeModel model;
  // Requests whose last response has not been delivered: a ModelInfer call until its OnDone, a
  // request on a stream until the write of its last response completes. A shutdown waits for
  // them, not for idle streams, which a client may keep open for ever.
  StreamCounter requests;
  std::atomic<int64_t> next_request_number{0};

  // The engine's id of a request: clients' ids need not be unique, the engine's must.
  std::string NextRequestId() { return absl::StrCat("kserve-", next_request_number.fetch_add(1)); }
};

}  // namespace mlkv::server::kserve

#endif  // MLKV_SERVER_KSERVE_SERVING_CONTEXT_H_
