// `mlkv generate`: continues one or more prompts, all at once through the engine loop. Each
// --token-ids is one prompt of ids, each --prompt one of text (encoded with the model's
// tokenizer); the outputs come in that order: the --token-ids prompts, then the --prompt ones.
#include <cstdio>

#include "absl/strings/str_join.h"
#include "cli/model_flags.h"
#include "common/status_macros.h"
#include "engine/collecting_observer.h"
#include "engine/engine_factory.h"
#include "nlohmann/json.hpp"
#include "scheduler/request.h"
#include "tools/mlkv/commands.h"

namespace mlkv::cli {
namespace {

// The prompts of the command line as engine requests, missing only sampling and the observer.
absl::StatusOr<std::vector<EngineRequest>> PromptsFromFlags(const Flags& flags) {
  if (!flags.Has("token-ids") && !flags.Has("prompt")) {
    return absl::InvalidArgumentError("--token-ids or --prompt: give at least one prompt");
  }
  std::vector<EngineRequest> requests;
  if (flags.Has("token-ids")) {
    ASSIGN_OR_RETURN(auto prompts, TokenIdsFromFlags(flags));
    for (auto& ids : prompts) requests.emplace_back().prompt_token_ids = std::move(ids);
  }
  for (std::string& text : flags.Strings("prompt")) {
    requests.emplace_back().prompt_text = std::move(text);
  }
  return requests;
}

}  // namespace

absl::Status RunGenerate(const Args& args) {
  ASSIGN_OR_RETURN(
      Flags flags,
      Flags::Parse(args,
                   Union({kModelFlags,
                          kSamplingFlags,
                          {"token-ids", "prompt", "stop", "max-tokens", "format", "priority"}}),
                   Union({kModelSwitches, {"ignore-eos"}}), {"token-ids", "prompt", "stop"}));
  if (PrintUsageIfAsked(flags, "mlkv generate")) return absl::OkStatus();
  ASSIGN_OR_RETURN(bool json, JsonFormatFromFlags(flags));
  ASSIGN_OR_RETURN(std::vector<EngineRequest> requests, PromptsFromFlags(flags));
  ASSIGN_OR_RETURN(int64_t max_tokens, flags.Int("max-tokens", 16, 1, 1 << 20));
  ASSIGN_OR_RETURN(SamplingParams sampling, SamplingFromFlags(flags));
  // A text prompt's length is known only once the engine encodes it. A byte-level BPE token is
  // at least one byte of NFC text, and NFC makes UTF-8 at most 3x longer (UAX #15), so 3 tokens
  // per byte is enough to size the cache.
  int64_t tokens_needed = 0;
  for (const EngineRequest& r : requests) {
    const size_t prompt = r.prompt_text ? 3 * r.prompt_text->size() : r.prompt_token_ids.size();
    tokens_needed += static_cast<int64_t>(prompt) + max_tokens;
  }
  ASSIGN_OR_RETURN(const EngineFactoryOptions options,
                   EngineFactoryOptionsFromFlags(flags, tokens_needed));
  ASSIGN_OR_RETURN(ReadyEngine ready, CreateEngine(options));
  std::unique_ptr<Engine> engine = std::move(ready.engine);

  std::vector<std::shared_ptr<CollectingObserver>> observers;
  for (size_t i = 0; i < requests.size(); ++i) {
    EngineRequest& request = requests[i];
    request.max_tokens = static_cast<int32_t>(max_tokens);
    request.sampling = sampling;
    request.ignore_eos = flags.Switch("ignore-eos");
    request.stop_strings = flags.Strings("stop");
    // The JSON output carries each token's logprob; the text output does not, and without
    // logprobs a greedy token is the backend's argmax, with no logits copied to the host.
    if (json) request.top_logprobs = 0;
    request.observer = observers.emplace_back(std::make_shared<CollectingObserver>());
    absl::StatusOr<std::string> id = engine->Submit(std::move(request));
    if (!id.ok()) {
      return absl::Status(id.status().code(),
                          absl::StrCat("prompt ", i + 1, ": ", id.status().message()));
    }
  }
  const bool has_text = engine->tokenizer() != nullptr;
  nlohmann::json outputs = nlohmann::json::array();
  for (size_t i = 0; i < observers.size(); ++i) {
    const RequestResult result = observers[i]->Wait();
    if (!result.status.ok()) {
      return absl::Status(result.status.code(),
                          absl::StrCat("prompt ", i + 1, ": ", result.status.message()));
    }
    std::vector<float> logprobs;
    for (const TokenLogprob& lp : observers[i]->logprobs()) logprobs.push_back(lp.logprob);
    nlohmann::json output = {{"token_ids", result.output_token_ids},
                             {"logprobs", logprobs},
                             {"finish_reason", FinishReasonName(result.finish_reason)},
                             {"cached_prompt_tokens", result.num_cached_prompt_tokens}};
    if (has_text) output["text"] = observers[i]->text();
    if (result.stop_string) output["stop_string"] = *result.stop_string;
    outputs.push_back(std::move(output));
  }
  if (json) {
    // One prompt prints its output object; several print {"outputs": [...]}, in prompt order.
    const nlohmann::json out =
        outputs.size() == 1 ? outputs[0] : nlohmann::json{{"outputs", outputs}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    // Per prompt a line of ids and, with a tokenizer, the text as a JSON string (one line,
    // whatever newlines the text holds).
    for (const auto& o : outputs) {
      std::printf("%s\n", absl::StrJoin(o["token_ids"].get<std::vector<int32_t>>(), " ").c_str());
      if (has_text) std::printf("%s\n", o["text"].dump().c_str());
    }
  }
  return absl::OkStatus();
}

}  // namespace mlkv::cli
