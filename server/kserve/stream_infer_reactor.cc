// The ModelStreamInfer call's state machine; see stream_infer_reactor.h.
#include "server/kserve/stream_infer_reactor.h"

#include <utility>
#include <vector>

#include "common/check.h"

namespace mlkv::server::kserve {
namespace {

// Hands one request's reports to its stream, tagged with the request's slot.
class SlotObserver final : public RequestObserver {
 public:
  SlotObserver(std::shared_ptr<StreamInferReactor> stream, uint64_t slot)
      : stream_(std::move(stream)), slot_(slot) {}
  void OnTokens(const TokenDelta& delta) override { stream_->OnTokens(slot_, delta); }
  void OnFinished(const RequestResult& result) override { stream_->OnFinished(slot_, result); }

 private:
  const std::shared_ptr<StreamInferReactor> stream_;
  const uint64_t slot_;
};

}  // namespace

StreamInferReactor* StreamInferReactor::Start(ServingContext* context) {
  auto reactor = std::make_shared<StreamInferReactor>(context);
  reactor->self_ = reactor;
  reactor->StartRead(&reactor->read_);
  return reactor.get();
}

void StreamInferReactor::OnReadDone(bool ok) {
  if (!ok) {
    {
      absl::MutexLock lock(&mu_);
      reads_done_ = true;
    }
    Pump();
    return;
  }
  Admit();
  // Finish waits for the read loop to stop (a cancel fails the read in flight), so reading on
  // is always allowed here.
  StartRead(&read_);
}

void StreamInferReactor::Admit() {
  absl::StatusOr<InferRequest> parsed =
      ParseInferRequest(read_, context_->model, Rpc::kModelStreamInfer);
  uint64_t slot;
  std::shared_ptr<StreamInferReactor> self;
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return;
    slot = next_slot_++;
    Pending& pending = pending_[slot];
    context_->requests.Opened();
    if (!parsed.ok()) {
      pending.shape.id = read_.id();
      pending.error = parsed.status();
      Queue(slot, &pending);
    } else {
      pending.shape = parsed->response;
      pending.stream = parsed->stream;
      pending.empty_final_response = parsed->empty_final_response;
      pending.completion.text = std::move(parsed->text_prefix);
      pending.engine_id = context_->NextRequestId();
      parsed->engine.request_id = pending.engine_id;
      self = self_;
    }
  }
  if (parsed.ok()) {
    parsed->engine.observer = std::make_shared<SlotObserver>(std::move(self), slot);
    absl::StatusOr<std::string> submitted = context_->engine->Submit(std::move(parsed->engine));
    if (!submitted.ok()) {
      absl::MutexLock lock(&mu_);
      Pending& pending = pending_.at(slot);
      pending.error = submitted.status();
      Queue(slot, &pending);
    }
  }
  Pump();
}

void StreamInferReactor::OnTokens(uint64_t slot, const TokenDelta& delta) {
  {
    absl::MutexLock lock(&mu_);
    if (done_ || cancelled_) return;
    Pending& pending = pending_.at(slot);
    pending.completion.Append(delta);
    if (!pending.stream) return;  // all of it goes in one response at the end
    Queue(slot, &pending);
  }
  Pump();
}

void StreamInferReactor::OnFinished(uint64_t slot, const RequestResult& result) {
  {
    absl::MutexLock lock(&mu_);
    if (done_) return;
    Pending& pending = pending_.at(slot);
    if (result.status.ok()) {
      pending.result = result;
    } else {
      pending.error = result.status;
    }
    if (cancelled_) return;
    Queue(slot, &pending);
  }
  Pump();
}

void StreamInferReactor::OnWriteDone(bool ok) {
  bool was_last;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    // That request is over, whether its last response got through or not.
    was_last = in_flight_is_last_;
    in_flight_is_last_ = false;
    // A failed write means the stream is gone (cancelled, or the connection broke).
    if (!ok) cancelled_ = true;
  }
  if (was_last) context_->requests.Closed();
  if (!ok) AbortAll();
  Pump();
}

void StreamInferReactor::OnCancel() {
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  AbortAll();
  Pump();
}

void StreamInferReactor::OnDone() {
  size_t open;
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
    open = pending_.size();
  }
  AbortAll();
  // The last use of what the server owns: after this a shutdown may go ahead.
  for (size_t i = 0; i < open; ++i) context_->requests.Closed();
  // May delete this (when no engine request holds it any more): nothing may follow.
  std::shared_ptr<StreamInferReactor> self = std::move(self_);
}

void StreamInferReactor::Queue(uint64_t slot, Pending* pending) {
  if (pending->queued) return;
  pending->queued = true;
  ready_.push_back(slot);
}

bool StreamInferReactor::TakeResponse(uint64_t slot) {
  Pending& pending = pending_.at(slot);
  pending.queued = false;
  in_flight_.Clear();
  inference::ModelInferResponse* response = in_flight_.mutable_infer_response();
  const std::string& model_name = context_->model.name;
  if (pending.error) {
    in_flight_.set_error_message(std::string(pending.error->message()));
    *response = MakeResponse(model_name, pending.shape, nullptr);
    pending_.erase(slot);
    return true;
  }
  const bool ended = pending.result.has_value();
  if (!pending.completion.empty() && (pending.stream || ended)) {
    *response = MakeResponse(model_name, pending.shape, &pending.completion);
    pending.completion = Completion();
    if (!ended || pending.empty_final_response) {
      SetFinalResponse(false, response);
      if (ended) Queue(slot, &pending);  // the empty final response follows
      return false;
    }
  } else {
    // Only the end is left to tell: it comes with empty outputs, or none in an empty final
    // response.
    MLKV_CHECK(ended, "request slot {} was queued with nothing to send", slot);
    const Completion nothing;
    *response =
        MakeResponse(model_name, pending.shape, pending.empty_final_response ? nullptr : &nothing);
  }
  AddResultParameters(*pending.result, response);
  SetFinalResponse(true, response);
  pending_.erase(slot);
  return true;
}

void StreamInferReactor::Pump() {
  bool write;
  grpc::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (done_ || finishing_ || writing_) return;
    if (cancelled_) {
      // Finish only once the read loop has stopped; a cancel fails the read in flight.
      if (!reads_done_) return;
      finishing_ = true;
      write = false;
      status = grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled");
    } else if (!ready_.empty()) {
      const uint64_t slot = ready_.front();
      ready_.pop_front();
      in_flight_is_last_ = TakeResponse(slot);
      writing_ = true;
      write = true;
    } else if (reads_done_ && pending_.empty()) {
      finishing_ = true;
      write = false;
      status = grpc::Status::OK;
    } else {
      return;
    }
  }
  // writing_/finishing_ keep every other thread out until the reaction: in_flight_ is ours.
  if (write) {
    StartWrite(&in_flight_);
  } else {
    Finish(std::move(status));
  }
}

void StreamInferReactor::AbortAll() {
  std::vector<std::string> running;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [slot, pending] : pending_) {
      if (pending.engine_id.empty() || pending.result || pending.error || pending.abort_sent) {
        continue;
      }
      pending.abort_sent = true;
      running.push_back(pending.engine_id);
    }
  }
  // NotFound means the request finished meanwhile: nothing left to free.
  for (const std::string& id : running) context_->engine->Abort(id).IgnoreError();
}

}  // namespace mlkv::server::kserve
