// SchedulerConfig::Validate.
#include "scheduler/scheduler_config.h"

#include <initializer_list>
#include <utility>

#include "absl/strings/str_cat.h"

namespace mlkv {
namespace {

absl::Status RequirePositive(const char* name, int64_t value) {
  if (value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(name, " must be positive, got ", value));
}

}  // namespace

absl::Status SchedulerConfig::Validate() const {
  for (auto [name, value] :
       {std::pair<const char*, int32_t>{"max_num_batched_tokens", max_num_batched_tokens},
        {"max_num_seqs", max_num_seqs},
        {"max_model_len", max_model_len},
        {"block_size", block_size},
        {"num_blocks", num_blocks},
        {"max_waiting", max_waiting}}) {
    absl::Status status = RequirePositive(name, value);
    if (!status.ok()) return status;
  }
  if (long_prefill_token_threshold) {
    absl::Status status =
        RequirePositive("long_prefill_token_threshold", *long_prefill_token_threshold);
    if (!status.ok()) return status;
    if (!enable_chunked_prefill) {
      return absl::InvalidArgumentError(
          "long_prefill_token_threshold needs chunked prefill, which is off");
    }
  }
  if (!enable_chunked_prefill && max_num_batched_tokens < max_model_len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "without chunked prefill a whole sequence is computed in one step, so "
        "max_num_batched_tokens (",
        max_num_batched_tokens, ") must be at least max_model_len (", max_model_len, ")"));
  }
  return absl::OkStatus();
}

}  // namespace mlkv
