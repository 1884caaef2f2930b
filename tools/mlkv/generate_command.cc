// `mlkv generate`: continues one or more prompts of token ids, all at once through the engine
// loop (each --token-ids is one prompt).
#include <cstdio>

#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "engine/collecting_observer.h"
#include "nlohmann/json.hpp"
#include "scheduler/request.h"
#include "tools/mlkv/commands.h"
#include "tools/mlkv/model_flags.h"

namespace mlkv::cli {

absl::Status RunGenerate(const Args& args) {
  ASSIGN_OR_RETURN(Flags flags,
                   Flags::Parse(args, Union({kModelFlags, kSamplingFlags,
                                             {"token-ids", "max-tokens", "format", "priority"}}),
                                Union({kModelSwitches, {"ignore-eos"}}), {"token-ids"}));
  ASSIGN_OR_RETURN(bool json, JsonFormatFromFlags(flags));
  ASSIGN_OR_RETURN(auto prompts, TokenIdsFromFlags(flags));
  ASSIGN_OR_RETURN(int64_t max_tokens, flags.Int("max-tokens", 16, 1, 1 << 20));
  ASSIGN_OR_RETURN(SamplingParams sampling, SamplingFromFlags(flags));
  int64_t tokens_needed = 0;
  for (const auto& p : prompts) tokens_needed += static_cast<int64_t>(p.size()) + max_tokens;
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, CreateEngineFromFlags(flags, tokens_needed));

  std::vector<std::shared_ptr<CollectingObserver>> observers;
  for (size_t i = 0; i < prompts.size(); ++i) {
    EngineRequest request;
    request.prompt_token_ids = prompts[i];
    request.max_tokens = static_cast<int32_t>(max_tokens);
    request.sampling = sampling;
    request.ignore_eos = flags.Switch("ignore-eos");
    request.top_logprobs = 0;
    request.observer = observers.emplace_back(std::make_shared<CollectingObserver>());
    absl::StatusOr<std::string> id = engine->Submit(std::move(request));
    if (!id.ok()) {
      return absl::Status(id.status().code(),
                          absl::StrCat("prompt ", i + 1, ": ", id.status().message()));
    }
  }
  nlohmann::json outputs = nlohmann::json::array();
  for (size_t i = 0; i < observers.size(); ++i) {
    const RequestResult result = observers[i]->Wait();
    if (!result.status.ok()) {
      return absl::Status(result.status.code(),
                          absl::StrCat("prompt ", i + 1, ": ", result.status.message()));
    }
    std::vector<float> logprobs;
    for (const TokenLogprob& lp : observers[i]->logprobs()) logprobs.push_back(lp.logprob);
    outputs.push_back({{"token_ids", result.output_token_ids},
                       {"logprobs", logprobs},
                       {"finish_reason", FinishReasonName(result.finish_reason)},
                       {"cached_prompt_tokens", result.num_cached_prompt_tokens}});
  }
  if (json) {
    // One prompt prints its output object; several print {"outputs": [...]}, in prompt order.
    const nlohmann::json out = outputs.size() == 1 ? outputs[0] : nlohmann::json{{"outputs", outputs}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    for (const auto& o : outputs) {
      std::printf("%s\n", absl::StrJoin(o["token_ids"].get<std::vector<int32_t>>(), " ").c_str());
    }
  }
  return absl::OkStatus();
}

}  // namespace mlkv::cli
