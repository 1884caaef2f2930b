// `mlkv score`: the log-probability of each token given the ones before it, and the perplexity,
// which is how users compare the MHA/GQA/MQA/MLKV variants of a model on the same text.
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/collecting_observer.h"
#include "nlohmann/json.hpp"
#include "tools/mlkv/commands.h"
#include "tools/mlkv/model_flags.h"

namespace mlkv::cli {

absl::Status RunScore(const Args& args) {
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(args, Union({kModelFlags, {"token-ids", "format"}}),
                                             kModelSwitches));
  ASSIGN_OR_RETURN(bool json, JsonFormatFromFlags(flags));
  ASSIGN_OR_RETURN(std::vector<int64_t> ids,
                   flags.IntList("token-ids", 0, std::numeric_limits<int32_t>::max()));
  if (ids.size() < 2) {
    return absl::InvalidArgumentError("--token-ids: scoring needs at least two tokens");
  }
  // The engine always generates at least one token; scoring ignores it.
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                   CreateEngineFromFlags(flags, static_cast<int64_t>(ids.size()) + 1));
  EngineRequest request;
  request.prompt_token_ids.assign(ids.begin(), ids.end());
  request.max_tokens = 1;
  request.sampling.temperature = 0.0f;
  request.prompt_logprobs = true;
  auto observer = std::make_shared<CollectingObserver>();
  request.observer = observer;
  ASSIGN_OR_RETURN(std::string id, engine->Submit(std::move(request)));
  const RequestResult result = observer->Wait();
  RETURN_IF_ERROR(result.status);
  const std::vector<float>& logprobs = result.prompt_logprobs;
  double sum = 0.0;
  for (float lp : logprobs) sum += lp;
  const double perplexity = std::exp(-sum / static_cast<double>(logprobs.size()));
  if (json) {
    nlohmann::json out = {{"token_logprobs", logprobs}, {"perplexity", perplexity}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    for (size_t i = 0; i < logprobs.size(); ++i) std::printf("%lld\t%.6f\n", (long long)ids[i + 1], logprobs[i]);
    std::printf("perplexity\t%.6f\n", perplexity);
  }
  return absl::OkStatus();
}

}  // namespace mlkv::cli
