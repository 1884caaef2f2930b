// The ModelInfer call's state machine; see infer_reactor.h.
#include "server/kserve/infer_reactor.h"

#include <utility>

#include "server/grpc_status.h"

namespace mlkv::server::kserve {

grpc::ServerUnaryReactor* InferReactor::Start(ServingContext* context, InferRequest request,
                                              inference::ModelInferResponse* response) {
  request.engine.request_id = context->NextRequestId();
  auto reactor = std::make_shared<InferReactor>(context, request.engine.request_id,
                                                std::move(request.response),
                                                std::move(request.text_prefix), response);
  reactor->self_ = reactor;
  request.engine.observer = reactor;
  // On success the engine may report, and even finish, before this returns: gRPC holds back a
  // Finish called before it binds the reactor.
  absl::StatusOr<std::string> submitted = context->engine->Submit(std::move(request.engine));
  if (!submitted.ok()) {
    // Nothing reached the engine: the call ends here, and OnDone drops the last reference.
    {
      absl::MutexLock lock(&reactor->mu_);
      reactor->engine_finished_ = true;
    }
    reactor->FinishOnce(ToGrpcStatus(submitted.status()), nullptr);
  }
  return reactor.get();
}

InferReactor::InferReactor(ServingContext* context, std::string engine_id, ResponseShape shape,
                           std::string text_prefix, inference::ModelInferResponse* response)
    : context_(context),
      engine_id_(std::move(engine_id)),
      shape_(std::move(shape)),
      response_(response) {
  completion_.text = std::move(text_prefix);
  context_->requests.Opened();
}

void InferReactor::OnTokens(const TokenDelta& delta) {
  absl::MutexLock lock(&mu_);
  if (!finished_) completion_.Append(delta);
}

void InferReactor::OnFinished(const RequestResult& result) {
  {
    absl::MutexLock lock(&mu_);
    engine_finished_ = true;
  }
  if (result.status.ok()) {
    FinishOnce(grpc::Status::OK, &result);
  } else {
    FinishOnce(ToGrpcStatus(result.status), nullptr);
  }
}

void InferReactor::OnCancel() {
  AbortInEngine();
  FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled"), nullptr);
}

void InferReactor::OnDone() {
  AbortInEngine();  // a no-op unless the call ended before the request did
  // The last use of what the server owns: after this a shutdown may go ahead.
  context_->requests.Closed();
  // May delete this (when the engine has already let go): nothing may follow.
  std::shared_ptr<InferReactor> self = std::move(self_);
}

void InferReactor::FinishOnce(grpc::Status status, const RequestResult* result) {
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    if (result != nullptr) {
      *response_ = MakeResponse(context_->model.name, shape_, &completion_);
      AddResultParameters(*result, response_);
    }
  }
  Finish(std::move(status));
}

void InferReactor::AbortInEngine() {
  {
    absl::MutexLock lock(&mu_);
    if (engine_finished_ || abort_sent_) return;
    abort_sent_ = true;
  }
  // NotFound means the request finished meanwhile: nothing left to free.
  context_->engine->Abort(engine_id_).IgnoreError();
}

}  // namespace mlkv::server::kserve
