// GenerateRequest -> EngineRequest and engine reports -> wire messages; see generate_request.h.
#include "server/generate_request.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace mlkv::server {
namespace {

absl::Status FieldError(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

// Every id in [0, vocab_size); `field` names the list in the error.
absl::Status CheckTokenIds(absl::string_view field,
                           const google::protobuf::RepeatedField<int32_t>& ids,
                           int64_t vocab_size) {
  for (int i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      return FieldError(field, absl::StrCat("token id ", ids[i], " at index ", i,
                                            " is outside the vocabulary [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<EngineRequest> ToEngineRequest(const v1::GenerateRequest& request,
                                              const ModelConfig& config,
                                              const RequestLimits& limits) {
  EngineRequest out;
  if (request.request_id().size() > kMaxRequestIdLength) {
    return FieldError("request_id",
                      absl::StrCat("longer than ", kMaxRequestIdLength, " characters"));
  }
  out.request_id = request.request_id();

  // The prompt: exactly one form.
  const bool has_ids = !request.prompt_token_ids().empty();
  const bool has_text = !request.prompt_text().empty();
  if (has_ids && has_text) {
    return FieldError("prompt_token_ids", "give either prompt_token_ids or prompt_text, not both");
  }
  if (has_text) {
    // The engine encodes it (and refuses it when the model has no tokenizer).
    out.prompt_text = request.prompt_text();
  } else {
    if (!has_ids) return FieldError("prompt_token_ids", "the prompt is empty");
    if (auto s = CheckTokenIds("prompt_token_ids", request.prompt_token_ids(), config.vocab_size);
        !s.ok()) {
      return s;
    }
    out.prompt_token_ids.assign(request.prompt_token_ids().begin(),
                                request.prompt_token_ids().end());
  }

  // Stopping.
  out.max_tokens = request.has_max_tokens() ? request.max_tokens() : 16;
  if (out.max_tokens < 1) {
    return FieldError("max_tokens", absl::StrCat("must be at least 1, got ", out.max_tokens));
  }
  // A text prompt's length is known once the engine has encoded it; the engine checks it then
  // (max_model_len at Submit, the cache when it admits the request).
  const int64_t total = static_cast<int64_t>(out.prompt_token_ids.size()) + out.max_tokens;
  if (has_ids && total > limits.max_model_len) {
    return FieldError("max_tokens",
                      absl::StrCat("the prompt (", out.prompt_token_ids.size(), " tokens) plus ",
                                   "max_tokens (", out.max_tokens, ") exceeds the server's ",
                                   "max_model_len ", limits.max_model_len));
  }
  // The last sampled token is never written to the cache, hence total - 1.
  if (has_ids && total - 1 > limits.kv_capacity_tokens) {
    return FieldError("max_tokens",
                      absl::StrCat("the prompt (", out.prompt_token_ids.size(), " tokens) plus ",
                                   "max_tokens (", out.max_tokens, ") needs ", total - 1,
                                   " tokens of KV cache, more than the whole cache holds (",
                                   limits.kv_capacity_tokens, ")"));
  }
  out.ignore_eos = request.ignore_eos();
  if (auto s = CheckTokenIds("stop_token_ids", request.stop_token_ids(), config.vocab_size);
      !s.ok()) {
    return s;
  }
  out.stop_token_ids.assign(request.stop_token_ids().begin(), request.stop_token_ids().end());
  // The engine refuses empty and ill-formed ones, and any when the model has no tokenizer.
  if (request.stop().size() > kMaxStopStrings) {
    return FieldError(
        "stop", absl::StrCat("at most ", kMaxStopStrings, " strings, got ", request.stop().size()));
  }
  for (int i = 0; i < request.stop().size(); ++i) {
    if (request.stop(i).size() > kMaxStopStringBytes) {
      return FieldError(
          "stop", absl::StrCat("string ", i, " is longer than ", kMaxStopStringBytes, " bytes"));
    }
  }
  out.stop_strings.assign(request.stop().begin(), request.stop().end());

  // Sampling: unset fields keep SamplingParams' defaults, which are the documented ones.
  SamplingParams& p = out.sampling;
  if (request.has_temperature()) p.temperature = request.temperature();
  if (request.has_top_k()) p.top_k = request.top_k();
  if (request.has_top_p()) p.top_p = request.top_p();
  if (request.has_min_p()) p.min_p = request.min_p();
  if (request.has_repetition_penalty()) p.repetition_penalty = request.repetition_penalty();
  if (request.has_presence_penalty()) p.presence_penalty = request.presence_penalty();
  if (request.has_frequency_penalty()) p.frequency_penalty = request.frequency_penalty();
  if (request.has_seed()) p.seed = request.seed();
  // SamplingParams names its fields as the proto does ("top_p must be in (0, 1], got 0").
  if (absl::Status s = p.Validate(); !s.ok()) return s;

  // Reporting and scheduling.
  if (request.has_logprobs()) {
    if (request.logprobs() < 0 || request.logprobs() > kMaxLogprobs) {
      return FieldError(
          "logprobs", absl::StrCat("must be in [0, ", kMaxLogprobs, "], got ", request.logprobs()));
    }
    out.top_logprobs = request.logprobs();
  }
  out.prompt_logprobs = request.prompt_logprobs();
  out.priority = request.priority();
  return out;
}

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kAbort:
      return v1::FINISH_REASON_ABORT;
    case FinishReason::kError:
      return v1::FINISH_REASON_ERROR;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

void AppendDelta(const TokenDelta& delta, v1::TokenDelta* out) {
  for (int32_t id : delta.token_ids) out->add_token_ids(id);
  out->mutable_text()->append(delta.text);
  for (const TokenLogprob& lp : delta.logprobs) {
    v1::TokenLogprob* entry = out->add_logprobs();
    entry->set_token_id(lp.token_id);
    entry->set_logprob(lp.logprob);
    for (const auto& [id, logprob] : lp.top) {
      v1::TopLogprob* top = entry->add_top();
      top->set_token_id(id);
      top->set_logprob(logprob);
    }
  }
}

v1::GenerateResult ToGenerateResult(const std::string& request_id, const RequestResult& result) {
  v1::GenerateResult out;
  out.set_request_id(request_id);
  out.set_finish_reason(ToProto(result.finish_reason));
  if (result.stop_token_id) out.set_stop_token_id(*result.stop_token_id);
  if (result.stop_string) out.set_stop_string(*result.stop_string);
  v1::Usage* usage = out.mutable_usage();
  usage->set_prompt_tokens(result.num_prompt_tokens);
  usage->set_completion_tokens(static_cast<int32_t>(result.output_token_ids.size()));
  usage->set_cached_prompt_tokens(result.num_cached_prompt_tokens);
  usage->set_preemptions(result.num_preemptions);
  for (float lp : result.prompt_logprobs) out.add_prompt_logprobs(lp);
  return out;
}

}  // namespace mlkv::server
