// `mlkv score`: the log-probability of each token given the ones before it, and the perplexity,
// which is how users compare the MHA/GQA/MQA/MLKV variants of a model on the same text. The
// tokens are --token-ids, or the text of --text-file encoded with the model's tokenizer.
//
// A sequence longer than the engine allows (max_model_len, less the one token every request
// generates) is scored in windows that overlap by one token:
//   window 0: ids[0 .. W)   window 1: ids[W-1 .. 2W-1)   window 2: ids[2W-2 .. 3W-2) ...
// so every token but the first is scored exactly once, given the tokens before it in its window.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/strings/str_cat.h"
#include "cli/model_flags.h"
#include "common/status_macros.h"
#include "engine/collecting_observer.h"
#include "engine/engine_factory.h"
#include "nlohmann/json.hpp"
#include "tools/mlkv/commands.h"

namespace mlkv::cli {
namespace {

// The ids to score, from --token-ids or --text-file (exactly one is given).
absl::StatusOr<std::vector<int32_t>> IdsFromFlags(const Flags& flags, const Tokenizer* tokenizer,
                                                  const std::string& model_dir) {
  if (flags.Has("token-ids")) {
    ASSIGN_OR_RETURN(std::vector<int64_t> ids,
                     flags.IntList("token-ids", 0, std::numeric_limits<int32_t>::max()));
    if (ids.size() < 2) {
      return absl::InvalidArgumentError("--token-ids: scoring needs at least two tokens");
    }
    return std::vector<int32_t>(ids.begin(), ids.end());
  }
  const std::string path = flags.String("text-file", "");
  if (tokenizer == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("--text-file: the model has no tokenizer (no ", model_dir,
                     "/tokenizer.json): give --tokenizer FILE, or --token-ids"));
  }
  ASSIGN_OR_RETURN(std::string text, ReadFlagInput("text-file", path));
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer->Encode(text);
  if (!ids.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--text-file: ", path, ": ", ids.status().message()));
  }
  if (ids->size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat("--text-file: ", path, " is ", ids->size(),
                                                   " token(s); scoring needs at least two"));
  }
  return *std::move(ids);
}

// The windows over `ids` (see the top of this file), each at most `window` ids.
std::vector<std::vector<int32_t>> Windows(const std::vector<int32_t>& ids, size_t window) {
  std::vector<std::vector<int32_t>> windows;
  for (size_t start = 0; start + 1 < ids.size(); start += window - 1) {
    const size_t end = std::min(ids.size(), start + window);
    windows.emplace_back(ids.begin() + start, ids.begin() + end);
  }
  return windows;
}

}  // namespace

absl::Status RunScore(const Args& args) {
  ASSIGN_OR_RETURN(Flags flags,
                   Flags::Parse(args, Union({kModelFlags, {"token-ids", "text-file", "format"}}),
                                kModelSwitches));
  if (PrintUsageIfAsked(flags, "mlkv score")) return absl::OkStatus();
  ASSIGN_OR_RETURN(bool json, JsonFormatFromFlags(flags));
  if (flags.Has("token-ids") == flags.Has("text-file")) {
    return absl::InvalidArgumentError("give exactly one of --token-ids and --text-file");
  }
  ASSIGN_OR_RETURN(EngineFactoryOptions factory_options,
                   EngineFactoryOptionsFromFlags(flags, /*tokens_needed=*/0));
  ASSIGN_OR_RETURN(LoadedModel loaded, LoadModel(factory_options));
  ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                   IdsFromFlags(flags, loaded.tokenizer.get(), flags.String("model", "")));
  // A cache for all the ids and the one token generated: enough for any window, and for the
  // whole sequence at once when it fits one.
  factory_options.tokens_needed = static_cast<int64_t>(ids.size()) + 1;
  ASSIGN_OR_RETURN(EngineOptions options,
                   PlanEngineOptions(factory_options, loaded.model->config(),
                                     loaded.memory_before_weights, loaded.backend.get()));
  const int32_t max_model_len = options.scheduler.max_model_len;
  if (max_model_len < 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-model-len: scoring needs at least 3 (a window of two tokens and one generated), "
        "got ",
        max_model_len));
  }
  const std::vector<std::vector<int32_t>> windows = Windows(ids, max_model_len - 1);
  options.scheduler.max_waiting =
      std::max<int32_t>(options.scheduler.max_waiting, static_cast<int32_t>(windows.size()));
  ASSIGN_OR_RETURN(ReadyEngine ready, StartEngine(std::move(options), std::move(loaded)));
  std::unique_ptr<Engine> engine = std::move(ready.engine);

  std::vector<std::shared_ptr<CollectingObserver>> observers;
  for (const std::vector<int32_t>& window : windows) {
    EngineRequest request;
    request.prompt_token_ids = window;
    request.max_tokens = 1;  // the engine always generates; scoring ignores it
    request.sampling.temperature = 0.0f;
    request.prompt_logprobs = true;
    request.observer = observers.emplace_back(std::make_shared<CollectingObserver>());
    ASSIGN_OR_RETURN(std::string id, engine->Submit(std::move(request)));
  }
  std::vector<float> logprobs;
  for (auto& observer : observers) {
    const RequestResult result = observer->Wait();
    RETURN_IF_ERROR(result.status);
    logprobs.insert(logprobs.end(), result.prompt_logprobs.begin(), result.prompt_logprobs.end());
  }
  double total = 0.0;
  for (float lp : logprobs) total += lp;
  const double perplexity = std::exp(-total / static_cast<double>(logprobs.size()));
  if (json) {
    nlohmann::json out = {{"token_logprobs", logprobs},
                          {"num_tokens", ids.size()},
                          {"num_windows", windows.size()},
                          {"total_logprob", total},
                          {"perplexity", perplexity}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    for (size_t i = 0; i < logprobs.size(); ++i) {
      std::printf("%d\t%.6f\n", ids[i + 1], logprobs[i]);
    }
    std::printf("tokens\t%zu\ntotal_logprob\t%.6f\nperplexity\t%.6f\n", ids.size(), total,
                perplexity);
  }
  return absl::OkStatus();
}

}  // namespace mlkv::cli
