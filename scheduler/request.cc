// Request: construction, names of its enums, and the stop check on each new token.
#include "scheduler/request.h"

#include <algorithm>
#include <utility>

namespace mlkv {

const char* RequestStatusName(RequestStatus status) {
  switch (status) {
    case RequestStatus::kWaiting:
      return "waiting";
    case RequestStatus::kRunning:
      return "running";
    case RequestStatus::kPreempted:
      return "preempted";
    case RequestStatus::kFinished:
      return "finished";
  }
  return "unknown";
}

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kError:
      return "error";
  }
  return "unknown";
}

Request::Request(std::string id, std::vector<int32_t> prompt_token_ids, RequestParams params)
    : id_(std::move(id)),
      params_(std::move(params)),
      token_ids_(std::move(prompt_token_ids)),
      num_prompt_tokens_(static_cast<int32_t>(token_ids_.size())) {}

std::optional<FinishReason> Request::AppendOutputToken(int32_t token_id) {
  token_ids_.push_back(token_id);
  if (!params_.ignore_eos && params_.eos_token_id == token_id) return FinishReason::kStop;
  const std::vector<int32_t>& stops = params_.stop_token_ids;
  if (std::find(stops.begin(), stops.end(), token_id) != stops.end()) return FinishReason::kStop;
  if (num_output_tokens() >= params_.max_tokens) return FinishReason::kLength;
  return std::nullopt;
}

}  // namespace mlkv
