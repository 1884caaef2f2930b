// The Generate stream's state machine; see generate_reactor.h.
#include "server/generate_reactor.h"

#include <utility>

#include "server/generate_request.h"
#include "server/grpc_status.h"
#include "spdlog/spdlog.h"

namespace mlkv::server {

grpc::ServerWriteReactor<v1::GenerateResponse>* GenerateReactor::Start(Engine* engine,
                                                                       StreamCounter* streams,
                                                                       EngineRequest request) {
  auto reactor = std::make_shared<GenerateReactor>(engine, streams, request.request_id);
  reactor->self_ = reactor;
  request.observer = reactor;
  // On success the engine may report tokens before this returns: the reactor queues them, and
  // gRPC holds back writes started before it binds the reactor.
  absl::StatusOr<std::string> submitted = engine->Submit(std::move(request));
  if (!submitted.ok()) {
    // Nothing reached the engine: the call ends here, and OnDone drops the last reference.
    // The engine's monitor logs every request the engine ran; this one it never saw.
    spdlog::info("request {}: refused: {}", reactor->request_id_, submitted.status().ToString());
    GenerateReactor* raw = reactor.get();
    {
      absl::MutexLock lock(&raw->mu_);
      raw->engine_finished_ = true;
      raw->error_ = ToGrpcStatus(submitted.status());
    }
    raw->Pump();
    return raw;
  }
  return reactor.get();
}

GenerateReactor::GenerateReactor(Engine* engine, StreamCounter* streams, std::string request_id)
    : engine_(engine), streams_(streams), request_id_(std::move(request_id)) {
  streams_->Opened();
}

void GenerateReactor::OnTokens(const TokenDelta& delta) {
  {
    absl::MutexLock lock(&mu_);
    if (done_ || cancelled_) return;
    AppendDelta(delta, pending_.mutable_delta());
  }
  Pump();
}

void GenerateReactor::OnFinished(const RequestResult& result) {
  {
    absl::MutexLock lock(&mu_);
    engine_finished_ = true;
    if (done_) return;
    if (result.status.ok()) {
      v1::GenerateResponse response;
      *response.mutable_result() = ToGenerateResult(request_id_, result);
      final_ = std::move(response);
    } else {
      error_ = ToGrpcStatus(result.status);
    }
  }
  Pump();
}

void GenerateReactor::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    // A failed write means the stream is gone (cancelled, or the connection broke).
    if (!ok) cancelled_ = true;
  }
  if (!ok) AbortInEngine();
  Pump();
}

void GenerateReactor::OnCancel() {
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  AbortInEngine();
  Pump();
}

void GenerateReactor::OnDone() {
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }
  AbortInEngine();  // a no-op unless the call ended before the request did
  // The last use of what the server owns: after this a shutdown may go ahead.
  streams_->Closed();
  // May delete this (when the engine has already let go): nothing may follow.
  std::shared_ptr<GenerateReactor> self = std::move(self_);
}

void GenerateReactor::Pump() {
  enum class Action { kWrite, kWriteAndFinish, kFinish };
  Action action;
  grpc::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (done_ || finishing_ || writing_) return;
    if (cancelled_) {
      // Every call must be finished, even a cancelled one; the client no longer listens.
      finishing_ = true;
      action = Action::kFinish;
      status = grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled");
    } else if (pending_.has_delta()) {
      // Leaves pending_ empty (no delta): the written message is cleared first.
      in_flight_.Clear();
      in_flight_.Swap(&pending_);
      writing_ = true;
      action = Action::kWrite;
    } else if (final_) {
      in_flight_ = std::move(*final_);
      final_.reset();
      finishing_ = true;
      action = Action::kWriteAndFinish;
    } else if (error_) {
      finishing_ = true;
      action = Action::kFinish;
      status = *error_;
    } else {
      return;
    }
  }
  // writing_/finishing_ keep every other thread out until the reaction: in_flight_ is ours.
  switch (action) {
    case Action::kWrite:
      StartWrite(&in_flight_);
      break;
    case Action::kWriteAndFinish:
      StartWriteAndFinish(&in_flight_, grpc::WriteOptions(), grpc::Status::OK);
      break;
    case Action::kFinish:
      Finish(std::move(status));
      break;
  }
}

void GenerateReactor::AbortInEngine() {
  {
    absl::MutexLock lock(&mu_);
    if (engine_finished_ || abort_sent_) return;
    abort_sent_ = true;
  }
  // NotFound means the request finished meanwhile: nothing left to free.
  engine_->Abort(request_id_).IgnoreError();
}

}  // namespace mlkv::server
