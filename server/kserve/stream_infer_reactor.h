// One ModelStreamInfer call in decoupled mode: the client sends requests on the stream whenever
// it likes; each runs in the engine and gets its responses (tagged with its `id`) on the same
// stream, interleaved with the others', without any thread waiting.
#ifndef MLKV_SERVER_KSERVE_STREAM_INFER_REACTOR_H_
#define MLKV_SERVER_KSERVE_STREAM_INFER_REACTOR_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "engine/engine_request.h"
#include "grpcpp/support/server_callback.h"
#include "inference/grpc_service.pb.h"
#include "server/kserve/infer_request.h"
#include "server/kserve/infer_response.h"
#include "server/kserve/serving_context.h"

namespace mlkv::server::kserve {

// Requests (reads) and responses (writes) flow independently:
//
//   OnReadDone -> parse -> Engine::Submit -> StartRead        (a refusal queues an error response)
//   engine thread: OnTokens/OnFinished -> queue -> Pump       (per request, under mu_)
//   Pump: no write in flight -> StartWrite(next response) -> OnWriteDone -> Pump
//
// Tokens that arrive while a write is in flight are merged into their request's next response,
// so the responses waiting are at most one per request. A request's last response carries the
// parameter triton_final_response: true (with triton_enable_empty_final_response, an empty one
// after its data). A refused or failed request gets one response with error_message, and the
// stream goes on. The call ends with OK once the client has closed its side and every request
// has had its last response; a client cancel, or a broken stream, aborts its requests in the
// engine.
//
// Lifetime: shared by gRPC (until OnDone) and the engine (an observer per live request holds
// it); whichever lets go last deletes it. Thread-safety: every method may be called from any
// thread; state is guarded by mu_, and gRPC is never called with mu_ held.
class StreamInferReactor final
    : public grpc::ServerBidiReactor<inference::ModelInferRequest,
                                     inference::ModelStreamInferResponse> {
 public:
  // Starts reading requests; `context` must outlive the call.
  static StreamInferReactor* Start(ServingContext* context);

  // gRPC reactions.
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // From a request's observer, on the engine thread; never block.
  void OnTokens(uint64_t slot, const TokenDelta& delta) ABSL_LOCKS_EXCLUDED(mu_);
  void OnFinished(uint64_t slot, const RequestResult& result) ABSL_LOCKS_EXCLUDED(mu_);

  // Use Start (public for std::make_shared).
  explicit StreamInferReactor(ServingContext* context) : context_(context) {}

 private:
  // One request of the stream, from its arrival to its last response.
  struct Pending {
    ResponseShape shape;
    bool stream = false;  // a response per delta, else one at the end
    bool empty_final_response = false;
    std::string engine_id;                // empty: never reached the engine
    Completion completion;                // not yet written
    std::optional<RequestResult> result;  // the engine's end of it
    std::optional<absl::Status> error;    // refused or failed: the one response says why
    bool queued = false;                  // in ready_
    bool abort_sent = false;
  };

  // Parses and submits the request just read.
  void Admit() ABSL_LOCKS_EXCLUDED(mu_);
  // Queues `slot` for a write unless it is queued.
  void Queue(uint64_t slot, Pending* pending) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves slot's next response into in_flight_; true when it is the request's last.
  bool TakeResponse(uint64_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the next write or the finish, if one is due and nothing is in flight.
  void Pump() ABSL_LOCKS_EXCLUDED(mu_);
  // Aborts every request of the stream still running in the engine.
  void AbortAll() ABSL_LOCKS_EXCLUDED(mu_);

  ServingContext* const context_;             // not owned
  std::shared_ptr<StreamInferReactor> self_;  // keeps this alive until OnDone
  // The request being read: gRPC writes it between StartRead and OnReadDone, Admit reads it.
  inference::ModelInferRequest read_;

  absl::Mutex mu_;
  uint64_t next_slot_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> ready_ ABSL_GUARDED_BY(mu_);  // slots with a response due, in order
  // The response gRPC is writing. Written under mu_ only while no write is in flight; gRPC
  // reads it until OnWriteDone.
  inference::ModelStreamInferResponse in_flight_;
  bool in_flight_is_last_ ABSL_GUARDED_BY(mu_) = false;  // of its request
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;  // the client closed its side (or broke)
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;   // Finish was called
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;   // the client is gone
  bool done_ ABSL_GUARDED_BY(mu_) = false;        // OnDone ran: gRPC has let go
};

}  // namespace mlkv::server::kserve

#endif  // MLKV_SERVER_KSERVE_STREAM_INFER_REACTOR_H_
