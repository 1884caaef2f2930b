// KServe v2 streams for the load generator; see kserve_client.h.
#include "tools/loadgen/kserve_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "nlohmann/json.hpp"
#include "tools/loadgen/grpc_channel.h"
#include "tools/loadgen/native_client.h"

namespace mlkv::loadgen {
namespace {

using inference::ModelInferRequest;
using inference::ModelStreamInferResponse;

// One request on its own ModelStreamInfer stream: write it, close the writing side, read its
// responses until the server ends the stream. gRPC runs one reaction of a kind at a time and
// the record is only touched by reads and OnDone, which never overlap. Deletes itself in OnDone.
class KserveStream final
    : public grpc::ClientBidiReactor<ModelInferRequest, ModelStreamInferResponse> {
 public:
  KserveStream(inference::GRPCInferenceService::Stub* stub, ModelInferRequest request,
               RequestRecord record, GenerationClient::Clock::time_point epoch, double timeout_s,
               GenerationClient::DoneCallback done)
      : request_(std::move(request)),
        record_(std::move(record)),
        epoch_(epoch),
        done_(std::move(done)) {
    context_.set_deadline(DeadlineAfter(timeout_s));
    record_.start_s = SecondsSince(epoch_);
    stub->async()->ModelStreamInfer(&context_, this);
    StartWrite(&request_);
    StartRead(&response_);
    StartCall();
  }

  void OnWriteDone(bool ok) override {
    if (ok) StartWritesDone();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    if (!response_.error_message().empty()) {
      // The protocol carries a request's error as text in an OK stream.
      error_ = response_.error_message();
    } else if (const int64_t tokens = KserveResponseTokens(response_.infer_response());
               tokens > 0) {
      record_.chunks.push_back({SecondsSince(epoch_), tokens});
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    record_.end_s = SecondsSince(epoch_);
    if (!status.ok()) {
      record_.code = static_cast<absl::StatusCode>(status.error_code());
      record_.error = status.error_message();
    } else if (!error_.empty()) {
      record_.code = absl::StatusCode::kUnknown;  // the text has no code
      record_.error = error_;
    }
    done_(std::move(record_));
    delete this;
  }

 private:
  grpc::ClientContext context_;
  const ModelInferRequest request_;
  ModelStreamInferResponse response_;
  RequestRecord record_;
  std::string error_;
  const GenerationClient::Clock::time_point epoch_;
  const GenerationClient::DoneCallback done_;
};

ModelInferRequest::InferInputTensor* AddInput(ModelInferRequest* request, const char* name,
                                              const char* datatype, int64_t length) {
  ModelInferRequest::InferInputTensor* input = request->add_inputs();
  input->set_name(name);
  input->set_datatype(datatype);
  input->add_shape(length);
  return input;
}

}  // namespace

ModelInferRequest MakeKserveRequest(const RequestSpec& spec, const std::string& model,
                                    bool ignore_eos) {
  ModelInferRequest request;
  request.set_model_name(model);
  if (spec.prompt_text.empty()) {
    AddInput(&request, "input_ids", "INT32", static_cast<int64_t>(spec.prompt_token_ids.size()))
        ->mutable_contents()
        ->mutable_int_contents()
        ->Assign(spec.prompt_token_ids.begin(), spec.prompt_token_ids.end());
  } else {
    AddInput(&request, "text_input", "BYTES", 1)
        ->mutable_contents()
        ->add_bytes_contents(spec.prompt_text);
  }
  const nlohmann::json sampling = {{"max_tokens", spec.output_len}, {"ignore_eos", ignore_eos}};
  AddInput(&request, "sampling_parameters", "BYTES", 1)
      ->mutable_contents()
      ->add_bytes_contents(sampling.dump());
  AddInput(&request, "stream", "BOOL", 1)->mutable_contents()->add_bool_contents(true);
  request.add_outputs()->set_name("output_ids");
  return request;
}

int64_t KserveResponseTokens(const inference::ModelInferResponse& response) {
  for (const auto& output : response.outputs()) {
    if (output.name() != "output_ids") continue;
    int64_t elements = 1;
    for (int64_t dim : output.shape()) elements *= dim;
    return elements;
  }
  return 0;
}

KserveClient::KserveClient(const std::string& target, std::string model_name, CallOptions options)
    : target_(target),
      model_name_(std::move(model_name)),
      channel_(MakeChannel(target)),
      stub_(inference::GRPCInferenceService::NewStub(channel_)),
      options_(options) {}

absl::StatusOr<ServerInfo> KserveClient::Probe(double timeout_s) {
  RETURN_IF_ERROR(WaitForConnection(*channel_, target_, timeout_s));
  auto native = v1::MlkvService::NewStub(channel_);
  absl::StatusOr<ServerInfo> info = GetNativeModelInfo(*native, timeout_s);
  if (!info.ok()) {
    if (info.status().code() != absl::StatusCode::kUnimplemented || model_name_.empty()) {
      return info.status();
    }
    info = ServerInfo{model_name_, 0, 0};  // not mlkv-server: --vocab-size must say
  }
  if (model_name_.empty()) model_name_ = info->model_name;
  info->model_name = model_name_;
  grpc::ClientContext context;
  context.set_deadline(DeadlineAfter(timeout_s));
  inference::ModelReadyRequest ready_request;
  ready_request.set_name(model_name_);
  inference::ModelReadyResponse ready;
  RETURN_IF_ERROR(FromGrpc(stub_->ModelReady(&context, ready_request, &ready)));
  if (!ready.ready()) {
    return absl::FailedPreconditionError(absl::StrCat("model \"", model_name_, "\" is not ready"));
  }
  return info;
}

void KserveClient::Start(const RequestSpec& spec, RequestRecord record, Clock::time_point epoch,
                         DoneCallback done) {
  record.prompt_tokens = static_cast<int64_t>(spec.prompt_token_ids.size());
  record.expected_output_tokens = spec.output_len;
  // No id: the server may hold ids unique among live requests, and other clients share it.
  ModelInferRequest request = MakeKserveRequest(spec, model_name_, options_.ignore_eos);
  new KserveStream(stub_.get(), std::move(request), std::move(record), epoch, options_.timeout_s,
                   std::move(done));
}

}  // namespace mlkv::loadgen
