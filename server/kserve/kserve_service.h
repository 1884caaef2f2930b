// inference.GRPCInferenceService (KServe v2 / Open Inference Protocol) on gRPC's callback API,
// next to the native API: handlers check the API key, parse, hand the request to the engine and
// return; no gRPC thread waits for the engine.
#ifndef MLKV_SERVER_KSERVE_KSERVE_SERVICE_H_
#define MLKV_SERVER_KSERVE_KSERVE_SERVICE_H_

#include <string>

#include "absl/time/time.h"
#include "engine/engine.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/api_key_auth.h"
#include "server/kserve/serving_context.h"

namespace mlkv::server::kserve {

// Readiness follows the engine: ServerReady and ModelReady turn false when it stops accepting
// requests (a drain), and inference then answers UNAVAILABLE. Thread-safety: handlers run
// concurrently on gRPC's threads. `engine` and `auth` are not owned and must outlive the gRPC
// server the service is part of.
class KServeService final : public inference::GRPCInferenceService::CallbackService {
 public:
  KServeService(Engine* engine, std::string model_name, const ApiKeyAuth* auth);

  // Waits until every request has had its last response delivered, or `timeout` passes; true
  // when none is left. Streams that are open but idle do not count.
  bool WaitForRequests(absl::Duration timeout) { return context_.requests.WaitForNone(timeout); }

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const inference::ServerLiveRequest* request,
                                       inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const inference::ServerReadyRequest* request,
                                        inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest* request,
                                           inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelConfig(grpc::CallbackServerContext* context,
                                        const inference::ModelConfigRequest* request,
                                        inference::ModelConfigResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) override;
  grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
  ModelStreamInfer(grpc::CallbackServerContext* context) override;

 private:
  bool Ready() const { return context_.engine->GetStats().accepting; }

  const ApiKeyAuth* const auth_;  // not owned; checked first in every handler
  ServingContext context_;
  // Built once: the model does not change.
  const inference::ServerMetadataResponse server_metadata_;
  const inference::ModelMetadataResponse model_metadata_;
  const inference::ModelConfigResponse model_config_;
};

}  // namespace mlkv::server::kserve

#endif  // MLKV_SERVER_KSERVE_KSERVE_SERVICE_H_
