// `mlkv score`: the log-probability of each token given the ones before it, and the perplexity,
// which is how users compare the MHA/GQA/MQA/MLKV variants of a model on the same text.
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tools/mlkv/commands.h"
#include "tools/mlkv/model_flags.h"

namespace mlkv::cli {

absl::Status RunScore(const Args& args) {
  ASSIGN_OR_RETURN(Flags flags,
                   Flags::Parse(args, Union({kModelFlags, {"token-ids", "format"}})));
  ASSIGN_OR_RETURN(bool json, JsonFormatFromFlags(flags));
  SequenceRequest request;
  ASSIGN_OR_RETURN(request.prompt, TokenIdsFromFlags(flags));
  if (request.prompt.size() < 2) {
    return absl::InvalidArgumentError("--token-ids: scoring needs at least two tokens");
  }
  request.max_tokens = 0;
  request.want_prompt_logprobs = true;
  ASSIGN_OR_RETURN(OfflineRunnerOptions options, RunnerOptionsFromFlags(flags));
  ASSIGN_OR_RETURN(LoadedModel loaded, LoadModelFromFlags(flags));
  ASSIGN_OR_RETURN(auto results, OfflineRunner(loaded.model.get(), options).Run({request}));
  const std::vector<float>& logprobs = results[0].prompt_logprobs;
  double sum = 0.0;
  for (float lp : logprobs) sum += lp;
  const double perplexity = std::exp(-sum / static_cast<double>(logprobs.size()));
  if (json) {
    nlohmann::json out = {{"token_logprobs", logprobs}, {"perplexity", perplexity}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    for (size_t i = 0; i < logprobs.size(); ++i) {
      std::printf("%d\t%.6f\n", request.prompt[i + 1], logprobs[i]);
    }
    std::printf("perplexity\t%.6f\n", perplexity);
  }
  return absl::OkStatus();
}

}  // namespace mlkv::cli
