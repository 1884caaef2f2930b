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
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "the model has no tokenizer (no tokenizer.json, no --tokenizer): send and "
                      "read token ids");
}

// Text to ids, BOS first when asked; errors name the field.
absl::Status EncodeText(const Tokenizer& tokenizer, const ModelConfig& config,
                        const v1::TokenizeRequest& request, v1::TokenizeResponse* response) {
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(request.text());
  if (!ids.ok()) return absl::InvalidArgumentError(absl::StrCat("text: ", ids.status().message()));
  if (request.add_bos()) response->add_token_ids(static_cast<int32_t>(config.bos_token_id));
  response->mutable_token_ids()->Add(ids->begin(), ids->end());
  return absl::OkStatus();
}

absl::Status DecodeIds(const Tokenizer& tokenizer, const v1::DetokenizeRequest& request,
                       v1::DetokenizeResponse* response) {
  absl::StatusOr<std::string> text =
      tokenizer.Decode(request.token_ids(), {.skip_special_tokens = request.skip_special_tokens()});
  if (!text.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("token_ids: ", text.status().message()));
  }
  response->set_text(*std::move(text));
  return absl::OkStatus();
}

}  // namespace

MlkvService::MlkvService(Engine* engine, const EngineOptions& options, std::string model_name,
                         const ApiKeyAuth* auth)
    : engine_(engine),
      auth_(auth),
      limits_(RequestLimits::Of(options.scheduler)),
      model_info_(BuildModelInfo(model_name, engine->model_config(), options, engine->GetStats())) {
}

grpc::ServerWriteReactor<v1::GenerateResponse>* MlkvService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  using Refused = FinishedWriteReactor<v1::GenerateResponse>;
  if (grpc::Status auth = auth_->Check(*context); !auth.ok()) return new Refused(auth);
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
  if (grpc::Status auth = auth_->Check(*context); !auth.ok()) return FinishUnary(context, auth);
  if (engine_->tokenizer() == nullptr) return FinishUnary(context, NoTokenizer());
  return FinishUnary(
      context,
      ToGrpcStatus(EncodeText(*engine_->tokenizer(), engine_->model_config(), *request, response)));
}

grpc::ServerUnaryReactor* MlkvService::Detokenize(grpc::CallbackServerContext* context,
                                                  const v1::DetokenizeRequest* request,
                                                  v1::DetokenizeResponse* response) {
  if (grpc::Status auth = auth_->Check(*context); !auth.ok()) return FinishUnary(context, auth);
  if (engine_->tokenizer() == nullptr) return FinishUnary(context, NoTokenizer());
  return FinishUnary(context, ToGrpcStatus(DecodeIds(*engine_->tokenizer(), *request, response)));
}

grpc::ServerUnaryReactor* MlkvService::GetModelInfo(grpc::CallbackServerContext* context,
                                                    const v1::GetModelInfoRequest* request,
                                                    v1::ModelInfo* response) {
  if (grpc::Status auth = auth_->Check(*context); !auth.ok()) return FinishUnary(context, auth);
  *response = model_info_;
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* MlkvService::GetLoad(grpc::CallbackServerContext* context,
                                               const v1::GetLoadRequest* request,
                                               v1::Load* response) {
  if (grpc::Status auth = auth_->Check(*context); !auth.ok()) return FinishUnary(context, auth);
  // GetStats copies the figures the engine publishes after each step under a short lock: it
  // never waits for a step.
  *response = BuildLoad(engine_->GetStats());
  return FinishUnary(context, grpc::Status::OK);
}

}  // namespace mlkv::server
