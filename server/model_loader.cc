// Engine construction and warm-up for mlkv-server; see model_loader.h.
#include "server/model_loader.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cli/model_flags.h"
#include "common/status_macros.h"
#include "engine/collecting_observer.h"
#include "engine/engine_factory.h"

namespace mlkv::server {

absl::StatusOr<ServedModel> LoadServedModel(const ServerFlags& flags,
                                            std::shared_ptr<EngineMonitor> monitor) {
  // The server has no known requests to size the cache for: the KV budget flag (given, or the
  // default ParseServerFlags adds) sizes it, and tokens_needed goes unused. The budget is of the
  // memory measured once the backend had started, before the weights took their share.
  ASSIGN_OR_RETURN(EngineFactoryOptions options,
                   cli::EngineFactoryOptionsFromFlags(flags.flags, /*tokens_needed=*/0));
  options.scheduler.max_waiting = flags.max_waiting;
  options.monitor = std::move(monitor);
  ASSIGN_OR_RETURN(ReadyEngine ready, CreateEngine(options));
  ServedModel served;
  served.engine = std::move(ready.engine);
  served.options = std::move(ready.options);
  served.model_name = flags.served_model_name;
  return served;
}

absl::Status WarmUp(Engine* engine) {
  auto observer = std::make_shared<CollectingObserver>();
  EngineRequest request;
  request.request_id = "warm-up";
  request.prompt_token_ids = {static_cast<int32_t>(engine->model_config().bos_token_id)};
  request.max_tokens = 1;
  request.ignore_eos = true;
  request.sampling.temperature = 0.0f;
  request.observer = observer;
  ASSIGN_OR_RETURN(std::string id, engine->Submit(std::move(request)));
  const RequestResult result = observer->Wait();
  if (!result.status.ok()) {
    return absl::Status(result.status.code(),
                        absl::StrCat("warm-up request failed: ", result.status.message()));
  }
  return absl::OkStatus();
}

}  // namespace mlkv::server
