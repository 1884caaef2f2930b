// The native API's streams for the load generator; see native_client.h.
#include "tools/loadgen/native_client.h"

#include <utility>

#include "common/status_macros.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "tools/loadgen/grpc_channel.h"

namespace mlkv::loadgen {
namespace {

// One Generate call. gRPC runs its reactions one at a time (a read reactor has one read in
// flight), so the record needs no lock. Deletes itself in OnDone, after handing the record on.
class GenerateStream final : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  GenerateStream(v1::MlkvService::Stub* stub, v1::GenerateRequest request, RequestRecord record,
                 GenerationClient::Clock::time_point epoch, double timeout_s,
                 GenerationClient::DoneCallback done)
      : request_(std::move(request)),
        record_(std::move(record)),
        epoch_(epoch),
        done_(std::move(done)) {
    context_.set_deadline(DeadlineAfter(timeout_s));
    record_.start_s = SecondsSince(epoch_);
    stub->async()->Generate(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows with its status
    const double now = SecondsSince(epoch_);
    if (response_.has_delta() && response_.delta().token_ids_size() > 0) {
      record_.chunks.push_back({now, response_.delta().token_ids_size()});
    } else if (response_.has_result()) {
      const v1::GenerateResult& result = response_.result();
      record_.request_id = result.request_id();
      record_.prompt_tokens = result.usage().prompt_tokens();
      record_.cached_prompt_tokens = result.usage().cached_prompt_tokens();
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    record_.end_s = SecondsSince(epoch_);
    record_.code = static_cast<absl::StatusCode>(status.error_code());
    record_.error = status.error_message();
    done_(std::move(record_));
    delete this;
  }

 private:
  grpc::ClientContext context_;
  const v1::GenerateRequest request_;
  v1::GenerateResponse response_;
  RequestRecord record_;
  const GenerationClient::Clock::time_point epoch_;
  const GenerationClient::DoneCallback done_;
};

}  // namespace

NativeClient::NativeClient(const std::string& target, CallOptions options)
    : target_(target),
      channel_(MakeChannel(target)),
      stub_(v1::MlkvService::NewStub(channel_)),
      options_(options) {}

absl::StatusOr<ServerInfo> GetNativeModelInfo(v1::MlkvService::Stub& stub, double timeout_s) {
  grpc::ClientContext context;
  context.set_deadline(DeadlineAfter(timeout_s));
  v1::ModelInfo info;
  const grpc::Status status = stub.GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
  if (!status.ok()) return FromGrpc(status);
  return ServerInfo{info.model_name(), info.config().vocab_size(), info.kv_cache().max_model_len()};
}

absl::StatusOr<ServerInfo> NativeClient::Probe(double timeout_s) {
  RETURN_IF_ERROR(WaitForConnection(*channel_, target_, timeout_s));
  return GetNativeModelInfo(*stub_, timeout_s);
}

void NativeClient::Start(const RequestSpec& spec, RequestRecord record, Clock::time_point epoch,
                         DoneCallback done) {
  v1::GenerateRequest request;
  request.mutable_prompt_token_ids()->Assign(spec.prompt_token_ids.begin(),
                                             spec.prompt_token_ids.end());
  request.set_prompt_text(spec.prompt_text);
  request.set_max_tokens(static_cast<int32_t>(spec.output_len));
  request.set_ignore_eos(options_.ignore_eos);
  // The usage in the result overrides this count when the server sends one.
  record.prompt_tokens = static_cast<int64_t>(spec.prompt_token_ids.size());
  record.expected_output_tokens = spec.output_len;
  new GenerateStream(stub_.get(), std::move(request), std::move(record), epoch, options_.timeout_s,
                     std::move(done));
}

}  // namespace mlkv::loadgen
