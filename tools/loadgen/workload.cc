// Request generation; see workload.h.
#include "tools/loadgen/workload.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace mlkv::loadgen {

absl::StatusOr<Workload> Workload::Create(WorkloadOptions options) {
  if (options.vocab_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--vocab-size: must be at least 1, got ", options.vocab_size));
  }
  if (options.shared_prefix_count > 0) {
    for (const TraceEntry& entry : options.trace) {
      if (entry.prompt.has_value()) {
        return absl::InvalidArgumentError(
            "--shared-prefix-count: a shared prefix is token ids; it cannot prefix the text "
            "prompts of a trace");
      }
    }
  }
  return Workload(std::move(options));
}

Workload::Workload(WorkloadOptions options) : options_(std::move(options)), rng_(options_.seed) {
  prefixes_.resize(options_.shared_prefix_count);
  for (auto& prefix : prefixes_) AppendRandomTokens(options_.shared_prefix_len, &prefix);
}

void Workload::AppendRandomTokens(int64_t n, std::vector<int32_t>* out) {
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(options_.vocab_size - 1));
  for (int64_t i = 0; i < n; ++i) out->push_back(token(rng_));
}

RequestSpec Workload::Next() {
  const int64_t index = next_++;
  RequestSpec spec;
  int64_t own_len = 0;
  if (options_.trace.empty()) {
    own_len = options_.input_len.Sample(rng_);
    spec.output_len = options_.output_len.Sample(rng_);
  } else {
    const TraceEntry& entry = options_.trace[index % options_.trace.size()];
    spec.output_len = entry.output_len;
    if (entry.prompt.has_value()) {
      spec.prompt_text = *entry.prompt;
      return spec;
    }
    own_len = entry.prompt_len;
  }
  if (!prefixes_.empty()) spec.prompt_token_ids = prefixes_[index % prefixes_.size()];
  AppendRandomTokens(own_len, &spec.prompt_token_ids);
  return spec;
}

}  // namespace mlkv::loadgen
