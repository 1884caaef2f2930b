// Building and running one step's batch; see model_runner.h.
#include "engine/model_runner.h"

#include <algorithm>

#include "common/status_macros.h"

namespace mlkv {

void ModelRunner::BuildBatch(const SchedulerOutput& output, absl::Span<const RowRequest> requests) {
  const int64_t bs = cache_->options().block_size;
  StepBatch& b = batch_;
  b.token_ids.clear();
  b.positions.clear();
  b.slot_mapping.clear();
  b.query_start.assign(1, 0);
  b.context_lens.clear();
  b.block_tables.clear();
  b.logits_rows.clear();
  b.argmax_rows.clear();
  b.sample_rows.clear();
  b.sample_params.clear();
  sources_.clear();
  b.max_blocks_per_seq = 0;
  for (const ScheduledRequest& s : output.scheduled) {
    b.max_blocks_per_seq = std::max<int64_t>(b.max_blocks_per_seq, s.block_table.size());
  }
  for (size_t i = 0; i < output.scheduled.size(); ++i) {
    const ScheduledRequest& s = output.scheduled[i];
    const int32_t prompt_len = s.request->num_prompt_tokens();
    const std::optional<int32_t> score_from = requests[i].prompt_logprobs_from;
    for (int32_t j = 0; j < s.num_new_tokens; ++j) {
      const int32_t p = s.num_computed_tokens + j;
      const bool last = j + 1 == s.num_new_tokens;
      const bool scores_prompt = score_from && p >= *score_from && p + 1 < prompt_len;
      const bool samples = last && s.needs_sample;
      const int32_t row = static_cast<int32_t>(b.token_ids.size());
      const RowRequest& r = requests[i];
      if (samples && !scores_prompt && r.greedy_token_only) {
        sources_.push_back({i, RowKind::kArgmax, b.argmax_rows.size()});
        b.argmax_rows.push_back(row);
      } else if (samples && !scores_prompt && r.backend_sampling) {
        sources_.push_back({i, RowKind::kSample, b.sample_rows.size()});
        b.sample_rows.push_back(row);
        b.sample_params.push_back(*r.backend_sampling);
      } else if (scores_prompt || samples) {
        sources_.push_back({i, RowKind::kLogits, b.logits_rows.size()});
        b.logits_rows.push_back(row);
      }
      b.token_ids.push_back(s.token_ids[j]);
      b.positions.push_back(p);
      b.slot_mapping.push_back(static_cast<int64_t>(s.block_table[p / bs]) * bs + p % bs);
    }
    b.query_start.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.context_lens.push_back(s.num_computed_tokens + s.num_new_tokens);
    b.block_tables.insert(b.block_tables.end(), s.block_table.begin(), s.block_table.end());
    b.block_tables.resize((i + 1) * b.max_blocks_per_seq, 0);  // pad to the widest table
  }
}

absl::Status ModelRunner::Run(const SchedulerOutput& output,
                              absl::Span<const RowRequest> requests) {
  BuildBatch(output, requests);
  RETURN_IF_ERROR(model_->Forward(batch_, *cache_, &output_));
  const int64_t vocab = model_->config().vocab_size;
  rows_.resize(output.scheduled.size());
  for (auto& rows : rows_) rows.clear();
  // Sources are in row order, so each request's rows come out in position order.
  // output_.tokens holds the argmax rows' tokens, then the sample rows'.
  const size_t num_argmax = batch_.argmax_rows.size();
  for (const RowSource& source : sources_) {
    std::vector<RowLogits>& rows = rows_[source.request];
    switch (source.kind) {
      case RowKind::kArgmax:
        rows.push_back(
            {batch_.positions[batch_.argmax_rows[source.index]], {}, output_.tokens[source.index]});
        break;
      case RowKind::kSample:
        rows.push_back({batch_.positions[batch_.sample_rows[source.index]],
                        {},
                        output_.tokens[num_argmax + source.index]});
        break;
      case RowKind::kLogits:
        rows.push_back(
            {batch_.positions[batch_.logits_rows[source.index]],
             std::span<const float>(output_.logits.data() + source.index * vocab, vocab)});
        break;
    }
  }
  return absl::OkStatus();
}

}  // namespace mlkv
