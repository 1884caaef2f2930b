// The native API's handlers; see mlkv_service.h.
#include "server/mlkv_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/finished_reactor.h"
#include "server/generate_reactor.h"
#include "server/generate_request.h"
#include "server/grpc_status.h"
#include "server/model_reports.h"

namespace mlkv::server {
namespace {

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context, grpc::Status status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

grpc::Status NoTokenizer() {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "the server has no tokenizer yet: send and read token ids");
}

}  // namespace

MlkvService::MlkvService(Engine* engine, const EngineOptions& options, std::string model_name)
    : engine_(engine),
      limits_{options.scheduler.max_model_len,
              static_cast<int64_t>(options.scheduler.num_blocks) * options.scheduler.block_size},
      model_info_(BuildModelInfo(model_name, engine->model_config(), options,
                                 engine->GetStats())) {}

grpc::ServerWriteReactor<v1::GenerateResponse>* MlkvService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  using Refused = FinishedWriteReactor<v1::GenerateResponse>;
  if (!accepting_.load()) {
    return new Refused(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                    "the server is shutting down and admits no new requests"));
  }
  absl::StatusOr<EngineRequest> engine_request =
      ToEngineRequest(*request, engine_->model_config(), limits_);
  if (!engine_request.ok()) return new Refused(ToGrpcStatus(engine_request.status()));
  // The reactor must know the id before the engine does, to abort it on a cancel.
  if (engine_request->request_id.empty()) {
    engine_request->request_id = absl::StrCat("gen-", next_request_number_.fetch_add(1));
  }
  return GenerateReactor::Start(engine_, &streams_, *std::move(engine_request));
}

grpc::ServerUnaryReactor* MlkvService::Tokenize(grpc::CallbackServerContext* context,
                                                const v1::TokenizeRequest* request,
                                                v1::TokenizeResponse* response) {
  return FinishUnary(context, NoTokenizer());
}

grpc::ServerUnaryReactor* MlkvService::Detokenize(grpc::CallbackServerContext* context,
                                                  const v1::DetokenizeRequest* request,
                                                  v1::DetokenizeResponse* response) {
  return FinishUnary(context, NoTokenizer());
}

grpc::ServerUnaryReactor* MlkvService::GetModelInfo(grpc::CallbackServerContext* context,
                                                    const v1::GetModelInfoRequest* request,
                                                    v1::ModelInfo* response) {
  *response = model_info_;
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* MlkvService::GetLoad(grpc::CallbackServerContext* context,
                                               const v1::GetLoadRequest* request,
                                               v1::Load* response) {
  // GetStats copies the figures the engine publishes after each step under a short lock: it
  // never waits for a step.
  *response = BuildLoad(engine_->GetStats());
  return FinishUnary(context, grpc::Status::OK);
}

}  // namespace mlkv::server
