// `mlkv generate`: continues one prompt of token ids.
#include <cstdio>

#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tools/mlkv/commands.h"
#include "tools/mlkv/model_flags.h"

namespace mlkv::cli {

absl::Status RunGenerate(const Args& args) {
  ASSIGN_OR_RETURN(Flags flags,
                   Flags::Parse(args, Union({kModelFlags, kSamplingFlags,
                                             {"token-ids", "max-tokens", "format"}}),
                                {"ignore-eos"}));
  ASSIGN_OR_RETURN(bool json, JsonFormatFromFlags(flags));
  SequenceRequest request;
  ASSIGN_OR_RETURN(request.prompt, TokenIdsFromFlags(flags));
  ASSIGN_OR_RETURN(request.max_tokens, flags.Int("max-tokens", 16, 1, 1 << 20));
  ASSIGN_OR_RETURN(request.sampling, SamplingFromFlags(flags));
  request.ignore_eos = flags.Switch("ignore-eos");
  ASSIGN_OR_RETURN(OfflineRunnerOptions options, RunnerOptionsFromFlags(flags));
  ASSIGN_OR_RETURN(LoadedModel loaded, LoadModelFromFlags(flags));
  ASSIGN_OR_RETURN(auto results, OfflineRunner(loaded.model.get(), options).Run({request}));
  const SequenceResult& result = results[0];
  if (json) {
    nlohmann::json out = {{"token_ids", result.output_tokens},
                          {"logprobs", result.output_logprobs}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("%s\n", absl::StrJoin(result.output_tokens, " ").c_str());
  }
  return absl::OkStatus();
}

}  // namespace mlkv::cli
