// One ModelInfer call: the request runs in the engine while no thread waits for it; the engine
// thread gathers its tokens and, at the end, fills in the response and finishes the call.
#ifndef MLKV_SERVER_KSERVE_INFER_REACTOR_H_
#define MLKV_SERVER_KSERVE_INFER_REACTOR_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "engine/engine_request.h"
#include "grpcpp/support/server_callback.h"
#include "inference/grpc_service.pb.h"
#include "server/kserve/infer_request.h"
#include "server/kserve/infer_response.h"
#include "server/kserve/serving_context.h"

namespace mlkv::server::kserve {

// A client cancel or a missed deadline aborts the engine request, which frees its KV blocks
// within one engine step.
//
// Lifetime: shared by gRPC (until OnDone) and the engine (until it drops the observer after
// OnFinished); whichever lets go last deletes it. Thread-safety: every method may be called from
// any thread; state is guarded by mu_, and gRPC is never called with mu_ held.
class InferReactor final : public grpc::ServerUnaryReactor, public RequestObserver {
 public:
  // Submits `request` to the engine and returns the reactor for gRPC, which fills in `response`
  // (gRPC's, alive until OnDone). A refused submission finishes the call with the engine's
  // error.
  static grpc::ServerUnaryReactor* Start(ServingContext* context, InferRequest request,
                                         inference::ModelInferResponse* response);

  // RequestObserver: on the engine thread; never blocks.
  void OnTokens(const TokenDelta& delta) override;
  void OnFinished(const RequestResult& result) override;

  // gRPC reactions.
  void OnCancel() override;
  void OnDone() override;

  // Use Start (public for std::make_shared).
  InferReactor(ServingContext* context, std::string engine_id, ResponseShape shape,
               std::string text_prefix, inference::ModelInferResponse* response);

 private:
  // Finishes the call unless it is finished already; with `result`, fills in the response first.
  void FinishOnce(grpc::Status status, const RequestResult* result) ABSL_LOCKS_EXCLUDED(mu_);
  // Asks the engine to abort the request unless it already ended (or was asked to).
  void AbortInEngine() ABSL_LOCKS_EXCLUDED(mu_);

  ServingContext* const context_;  // not owned
  const std::string engine_id_;
  const ResponseShape shape_;
  inference::ModelInferResponse* const response_;  // gRPC's; written once, before Finish
  std::shared_ptr<InferReactor> self_;             // keeps this alive until OnDone

  absl::Mutex mu_;
  Completion completion_ ABSL_GUARDED_BY(mu_);         // starts with the text prefix
  bool finished_ ABSL_GUARDED_BY(mu_) = false;         // Finish was called
  bool engine_finished_ ABSL_GUARDED_BY(mu_) = false;  // OnFinished ran, or Submit failed
  bool abort_sent_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace mlkv::server::kserve

#endif  // MLKV_SERVER_KSERVE_INFER_REACTOR_H_
