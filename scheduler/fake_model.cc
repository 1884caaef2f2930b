// FakeModel: slot writes and reads over a fake paged cache, and an FNV-1a history hash.
#include "scheduler/fake_model.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace mlkv {

FakeModel::FakeModel(int32_t num_blocks, int32_t block_size, int32_t vocab_size)
    : block_size_(block_size),
      vocab_size_(vocab_size),
      slots_(static_cast<size_t>(num_blocks) * block_size) {}

int32_t FakeModel::NextToken(absl::Span<const int32_t> history) const {
  uint64_t h = 14695981039346656037ull;  // FNV-1a, then a final mix so low bits spread
  for (int32_t token : history) {
    h ^= static_cast<uint32_t>(token);
    h *= 1099511628211ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return static_cast<int32_t>(h % static_cast<uint64_t>(vocab_size_));
}

absl::StatusOr<std::vector<int32_t>> FakeModel::Step(const SchedulerOutput& output) {
  auto slot_of = [&](const ScheduledRequest& s, int32_t p) -> absl::StatusOr<size_t> {
    const size_t index = static_cast<size_t>(p / block_size_);
    if (index >= s.block_table.size()) {
      return absl::InternalError(absl::StrCat(s.request->id(), ": position ", p, " lies past its ",
                                              s.block_table.size(), "-block table"));
    }
    const int64_t slot = static_cast<int64_t>(s.block_table[index]) * block_size_ + p % block_size_;
    if (slot < 0 || slot >= static_cast<int64_t>(slots_.size())) {
      return absl::InternalError(absl::StrCat(s.request->id(), ": slot ", slot, " out of range"));
    }
    return static_cast<size_t>(slot);
  };
  // All writes first, as a real forward pass fills the cache before attending.
  for (const ScheduledRequest& s : output.scheduled) {
    for (int32_t j = 0; j < s.num_new_tokens; ++j) {
      const int32_t p = s.num_computed_tokens + j;
      absl::StatusOr<size_t> slot = slot_of(s, p);
      if (!slot.ok()) return slot.status();
      slots_[*slot] = Slot{s.token_ids[j], p};
    }
  }
  std::vector<int32_t> sampled(output.scheduled.size(), 0);
  std::vector<int32_t> history;
  for (size_t i = 0; i < output.scheduled.size(); ++i) {
    const ScheduledRequest& s = output.scheduled[i];
    if (!s.needs_sample) continue;
    history.clear();
    for (int32_t p = 0; p < s.num_computed_tokens + s.num_new_tokens; ++p) {
      absl::StatusOr<size_t> slot = slot_of(s, p);
      if (!slot.ok()) return slot.status();
      if (slots_[*slot].position != p) {
        return absl::InternalError(absl::StrCat(s.request->id(), ": slot ", *slot,
                                                " holds position ", slots_[*slot].position,
                                                ", expected ", p));
      }
      history.push_back(slots_[*slot].token);
    }
    sampled[i] = NextToken(history);
  }
  return sampled;
}

std::vector<int32_t> FakeModel::GenerateAlone(absl::Span<const int32_t> prompt,
                                              const RequestParams& params) const {
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  std::vector<int32_t> output;
  while (static_cast<int32_t>(output.size()) < params.max_tokens) {
    const int32_t token = NextToken(history);
    history.push_back(token);
    output.push_back(token);
    const bool eos = !params.ignore_eos && params.eos_token_id == token;
    const bool stop =
        std::count(params.stop_token_ids.begin(), params.stop_token_ids.end(), token) > 0;
    if (eos || stop) break;
  }
  return output;
}

}  // namespace mlkv
