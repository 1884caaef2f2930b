// The mlkv.v1.MlkvService implementation on gRPC's callback API: handlers validate, hand work to
// the engine or answer from its statistics, and return at once.
#ifndef MLKV_SERVER_MLKV_SERVICE_H_
#define MLKV_SERVER_MLKV_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "engine/engine.h"
#include "mlkv/v1/mlkv.grpc.pb.h"
#include "server/api_key_auth.h"
#include "server/generate_request.h"
#include "server/stream_counter.h"

namespace mlkv::server {

// Thread-safety: handlers run concurrently on gRPC's threads; StopAccepting may be called from
// any thread. `engine` and `auth` are not owned and must outlive the gRPC server the service is
// part of.
class MlkvService final : public v1::MlkvService::CallbackService {
 public:
  MlkvService(Engine* engine, const EngineOptions& options, std::string model_name,
              const ApiKeyAuth* auth);

  // From now on Generate answers UNAVAILABLE (the server is draining); the rest still answer.
  void StopAccepting() { accepting_.store(false); }
  // Waits until every Generate stream has ended (its last message handed to the transport) or
  // `timeout` passes; true when none is open.
  bool WaitForStreams(absl::Duration timeout) { return streams_.WaitForNone(timeout); }

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const v1::DetokenizeRequest* request,
                                       v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* context,
                                    const v1::GetLoadRequest* request, v1::Load* response) override;

 private:
  Engine* const engine_;          // not owned
  const ApiKeyAuth* const auth_;  // not owned; checked first in every handler
  const RequestLimits limits_;
  const v1::ModelInfo model_info_;  // built once: the configuration does not change
  std::atomic<bool> accepting_{true};
  std::atomic<int64_t> next_request_number_{0};  // names requests that come without an id
  StreamCounter streams_;                        // open Generate calls
};

}  // namespace mlkv::server

#endif  // MLKV_SERVER_MLKV_SERVICE_H_
