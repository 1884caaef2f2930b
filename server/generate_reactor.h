// One Generate call: the bridge between the engine thread, which reports a request's tokens, and
// gRPC, which writes them to the client one message at a time without any thread waiting.
#ifndef MLKV_SERVER_GENERATE_REACTOR_H_
#define MLKV_SERVER_GENERATE_REACTOR_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "engine/engine_request.h"
#include "grpcpp/support/server_callback.h"
#include "mlkv/v1/mlkv.pb.h"
#include "server/stream_counter.h"

namespace mlkv::server {

// The engine thread hands deltas and the result over under a mutex and returns; whichever
// thread finds no write in flight starts the next one (StartWrite -> OnWriteDone -> next), so
// deltas that pile up while a write is in flight are merged into one message. A client cancel,
// a missed deadline or a broken stream aborts the engine request, which frees its KV blocks
// within one engine step.
//
// Lifetime: shared by gRPC (until OnDone) and the engine (until it drops the observer after
// OnFinished); whichever lets go last deletes it. After OnDone the engine's reports are dropped.
// Thread-safety: every method may be called from any thread; state is guarded by mu_, and gRPC
// is never called with mu_ held (its reactions may run inline and take mu_).
class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse>,
                              public RequestObserver {
 public:
  // Submits `request` (its id set, its observer unset) to `engine` and returns the reactor for
  // gRPC; `streams` counts the call as open until its OnDone. Both must outlive the call. A
  // refused submission finishes the call with the engine's error (RESOURCE_EXHAUSTED for a full
  // queue, UNAVAILABLE while draining, ...).
  static grpc::ServerWriteReactor<v1::GenerateResponse>* Start(Engine* engine,
                                                               StreamCounter* streams,
                                                               EngineRequest request);

  // RequestObserver: on the engine thread; never block.
  void OnTokens(const TokenDelta& delta) override;
  void OnFinished(const RequestResult& result) override;

  // gRPC reactions.
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // Use Start (public for std::make_shared).
  GenerateReactor(Engine* engine, StreamCounter* streams, std::string request_id);

 private:
  // Starts the next write or the finish, if one is due and nothing is in flight.
  void Pump() ABSL_LOCKS_EXCLUDED(mu_);
  // Asks the engine to abort the request unless it already ended (or was asked to).
  void AbortInEngine() ABSL_LOCKS_EXCLUDED(mu_);

  Engine* const engine_;          // not owned
  StreamCounter* const streams_;  // not owned
  const std::string request_id_;
  // Keeps this alive until OnDone; reset there.
  std::shared_ptr<GenerateReactor> self_;

  absl::Mutex mu_;
  // Deltas not yet written, merged; has_delta() while there are any.
  v1::GenerateResponse pending_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::GenerateResponse> final_ ABSL_GUARDED_BY(mu_);  // the result, once known
  std::optional<grpc::Status> error_ ABSL_GUARDED_BY(mu_);          // or the engine's error
  // The message gRPC is writing. Written under mu_ only while no write is in flight; gRPC reads
  // it until OnWriteDone (or OnDone, for the final write).
  v1::GenerateResponse in_flight_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;          // a StartWrite awaits its OnWriteDone
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;        // Finish or StartWriteAndFinish was called
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;        // the client is gone: finish, write nothing
  bool done_ ABSL_GUARDED_BY(mu_) = false;             // OnDone ran: gRPC has let go
  bool engine_finished_ ABSL_GUARDED_BY(mu_) = false;  // OnFinished ran
  bool abort_sent_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace mlkv::server

#endif  // MLKV_SERVER_GENERATE_REACTOR_H_
