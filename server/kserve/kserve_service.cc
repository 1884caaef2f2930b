// The KServe v2 handlers; see kserve_service.h.
#include "server/kserve/kserve_service.h"

#include <utility>

#include "server/grpc_status.h"
#include "server/kserve/infer_reactor.h"
#include "server/kserve/model_metadata.h"
#include "server/kserve/stream_infer_reactor.h"

namespace mlkv::server::kserve {
namespace {

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context, grpc::Status status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

// A stream refused before it starts (no API key); owned by gRPC until OnDone.
class RefusedStream final : public grpc::ServerBidiReactor<inference::ModelInferRequest,
                                                           inference::ModelStreamInferResponse> {
 public:
  explicit RefusedStream(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

// The API key, then the model the request names: what every per-model RPC checks first.
template <typename Request>
grpc::Status CheckCall(const ApiKeyAuth& auth, const grpc::CallbackServerContext& context,
                       const KServeModel& model, const Request& request) {
  if (grpc::Status s = auth.Check(context); !s.ok()) return s;
  return ToGrpcStatus(CheckModel(model, request.name(), request.version()));
}

KServeModel DescribeModel(const Engine* engine, std::string name) {
  return KServeModel{std::move(name), &engine->model_config(), engine->tokenizer()};
}

}  // namespace

KServeService::KServeService(Engine* engine, std::string model_name, const ApiKeyAuth* auth)
    : auth_(auth),
      context_{.engine = engine, .model = DescribeModel(engine, std::move(model_name))},
      server_metadata_(BuildServerMetadata()),
      model_metadata_(BuildModelMetadata(context_.model)),
      model_config_(BuildModelConfig(context_.model)) {}

grpc::ServerUnaryReactor* KServeService::ServerLive(grpc::CallbackServerContext* context,
                                                    const inference::ServerLiveRequest* request,
                                                    inference::ServerLiveResponse* response) {
  if (grpc::Status auth = auth_->Check(*context); !auth.ok()) return FinishUnary(context, auth);
  response->set_live(true);
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* KServeService::ServerReady(grpc::CallbackServerContext* context,
                                                     const inference::ServerReadyRequest* request,
                                                     inference::ServerReadyResponse* response) {
  if (grpc::Status auth = auth_->Check(*context); !auth.ok()) return FinishUnary(context, auth);
  response->set_ready(Ready());
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* KServeService::ModelReady(grpc::CallbackServerContext* context,
                                                    const inference::ModelReadyRequest* request,
                                                    inference::ModelReadyResponse* response) {
  if (grpc::Status s = CheckCall(*auth_, *context, context_.model, *request); !s.ok()) {
    return FinishUnary(context, std::move(s));
  }
  response->set_ready(Ready());
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* KServeService::ServerMetadata(
    grpc::CallbackServerContext* context, const inference::ServerMetadataRequest* request,
    inference::ServerMetadataResponse* response) {
  if (grpc::Status auth = auth_->Check(*context); !auth.ok()) return FinishUnary(context, auth);
  *response = server_metadata_;
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* KServeService::ModelMetadata(
    grpc::CallbackServerContext* context, const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  if (grpc::Status s = CheckCall(*auth_, *context, context_.model, *request); !s.ok()) {
    return FinishUnary(context, std::move(s));
  }
  *response = model_metadata_;
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* KServeService::ModelConfig(grpc::CallbackServerContext* context,
                                                     const inference::ModelConfigRequest* request,
                                                     inference::ModelConfigResponse* response) {
  if (grpc::Status s = CheckCall(*auth_, *context, context_.model, *request); !s.ok()) {
    return FinishUnary(context, std::move(s));
  }
  *response = model_config_;
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* KServeService::ModelInfer(grpc::CallbackServerContext* context,
                                                    const inference::ModelInferRequest* request,
                                                    inference::ModelInferResponse* response) {
  if (grpc::Status auth = auth_->Check(*context); !auth.ok()) return FinishUnary(context, auth);
  absl::StatusOr<InferRequest> parsed =
      ParseInferRequest(*request, context_.model, Rpc::kModelInfer);
  if (!parsed.ok()) return FinishUnary(context, ToGrpcStatus(parsed.status()));
  return InferReactor::Start(&context_, *std::move(parsed), response);
}

grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
KServeService::ModelStreamInfer(grpc::CallbackServerContext* context) {
  if (grpc::Status auth = auth_->Check(*context); !auth.ok()) return new RefusedStream(auth);
  return StreamInferReactor::Start(&context_);
}

}  // namespace mlkv::server::kserve
