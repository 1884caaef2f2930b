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
    if (!first_token_) first_token_ = Clock::now();
    num_tokens_ += static_cast<int64_t>(delta.token_ids.size());
    AppendDelta(delta, pending_.mutable_delta());
    has_pending_ = true;
  }
  Pump();
}

void GenerateReactor::OnFinished(const RequestResult& result) {
  {
    absl::MutexLock lock(&mu_);
    engine_finished_ = true;
    RequestResult summary = result;
    summary.output_token_ids.clear();
    summary.prompt_logprobs.clear();
    result_ = std::move(summary);
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
  LogFinished();
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
    } else if (has_pending_) {
      in_flight_.Clear();
      in_flight_.Swap(&pending_);
      has_pending_ = false;
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

void GenerateReactor::LogFinished() {
  absl::MutexLock lock(&mu_);
  const auto ms = [&](Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(t - start_).count();
  };
  const double e2e_ms = ms(Clock::now());
  const std::string ttft =
      first_token_ ? fmt::format("ttft {:.1f} ms", ms(*first_token_)) : "no tokens";
  if (!result_) {
    spdlog::info("request {}: call ended before the request ({}) after {:.1f} ms, {} tokens sent",
                 request_id_, cancelled_ ? "cancelled" : "refused", e2e_ms, num_tokens_);
    return;
  }
  if (!result_->status.ok()) {
    spdlog::warn("request {}: failed after {:.1f} ms: {}", request_id_, e2e_ms,
                 result_->status.ToString());
    return;
  }
  spdlog::info(
      "request {}: {}{}, {} prompt tokens ({} cached), {} generated, {} preemptions, "
      "{}, e2e {:.1f} ms",
      request_id_, FinishReasonName(result_->finish_reason), cancelled_ ? " (client gone)" : "",
      result_->num_prompt_tokens, result_->num_cached_prompt_tokens, num_tokens_,
      result_->num_preemptions, ttft, e2e_ms);
}

}  // namespace mlkv::server
